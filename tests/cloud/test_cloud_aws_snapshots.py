"""AWS EBS and RDS snapshots against a real moto server on 127.0.0.1, through the CLI first."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from drkit.clock import FixedClock
from drkit.cloud import (
    SnapshotRecord,
    find_missing,
    parse_cloud_config,
    plan_expiry,
    status,
    take_snapshots,
)
from drkit.cloud.base import CloudOperationFailed, CloudUnavailable
from drkit.config import load_config
from drkit.journal import Journal
from drkit.repo import keys as repo_keys
from drkit.storage.url import open_store

FAST_KDF = {"name": "argon2id", "iterations": 1, "lanes": 1, "memory_cost": 8192}


def write_config(tmp_path: Path, endpoint: str, tag: str, *, extra: str = "") -> Path:
    (tmp_path / "regions/primary").mkdir(parents=True, exist_ok=True)
    path = tmp_path / "drkit.toml"
    path.write_text(f"""
[repository]
primary = "primary"
keys = "keys"

[regions.primary]
url = "file:regions/primary"

[cloud]
max_age_hours = 26
poll_seconds = 0
wait_timeout_minutes = 1

[cloud.aws]
region = "us-east-1"
endpoint = "{endpoint}"
select_tag = "backup={tag}"
copy_to = [{{ region = "us-west-2" }}, {{ region = "eu-central-1" }}]
retention_days = 30
keep_min = 1
{extra}
""", encoding="utf-8")
    return path


def aws(endpoint: str, service: str, region: str) -> Any:
    import boto3

    return boto3.client(service, region_name=region, endpoint_url=endpoint)


def test_cli_snapshot_copies_and_status(drkit: Any, tmp_path: Path, aws_env: str,
                                        unique_tag: str, make_volume: Any, make_db: Any,
                                        clock: FixedClock) -> None:
    vol = make_volume("us-east-1", unique_tag)
    untagged = make_volume("us-east-1", "other")
    db = make_db("us-east-1", unique_tag)
    write_config(tmp_path, aws_env, unique_tag)

    before = drkit("--json", "cloud", "status")
    assert before.exit_code == 1, before.stderr
    stale = json.loads(before.stdout)["stale"]
    assert {(s["resource_id"], s["region"]) for s in stale} >= {
        (vol, "us-east-1"), (vol, "us-west-2"), (db, "eu-central-1")}

    res = drkit("--json", "cloud", "snapshot")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    snaps = doc["snapshots"]
    # One snapshot per resource in the source region plus one copy per backup region.
    assert len(snaps) == 6
    assert {s["resource_id"] for s in snaps} == {vol, db}
    assert untagged not in {s["resource_id"] for s in snaps}
    assert doc["journal"]["recorded"] is False  # no writer key in this folder
    assert "not recorded in the journal" in res.stderr
    for s in snaps:
        if s["kind"] == "ebs":
            found = aws(aws_env, "ec2", s["region"]).describe_snapshots(
                SnapshotIds=[s["snapshot_id"]])["Snapshots"][0]
            tags = {t["Key"]: t["Value"] for t in found["Tags"]}
            assert found["State"] == "completed"
        else:
            found = aws(aws_env, "rds", s["region"]).describe_db_snapshots(
                DBSnapshotIdentifier=s["snapshot_id"])["DBSnapshots"][0]
            tags = {t["Key"]: t["Value"] for t in found["TagList"]}
            assert found["Status"] == "available"
        assert tags["drkit:run-id"] == doc["run_id"]
        assert tags["drkit:resource-id"] == s["resource_id"]
    copies = [s for s in snaps if s["copy_of"]]
    assert {c["region"] for c in copies} == {"us-west-2", "eu-central-1"}

    # moto stamps snapshots with the real time; look from a day after that.
    clock.set(SnapshotRecord.from_dict(snaps[0]).created_at + timedelta(hours=1))
    after = drkit("--json", "cloud", "status")
    assert after.exit_code == 0, after.stdout + after.stderr
    assert json.loads(after.stdout)["stale"] == []
    clock.advance(timedelta(hours=30))
    late = drkit("cloud", "status")
    assert late.exit_code == 1
    assert "STALE aws ebs " + vol in late.stdout
    assert "drkit: error: " in late.stderr


def test_snapshot_recorded_in_journal(drkit: Any, tmp_path: Path, aws_env: str,
                                      unique_tag: str, make_volume: Any) -> None:
    make_volume("us-east-1", unique_tag)
    path = write_config(tmp_path, aws_env, unique_tag, extra="rds = false")
    config = load_config(path)
    keys = repo_keys.init_keys(config.keys_dir, "correct horse", kdf=FAST_KDF)
    store = open_store(config.primary_region.url)
    store.put(repo_keys.CONFIG_KEY,
              repo_keys.encode_repository_config(keys, now=drkit.clock.now()))

    res = drkit("--json", "cloud", "snapshot")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["journal"]["recorded"] is True
    _, entries = Journal(store, f"drkit:{keys.repository_id}").entries(
        repo_keys.load_trusted_writer_keys(config))
    external = [e for e in entries if e.kind == "external"]
    assert sorted(e.note["snapshot_id"] for e in external if e.note) == sorted(
        s["snapshot_id"] for s in doc["snapshots"])
    assert all(e.key.startswith("external/aws/ebs/-/") for e in external)

    # Verify side: delete one copy behind drkit's back -> exactly that one is a finding.
    cfg = parse_cloud_config(config.raw["cloud"])
    victim = next(e for e in external if e.note and e.note["copy_of"])
    assert victim.note is not None
    aws(aws_env, "ec2", victim.note["region"]).delete_snapshot(
        SnapshotId=victim.note["snapshot_id"])
    findings = find_missing(cfg, entries)
    assert [f.record.snapshot_id for f in findings] == [victim.note["snapshot_id"]]
    assert findings[0].to_dict()["finding"] == "cloud-snapshot-missing"
    assert "no longer exists" in str(findings[0])


def test_expiry_plan_keeps_newest_and_only_drkit_snapshots(aws_env: str, unique_tag: str,
                                                           make_volume: Any,
                                                           clock: FixedClock) -> None:
    vol = make_volume("us-east-1", unique_tag)
    cfg = parse_cloud_config({"poll_seconds": 0, "aws": {
        "region": "us-east-1", "endpoint": aws_env, "select_tag": f"backup={unique_tag}",
        "rds": False, "retention_days": 30, "keep_min": 1,
        "copy_to": [{"region": "ap-southeast-1"}]}})
    first = take_snapshots(cfg, "run-1", now=clock.now())
    second = take_snapshots(cfg, "run-2", now=clock.now())
    # A snapshot drkit did not make must never be planned for expiry.
    aws(aws_env, "ec2", "us-east-1").create_snapshot(VolumeId=vol)
    newest = max(r.created_at for r in second.records)

    assert [c for c in plan_expiry(cfg, now=newest + timedelta(days=1))
            if c.record.resource_id == vol] == []
    plan = [c for c in plan_expiry(cfg, now=newest + timedelta(days=31))
            if c.record.resource_id == vol]
    planned = {c.record.snapshot_id for c in plan}
    # keep_min=1 keeps the newest per region, so exactly run-1's snapshot and copy expire.
    assert len(planned) == 2
    run1_ids = {r.snapshot_id for r in first.records}
    run2_ids = {r.snapshot_id for r in second.records}
    assert len(planned & run1_ids) >= 1 and not planned & run2_ids
    assert all("retention 30 days" in c.reason for c in plan)


def test_bad_input_one_line_each(drkit: Any, tmp_path: Path, aws_env: str, unique_tag: str,
                                 make_volume: Any, monkeypatch: pytest.MonkeyPatch,
                                 clock: FixedClock) -> None:
    # Unreachable endpoint -> exit 2, one line naming AWS.
    from moto_server import unreachable_endpoint

    write_config(tmp_path, unreachable_endpoint(), unique_tag)
    res = drkit("cloud", "snapshot")
    assert res.exit_code == 2
    assert res.stderr.startswith("drkit: error: aws: list EBS volumes: cannot reach")
    assert "Traceback" not in res.stderr

    # A region that refuses the copy (unknown volume state in the target) -> exit 1.
    make_volume("us-east-1", unique_tag)
    cfg = parse_cloud_config({"poll_seconds": 0, "aws": {
        "region": "us-east-1", "endpoint": aws_env, "select_tag": f"backup={unique_tag}",
        "rds": False, "copy_to": [{"region": "eu-west-1",
                                   "role_arn": "arn:aws:iam::222233334444:role/copy"}]}})
    # moto does not resolve snapshots shared across accounts, so the copy in the other
    # account is refused with InvalidSnapshot.NotFound - the shape of a real refusal.
    with pytest.raises(CloudOperationFailed) as err:
        take_snapshots(cfg, "run-x", now=clock.now())
    assert "copy snap-" in str(err.value) and "(account 222233334444)" in str(err.value)

    # Missing credentials -> exit 2 with a clear line, and config errors name the key.
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(CloudUnavailable, match="no AWS credentials"):
        status(parse_cloud_config({"aws": {"region": "us-east-1", "endpoint": aws_env,
                                           "select_tag": "backup"}}), now=clock.now())


@pytest.mark.parametrize(("table", "key"), [
    ({"aws": {"region": "us-east-1"}}, "cloud.aws.select_tag"),
    ({"aws": {"region": "Not A Region", "select_tag": "b"}}, "cloud.aws.region"),
    ({"aws": {"region": "us-east-1", "select_tag": "b", "copy_to": ["us-east-1"]}},
     "cloud.aws.copy_to[0].region"),
    ({"aws": {"region": "us-east-1", "select_tag": "b",
              "copy_to": [{"region": "eu-west-1", "role_arn": "nope"}]}},
     "cloud.aws.copy_to[0].role_arn"),
    ({"tencent": {"region": "ap-beijing", "select_tag": "b", "protocol": "ftp"}},
     "cloud.tencent.protocol"),
    ({"max_age_hours": "soon"}, "cloud.max_age_hours"),
    ({"azure": {}}, "cloud.azure"),
])
def test_config_errors_name_file_and_key(table: dict[str, Any], key: str) -> None:
    from drkit.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        parse_cloud_config(table, "/etc/drkit/drkit.toml")
    assert str(err.value).startswith(f"/etc/drkit/drkit.toml: {key}: ")


def test_cli_without_cloud_section(drkit: Any, tmp_path: Path) -> None:
    (tmp_path / "drkit.toml").write_text(
        '[repository]\nprimary = "p"\n[regions.p]\nurl = "file:r"\n', encoding="utf-8")
    res = drkit("cloud", "status")
    assert res.exit_code == 2
    assert "drkit.toml: cloud: no cloud configured" in res.stderr
