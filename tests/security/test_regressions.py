"""Attacks drkit already stops (issue 12, "the attacks that already fail today"), kept as
regression tests.

Each test plays one attack through the real CLI on real files, with exactly what the
attacker's role holds, and asserts that it is refused (exit code and message, nothing
destroyed) or reported by ``drkit verify`` with the right severity, while the regions
nobody touched stay at 0 findings.

Roles (DESIGN.md threat model):
- one approver: their own approver key and passphrase, the CLI;
- writer host: the writer's keys and drkit.toml, and write access to the primary's folder
  (where requests and decisions live), but no approver's private key;
- region admin: write access to one region's folder or bucket, and what is public (the
  writer's public key); no private key at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drkit.approval.keys import ENROLLMENT_DOMAIN, Enrollment, read_enrollment, unlock
from drkit.approval.requests import DECISION_DOMAIN, DECISION_FORMAT
from drkit.canonical import canonical_json, domain_hash
from drkit.config import load_config
from drkit.journal import Journal, read_log
from drkit.repo.encoding import b64e, ed25519_text
from drkit.storage.local import LocalStore
from drkit.verify.context import trusted_writer_keys

DATA_PREFIXES = ("snapshots/", "packs/", "index/", "sessions/")

# ``project`` is tests/security/conftest.py's Project, typed Any here: that conftest is not
# importable by name (tests/conftest.py is "conftest" on the path).


def findings_by_region(doc: dict[str, Any]) -> dict[str, set[tuple[str, str]]]:
    """{region: {(severity, check), ...}} of a ``drkit --json verify`` document."""
    out: dict[str, set[tuple[str, str]]] = {r["region"]: set() for r in doc["regions"]}
    for f in doc["findings"]:
        out.setdefault(f["region"], set()).add((f["severity"], f["check"]))
    return out


# -- the attacker's tools -------------------------------------------------------------------
def data_objects(project: Any, region: str = "beijing") -> dict[str, bytes]:
    """The backup data of a region (what a prune or deletion would take away)."""
    return {k: v for k, v in project.objects(region).items() if k.startswith(DATA_PREFIXES)}


def prunable(project: Any) -> tuple[str, str]:
    """Two snapshots 40 days apart: a prune (retention 30 days) would forget the old one."""
    old = project.snapshot("old")
    (project.root / "data" / "uploads" / "old.txt").unlink()
    project.clock.advance(timedelta(days=40))
    new = project.snapshot("new")
    return old, new


def decision_body(project: Any, request_id: str, name: str, key_text: str) -> dict[str, Any]:
    return {"request": request_id, "verdict": "approve", "name": name, "key": key_text,
            "reason": "", "at": project.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "os_user": "ops", "host": "writer-host"}


def signed_decision(body: dict[str, Any], private: Ed25519PrivateKey) -> bytes:
    signature = private.sign(domain_hash(DECISION_DOMAIN, canonical_json(body)))
    return canonical_json({"format": DECISION_FORMAT, "version": 1, "decision": body,
                           "signature": b64e(signature)})


def drop_decision(project: Any, request_id: str, data: bytes) -> Path:
    """Write a decision object straight into the primary's folder (writer-host access)."""
    folder = project.region() / "approval" / "decisions" / request_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()}.json"
    path.write_bytes(data)
    return path


def decision_of(project: Any, request_id: str, name: str) -> bytes:
    """A genuine decision as stored (anyone who can read the primary can copy it)."""
    folder = project.region() / "approval" / "decisions" / request_id
    for path in folder.glob("*.json"):
        data = path.read_bytes()
        if json.loads(data)["decision"]["name"] == name:
            return data
    raise AssertionError(f"no decision of {name} for {request_id}")


def read_enrollment_key(project: Any, name: str) -> str:
    return str(json.loads(project.enrollments[name].read_text())["key"])


def refused_execute(project: Any, request_id: str) -> Any:
    res = project.run("execute", request_id, ok=False)
    assert res.exit_code == 3, (res.stdout, res.stderr)
    return res


def replicated(project: Any) -> Path:
    """Two snapshots replicated to every region; this host's verifier saw both logs.
    Returns a copy of shanghai's journal as it was after the first one (what a region
    admin could have kept to put back later). Asserts the untouched regions are clean."""
    project.snapshot("first")
    project.run("replicate")
    code, doc = project.verify()
    assert code == 0 and doc["findings"] == []
    saved = project.root / "older-shanghai-journal"
    shutil.copytree(project.region("shanghai") / "journal", saved)
    project.clock.advance(timedelta(hours=1))
    project.snapshot("second")
    project.run("replicate")
    code, doc = project.verify()
    assert code == 0 and doc["findings"] == [], doc["findings"]
    assert all(r["clean"] for r in doc["regions"])
    return saved


def assert_only(doc: dict[str, Any], region: str, expected: set[tuple[str, str]]) -> None:
    """``region`` has exactly these (severity, check) findings; every other region none."""
    got = findings_by_region(doc)
    assert got[region] == expected, doc["findings"]
    assert all(not v for k, v in got.items() if k != region), doc["findings"]


def pack_keys(project: Any, region: str = "shanghai") -> list[str]:
    return sorted(k for k in project.objects(region) if k.startswith("packs/"))


def newest(folder: Path) -> Path:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))[-1]


# -- one approver ---------------------------------------------------------------------------
def test_self_approval_is_refused(project: Any) -> None:
    """alice files a prune and approves it herself, through the CLI and by writing her own
    signed decision into the store; her approval never counts."""
    prunable(project)
    before = data_objects(project)
    rid = project.request("prune", as_name="alice")
    res = project.approve(rid, "alice", ok=False)
    assert res.exit_code == 3
    assert f"alice filed request {rid[:12]} and cannot approve it" in res.stderr
    alice = project.json("approvers", "show")["current"]["approvers"]
    alice_key = next(a["key"] for a in alice if a["name"] == "alice")
    own = unlock(project.key_file("alice"), "passphrase of alice")
    assert own.public_text == alice_key
    drop_decision(project, rid, signed_decision(
        decision_body(project, rid, "alice", alice_key), own.private))
    project.approve(rid, "bob")
    res = refused_execute(project, rid)
    assert "1 of 2 approvals (bob)" in res.stderr
    assert "alice requested this and cannot approve their own request" in res.stderr
    assert data_objects(project) == before
    assert len(project.snapshots()) == 2


def test_one_key_enrolled_under_two_names_is_refused(make_project: Any) -> None:
    """bob signs an enrolment of his own key under a second name ("robert") to count twice:
    refused when the registry is bootstrapped and when a change is requested."""
    project = make_project(bootstrap=False)
    bob = unlock(project.key_file("bob"), "passphrase of bob")
    real = read_enrollment(project.enrollments["bob"])
    unsigned = Enrollment(name="robert", roles=(), key=real.key, created=real.created,
                          signature="")
    alias = Enrollment(name="robert", roles=(), key=real.key, created=real.created,
                       signature=b64e(bob.private.sign(domain_hash(
                           ENROLLMENT_DOMAIN, canonical_json(unsigned.body())))))
    alias_file = project.root / "robert.enrollment.json"
    alias_file.write_bytes(canonical_json(alias.to_dict()))
    assert read_enrollment(alias_file).key == real.key  # a well-formed, self-signed alias

    res = project.run("approvers", "bootstrap", str(project.enrollments["alice"]),
                      str(project.enrollments["bob"]), str(alias_file), ok=False)
    assert res.exit_code == 2
    assert "the same approver key is listed twice" in res.stderr
    assert not (project.region() / "approval" / "registry").exists()

    project.run("approvers", "bootstrap", *(str(project.enrollments[n])
                                            for n in ("alice", "bob", "carol", "dave")))
    res = project.run("request", "approvers", "--add", str(alias_file), "--reason",
                      "robert joins", *project.signer("bob"), ok=False)
    assert res.exit_code == 2
    assert f"robert: key {real.fingerprint} is already enrolled" in res.stderr
    assert project.json("requests")["requests"] == []
    names = [a["name"] for a in project.json("approvers", "show")["current"]["approvers"]]
    assert names == ["alice", "bob", "carol", "dave"]


# -- writer host: forged and replayed decision files ---------------------------------------
def test_forged_decision_with_wrong_signature_is_not_counted(project: Any) -> None:
    """A decision that claims to be carol's (her name and public key) signed by another key."""
    prunable(project)
    before = data_objects(project)
    rid = project.request("prune")
    project.approve(rid, "bob")
    carol = read_enrollment_key(project, "carol")
    drop_decision(project, rid, signed_decision(decision_body(project, rid, "carol", carol),
                                                Ed25519PrivateKey.generate()))
    res = refused_execute(project, rid)
    assert "forged or damaged signature (claims to be 'carol')" in res.stderr
    assert "1 of 2 approvals (bob)" in res.stderr
    assert data_objects(project) == before


def test_forged_decision_with_signature_over_another_request_is_not_counted(
        project: Any) -> None:
    """carol's real signature, made for request A, put under a decision naming request B."""
    prunable(project)
    before = data_objects(project)
    first = project.request("prune")
    second = project.request("prune", "--older-than-days", "20")
    project.approve(first, "carol")
    genuine = json.loads(decision_of(project, first, "carol"))
    genuine["decision"]["request"] = second
    drop_decision(project, second, canonical_json(genuine))
    project.approve(second, "bob")
    res = refused_execute(project, second)
    assert "forged or damaged signature (claims to be 'carol')" in res.stderr
    assert "1 of 2 approvals (bob)" in res.stderr
    assert data_objects(project) == before


def test_decision_by_an_unenrolled_key_is_not_counted(project: Any) -> None:
    """A correctly signed decision by a key the pinned registry does not hold, whether it
    claims its own name or an approver's."""
    prunable(project)
    before = data_objects(project)
    rid = project.request("prune")
    project.approve(rid, "bob")
    mallory = Ed25519PrivateKey.generate()
    mallory_key = ed25519_text(mallory.public_key())
    for name in ("mallory", "carol"):
        drop_decision(project, rid, signed_decision(
            decision_body(project, rid, name, mallory_key), mallory))
    res = refused_execute(project, rid)
    assert "(claims 'mallory') which is not enrolled in registry version 1" in res.stderr
    assert "(claims 'carol') which is not enrolled in registry version 1" in res.stderr
    assert "1 of 2 approvals (bob)" in res.stderr
    assert data_objects(project) == before


def test_replayed_decision_from_another_request_is_not_counted(project: Any) -> None:
    """carol's decision file for request A copied byte for byte under request B."""
    prunable(project)
    before = data_objects(project)
    first = project.request("prune")
    second = project.request("prune", "--older-than-days", "20")
    project.approve(first, "carol")
    path = drop_decision(project, second, decision_of(project, first, "carol"))
    project.approve(second, "bob")
    res = refused_execute(project, second)
    assert f"{path.name}: decision is for another request" in res.stderr
    assert "1 of 2 approvals (bob)" in res.stderr
    assert data_objects(project) == before


# -- writer host: using an approval for something else, or again ---------------------------
def test_plan_swapped_after_approval_is_refused(project: Any) -> None:
    """After bob and carol approved a prune that forgets one snapshot, the writer host
    changes the repository so the same prune would forget more: exit 3, nothing deleted."""
    project.snapshot("a")
    project.clock.advance(timedelta(days=1))
    project.snapshot("b")
    project.clock.advance(timedelta(days=40))
    project.snapshot("c")
    rid = project.request("prune", "--keep-last", "2")
    project.approve(rid, "bob")
    project.approve(rid, "carol")
    project.clock.advance(timedelta(hours=1))
    project.snapshot("d")  # now "b" is no longer among the newest two
    before = data_objects(project)
    for args in (("execute", rid), ("prune", "--keep-last", "2", "--approval", rid)):
        res = project.run(*args, ok=False)
        assert res.exit_code == 3, res.stderr
        assert "the plan changed since it was approved" in res.stderr
        assert "forget: 1 added, 0 removed" in res.stderr
        assert "nothing was done" in res.stderr
    assert data_objects(project) == before
    assert len(project.snapshots()) == 4


def test_executing_an_approval_twice_is_refused(project: Any) -> None:
    prunable(project)
    rid = project.request("prune")
    project.approve(rid, "bob")
    project.approve(rid, "carol")
    assert project.json("execute", rid)["result"]["forgotten"] == 1
    after = data_objects(project)
    for args in (("execute", rid), ("prune", "--approval", rid)):
        res = project.run(*args, ok=False)
        assert res.exit_code == 3, res.stderr
        assert "already executed" in res.stderr and "single use" in res.stderr
    assert data_objects(project) == after
    assert project.json("requests")["requests"][0]["state"] == "executed"
    # The writer host deletes the single-use claim from the primary's folder: the approval
    # still cannot run again, because its plan no longer matches the repository.
    (project.region() / "approval" / "executed" / f"{rid}.json").unlink()
    res = project.run("execute", rid, ok=False)
    assert res.exit_code == 3, res.stderr
    assert "the plan changed since it was approved" in res.stderr
    assert data_objects(project) == after


def test_expired_request_is_refused(project: Any) -> None:
    """The frozen clock moves past the request's expiry (72 hours by default)."""
    old, new = prunable(project)
    before = data_objects(project)
    rid = project.request("prune")
    project.approve(rid, "bob")
    project.approve(rid, "carol")
    project.clock.advance(timedelta(hours=73))
    res = refused_execute(project, rid)
    assert "expired at" in res.stderr and "file a new request" in res.stderr
    res = project.run("prune", "--approval", rid, ok=False)
    assert res.exit_code == 3 and "expired at" in res.stderr
    res = project.approve(rid, "dave", ok=False)
    assert res.exit_code == 3 and "is expired" in res.stderr
    assert data_objects(project) == before
    assert sorted(project.snapshots()) == sorted([old, new])
    # Nothing was attacked in the regions: the verifier reports nothing.
    project.run("replicate")
    code, doc = project.verify()
    assert code == 0 and doc["findings"] == []


def test_edited_approvers_json_is_refused(project: Any) -> None:
    """The writer host puts its own key (mallory) into the local approvers.json and lowers
    the number of people by replacing carol: every approval command refuses."""
    prunable(project)
    before = data_objects(project)
    rid = project.request("prune")
    project.approve(rid, "bob")
    local = project.root / "approvers.json"
    assert local.exists()
    doc = json.loads(local.read_text())
    mallory = json.loads(project.enroll("mallory").read_text())
    doc["approvers"] = [a for a in doc["approvers"] if a["name"] != "carol"] + [mallory]
    local.write_text(json.dumps(doc, indent=2))
    res = project.approve(rid, "mallory", ok=False)
    assert res.exit_code == 3
    assert "approvers.json: differs from the approver registry pinned in the repository" \
        in res.stderr
    res = refused_execute(project, rid)
    assert "differs from the approver registry pinned" in res.stderr
    assert data_objects(project) == before
    # Restored from the pinned registry, mallory is still nobody.
    project.run("approvers", "show", "--write-local")
    assert "mallory" not in local.read_text()
    res = project.approve(rid, "mallory", ok=False)
    assert res.exit_code == 3 and "is not enrolled in approver registry version 1" in res.stderr


# -- region admin: the journal of one region ------------------------------------------------
def test_rollback_of_a_region_is_critical(project: Any) -> None:
    """shanghai's admin puts back the older journal copy they kept."""
    saved = replicated(project)
    journal = project.region("shanghai") / "journal"
    shutil.rmtree(journal)
    shutil.copytree(saved, journal)
    code, doc = project.verify()
    assert code == 1
    assert_only(doc, "shanghai", {("critical", "journal-rollback")})
    rollback = doc["findings"][0]
    found, expected = int(rollback["found"].split()[0]), int(rollback["expected"].split()[-2])
    assert found < expected and "shorter than this host verified" in rollback["message"]


def test_truncation_of_a_region_is_critical(project: Any) -> None:
    """shanghai's admin deletes the newest checkpoint and the batch it covers."""
    replicated(project)
    journal = project.region("shanghai") / "journal"
    newest(journal / "checkpoint").unlink()
    newest(journal / "batch").unlink()
    code, doc = project.verify()
    assert code == 1
    assert_only(doc, "shanghai", {("critical", "journal-rollback")})


def test_fork_under_a_new_writer_key_is_critical(project: Any) -> None:
    """shanghai's admin replaces the region's log with a history of their own that leaves
    one pack out, signed by a key they made, and deletes that pack."""
    replicated(project)
    config = load_config(project.root / "drkit.toml")
    trusted = trusted_writer_keys(config)
    store = LocalStore(project.region("shanghai"))
    origin = "drkit:" + project.json("keys", "show")["repository_id"]
    view = read_log(store, origin, trusted)
    victim = next(e for e in view.entries if e.key.startswith("packs/"))
    shutil.rmtree(project.region("shanghai") / "journal")
    Journal(store, origin).append([e for e in view.entries if e.key != victim.key],
                                  Ed25519PrivateKey.generate(), now=project.clock.now())
    (project.region("shanghai") / victim.key).unlink()
    code, doc = project.verify()
    assert code == 1
    assert_only(doc, "shanghai", {("critical", "journal-checkpoint-invalid"),
                                  ("critical", "journal-rollback")})
    forged = next(f for f in doc["findings"] if f["check"] == "journal-checkpoint-invalid")
    assert "not signed by a trusted writer key" in forged["message"]


def test_edited_checkpoint_is_critical(project: Any) -> None:
    """shanghai's admin changes the newest checkpoint's root hash (one base64 character,
    so the note still parses and only the signature can tell)."""
    replicated(project)
    path = newest(project.region("shanghai") / "journal" / "checkpoint")
    lines = path.read_bytes().split(b"\n")
    root = lines[2]
    lines[2] = (b"B" if root[:1] != b"B" else b"C") + root[1:]
    path.write_bytes(b"\n".join(lines))
    code, doc = project.verify()
    assert code == 1
    # The batch that checkpoint covered is now covered by none: reported too, naming it.
    assert_only(doc, "shanghai", {("critical", "journal-checkpoint-invalid"),
                                  ("critical", "journal-rollback"),
                                  ("critical", "journal-batch-uncovered")})
    edited = next(f for f in doc["findings"] if f["check"] == "journal-checkpoint-invalid")
    assert edited["key"] == f"journal/checkpoint/{path.name}"
    assert "does not verify" in edited["message"]


def test_injected_pack_is_reported(project: Any) -> None:
    """shanghai's admin adds a pack-like object nobody logged."""
    replicated(project)
    data = os.urandom(4096)
    digest = hashlib.sha256(data).hexdigest()
    key = f"packs/{digest[:2]}/{digest}"
    path = project.region("shanghai") / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    code, doc = project.verify()
    assert code == 1
    assert_only(doc, "shanghai", {("high", "object-unlogged")})
    assert [f["key"] for f in doc["findings"]] == [key]


def test_same_length_overwrite_of_a_local_pack_is_critical(project: Any) -> None:
    """shanghai's admin rewrites a pack in place: other bytes, same size."""
    replicated(project)
    key = pack_keys(project)[0]
    path = project.region("shanghai") / key
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert path.stat().st_size == len(data)
    code, doc = project.verify()
    assert code == 1
    assert_only(doc, "shanghai", {("critical", "object-changed")})
    assert [f["key"] for f in doc["findings"]] == [key]


def test_same_length_overwrite_of_a_pack_on_s3_is_critical(make_project: Any,
                                                          store_url_env: Any) -> None:
    """The admin of the nanjing bucket (S3 on the moto server, versioned, object lock)
    uploads other bytes of the same size under a pack's key, in the configured class."""
    from moto_server import s3_client

    from drkit.storage.url import parse_store_url

    url = store_url_env.s3(versioning=True, object_lock_days=3650)
    project = make_project({"nanjing": f'url = "{url}"\nstorage_class = "STANDARD_IA"\n'
                                       "lock_days = 3650\nretention_days = 3650"},
                           bootstrap=False)
    replicated(project)
    key = pack_keys(project, "beijing")[0]
    size = len(project.objects("beijing")[key])
    parsed = parse_store_url(url)
    bucket_key = "/".join(p for p in (parsed.prefix.strip("/") if parsed.prefix else "", key)
                          if p)
    s3_client(parsed.params["endpoint"]).put_object(
        Bucket=parsed.bucket, Key=bucket_key, Body=os.urandom(size), StorageClass="STANDARD_IA")
    code, doc = project.verify()
    assert code == 1
    assert_only(doc, "nanjing", {("critical", "object-changed")})
    assert [f["key"] for f in doc["findings"]] == [key]
