"""The two-person rule through the real CLI: prune, refusals and every way to cheat."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from drkit.approval.keys import unlock
from drkit.approval.requests import put_decision, sign_decision
from drkit.storage.local import LocalStore


def _old_and_new_snapshots(project) -> tuple[str, str]:
    old = project.snapshot("old")
    (project.root / "data" / "uploads" / "old.txt").unlink()
    project.clock.advance(timedelta(days=40))
    new = project.snapshot("new")
    return old, new


def test_prune_without_approval_exits_3_and_deletes_nothing(project) -> None:
    _old_and_new_snapshots(project)
    before = {p: (project.region / p).read_bytes() for p in project.objects()}
    res = project.run("prune", ok=False)
    assert res.exit_code == 3
    assert "prune is a dangerous operation" in res.stderr
    assert "forget 1 snapshot(s)" in res.stderr
    assert "needs 2 approvals" in res.stderr
    assert "drkit request prune --keep-last 1 --older-than-days 30 --reason TEXT" in res.stderr
    assert res.stderr.count("\n") == 1
    after = {p: (project.region / p).read_bytes() for p in project.objects()
             if not p.startswith("audit/")}
    assert {k: v for k, v in before.items() if not k.startswith("audit/")} == after
    assert len(project.snapshots()) == 2


def test_prune_with_two_approvals_runs_once_and_logs_tombstones(project) -> None:
    old, new = _old_and_new_snapshots(project)
    rid = project.request("prune")
    listed = project.json("requests")["requests"]
    assert [(r["id"], r["state"]) for r in listed] == [(rid, "pending")]
    project.approve(rid, "bob")
    res = project.run("execute", rid, ok=False)
    assert res.exit_code == 3
    assert "needs 2 approvals" in res.stderr and "1 of 2 approvals (bob)" in res.stderr
    project.approve(rid, "carol")
    assert project.json("requests", "--state", "approved")["requests"][0]["approved_by"] == [
        "bob", "carol"]
    done = project.json("execute", rid)
    assert done["approved_by"] == ["bob", "carol"]
    plan = project.json("requests", "--plan")["requests"][0]["plan"]
    deleted = {item["key"] for item in plan["delete"]}
    assert {k.split("/")[0] for k in deleted} == {"index", "packs", "sessions", "snapshots"}
    assert done["result"]["forgotten"] == 1 and done["result"]["deleted"] == len(deleted)
    assert not deleted & project.objects()
    assert project.snapshots() == [new]
    assert not any(old in key for key in project.objects("snapshots/"))
    # The deletions are tombstones in the journal, naming the approval.
    batches = b"".join(p.read_bytes() for p in (project.region / "journal" / "batch").iterdir())
    assert b'"kind":"tombstone"' in batches and rid.encode() in batches
    # The repository still restores and checks cleanly after the prune.
    assert project.run("check").exit_code == 0
    # Replay: an executed request never runs again.
    res = project.run("execute", rid, ok=False)
    assert res.exit_code == 3 and "already executed" in res.stderr
    assert project.json("requests")["requests"][0]["state"] == "executed"


def test_requester_cannot_approve_own_request(project) -> None:
    _old_and_new_snapshots(project)
    rid = project.request("prune", as_name="alice")
    res = project.approve(rid, "alice", ok=False)
    assert res.exit_code == 3
    assert "alice filed request" in res.stderr and "cannot approve it" in res.stderr
    # Even a decision object written behind the CLI's back does not count.
    store = LocalStore(project.region)
    key = unlock(next((project.root / "keys" / "approvers").glob("alice.*.key")),
                 "passphrase of alice")
    put_decision(store, rid, sign_decision(rid, "approve", key, reason="", actor={},
                                           now=project.clock.now()))
    project.approve(rid, "bob")
    res = project.run("execute", rid, ok=False)
    assert res.exit_code == 3
    assert "1 of 2 approvals (bob)" in res.stderr
    assert "alice requested this and cannot approve their own request" in res.stderr


def test_unsigned_request_needs_one_approval_more(project) -> None:
    _old_and_new_snapshots(project)
    doc = project.json("request", "prune", "--reason", "filed by the scheduler")
    assert doc["quorum"] == 3
    for name in ("bob", "carol"):
        project.approve(doc["id"], name)
    res = project.run("execute", doc["id"], ok=False)
    assert res.exit_code == 3 and "2 of 3 approvals" in res.stderr
    project.approve(doc["id"], "dave")
    assert project.run("execute", doc["id"]).exit_code == 0


def test_forged_signature_is_not_counted(project) -> None:
    _old_and_new_snapshots(project)
    rid = project.request("prune")
    project.approve(rid, "bob")
    store = LocalStore(project.region)
    carol = json.loads(project.enrollments["carol"].read_text())
    mallory = unlock(project.enroll("mallory").with_suffix("").with_suffix(".key"),
                     "passphrase of mallory")
    forged = sign_decision(rid, "approve", mallory, reason="", actor={},
                           now=project.clock.now())
    forged["decision"]["name"] = "carol"
    forged["decision"]["key"] = carol["key"]  # carol's public key, mallory's signature
    put_decision(store, rid, forged)
    res = project.run("execute", rid, ok=False)
    assert res.exit_code == 3
    assert "forged or damaged signature (claims to be 'carol')" in res.stderr
    assert "1 of 2 approvals (bob)" in res.stderr


def test_unenrolled_key_cannot_approve(project) -> None:
    _old_and_new_snapshots(project)
    rid = project.request("prune")
    project.enroll("mallory")
    res = project.approve(rid, "mallory", ok=False)
    assert res.exit_code == 3
    assert "of 'mallory' is not enrolled in approver registry version 1" in res.stderr
    mallory = unlock(next((project.root / "keys" / "approvers").glob("mallory.*.key")),
                     "passphrase of mallory")
    put_decision(LocalStore(project.region), rid, sign_decision(
        rid, "approve", mallory, reason="", actor={}, now=project.clock.now()))
    project.approve(rid, "bob")
    res = project.run("execute", rid, ok=False)
    assert res.exit_code == 3
    assert "(claims 'mallory') which is not enrolled" in res.stderr


def test_one_person_with_two_keys_counts_once(project) -> None:
    _old_and_new_snapshots(project)
    second = project.enroll("bob")  # a second key for bob, added by an approved change
    rid = project.request("approvers", "--add", str(second))
    project.approve(rid, "carol")
    project.approve(rid, "dave")
    project.run("execute", rid)
    shown = project.json("approvers", "show")["current"]
    assert [a["name"] for a in shown["approvers"]].count("bob") == 2

    rid = project.request("prune")
    keys = sorted((project.root / "keys" / "approvers").glob("bob.*.key"))
    assert len(keys) == 2
    project.run("approve", rid, *project.signer("bob", keys[0]))
    res = project.run("approve", rid, *project.signer("bob", keys[1]), ok=False)
    assert res.exit_code == 3 and "bob already approved" in res.stderr
    # Written directly to the store, the second key's approval is still one person.
    for path in keys:
        put_decision(LocalStore(project.region), rid, sign_decision(
            rid, "approve", unlock(path, "passphrase of bob"), reason="again", actor={},
            now=project.clock.now()))
    res = project.run("execute", rid, ok=False)
    assert res.exit_code == 3
    assert "1 of 2 approvals (bob)" in res.stderr
    assert "bob approved twice with two different keys; counted once" in res.stderr


def test_approval_of_a_different_plan_is_refused(project) -> None:
    project.snapshot("a")
    project.clock.advance(timedelta(days=1))
    project.snapshot("b")
    project.clock.advance(timedelta(days=40))
    project.snapshot("c")
    rid = project.request("prune", "--keep-last", "2")
    plan = project.json("requests", "--plan")["requests"][0]["plan"]
    assert len(plan["forget"]) == 1
    project.approve(rid, "bob")
    project.approve(rid, "carol")
    project.clock.advance(timedelta(hours=1))
    project.snapshot("d")  # now b is no longer among the newest two: the plan grew
    before = project.objects("snapshots/")
    res = project.run("prune", "--keep-last", "2", "--approval", rid, ok=False)
    assert res.exit_code == 3
    assert "the plan changed since it was approved" in res.stderr
    assert "forget: 1 added, 0 removed" in res.stderr
    assert project.objects("snapshots/") == before
    # The request was not consumed by the refusal; it simply no longer matches.
    assert project.json("requests")["requests"][0]["state"] == "approved"


def test_operation_approval_must_match_parameters(project) -> None:
    _old_and_new_snapshots(project)
    rid = project.request("prune")
    project.approve(rid, "bob")
    project.approve(rid, "carol")
    res = project.run("prune", "--older-than-days", "1", "--approval", rid, ok=False)
    assert res.exit_code == 3 and "not prune with" in res.stderr
    assert project.run("prune", "--approval", rid[:12]).exit_code == 0


def test_expired_request_is_refused(project) -> None:
    _old_and_new_snapshots(project)
    rid = project.request("prune")
    project.approve(rid, "bob")
    project.approve(rid, "carol")
    project.clock.advance(timedelta(hours=73))
    res = project.run("execute", rid, ok=False)
    assert res.exit_code == 3
    assert "expired at" in res.stderr and "file a new request" in res.stderr
    assert project.json("requests")["requests"][0]["state"] == "expired"
    res = project.approve(rid, "dave", ok=False)
    assert res.exit_code == 3 and "is expired" in res.stderr


def test_one_denial_vetoes(project) -> None:
    _old_and_new_snapshots(project)
    rid = project.request("prune")
    project.approve(rid, "bob")
    project.run("deny", rid, "--reason", "we still need last month", *project.signer("carol"))
    project.approve(rid, "dave")
    res = project.run("execute", rid, ok=False)
    assert res.exit_code == 3
    assert "was denied: carol: we still need last month" in res.stderr
    assert len(project.snapshots()) == 2


def test_registry_edited_on_disk_is_refused(project) -> None:
    _old_and_new_snapshots(project)
    rid = project.request("prune")
    local = project.root / "approvers.json"
    doc = json.loads(local.read_text())
    mallory = json.loads(project.enroll("mallory").read_text())
    doc["approvers"].append(mallory)
    local.write_text(json.dumps(doc, indent=2))
    res = project.approve(rid, "mallory", ok=False)
    assert res.exit_code == 3
    assert "approvers.json: differs from the approver registry pinned in the repository" \
        in res.stderr
    assert "drkit request approvers" in res.stderr
    res = project.run("execute", rid, ok=False)
    assert res.exit_code == 3 and "differs from the approver registry" in res.stderr
    project.run("approvers", "show", "--write-local")
    assert "mallory" not in local.read_text()


def test_pinned_registry_replaced_in_the_store_is_detected(project) -> None:
    project.run("approvers", "show")  # this host has seen version 1
    pinned = project.region / "approval" / "registry" / "000001.json"
    doc = json.loads(pinned.read_text())
    mallory = json.loads(project.enroll("mallory").read_text())
    doc["approvers"].append(mallory)
    pinned.unlink()
    from drkit.canonical import canonical_json

    pinned.write_bytes(canonical_json(doc))
    (project.root / "approvers.json").write_bytes(canonical_json(doc))
    res = project.run("approvers", "show", ok=False)
    assert res.exit_code == 1
    # The journal anchor refuses it first (this host's memory is the second line).
    assert "differs from approver registry version 1 anchored in the repository journal" \
        in res.stderr and "replaced by hand" in res.stderr


def test_bootstrap_is_one_time(project) -> None:
    res = project.run("approvers", "bootstrap", str(project.enroll("mallory")),
                      str(project.enrollments["alice"]), str(project.enrollments["bob"]),
                      ok=False)
    assert res.exit_code == 3
    assert "bootstrap is one-time" in res.stderr


def test_registry_change_needs_quorum_of_current_approvers(project) -> None:
    erin = project.enroll("erin")
    rid = project.request("approvers", "--add", str(erin), "--remove", "dave")
    project.approve(rid, "bob")
    res = project.approve(rid, "erin", ok=False)
    assert res.exit_code == 3 and "not enrolled" in res.stderr
    project.approve(rid, "dave")
    out = project.json("execute", rid)
    assert out["result"]["registry_version"] == 2
    names = [a["name"] for a in project.json("approvers", "show")["current"]["approvers"]]
    assert names == ["alice", "bob", "carol", "erin"]
    assert "erin" in (project.root / "approvers.json").read_text()


def test_config_apply_gates_only_removals_and_shortenings(project, tmp_path: Path) -> None:
    original = (tmp_path / "drkit.toml").read_text()
    longer = tmp_path / "longer.toml"
    longer.write_text(original.replace("retention_days = 365", "retention_days = 400"))
    out = project.json("config", "apply", str(longer))
    assert out["pinned"] == 2 and out["changes"] == []  # keys init pinned version 1
    assert "retention_days = 400" in (tmp_path / "drkit.toml").read_text()

    shorter = tmp_path / "shorter.toml"
    shorter.write_text(longer.read_text().replace("retention_days = 400", "retention_days = 7")
                       .replace('[regions.shanghai]', '[regions.shanghai]\nlock_days = 0'))
    res = project.run("config", "apply", str(shorter), ok=False)
    assert res.exit_code == 3
    assert "retention_days-shortened" in res.stderr and "from=400, to=7" in res.stderr
    assert "retention_days = 400" in (tmp_path / "drkit.toml").read_text()

    rid = project.request("config-apply", str(shorter))
    project.approve(rid, "bob")
    project.approve(rid, "carol")
    out = project.json("config", "apply", str(shorter), "--approval", rid)
    assert out["result"]["pinned"] == 3
    assert "retention_days = 7" in (tmp_path / "drkit.toml").read_text()


def test_lowering_quorum_locally_changes_nothing(project, tmp_path: Path) -> None:
    _old_and_new_snapshots(project)
    cfg = tmp_path / "drkit.toml"
    project.run("config", "apply", str(cfg))  # pin the config as it is (quorum 2)
    cfg.write_text(cfg.read_text() + "\n[approval]\nquorum = 1\n")
    rid = project.request("prune")
    project.approve(rid, "bob")
    res = project.run("execute", rid, ok=False)
    assert res.exit_code == 3 and "1 of 2 approvals" in res.stderr


def test_delete_object_needs_approval(project) -> None:
    project.snapshot("x")
    stray = project.root / "regions" / "shanghai" / "injected.bin"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"not ours")
    res = project.run("delete-object", "shanghai", "injected.bin", ok=False)
    assert res.exit_code == 3 and "delete shanghai:injected.bin (8 bytes)" in res.stderr
    assert stray.exists()
    rid = project.request("delete-object", "shanghai", "injected.bin")
    project.approve(rid, "bob")
    project.approve(rid, "dave")
    out = project.json("delete-object", "shanghai", "injected.bin", "--approval", rid)
    assert out["result"] == {"deleted": 1, "region": "shanghai", "key": "injected.bin",
                             "tombstone": False}
    assert not stray.exists()
