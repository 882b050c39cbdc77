"""``drkit verify`` reports a recorded cloud snapshot that vanished, exactly like a deleted
object, and a tombstone without proof of approval does not excuse it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cloud.tencent_double import TencentDouble

from drkit.approval.gate import Grant
from drkit.clock import FixedClock, utc_iso
from drkit.cloud.journal import record_expiry
from drkit.cloud.model import SnapshotRecord
from drkit.config import load_config
from drkit.errors import IntegrityError


def test_verify_names_a_vanished_cloud_snapshot(drkit: Any, tmp_path: Path,
                                                tencent_env: TencentDouble,
                                                clock: FixedClock) -> None:
    double = tencent_env
    double.add_disk("ap-beijing", {"backup": "daily"})
    (tmp_path / "drkit.toml").write_text(f"""
[repository]
primary = "p"
[regions.p]
url = "file:regions/p"
[verify]
state_dir = "state"
[cloud]
poll_seconds = 0
[cloud.tencent]
region = "ap-beijing"
endpoint = "{double.endpoint}"
protocol = "http"
select_tag = "backup=daily"
cdb = false
copy_to = ["ap-shanghai"]
""", encoding="utf-8")
    env = {"DRKIT_RECOVERY_PASSPHRASE": "cloud test passphrase"}
    assert drkit("keys", "init", env=env).exit_code == 0
    res = drkit("--json", "cloud", "snapshot")
    assert res.exit_code == 0, res.stderr
    records = [SnapshotRecord.from_dict(s) for s in json.loads(res.stdout)["snapshots"]]
    assert len(records) == 2

    clean = drkit("--json", "verify", "--accept-first-contact")  # a fresh host
    assert clean.exit_code == 0, clean.stdout
    cloud = next(r for r in json.loads(clean.stdout)["regions"] if r["region"] == "cloud")
    assert cloud["objects_logged"] == 2 and cloud["findings"] == []

    # The insider deletes the copy and the original straight through the cloud's API.
    copy = next(r for r in records if r.region == "ap-shanghai")
    original = next(r for r in records if r.region == "ap-beijing")
    del double.snapshots["ap-shanghai"][copy.snapshot_id]
    del double.snapshots["ap-beijing"][original.snapshot_id]
    bad = drkit("--json", "verify", "--accept-first-contact")
    assert bad.exit_code == 1
    findings = json.loads(bad.stdout)["findings"]
    assert {f["check"] for f in findings} == {"cloud-snapshot-missing"}
    assert {f["key"] for f in findings} == {copy.journal_key, original.journal_key}
    assert copy.snapshot_id in json.dumps(findings)

    # A tombstone citing an approval that does not exist is refused before anything is
    # journaled (an approved expiry carries its proof: tests/security/test_tombstones.py),
    # so the disappearance stays a finding.
    forged = Grant("0" * 64, "cloud-expire", ("bob", "carol"), None, (1, "0" * 64))
    with pytest.raises(IntegrityError, match="refusing to journal"):
        record_expiry(load_config(tmp_path / "drkit.toml"), [copy, original], now=clock.now(),
                      grant=forged)
    again = drkit("--json", "verify", "--accept-first-contact")
    assert again.exit_code == 1
    assert {f["check"] for f in json.loads(again.stdout)["findings"]} == {
        "cloud-snapshot-missing"}


def test_approved_expiry_carries_its_proof(drkit: Any, tmp_path: Path,
                                           tencent_env: TencentDouble,
                                           clock: FixedClock) -> None:
    """An expiry approved by two other people is journaled with its proof: verify then
    accepts the snapshot's absence and finds no unproven tombstone."""
    double = tencent_env
    double.add_disk("ap-beijing", {"backup": "daily"})
    (tmp_path / "drkit.toml").write_text(f"""
[repository]
primary = "p"
[regions.p]
url = "file:regions/p"
[verify]
state_dir = "state"
[cloud]
poll_seconds = 0
[cloud.tencent]
region = "ap-beijing"
endpoint = "{double.endpoint}"
protocol = "http"
select_tag = "backup=daily"
cdb = false
keep_min = 1
retention_days = 30
""", encoding="utf-8")
    env = {"DRKIT_RECOVERY_PASSPHRASE": "cloud test passphrase"}
    assert drkit("keys", "init", env=env).exit_code == 0
    first = drkit("--json", "cloud", "snapshot")
    assert first.exit_code == 0, first.stderr
    old = SnapshotRecord.from_dict(json.loads(first.stdout)["snapshots"][0])
    clock.advance(timedelta(hours=1))
    assert drkit("cloud", "snapshot").exit_code == 0
    double.age_snapshot("ap-beijing", old.snapshot_id, days=40)
    as_of = utc_iso(clock.now())

    people = ("alice", "bob", "carol")
    for name in people:
        (tmp_path / f"{name}.pass").write_text(f"passphrase of {name}\n")
        res = drkit("--json", "approvers", "enroll", name, "--passphrase-file",
                    str(tmp_path / f"{name}.pass"))
        assert res.exit_code == 0, res.stderr
    enrolments = sorted(str(p) for p in (tmp_path / "keys" / "approvers").glob(
        "*.enrollment.json"))
    assert drkit("approvers", "bootstrap", *enrolments).exit_code == 0

    def signer(name: str) -> list[str]:
        return ["--as", name, "--passphrase-file", str(tmp_path / f"{name}.pass")]

    req = drkit("--json", "request", "cloud-expire", "--as-of", as_of, "--reason", "retention",
                *signer("alice"))
    assert req.exit_code == 0, req.stderr
    rid = json.loads(req.stdout)["id"]
    for name in ("bob", "carol"):
        assert drkit("approve", rid, *signer(name)).exit_code == 0
    done = drkit("--json", "cloud", "expire", "--as-of", as_of, "--approval", rid)
    assert done.exit_code == 0, done.stderr
    assert [d["snapshot_id"] for d in json.loads(done.stdout)["deleted"]] == [old.snapshot_id]

    res = drkit("--json", "verify", "--accept-first-contact")
    assert res.exit_code == 0, res.stdout
    doc = json.loads(res.stdout)
    assert doc["findings"] == []
    cloud = next(r for r in doc["regions"] if r["region"] == "cloud")
    assert cloud["objects_logged"] == 1  # the newer snapshot; the expired one is excused
