"""Edges of ``drkit verify``: guardrail rules, lag, read-data sampling, forks, unreachable
regions and usage errors."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from typing import Any

import pytest
from moto_server import s3_client, s3_url, unreachable_endpoint

from drkit.config import RegionConfig
from drkit.journal import Journal, JournalEntry
from drkit.repo.keys import CONFIG_KEY
from drkit.storage.base import BucketSettings, LifecycleRule
from drkit.storage.local import LocalStore
from drkit.storage.url import parse_store_url
from drkit.verify import check_bucket

LOCK_DAYS = 3650


def run_json(drkit: Any, *args: str) -> tuple[int, dict[str, Any]]:
    if args and args[0] == "verify":
        # A test's fresh host is a first contact (exit 4); these tests are about what
        # verify finds (first contact: tests/security/test_trust_state.py).
        args = (*args, "--accept-first-contact")
    result = drkit(*args, "--json")
    assert result.stdout.strip(), result.stderr
    return result.exit_code, json.loads(result.stdout)


def region(**kw: Any) -> RegionConfig:
    return RegionConfig(name="shanghai", url=parse_store_url("s3://b-1/x?region=us-east-1"),
                        storage_class=kw.pop("storage_class", "STANDARD_IA"),
                        lock_days=kw.pop("lock_days", 30),
                        retention_days=kw.pop("retention_days", 90))


GOOD = BucketSettings(versioning="Enabled", object_lock_enabled=True,
                      object_lock_mode="COMPLIANCE", default_retention_days=30)


def checks(settings: BucketSettings) -> list[tuple[str, str]]:
    return [(f.check, f.severity) for f in check_bucket(settings, region())]


def test_guardrail_rules() -> None:
    assert checks(GOOD) == []
    assert checks(BucketSettings(versioning="Suspended", object_lock_enabled=False)) == [
        ("bucket-versioning", "high"), ("bucket-object-lock", "high")]
    weak = BucketSettings(versioning="Enabled", object_lock_enabled=True,
                          object_lock_mode="GOVERNANCE", default_retention_days=7)
    assert checks(weak) == [("bucket-object-lock-mode", "medium"), ("bucket-retention", "high")]
    rules = (
        LifecycleRule("ok-long", True, "", expiration_days=400),
        LifecycleRule("off", False, "", expiration_days=1),
        LifecycleRule("expire", True, "packs/", expiration_days=60),
        LifecycleRule("old-versions", True, "", noncurrent_expiration_days=1),
        LifecycleRule("to-glacier", True, "", transition_days=10, transition_class="GLACIER"),
        LifecycleRule("same-class", True, "", transition_days=0,
                      transition_class="STANDARD_IA"),
    )
    got = check_bucket(BucketSettings(versioning="Enabled", object_lock_enabled=True,
                                      object_lock_mode="COMPLIANCE", default_retention_days=30,
                                      lifecycle_rules=rules, public_access=True,
                                      public_reasons=("ACL grants AllUsers READ",)),
                       region())
    assert [(f.check, f.message.split(" ")[2]) for f in got if "lifecycle" in f.check] == [
        ("bucket-lifecycle-expiration", "'expire'"),
        ("bucket-lifecycle-noncurrent", "'old-versions'"),
        ("bucket-lifecycle-transition", "'to-glacier'")]
    public = [f for f in got if f.check == "bucket-public"]
    assert public and public[0].found == "ACL grants AllUsers READ"
    assert public[0].severity == "critical"


@pytest.fixture
def two_regions(make_repo: Any, drkit: Any) -> Any:
    repo = make_repo({"hangzhou": "file:regions/hangzhou"})
    repo.snapshot(4)
    assert drkit("replicate").exit_code == 0
    code, doc = run_json(drkit, "verify")
    assert code == 0, doc["findings"]
    return repo


def test_lag_beyond_the_allowance(two_regions: Any, drkit: Any) -> None:
    repo = two_regions
    repo.snapshot(2)
    repo.clock.advance(timedelta(hours=25))
    code, doc = run_json(drkit, "verify", "--region", "hangzhou")
    assert code == 0 and "entries not replicated yet (25.0 h" in doc["regions"][0]["notes"][0]
    repo.clock.advance(timedelta(hours=2))
    code, doc = run_json(drkit, "verify", "--region", "hangzhou")
    assert code == 1
    lag = doc["findings"][0]
    assert (lag["check"], lag["expected"], lag["found"]) == (
        "replication-lag", "<= 26 h behind", "27.0 h")
    assert drkit("replicate").exit_code == 0
    code, doc = run_json(drkit, "verify")
    assert code == 0, doc["findings"]


def test_read_data_sample_and_all(two_regions: Any, drkit: Any) -> None:
    code, doc = run_json(drkit, "verify", "--read-data=50%", "--region", "beijing")
    assert code == 0 and doc["regions"][0]["objects_read"] == 3  # ceil(5 / 2)
    code, doc = run_json(drkit, "verify", "--read-data", "--region", "beijing")
    assert code == 0 and doc["regions"][0]["objects_read"] == 5
    for bad in ("--read-data=0%", "--read-data=150%", "--read-data=ten"):
        result = drkit("verify", bad)
        assert result.exit_code == 2 and "--read-data" in result.stderr


def test_a_different_history_signed_by_the_writer_is_a_fork(two_regions: Any,
                                                           drkit: Any) -> None:
    repo = two_regions
    # Someone with the writer key builds another history of the same repository and
    # puts it in place of the replica: every signature is valid, the history is not.
    shutil.rmtree(repo.root / "regions/hangzhou")
    fake = LocalStore(repo.root / "regions/hangzhou")
    config = repo.primary.get(CONFIG_KEY)
    entries = [JournalEntry.from_info(fake.put(CONFIG_KEY, config))]
    entries += [JournalEntry.from_info(fake.put(f"packs/00/{i}", b"x" * i)) for i in range(6)]
    Journal(fake, repo.origin).append(entries, repo.keys.signing_key, now=repo.clock.now())
    code, doc = run_json(drkit, "verify")
    assert code == 1
    # The replaced folder also lost the replica's signed region identity.
    assert {(f["region"], f["check"]) for f in doc["findings"]} == {
        ("hangzhou", "journal-fork"), ("hangzhou", "journal-ahead-of-primary"),
        ("hangzhou", "region-identity")}


def test_unreachable_region_does_not_stop_the_others(make_repo: Any, drkit: Any,
                                                     moto_credentials: Any) -> None:
    dead = s3_url(unreachable_endpoint(), "gone-bucket")
    repo = make_repo({"hangzhou": "file:regions/hangzhou", "shanghai": dead})
    repo.snapshot(2)
    code, doc = run_json(drkit, "replicate", "--region", "hangzhou")
    assert code == 0
    code, doc = run_json(drkit, "verify")
    assert code == 1
    assert {(f["region"], f["check"]) for f in doc["findings"]} == {
        ("shanghai", "region-unavailable")}
    assert {r["region"]: r["log_size"] for r in doc["regions"]} == {
        "beijing": 3, "hangzhou": 3, "shanghai": 0}


def test_public_bucket_is_reported(make_repo: Any, store_url_env: Any, drkit: Any) -> None:
    url = store_url_env.s3(versioning=True, object_lock_days=LOCK_DAYS)
    repo = make_repo({"shanghai": url})
    repo.snapshot(1)
    assert drkit("replicate").exit_code == 0
    parsed = parse_store_url(url)
    s3_client(parsed.params["endpoint"]).put_bucket_acl(Bucket=parsed.bucket, ACL="public-read")
    code, doc = run_json(drkit, "verify")
    assert code == 1 and [f["check"] for f in doc["findings"]] == ["bucket-public"]


def test_usage_errors_and_text_output(two_regions: Any, drkit: Any) -> None:
    both = drkit("verify", "--region", "hangzhou", "--all")
    assert both.exit_code == 2 and "not both" in both.stderr
    unknown = drkit("verify", "--region", "atlantis")
    assert unknown.exit_code == 2 and "unknown region 'atlantis'" in unknown.stderr
    text = drkit("verify")
    assert text.exit_code == 0
    assert text.stdout.splitlines()[-1] == "clean"
    assert "hangzhou: clean; log size 5, 5 objects (0 by listing, 5 hashed, 0 read)" in text.stdout


def test_unknown_objects_under_audit_and_approval_are_injected_data(two_regions: Any,
                                                                   drkit: Any) -> None:
    repo = two_regions
    # drkit's own audit hook writes under audit/ after each command: those records are
    # checked and clean; objects at names no drkit record uses are injected (issue 12
    # item 10; this test used to assert the opposite, the blind spot).
    repo.primary.put("audit/zz-verify-test", b"not an audit record")
    repo.primary.put("approval/requests/zz-verify-test.json", b"{}")
    repo.primary.put("snapshots/not-logged", b"{}")
    code, doc = run_json(drkit, "verify", "--region", "beijing")
    assert code == 1
    assert sorted((f["check"], f["severity"], f["key"]) for f in doc["findings"]) == [
        ("object-unlogged", "high", "snapshots/not-logged"),
        ("record-injected", "high", "approval/requests/zz-verify-test.json"),
        ("record-injected", "high", "audit/zz-verify-test")]
    assert any("objects under audit/, approval/" in n for n in doc["regions"][0]["notes"])


def test_primary_destroyed_replicas_still_verified(two_regions: Any, drkit: Any) -> None:
    repo = two_regions
    shutil.rmtree(repo.root / "regions/beijing")
    code, doc = run_json(drkit, "verify")
    assert code == 1
    assert {(f["region"], f["check"]) for f in doc["findings"]} == {
        ("beijing", "region-unavailable")}
    assert {r["region"]: r["clean"] for r in doc["regions"]} == {
        "hangzhou": True, "beijing": False}
