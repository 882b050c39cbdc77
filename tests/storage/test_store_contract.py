"""The storage contract: the same tests over every backend.

Backends (tests/storage/conftest.py): local folders; S3 on the moto server over HTTP with
boto3; COS with cos-python-sdk-v5 over HTTP against the same server through the COS test
adapter; real S3 / COS when DRKIT_TEST_S3_URL / DRKIT_TEST_COS_URL are set.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drkit.errors import (
    BackendUnavailable,
    ExitCode,
    InvalidObjectKey,
    NeedsThaw,
    ObjectExists,
    ObjectNotFound,
    RetentionActive,
)
from drkit.storage.base import Store

MiB = 1024 * 1024
LISTING_KEYS = 2500  # as populated by tests/storage/conftest.py
#: tests/storage/conftest.py's Backend (test modules cannot import conftest modules)
Backend = Any
BAD_KEYS = [
    "",
    "../escape",
    "a/../../escape",
    "/etc/passwd",
    "a//b",
    "./a",
    "a/.",
    "a\x00b",
    "line\nbreak",
    "tab\there",
    "del\x7f",
    "back\\slash",
    ".drkit-meta/x.json",
    "x" * 1025,
]


def _retain_until(store: Store) -> datetime:
    # Ten days after the later of the store's clock and the real one: moto and real
    # clouds compare retention with their own clocks.
    clock_now = getattr(store, "clock").now()  # noqa: B009 - every backend has one
    return max(clock_now, datetime.now(UTC)) + timedelta(days=10)


@pytest.mark.parametrize("size", [0, 1, 5000])
def test_round_trip_small_objects(backend: Backend, size: int) -> None:
    store = backend.make()
    data = os.urandom(size)
    info = store.put(f"objects/{size}", data)
    assert info.size == size
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert store.get(f"objects/{size}") == data
    assert store.exists(f"objects/{size}")


def test_round_trip_64_mib_takes_the_multipart_path(backend: Backend) -> None:
    store = backend.make()
    data = os.urandom(64 * MiB)
    info = store.put("packs/big", data)
    if backend.name != "local":
        # A multipart ETag is not an MD5; the backend must not pretend it is.
        assert info.md5 is None
    assert store.get("packs/big") == data
    head = store.head("packs/big")
    assert head.size == 64 * MiB
    assert head.sha256 == hashlib.sha256(data).hexdigest()


def test_overwrite_is_refused_and_the_old_bytes_stay(backend: Backend) -> None:
    store = backend.make()
    store.put("packs/aa", b"original")
    with pytest.raises(ObjectExists) as err:
        store.put("packs/aa", b"attacker's bytes")
    assert "packs/aa" in str(err.value)
    assert store.get("packs/aa") == b"original"
    assert store.head("packs/aa").sha256 == hashlib.sha256(b"original").hexdigest()


def test_overwrite_of_a_large_object_is_refused(backend: Backend) -> None:
    store = backend.make()
    first = os.urandom(49 * MiB)
    store.put("packs/large", first)
    with pytest.raises(ObjectExists):
        store.put("packs/large", os.urandom(49 * MiB))
    assert store.get("packs/large", offset=49 * MiB - 16) == first[-16:]


def test_listing_streams_past_one_thousand_keys(backend: Backend) -> None:
    assert backend.listing_store is not None
    store = backend.listing_store()
    listed = store.list("many/")
    assert not isinstance(listed, list)  # a stream, not a materialised list
    keys = [info.key for info in listed]
    assert keys == [f"many/{i:05d}" for i in range(LISTING_KEYS)]
    assert [info.key for info in store.list("other")] == ["other/outside-the-prefix"]
    assert len([info for info in store.list() if info.key.startswith("many/")]) == LISTING_KEYS


def test_listing_reports_sizes_and_md5_where_it_can(backend: Backend) -> None:
    store = backend.make()
    store.put("idx/a", b"alpha")
    store.put("idx/b", b"")
    infos = {info.key: info for info in store.list("idx/")}
    assert {k: v.size for k, v in infos.items()} == {"idx/a": 5, "idx/b": 0}
    if backend.name != "local":
        assert infos["idx/a"].md5 == hashlib.md5(b"alpha").hexdigest()
    assert list(store.list("nothing-here/")) == []


def test_missing_key_gives_object_not_found(backend: Backend) -> None:
    store = backend.make()
    for call in (lambda: store.get("no/such"), lambda: store.head("no/such"),
                 lambda: store.delete("no/such")):
        with pytest.raises(ObjectNotFound) as err:
            call()
        assert "no/such" in str(err.value)
    assert not store.exists("no/such")


def test_head_reports_size_sha256_and_class(backend: Backend) -> None:
    store = backend.make()
    data = b"snapshot manifest"
    store.put("snapshots/one", data, storage_class="STANDARD_IA")
    info = store.head("snapshots/one")
    assert info.key == "snapshots/one"
    assert info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.storage_class == "STANDARD_IA"
    assert not info.needs_thaw
    assert info.last_modified is not None


def test_range_get(backend: Backend) -> None:
    store = backend.make()
    data = bytes(range(256)) * 4
    store.put("packs/r", data)
    assert store.get("packs/r", offset=10, length=5) == data[10:15]
    assert store.get("packs/r", offset=1000) == data[1000:]
    assert store.get("packs/r", length=3) == data[:3]
    assert store.get("packs/r", offset=1020, length=100) == data[1020:]
    assert store.get("packs/r", offset=5000) == b""
    assert store.get("packs/r", offset=7, length=0) == b""


def test_archive_class_must_be_thawed_before_reading(backend: Backend) -> None:
    store = backend.make()
    store.put("cold/pack", b"frozen bytes", storage_class=backend.archive_class)
    info = store.head("cold/pack")
    assert info.storage_class == backend.archive_class
    assert info.needs_thaw
    with pytest.raises(NeedsThaw) as err:
        store.get("cold/pack")
    assert "cold/pack" in str(err.value)
    listed = next(iter(store.list("cold/")))
    assert listed.storage_class == backend.archive_class
    ready = store.thaw("cold/pack")
    if not backend.instant_thaw and not ready:
        return  # a real restore takes hours; started is all a test run can see
    assert ready is True
    assert not store.head("cold/pack").needs_thaw
    assert store.get("cold/pack") == b"frozen bytes"
    assert store.thaw("cold/pack") is True  # idempotent


def test_retained_object_cannot_be_deleted(backend: Backend) -> None:
    if not backend.can_retain:
        pytest.skip(f"{backend.name}: no object-lock bucket configured for this run")
    store = backend.make(lock_days=30)
    until = _retain_until(store)
    store.put("journal/leaf", b"evidence", retain_until=until)
    info = store.head("journal/leaf")
    assert info.retain_until is not None and info.retain_until >= until - timedelta(seconds=1)
    with pytest.raises(RetentionActive) as err:
        store.delete("journal/leaf")
    assert "journal/leaf" in str(err.value)
    assert store.get("journal/leaf") == b"evidence"


def test_unretained_object_can_be_deleted(backend: Backend) -> None:
    store = backend.make(versioning=True)
    store.put("tmp/x", b"x")
    store.delete("tmp/x")
    assert not store.exists("tmp/x")
    assert [i.key for i in store.list("tmp/")] == []
    # The key is free again once deleted (pruning then re-upload).
    store.put("tmp/x", b"y")
    assert store.get("tmp/x") == b"y"


@pytest.mark.parametrize("key", BAD_KEYS, ids=lambda k: repr(k)[:20])
def test_bad_keys_are_rejected_before_any_request(
    backend: Backend, key: str, tmp_path: Path
) -> None:
    # An unreachable endpoint proves no request was made: one would raise
    # BackendUnavailable instead of InvalidObjectKey.
    store = backend.unreachable() if backend.unreachable else backend.make()
    calls = [
        lambda: store.put(key, b"x"),
        lambda: store.get(key),
        lambda: store.get(key, offset=1, length=1),
        lambda: store.head(key),
        lambda: store.thaw(key),
        lambda: store.delete(key),
        lambda: store.exists(key),
    ]
    for call in calls:
        with pytest.raises(InvalidObjectKey):
            call()
    assert not (tmp_path / "escape").exists()
    assert not Path("/etc/passwd.json").exists()


def test_bad_listing_prefix_is_rejected_before_any_request(backend: Backend) -> None:
    store = backend.unreachable() if backend.unreachable else backend.make()
    for prefix in ("../", "/abs", "a\x00"):
        with pytest.raises(InvalidObjectKey):
            list(store.list(prefix))


def test_bucket_settings_of_a_plain_bucket(backend: Backend) -> None:
    store = backend.make()
    settings = store.bucket_settings()
    if backend.real:
        return  # whatever the real bucket has; reading it must simply work
    assert settings.versioning == "Disabled"
    assert not settings.object_lock_enabled
    assert settings.object_lock_mode is None
    assert settings.lifecycle_rules == ()
    assert settings.replication_rules == ()
    assert not settings.public_access
    assert settings.public_reasons == ()


def test_bucket_settings_report_what_was_set(backend: Backend) -> None:
    if backend.admin is None:
        pytest.skip(f"{backend.name}: bucket configuration is not changed by tests")
    store = backend.make(lock_days=7)
    bucket = store.bucket  # type: ignore[attr-defined]
    admin = backend.admin
    admin.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={"Rules": [{
            "ID": "cold-after-30",
            "Status": "Enabled",
            "Filter": {"Prefix": "packs/"},
            "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}],
            "Expiration": {"Days": 3650},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 400},
        }]},
    )
    admin.put_bucket_acl(Bucket=bucket, ACL="public-read")
    admin.put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": f"arn:aws:s3:::{bucket}/*"}],
    }))
    target = store.bucket + "-replica"  # type: ignore[attr-defined]
    admin.create_bucket(Bucket=target)
    admin.put_bucket_versioning(Bucket=target, VersioningConfiguration={"Status": "Enabled"})
    admin.put_bucket_replication(Bucket=bucket, ReplicationConfiguration={
        "Role": "arn:aws:iam::123456789012:role/replication",
        "Rules": [{"ID": "to-shanghai", "Status": "Enabled", "Priority": 1,
                   "Filter": {"Prefix": ""},
                   "DeleteMarkerReplication": {"Status": "Disabled"},
                   "Destination": {"Bucket": f"arn:aws:s3:::{target}"}}],
    })

    settings = store.bucket_settings()
    assert settings.versioning == "Enabled"
    assert settings.object_lock_enabled
    assert settings.object_lock_mode == "COMPLIANCE"
    assert settings.default_retention_days == 7
    (rule,) = settings.lifecycle_rules
    assert (rule.id, rule.enabled, rule.prefix) == ("cold-after-30", True, "packs/")
    assert (rule.transition_days, rule.expiration_days) == (30, 3650)
    expected_class = "ARCHIVE" if backend.name == "cos" else "GLACIER"
    assert rule.transition_class == expected_class
    assert rule.noncurrent_expiration_days == 400
    (replication,) = settings.replication_rules
    assert replication["ID"] == "to-shanghai"
    assert settings.public_access
    joined = " | ".join(settings.public_reasons)
    assert "AllUsers" in joined
    assert "bucket policy allows s3:GetObject to anyone" in joined


def test_unknown_bucket_is_backend_unavailable(backend: Backend) -> None:
    if backend.missing_bucket is None:
        pytest.skip(f"{backend.name}: tests do not create buckets here")
    store = backend.missing_bucket()
    for call in (lambda: store.put("k", b"x"), lambda: store.get("k"),
                 lambda: store.head("k"), lambda: list(store.list()),
                 lambda: store.bucket_settings()):
        with pytest.raises(BackendUnavailable) as err:
            call()
        message = str(err.value)
        assert "drkit-never-created" in message and "does not exist" in message
        assert "\n" not in message
        assert err.value.exit_code == ExitCode.USAGE


def test_unreachable_endpoint_is_backend_unavailable(backend: Backend) -> None:
    if backend.unreachable is None:
        pytest.skip(f"{backend.name}: no endpoint to make unreachable")
    store = backend.unreachable()
    for call in (lambda: store.put("k", b"x"), lambda: store.get("k"),
                 lambda: list(store.list())):
        with pytest.raises(BackendUnavailable) as err:
            call()
        message = str(err.value)
        assert message.startswith(store.url)
        assert "cannot reach http://127.0.0.1:" in message
        assert "\n" not in message
        assert err.value.exit_code == 2


def test_listing_is_in_key_order(backend: Backend) -> None:
    store = backend.make()
    keys = ["a0", "a/x", "a-b", "a/y/z", "b", "a.c", "a/x0"]
    for key in keys:
        store.put(key, key.encode())
    assert [info.key for info in store.list()] == sorted(keys)
    assert [info.key for info in store.list("a/")] == ["a/x", "a/x0", "a/y/z"]
    assert [info.key for info in store.list("a/x")] == ["a/x", "a/x0"]
