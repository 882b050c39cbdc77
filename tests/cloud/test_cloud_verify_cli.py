"""``drkit verify`` reports a recorded cloud snapshot that vanished, exactly like a deleted
object, and accepts one whose expiry was approved and journaled as a tombstone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cloud.tencent_double import TencentDouble

from drkit.clock import FixedClock
from drkit.cloud.journal import record_expiry
from drkit.cloud.model import SnapshotRecord
from drkit.config import load_config


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
    bad = drkit("--json", "verify")
    assert bad.exit_code == 1
    findings = json.loads(bad.stdout)["findings"]
    assert {f["check"] for f in findings} == {"cloud-snapshot-missing"}
    assert {f["key"] for f in findings} == {copy.journal_key, original.journal_key}
    assert copy.snapshot_id in json.dumps(findings)

    # An approved expiry is journaled as tombstones first: then absence is expected.
    record_expiry(load_config(tmp_path / "drkit.toml"), [copy, original], now=clock.now(),
                  approval="test-approval-id")
    again = drkit("--json", "verify")
    assert again.exit_code == 0, again.stdout
