"""The audit log: recorded events, verification against tampering, the report."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from datetime import timedelta
from pathlib import Path

from drkit import audit
from drkit.audit import AuditLog, make_event, record_event
from drkit.config import load_config
from drkit.repo.keys import init_keys
from drkit.repo.writer import initialise_repository
from drkit.storage.url import open_store

FAST_KDF = {"name": "argon2id", "iterations": 1, "lanes": 1, "memory_cost": 8192}


def _record(proj, action: str, result: str = "ok", **details: object) -> None:
    record_event(proj.config, action=action, result=result,
                 params={"region": "beijing", "passphrase": "hunter2"}, details=details,
                 clock=proj.clock)


def _rename_to_hash(path: Path, data: bytes) -> Path:
    """Rewrite a batch with new bytes under the key its new content hash gives (what an
    attacker who knows the format would do)."""
    m = re.match(r"^(\d{16}-\d{16})-[0-9a-f]{16}$", path.name)
    assert m
    target = path.with_name(f"{m.group(1)}-{hashlib.sha256(data).hexdigest()[:16]}")
    path.unlink()
    target.write_bytes(data)
    return target


def test_events_are_logged_and_verify(audit_project) -> None:
    proj = audit_project
    for action in ("snapshot", "replicate", "verify"):
        _record(proj, action)
        proj.clock.advance(timedelta(minutes=5))
    res = proj.verify()
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["ok"] and doc["size"] == 3 and doc["trusted_size"] == 0
    # Secrets never reach the log; who and when do.
    raw = b"".join(p.read_bytes() for p in proj.batches())
    assert b"hunter2" not in raw and b"[redacted]" in raw
    event = json.loads(raw.split(b"\n")[1])["note"]
    assert event["action"] == "snapshot" and event["at"] == "2026-11-23T02:30:00Z"
    assert set(event["who"]) == {"os_user", "host", "key"}
    # The trusted checkpoint moved forward; a second verify starts from it.
    doc = json.loads(proj.verify().stdout)
    assert doc["trusted_size"] == 3
    text = proj.run("audit", "verify", "--accept-first-contact")
    assert "audit log intact: 3 entries" in text.stdout


def test_edited_entry_is_detected(audit_project) -> None:
    proj = audit_project
    _record(proj, "snapshot")
    _record(proj, "prune", "refused")
    assert proj.verify().exit_code == 0
    first = proj.batches()[0]
    first.write_bytes(first.read_bytes().replace(b'"result":"ok"', b'"result":"no"'))
    res = proj.run("audit", "verify", "--accept-first-contact")
    assert res.exit_code == 1
    assert "content does not match the hash in its key (altered)" in res.stdout
    assert "drkit: error: audit log:" in res.stderr


def test_edited_entry_under_a_matching_key_is_detected(audit_project) -> None:
    proj = audit_project
    _record(proj, "snapshot")
    _record(proj, "verify")
    assert proj.verify().exit_code == 0
    last = proj.batches()[-1]
    _rename_to_hash(last, last.read_bytes().replace(b'"action":"verify"',
                                                    b'"action":"vxrify"'))
    res = proj.run("audit", "verify", "--accept-first-contact")
    assert res.exit_code == 1
    assert "batch of the log up to size 2 is missing (deleted)" in res.stdout


def test_deleted_entry_is_detected(audit_project) -> None:
    proj = audit_project
    for action in ("snapshot", "replicate", "verify"):
        _record(proj, action)
    assert proj.verify().exit_code == 0
    proj.batches()[1].unlink()
    res = proj.run("audit", "verify", "--accept-first-contact")
    assert res.exit_code == 1
    assert "is missing (deleted)" in res.stdout


def test_entry_deleted_inside_a_batch_is_detected(audit_project) -> None:
    proj = audit_project
    log = AuditLog.open(proj.config, proj.clock)
    events = [make_event(action=a, result="ok", params={}, details={},
                         now=proj.clock.now(), key_fp="test") for a in ("snapshot", "prune")]
    log.append(events, proj.clock.now())
    assert proj.verify().exit_code == 0
    batch = proj.batches()[0]
    # Batch format 2 ends with a signature block; the attacker drops it (no key).
    header, first, _second, *_signature = batch.read_bytes().split(b"\n")
    data = header.replace(b" 0 2 -", b" 0 1 -") + b"\n" + first + b"\n"
    shorter = batch.with_name(batch.name.replace("-0000000000000002-", "-0000000000000001-"))
    batch.unlink()
    shorter.write_bytes(b"")
    _rename_to_hash(shorter, data)
    res = proj.run("audit", "verify", "--accept-first-contact")
    assert res.exit_code == 1
    assert "journal/batch/0000000000000000-0000000000000002-" in res.stdout
    assert "is missing (deleted)" in res.stdout


def test_reordered_entries_are_detected(audit_project) -> None:
    proj = audit_project
    log = AuditLog.open(proj.config, proj.clock)
    events = [make_event(action=a, result="ok", params={}, details={},
                         now=proj.clock.now(), key_fp="test") for a in ("deny", "execute")]
    log.append(events, proj.clock.now())
    assert proj.verify().exit_code == 0
    batch = proj.batches()[0]
    header, first, second, *rest = batch.read_bytes().split(b"\n")
    _rename_to_hash(batch, b"\n".join([header, second, first, *rest]))
    res = proj.run("audit", "verify", "--accept-first-contact")
    assert res.exit_code == 1
    assert "batch of the log up to size 2 is missing (deleted)" in res.stdout


def test_reordered_entries_with_a_forged_checkpoint_break_consistency(audit_project) -> None:
    """An attacker with store access can sign a new checkpoint with a fresh host key; the
    host that verified before still sees the history was rewritten."""
    proj = audit_project
    log = AuditLog.open(proj.config, proj.clock)
    events = [make_event(action=a, result="ok", params={}, details={},
                         now=proj.clock.now(), key_fp="test") for a in ("deny", "execute")]
    log.append(events, proj.clock.now())
    assert proj.verify().exit_code == 0  # this host now trusts size 2 and its root
    shutil.rmtree(proj.log_dir)
    attacker_state = proj.root / "attacker-state"
    cfg = proj.root / "drkit.toml"
    attacker_cfg = proj.root / "attacker.toml"
    attacker_cfg.write_text(cfg.read_text() + f'\n[verify]\nstate_dir = "{attacker_state}"\n'
                            'writer_keys = []\n')
    attacker = AuditLog.open(load_config(attacker_cfg), proj.clock)
    attacker.append(list(reversed(events)), proj.clock.now())
    res = proj.run("audit", "verify", "--accept-first-contact")
    assert res.exit_code == 1
    assert "does not extend the trusted checkpoint of 2 entries" in res.stdout
    assert "new audit host key" in res.stdout


def test_truncated_log_is_detected(audit_project) -> None:
    proj = audit_project
    for action in ("snapshot", "replicate", "verify"):
        _record(proj, action)
    assert proj.verify().exit_code == 0
    proj.checkpoints()[-1].unlink()
    proj.batches()[-1].unlink()
    res = proj.run("audit", "verify", "--accept-first-contact")
    assert res.exit_code == 1
    assert "audit log has 2 entries but this host trusted a checkpoint of 3 entries" \
        in res.stdout
    assert "truncated or rolled back" in res.stderr


def test_record_event_never_raises_and_spools(audit_project, caplog) -> None:
    proj = audit_project
    region = proj.root / "regions" / "beijing"
    moved = proj.root / "regions" / "away"
    region.rename(moved)
    region.write_text("not a folder")
    with caplog.at_level(logging.ERROR, logger="drkit.audit"):
        _record(proj, "snapshot", "error", error="disk gone")
    assert "audit: could not record snapshot" in caplog.text
    assert "hunter2" not in caplog.text
    region.unlink()
    moved.rename(region)
    _record(proj, "verify")  # delivers the spooled event first
    res = proj.verify()
    doc = json.loads(res.stdout)
    assert res.exit_code == 0 and doc["size"] == 2
    actions = [e["action"] for e in
               proj.report_json("2026-11-23")["errors"]]
    assert actions == ["snapshot"]


def test_a_host_without_the_writer_key_can_log_and_verify(audit_project) -> None:
    proj = audit_project
    _record(proj, "snapshot")
    writer_pub = (proj.root / "keys" / "writer.pub").read_text().strip()
    other = proj.root / "approver-host"
    other.mkdir()
    (other / "drkit.toml").write_text(
        '[repository]\nprimary = "beijing"\nkeys = "no-keys-here"\n'
        f'[regions.beijing]\nurl = "file:{proj.root}/regions/beijing"\n'
        f'[verify]\nstate_dir = "state"\nwriter_keys = ["{writer_pub}"]\n')
    config = load_config(other / "drkit.toml")
    record_event(config, action="approval.approve", result="ok", clock=proj.clock,
                 details={"name": "bob"})
    # Hosts take turns: each notices the other's appends and extends the same log.
    _record(proj, "replicate")
    record_event(config, action="approval.deny", result="ok", clock=proj.clock)
    _record(proj, "verify")
    res = proj.drkit("--config", str(other / "drkit.toml"), "--json", "audit", "verify",
                     "--accept-first-contact")
    assert res.exit_code == 0, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    assert doc["size"] == 5 and len(doc["hosts"]) == 2
    assert [f["kind"] for f in doc["findings"]] == ["first-contact"]  # a new verifier
    actions = [e.note["action"] for e in AuditLog.open(proj.config, proj.clock).read().entries]
    assert actions == ["snapshot", "approval.approve", "replicate", "approval.deny", "verify"]


def test_report_lists_operations_refusals_drills_and_gaps(audit_project, tmp_path) -> None:
    proj = audit_project
    proj.clock.advance(timedelta(days=-3))  # 2026-11-20
    _record(proj, "snapshot")
    _record(proj, "verify")
    proj.clock.advance(timedelta(days=1))  # 2026-11-21: nothing at all
    proj.clock.advance(timedelta(days=1))  # 2026-11-22
    record_event(proj.config, action="schedule.snapshot", result="ok", clock=proj.clock)
    _record(proj, "verify", "findings", findings=2)
    _record(proj, "prune", "refused", reason="needs 2 approvals")
    record_event(proj.config, action="approval.execute", result="ok", clock=proj.clock,
                 params={"operation": "prune"},
                 details={"request": "ab" * 32, "operation": "prune", "requester": "alice",
                          "approved_by": ["bob", "carol"], "result": {"deleted": 4}})
    _record(proj, "drill", "ok", region="shanghai", rto_minutes=12)
    proj.clock.advance(timedelta(days=1))  # 2026-11-23
    _record(proj, "snapshot")
    record_event(proj.config, action="schedule.verify", result="missed", clock=proj.clock)
    report = proj.report_json("2026-11-20")
    assert report["log"]["ok"]
    assert [(o["operation"], o["approved_by"]) for o in report["dangerous_operations"]] == [
        ("prune", ["bob", "carol"])]
    assert [r["action"] for r in report["refusals"]] == ["prune"]
    assert [(v["action"], v["result"], v["details"]) for v in report["verify_findings"]] == [
        ("verify", "findings", {"findings": 2}), ("schedule.verify", "missed", {})]
    assert [d["result"] for d in report["drills"]] == ["ok"]
    assert [e["action"] for e in report["errors"]] == ["schedule.verify"]
    assert report["gaps"] == {"days_without_snapshot": ["2026-11-21"],
                              "days_without_verify": ["2026-11-21", "2026-11-23"]}
    md = proj.report("--since", "2026-11-20")
    assert "## Dangerous operations and who approved them" in md
    assert "| prune |" in md and "bob, carol" in md
    assert "Days without a successful snapshot: 2026-11-21" in md
    html = proj.report("--since", "3d", "--format", "html", "--out", str(tmp_path / "r.html"))
    assert "wrote" in html
    page = (tmp_path / "r.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page and "<script" not in page
    assert proj.run("audit", "report", "--since", "yesterday").exit_code == 2


def test_tampered_log_shows_in_the_report(audit_project) -> None:
    proj = audit_project
    _record(proj, "snapshot")
    _record(proj, "verify")
    proj.batches()[0].write_bytes(b"garbage")
    report = proj.report_json("2026-11-23")
    assert not report["log"]["ok"]
    md = proj.report("--since", "2026-11-23")
    assert "**NOT INTACT**" in md


def test_approval_commands_write_audit_events(audit_project) -> None:
    proj = audit_project
    secret = proj.root / "pw"
    secret.write_text("correct horse\n")
    for name in ("alice", "bob", "carol"):
        res = proj.run("approvers", "enroll", name, "--passphrase-file", str(secret))
        assert res.exit_code == 0, res.stderr
    files = [str(p) for p in (proj.root / "keys" / "approvers").glob("*.enrollment.json")]
    assert proj.run("approvers", "bootstrap", *files).exit_code == 0
    res = proj.run("approvers", "bootstrap", *files)
    assert res.exit_code == 3 and "bootstrap is one-time" in res.stderr
    view = AuditLog.open(proj.config, proj.clock).read()
    actions = [(e.note["action"], e.note["result"]) for e in view.entries]
    assert actions == [("approvers.enroll", "ok")] * 3 + [
        ("approvers.bootstrap", "ok"), ("approvers.bootstrap", "refused")]
    bootstrap = view.entries[3].note
    assert bootstrap["details"]["approvers"] == ["alice", "bob", "carol"]
    refusals = proj.report_json("2026-11-23")["refusals"]
    assert [r["action"] for r in refusals] == ["approvers.bootstrap"]
    assert "bootstrap is one-time" in refusals[0]["details"]["reason"]


def test_spooled_events_stay_with_their_own_repository(audit_project, tmp_path_factory,
                                                       clock) -> None:
    """Two repositories verified from one host share its state folder: an event spooled
    while one primary was unreachable is never delivered into the other's log."""
    proj = audit_project
    other_root = tmp_path_factory.mktemp("other-repo")
    (other_root / "drkit.toml").write_text(
        '[repository]\nprimary = "hk"\nkeys = "keys"\n[regions.hk]\nurl = "file:regions/hk"\n')
    other = load_config(other_root / "drkit.toml")
    keys = init_keys(other.keys_dir, "pw", kdf=FAST_KDF)
    initialise_repository(open_store(other.primary_region.url), other.primary_region, keys,
                          now=clock.now(), cache_dir=other.cache_dir)
    region = proj.root / "regions" / "beijing"
    moved = proj.root / "regions" / "away"
    region.rename(moved)
    _record(proj, "snapshot", "error", error="primary gone")  # spooled for beijing
    record_event(other, action="verify", result="ok", clock=clock)
    assert audit.verify_log(other, clock).size == 1  # only its own event
    moved.rename(region)
    _record(proj, "verify")
    assert audit.verify_log(proj.config, clock).size == 2  # the spooled one delivered here
