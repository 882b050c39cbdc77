"""``drkit oplog check``: trails and tracking sets as guardrails, through the real clients.

CloudTrail and its S3 bucket through the moto server (boto3, real HTTP); CloudAudit through
the real tencentcloud SDK against the Tencent API 3.0 test double, its COS bucket on the
moto server through the COS SDK and the test adapter. The CloudAudit LookUpEvents reader of
``drkit oplog ingest`` is exercised through the same double.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from cloud.tencent_double import TencentDouble

from drkit.oplog.readers import parse_spec, read_source
from drkit.oplog.rules import dangers


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIADRKITOPLOGTEST00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "drkit-oplog-test-not-a-secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    return moto_endpoint


@pytest.fixture
def tencent(monkeypatch: pytest.MonkeyPatch) -> Iterator[TencentDouble]:
    double = TencentDouble(secret_id="AKIDdrkitOPLOG", secret_key="drkit-oplog-test-key")
    double.start()
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", double.secret_id)
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", double.secret_key)
    try:
        yield double
    finally:
        double.stop()


def _check(drkit: Any, *targets: str) -> tuple[int, dict[str, Any]]:
    res = drkit("--json", "oplog", "check", "--no-gaps", *targets)
    assert res.exit_code in (0, 1), res.stderr
    return res.exit_code, json.loads(res.stdout)


def _checks(doc: dict[str, Any]) -> dict[str, str]:
    return {f["check"]: f["severity"] for f in doc["findings"]}


def test_cloudtrail_trail_stopped_single_region_unlocked_bucket_then_fixed(
        drkit: Any, aws: str, store_url_env: Any) -> None:
    plain = urlsplit(store_url_env.s3()).netloc
    locked = urlsplit(store_url_env.s3(versioning=True, object_lock_days=365)).netloc
    ct = boto3.client("cloudtrail", region_name="us-east-1", endpoint_url=aws)
    name = f"org-trail-{plain[-8:]}"
    ct.create_trail(Name=name, S3BucketName=plain)
    target = (f"cloudtrail:us-east-1?endpoint={aws}&trail={name}"
              "&credentials=env:DRKIT_MOTO")

    # Created but never started, one region, no validation, a bucket without protection.
    code, doc = _check(drkit, target)
    assert code == 1
    assert _checks(doc) == {"trail-off": "critical", "trail-single-region": "high",
                            "trail-validation": "medium", "trail-bucket-versioning": "high",
                            "trail-bucket-lock": "high"}
    off = next(f for f in doc["findings"] if f["check"] == "trail-off")
    assert off["key"] == name and off["severity"] == "critical"

    # Fixed: logging, every region, digests, a versioned bucket under COMPLIANCE lock.
    ct.update_trail(Name=name, S3BucketName=locked, IsMultiRegionTrail=True,
                    EnableLogFileValidation=True)
    ct.start_logging(Name=name)
    code, doc = _check(drkit, target)
    assert (code, doc["findings"]) == (0, []), [f["message"] for f in doc["findings"]]

    # The insider switches it off: the next check says so, CRITICAL.
    ct.stop_logging(Name=name)
    code, doc = _check(drkit, target)
    assert code == 1
    assert [(f["check"], f["severity"], f["key"]) for f in doc["findings"]] == [
        ("trail-off", "critical", name)]


def test_cloudtrail_no_trail_is_critical_and_unreachable_api_is_a_finding(
        drkit: Any, aws: str) -> None:
    code, doc = _check(drkit, f"cloudtrail:us-east-1?endpoint={aws}&trail=nonexistent")
    assert code == 1 and _checks(doc) == {"trail-missing": "critical"}
    from moto_server import unreachable_endpoint

    code, doc = _check(drkit, f"cloudtrail:us-east-1?endpoint={unreachable_endpoint()}")
    assert code == 1 and _checks(doc) == {"trail-unreadable": "high"}


def test_bad_target_is_a_one_line_error(drkit: Any) -> None:
    res = drkit("oplog", "check", "--no-gaps", "cloudwatch:us-east-1")
    assert res.exit_code == 2
    assert "cloudtrail:REGION or cloudaudit:REGION" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_cloudaudit_tracking_sets_through_the_sdk(drkit: Any, tencent: TencentDouble,
                                                  store_url_env: Any) -> None:
    def bucket(url: str) -> str:
        return urlsplit(url).netloc

    good = bucket(store_url_env.cos(versioning=True, object_lock_days=180))
    bare = bucket(store_url_env.cos())
    tencent.add_audit("all-events", bucket=good, cos_region="ap-shanghai")
    tencent.add_audit("reads-only", bucket=bare, cos_region="ap-shanghai", read_write=1)
    base = (f"cloudaudit:ap-guangzhou?endpoint=http://{tencent.endpoint}"
            f"&cos_endpoint={store_url_env.endpoint}&credentials=env:DRKIT_MOTO")

    code, doc = _check(drkit, base + "&audit=all-events")
    assert (code, doc["findings"]) == (0, []), [f["message"] for f in doc["findings"]]
    code, doc = _check(drkit, base)
    assert code == 1
    found = {(f["key"], f["check"], f["severity"]) for f in doc["findings"]}
    assert found == {("reads-only", "trail-scope", "high"),
                     (bare, "trail-bucket-versioning", "high"),
                     (bare, "trail-bucket-lock", "medium")}

    tencent.set_audit_status("all-events", 0)
    code, doc = _check(drkit, base + "&audit=all-events")
    assert [(f["check"], f["severity"]) for f in doc["findings"]] == [("trail-off", "critical")]
    assert ("ListAudits", "ap-guangzhou", {}) in tencent.calls
    assert ("DescribeAudit", "ap-guangzhou", {"AuditName": "all-events"}) in tencent.calls

    code, doc = _check(drkit, base + "&audit=nonexistent")
    assert _checks(doc) == {"trail-missing": "critical"}


def test_cloudaudit_without_credentials_is_an_input_error(
        drkit: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TENCENTCLOUD_SECRET_ID", raising=False)
    res = drkit("oplog", "check", "--no-gaps", "cloudaudit:ap-guangzhou")
    assert res.exit_code == 2 and "TENCENTCLOUD_SECRET_ID" in res.stderr


def test_cloudaudit_lookup_events_reader_pages_through_the_sdk(tencent: TencentDouble,
                                                               clock: Any) -> None:
    now = clock.now()
    start = now - timedelta(hours=3)
    ids = [tencent.add_audit_event(at=start + timedelta(minutes=i), name="DescribeBuckets",
                                   resource_type="cos", user="li", secret_id="AKIDli",
                                   source_ip="10.0.9.1") for i in range(60)]
    deleted = tencent.add_audit_event(at=now - timedelta(minutes=5), name="DeleteBucket",
                                      resource_type="cos", resource="shop-backup-1250000000",
                                      user="wang", secret_id="AKIDwang",
                                      source_ip="10.0.8.15", region="ap-shanghai")
    tencent.add_audit_event(at=now - timedelta(days=30), name="DeleteBucket",
                            resource_type="cos", user="old")  # before the look-back
    spec = parse_spec(f"cloudaudit-api:ap-guangzhou?endpoint=http://{tencent.endpoint}")
    events = read_source(spec, clock=clock)
    assert sorted(e.record_id for e in events) == sorted([*ids, deleted])
    pages = [p for a, _r, p in tencent.calls if a == "LookUpEvents"]
    assert len(pages) == 2 and pages[0]["MaxResults"] == 50 and pages[1]["NextToken"] == "50"
    drop = next(e for e in events if e.record_id == deleted)
    assert (drop.action, drop.operator, drop.actor.source_ip, drop.region, drop.resources) == (
        "cos:DeleteBucket", "wang", "10.0.8.15", "ap-shanghai", ("shop-backup-1250000000",))
    assert drop.time == (now - timedelta(minutes=5)).replace(microsecond=0)
    assert [d.action_class for d in dangers(drop)] == ["destructive"]
    assert all(not dangers(e) for e in events if e.record_id != deleted)


def test_log_gap_counts_working_hours_only() -> None:
    from drkit.oplog.check import log_gaps
    from drkit.oplog.settings import load_settings

    settings = load_settings(None)  # 09:00-19:00 mon-fri UTC, max_log_gap 4h

    def summary(at: datetime, minutes: list[datetime]) -> dict[str, Any]:
        return {"ingested": at.isoformat(), "activity": {"auditd:/var/log/audit/audit.log": {
            "kind": "auditd", "minutes": [m.isoformat() for m in minutes]}}}

    mon = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday
    day = [mon + timedelta(hours=9, minutes=30 * i) for i in range(20)]  # 09:00-18:30
    # Friday evening to Monday morning is silent but outside working hours: no gap.
    fri = mon - timedelta(days=3)
    quiet_weekend = [summary(fri + timedelta(hours=18), [fri + timedelta(hours=18)]),
                     summary(mon + timedelta(hours=19), day)]
    assert log_gaps(quiet_weekend, settings, since=fri, until=mon + timedelta(days=1)) == []
    # Tuesday: events until 10:00, then read at 12:00 and 16:00 with nothing new.
    tue = mon + timedelta(days=1)
    silent = [*quiet_weekend,
              summary(tue + timedelta(hours=12), [tue + timedelta(hours=9),
                                                  tue + timedelta(hours=10)]),
              summary(tue + timedelta(hours=16), [])]
    gaps = log_gaps(silent, settings, since=tue, until=tue + timedelta(days=1))
    assert gaps == [{"source": "auditd:/var/log/audit/audit.log",
                     "from": "2026-11-24T10:00:00Z", "to": "2026-11-24T16:00:00Z",
                     "working_minutes": 360, "still_silent": True}]
    # Events again at 13:00: the silence was 10:00-13:00, three hours, under the limit.
    resumed = [*silent[:-1], summary(tue + timedelta(hours=16), [tue + timedelta(hours=13),
                                                                 tue + timedelta(hours=15)])]
    assert log_gaps(resumed, settings, since=tue, until=tue + timedelta(days=1)) == []


def test_settings_reject_a_bad_gap(tmp_path: Path) -> None:
    from drkit.config import load_config
    from drkit.errors import ConfigError
    from drkit.oplog.settings import load_settings

    path = tmp_path / "drkit.toml"
    path.write_text('[repository]\nprimary = "a"\n[regions.a]\nurl = "file:a"\n'
                    '[oplog]\nmax_log_gap = "soon"\n')
    with pytest.raises(ConfigError, match="max_log_gap"):
        load_settings(load_config(path))
    path.write_text(path.read_text().replace('"soon"', '"90m"'))
    assert load_settings(load_config(path)).max_log_gap == timedelta(minutes=90)
