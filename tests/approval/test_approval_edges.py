"""Edges of the approval formats and the gate, below the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drkit.approval import gate, require_approval, restore_production_plan
from drkit.approval.configpin import dangerous_changes
from drkit.approval.keys import Enrollment, enroll, unlock
from drkit.approval.policy import quorum_from_raw
from drkit.approval.registry import registry_content
from drkit.approval.requests import load_request
from drkit.canonical import canonical_json, domain_hash
from drkit.config import load_config
from drkit.errors import ApprovalRequired, ConfigError, IntegrityError, WrongPassphrase
from drkit.repo.encoding import b64e
from drkit.storage.local import LocalStore

FAST = {"name": "argon2id", "iterations": 1, "lanes": 1, "memory_cost": 8192}
NOW = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)


def test_key_file_needs_the_right_passphrase_and_is_tamper_evident(tmp_path: Path) -> None:
    enrollment, key_path, _pub = enroll(tmp_path, "erin", "right", now=NOW, kdf=FAST)
    assert unlock(key_path, "right").public_text == enrollment.key
    with pytest.raises(WrongPassphrase, match="wrong passphrase for the approver key of 'erin'"):
        unlock(key_path, "wrong")
    doc = json.loads(key_path.read_bytes())
    doc["name"] = "mallory"  # bound as associated data
    key_path.chmod(0o600)
    key_path.write_bytes(canonical_json(doc))
    with pytest.raises(WrongPassphrase):
        unlock(key_path, "right")


def test_enrolment_must_be_signed_by_its_own_key(tmp_path: Path) -> None:
    enrollment, _key, _pub = enroll(tmp_path, "erin", "pw", now=NOW, kdf=FAST)
    doc = enrollment.to_dict()
    assert Enrollment.from_dict(doc, where="x") == enrollment
    other = Ed25519PrivateKey.generate()
    body = {k: v for k, v in doc.items() if k != "signature"}
    doc["signature"] = b64e(other.sign(domain_hash("drkit/approver-enrollment/v1",
                                                   canonical_json(body))))
    with pytest.raises(IntegrityError, match="is not signed by its own key"):
        Enrollment.from_dict(doc, where="erin.json")
    doc = enrollment.to_dict()
    doc["roles"] = ["admin"]
    with pytest.raises(IntegrityError, match="is not signed by its own key"):
        Enrollment.from_dict(doc, where="erin.json")


def test_quorum_policy_and_dangerous_changes() -> None:
    assert quorum_from_raw({}, "prune", where="f") == 2
    assert quorum_from_raw({"quorum": {"default": 2, "prune": 3}}, "prune", where="f") == 3
    assert quorum_from_raw({"quorum": {"default": 2, "prune": 3}}, "keys", where="f") == 2
    with pytest.raises(ConfigError, match="quorum must be between 1 and 100, got 0"):
        quorum_from_raw({"quorum": 0}, "prune", where="f")
    old = {"regions": {"a": {"url": "file:a", "retention_days": 30, "lock_days": 10},
                       "b": {"url": "file:b"}},
           "sources": {"s": {}, "t": {}}, "approval": {"quorum": 2}}
    new = {"regions": {"a": {"url": "file:a", "retention_days": 40, "lock_days": 5},
                       "c": {"url": "file:c"}},
           "sources": {"s": {}}, "verify": {"writer_keys": ["drkit-ed25519:x"]},
           "approval": {"quorum": {"default": 2, "prune": 1}, "expiry_hours": 100}}
    kinds = [c["change"] for c in dangerous_changes(old, new)]
    assert kinds == ["lock_days-shortened", "region-removed", "source-removed",
                     "writer-key-added", "quorum-lowered", "expiry-lengthened"]
    assert dangerous_changes(old, old) == []


def test_edited_request_is_refused(project) -> None:
    project.snapshot("a")
    rid = project.request("prune", "--older-than-days", "0")
    path = project.region / "approval" / "requests" / f"{rid}.json"
    doc = json.loads(path.read_bytes())
    doc["request"]["params"]["keep_last"] = 0
    path.chmod(0o644)
    path.write_bytes(canonical_json(doc))
    res = project.run("execute", rid, ok=False)
    assert res.exit_code == 1
    assert "request content does not match its id (edited)" in res.stderr


def test_request_from_the_future_is_invalid(project) -> None:
    project.snapshot("a")
    project.clock.advance(timedelta(hours=2))
    rid = project.request("prune", "--older-than-days", "0")
    project.approve(rid, "bob")
    project.approve(rid, "carol")
    project.clock.advance(timedelta(hours=-1))  # another host whose clock is an hour behind
    res = project.run("execute", rid, ok=False)
    assert res.exit_code == 3
    assert "is not valid: request was created in the future" in res.stderr


def test_signature_from_another_domain_is_not_an_approval(project) -> None:
    project.snapshot("a")
    rid = project.request("prune", "--older-than-days", "0")
    bob = unlock(next((project.root / "keys" / "approvers").glob("bob.*.key")),
                 "passphrase of bob")
    body = {"request": rid, "verdict": "approve", "name": "bob", "key": bob.public_text,
            "reason": "", "at": "2026-11-23T02:30:00Z", "os_user": "x", "host": "y"}
    wrong = bob.private.sign(domain_hash("drkit/approval-request/v1", canonical_json(body)))
    store = LocalStore(project.region)
    store.put(f"approval/decisions/{rid}/forged.json", canonical_json(
        {"format": "drkit-approval-decision", "version": 1, "decision": body,
         "signature": b64e(wrong)}))
    project.approve(rid, "carol")
    res = project.run("execute", rid, ok=False)
    assert res.exit_code == 3
    assert "forged or damaged signature (claims to be 'bob')" in res.stderr


def _put_anchored(project, key: str, data: bytes) -> None:
    """What a holder of the writer key can do by hand: anchor a forged registry version in
    the repository journal and store it. The chain checks must still refuse it."""
    import hashlib

    from drkit.journal import JournalEntry
    from drkit.repo.journal_writer import append_to_primary

    append_to_primary(load_config(project.root / "drkit.toml"), [JournalEntry(
        kind="object", key=key, size=len(data), sha256=hashlib.sha256(data).hexdigest())],
        now=NOW)
    LocalStore(project.region).put(key, data)


def test_registry_version_without_an_approved_request_is_rejected(project) -> None:
    store = LocalStore(project.region)
    v1 = store.get("approval/registry/000001.json")
    import hashlib

    current = json.loads(v1)
    mallory = json.loads(project.enroll("mallory").read_text())
    people = [Enrollment.from_dict(a, where="v1") for a in current["approvers"]]
    content = registry_content(2, hashlib.sha256(v1).hexdigest(), current["repository"],
                               [*people, Enrollment.from_dict(mallory, where="m")])
    _put_anchored(project, "approval/registry/000002.json", canonical_json(
        {**content, "created": "2026-11-23T02:30:00Z", "authorized_by": {"bootstrap": {}}}))
    res = project.run("approvers", "show", ok=False)
    assert res.exit_code == 1
    assert "approver registry version 2: names no approval request" in res.stderr


def test_registry_version_backed_by_a_request_without_quorum_is_rejected(project) -> None:
    mallory_file = project.enroll("mallory")
    rid = project.request("approvers", "--add", str(mallory_file))
    project.approve(rid, "bob")  # one approval only
    store = LocalStore(project.region)
    request = load_request(store, rid)
    _put_anchored(project, "approval/registry/000002.json", canonical_json(
        {**request.plan["registry"], "created": "2026-11-23T02:30:00Z",
         "authorized_by": {"request": rid}}))
    res = project.run("approvers", "show", ok=False)
    assert res.exit_code == 1
    assert f"request {rid[:12]} lacks a quorum of version 1's approvers" in res.stderr


def test_require_approval_for_restore_into_production(project, tmp_path: Path) -> None:
    snap = project.snapshot("a")
    target = tmp_path / "prod"
    config = load_config(tmp_path / "drkit.toml")
    plan = restore_production_plan(snap, target, "uploads")
    params = {"snapshot": snap, "target": str(target.resolve()), "source": "uploads"}
    with pytest.raises(ApprovalRequired) as refused:
        require_approval("restore-production", params, plan, config=config,
                         clock=project.clock)
    assert "drkit request restore-production" in str(refused.value)
    out = project.json("request", "restore-production", snap, "--to", str(target),
                       "--source", "uploads", "--reason", "restore the shop",
                       *project.signer("alice"))
    assert out["plan"] == plan
    res = project.run("execute", out["id"], ok=False)
    assert res.exit_code == 3 and "runs through its own command (drkit restore)" in res.stderr
    project.approve(out["id"], "bob")
    project.approve(out["id"], "dave")
    grant = require_approval("restore-production", params, plan, config=config,
                             clock=project.clock)
    assert grant.request_id == out["id"] and grant.approved_by == ("bob", "dave")
    assert grant.requester == "alice"
    with pytest.raises(ApprovalRequired, match="executed"):
        require_approval("restore-production", params, plan, config=config,
                         clock=project.clock)
    other = restore_production_plan(snap, tmp_path / "elsewhere", "uploads")
    with pytest.raises(ApprovalRequired):
        require_approval("restore-production", {**params, "target": other["target"]}, other,
                         config=config, clock=project.clock)


def test_without_a_registry_nothing_can_be_approved(drkit, tmp_path: Path) -> None:
    (tmp_path / "drkit.toml").write_text(
        '[repository]\nprimary = "a"\n[regions.a]\nurl = "file:regions/a"\n'
        'retention_days = 30\n[sources.s]\ntype = "files"\npath = "data"\n')
    (tmp_path / "data").mkdir()
    env = {"DRKIT_RECOVERY_PASSPHRASE": "no registry yet, long passphrase"}
    assert drkit("keys", "init", env=env).exit_code == 0
    res = drkit("request", "prune", "--reason", "x")
    assert res.exit_code == 3
    assert "no approver registry is pinned in this repository" in res.stderr
    assert "drkit approvers bootstrap" in res.stderr
    res = drkit("prune")  # no snapshot: nothing to prune, so no approval is asked for
    assert res.exit_code == 0 and res.stdout.startswith("nothing to prune")


def test_evaluation_counts_people(project) -> None:
    ctx = gate.ApprovalContext.open(load_config(project.root / "drkit.toml"), project.clock)
    project.snapshot("a")
    rid = project.request("prune", "--older-than-days", "0")
    project.approve(rid, "bob")
    ev = gate.evaluate(ctx, load_request(ctx.store, rid), gate.current_registry(ctx))
    assert ev.state == "pending" and list(ev.approvers) == ["bob"] and ev.quorum == 2


def test_restore_into_a_production_source_needs_approval(project, tmp_path: Path) -> None:
    from drkit.approval import require_restore_approval

    cfg = tmp_path / "drkit.toml"
    cfg.write_text(cfg.read_text() + '\n[sources.shop]\ntype = "files"\npath = "data/shop"\n'
                   "production = true\n")
    (tmp_path / "data" / "shop").mkdir()
    snap = project.snapshot("a")
    config = load_config(cfg)
    assert require_restore_approval(config, snapshot_id=snap, target=tmp_path / "scratch",
                                    clock=project.clock) == []
    with pytest.raises(ApprovalRequired, match="restore-production is a dangerous operation"):
        require_restore_approval(config, snapshot_id=snap, target=tmp_path / "data",
                                 clock=project.clock)
    rid = project.request("restore-production", snap[:8], "--to", str(tmp_path / "data"),
                          "--source", "shop")
    project.approve(rid, "carol")
    project.approve(rid, "dave")
    grants = require_restore_approval(config, snapshot_id=snap, target=tmp_path / "data",
                                      clock=project.clock, approval_id=rid[:10])
    assert [g.request_id for g in grants] == [rid]


def test_prune_leaves_locked_objects_alone(project, tmp_path: Path) -> None:
    cfg = tmp_path / "drkit.toml"
    cfg.write_text(cfg.read_text().replace("retention_days = 30\n",
                                           "retention_days = 30\nlock_days = 20\n", 1))
    first = project.snapshot("first")
    (tmp_path / "data" / "uploads" / "first.txt").unlink()
    project.clock.advance(timedelta(days=10))
    project.snapshot("second")
    project.clock.advance(timedelta(days=5))  # first is 15 days old, locked until day 20
    rid = project.request("prune", "--older-than-days", "1")
    plan = project.json("requests", "--plan")["requests"][0]["plan"]
    assert plan["forget"] == [] and plan["delete"] == []
    project.clock.advance(timedelta(days=6))  # day 21: the lock has passed
    rid = project.request("prune", "--older-than-days", "1")
    plan = next(r for r in project.json("requests", "--plan")["requests"]
                if r["id"] == rid)["plan"]
    assert [f["id"] for f in plan["forget"]] == [first] and plan["retained"] == []
    project.approve(rid, "bob")
    project.approve(rid, "carol")
    assert project.json("execute", rid)["result"]["forgotten"] == 1
