"""Tencent Cloud CBS snapshots and TencentDB for MySQL backups through the real
tencentcloud-sdk-python, against the local API 3.0 test double (tests/cloud/tencent_double.py).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cloud.tencent_double import TencentDouble

from drkit.clock import FixedClock
from drkit.cloud import (
    SnapshotRecord,
    expire_approved,
    find_missing,
    parse_cloud_config,
    plan_expiry,
    take_snapshots,
)
from drkit.cloud.base import CloudOperationFailed, CloudUnavailable
from drkit.cloud.config import CloudConfig


def tencent_cfg(double: TencentDouble, **extra: Any) -> CloudConfig:
    table: dict[str, Any] = {"region": "ap-beijing", "endpoint": double.endpoint,
                             "protocol": "http", "select_tag": "backup=daily",
                             "copy_to": ["ap-shanghai", "ap-nanjing"], "keep_min": 1,
                             "retention_days": 30}
    table.update(extra)
    return parse_cloud_config({"poll_seconds": 0, "wait_timeout_minutes": 1,
                               "tencent": table})


def test_cli_snapshot_cbs_and_cdb(drkit: Any, tmp_path: Path, tencent_env: TencentDouble,
                                  clock: FixedClock) -> None:
    double = tencent_env
    disk = double.add_disk("ap-beijing", {"backup": "daily"})
    double.add_disk("ap-beijing", {"backup": "never"})
    db = double.add_instance("ap-beijing", {"backup": "daily"},
                             remote_regions=["ap-shanghai", "ap-nanjing"])
    (tmp_path / "drkit.toml").write_text(f"""
[repository]
primary = "p"
[regions.p]
url = "file:r"
[cloud]
poll_seconds = 0
[cloud.tencent]
region = "ap-beijing"
endpoint = "{double.endpoint}"
protocol = "http"
select_tag = "backup=daily"
copy_to = ["ap-shanghai", "ap-nanjing"]
""", encoding="utf-8")

    res = drkit("--json", "cloud", "snapshot")
    assert res.exit_code == 0, res.stderr
    snaps = json.loads(res.stdout)["snapshots"]
    by_kind = {(s["kind"], s["region"]): s for s in snaps}
    assert set(by_kind) == {(k, r) for k in ("cbs", "cdb")
                            for r in ("ap-beijing", "ap-shanghai", "ap-nanjing")}
    source = by_kind[("cbs", "ap-beijing")]
    assert source["resource_id"] == disk
    for region in ("ap-shanghai", "ap-nanjing"):
        copy = by_kind[("cbs", region)]
        assert copy["copy_of"] == source["snapshot_id"]
        assert double.snapshots[region][copy["snapshot_id"]]["SnapshotState"] == "NORMAL"
    backup = by_kind[("cdb", "ap-beijing")]
    assert backup["resource_id"] == db
    assert by_kind[("cdb", "ap-nanjing")]["snapshot_id"].startswith(backup["snapshot_id"] + "/")
    # The SDK's signed requests reached the double with the expected actions.
    actions = [a for a, _, _ in double.calls]
    assert {"DescribeDisks", "CreateSnapshot", "CopySnapshotCrossRegions",
            "DescribeSnapshots", "DescribeDBInstances", "CreateBackup",
            "DescribeBackups"} <= set(actions)
    created = next(p for a, _, p in double.calls if a == "CreateSnapshot")
    assert created["Tags"] == [{"Key": "drkit:run-id",
                                "Value": json.loads(res.stdout)["run_id"]}]

    clock.set(SnapshotRecord.from_dict(source).created_at + timedelta(hours=2))
    ok = drkit("--json", "cloud", "status")
    assert ok.exit_code == 0, ok.stdout
    clock.advance(timedelta(days=2))
    late = drkit("--json", "cloud", "status")
    assert late.exit_code == 1
    assert {s["resource_id"] for s in json.loads(late.stdout)["stale"]} == {disk, db}


def test_verify_finds_deleted_snapshot_and_expiry_through_gate(tencent_env: TencentDouble,
                                                               clock: FixedClock) -> None:
    double = tencent_env
    double.add_disk("ap-beijing", {"backup": "daily"})
    cfg = tencent_cfg(double, cdb=False)
    old = take_snapshots(cfg, "20261001T000000Z-aaaa", now=clock.now())
    new = take_snapshots(cfg, "20261101T000000Z-bbbb", now=clock.now())
    assert find_missing(cfg, old.records + new.records) == []
    for rec in old.records:
        double.age_snapshot(rec.region, rec.snapshot_id, days=40)

    plan = plan_expiry(cfg, now=max(r.created_at for r in new.records) + timedelta(hours=1))
    assert {c.record.snapshot_id for c in plan} == {r.snapshot_id for r in old.records}
    deleted = expire_approved(cfg, plan)
    assert len(deleted) == 3
    findings = find_missing(cfg, old.records + new.records)
    assert sorted(f.record.snapshot_id for f in findings) == sorted(
        r.snapshot_id for r in old.records)
    assert findings[0].regions_checked[0] == findings[0].record.region


def test_snapshot_that_never_completes_times_out(tencent_env: TencentDouble,
                                                 clock: FixedClock) -> None:
    double = tencent_env
    disk = double.add_disk("ap-beijing", {"backup": "daily"})
    double.stuck = True
    ticks = iter(range(0, 10_000, 15))
    slept: list[float] = []
    cfg = parse_cloud_config({"poll_seconds": 15, "wait_timeout_minutes": 1, "tencent": {
        "region": "ap-beijing", "endpoint": double.endpoint, "protocol": "http",
        "select_tag": "backup", "cdb": False}})
    with pytest.raises(CloudOperationFailed) as err:
        take_snapshots(cfg, "run-stuck", now=clock.now(), sleep=slept.append,
                       monotonic=lambda: float(next(ticks)))
    assert "snapshots not complete after 1 minutes" in str(err.value)
    assert "(ap-beijing, 0%)" in str(err.value)
    assert slept == [15.0] * len(slept) and len(slept) >= 3
    assert disk in {s["DiskId"] for s in double.snapshots["ap-beijing"].values()}


def test_region_refusing_copy_and_bad_credentials(tencent_env: TencentDouble,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  clock: FixedClock) -> None:
    double = tencent_env
    double.add_disk("ap-beijing", {"backup": "daily"})
    double.refuse_regions = {"ap-nanjing"}
    with pytest.raises(CloudOperationFailed) as err:
        take_snapshots(tencent_cfg(double, cdb=False), "run-r", now=clock.now())
    assert "refused: ap-nanjing: UnsupportedOperation.RegionNotSupport" in str(err.value)

    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", "wrong-key")
    with pytest.raises(CloudUnavailable) as bad:
        take_snapshots(tencent_cfg(double), "run-b", now=clock.now())
    assert str(bad.value) == ("tencent: list CBS disks: credentials refused "
                              "(AuthFailure.SignatureFailure)")
    assert "wrong-key" not in str(bad.value)

    monkeypatch.delenv("TENCENTCLOUD_SECRET_KEY")
    with pytest.raises(CloudUnavailable, match="set TENCENTCLOUD_SECRET_ID and"):
        take_snapshots(tencent_cfg(double), "run-c", now=clock.now())


def test_unreachable_api(tencent_env: TencentDouble, clock: FixedClock) -> None:
    from moto_server import free_port

    cfg = parse_cloud_config({"tencent": {"region": "ap-beijing",
                                          "endpoint": f"127.0.0.1:{free_port()}",
                                          "protocol": "http", "select_tag": "backup"}})
    with pytest.raises(CloudUnavailable, match="cannot reach the cbs API in ap-beijing"):
        take_snapshots(cfg, "run-u", now=clock.now())


def test_cli_expire_needs_approval(drkit: Any, tmp_path: Path, tencent_env: TencentDouble,
                                   clock: FixedClock) -> None:
    double = tencent_env
    double.add_disk("ap-beijing", {"backup": "daily"})
    (tmp_path / "regions/p").mkdir(parents=True)
    (tmp_path / "drkit.toml").write_text(f"""
[repository]
primary = "p"
[regions.p]
url = "file:regions/p"
[cloud]
poll_seconds = 0
[cloud.tencent]
region = "ap-beijing"
endpoint = "{double.endpoint}"
protocol = "http"
select_tag = "backup"
cdb = false
keep_min = 1
retention_days = 30
""", encoding="utf-8")
    cfg = tencent_cfg(double, cdb=False, copy_to=[])
    old = take_snapshots(cfg, "20261001T000000Z-aaaa", now=clock.now())
    take_snapshots(cfg, "20261101T000000Z-bbbb", now=clock.now())
    double.age_snapshot("ap-beijing", old.records[0].snapshot_id, days=40)
    as_of = (old.records[0].created_at + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    dry = drkit("--json", "cloud", "expire", "--as-of", as_of, "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    plan = json.loads(dry.stdout)["plan"]
    assert [s["snapshot_id"] for s in plan["snapshots"]] == [old.records[0].snapshot_id]

    # A real repository (keys + config object) for the approval gate to read requests from.
    from drkit.config import load_config
    from drkit.repo import keys as repo_keys
    from drkit.storage.url import open_store

    config = load_config(tmp_path / "drkit.toml")
    made = repo_keys.init_keys(config.keys_dir, "pass", kdf={
        "name": "argon2id", "iterations": 1, "lanes": 1, "memory_cost": 8192})
    open_store(config.primary_region.url).put(
        repo_keys.CONFIG_KEY, repo_keys.encode_repository_config(made, now=clock.now()))
    # As 'drkit keys init' does: this host's writer key anchor (else first use warns).
    from drkit.repo.keyhistory import record_anchor

    record_anchor(config, made.repository_id, made.signing_key.public_key(), how="keys init")
    res = drkit("cloud", "expire", "--as-of", as_of)
    assert res.exit_code == 3, res.stderr
    # The real gate refuses: here no approver registry exists yet, so nothing can approve.
    assert res.stderr.startswith("drkit: error: ") and "approver registry" in res.stderr
    assert old.records[0].snapshot_id in double.snapshots["ap-beijing"]  # nothing deleted
