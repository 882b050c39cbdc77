"""The shared storage fixtures work as documented (others build on them)."""

from __future__ import annotations

from typing import Any

from drkit.storage.cos import COSStore
from drkit.storage.s3 import S3Store
from drkit.storage.url import open_store


def test_s3_factory_gives_a_working_store(s3_store_factory: Any) -> None:
    store = s3_store_factory(versioning=True)
    assert isinstance(store, S3Store)
    store.put("k", b"v")
    reopened = open_store(store.url)
    assert reopened.get("k") == b"v"
    assert reopened.bucket_settings().versioning == "Enabled"


def test_cos_factory_gives_a_working_store(cos_store_factory: Any) -> None:
    store = cos_store_factory(object_lock_days=2)
    assert isinstance(store, COSStore)
    store.put("k", b"v")
    reopened = open_store(store.url)
    assert reopened.get("k") == b"v"
    settings = reopened.bucket_settings()
    assert (settings.object_lock_mode, settings.default_retention_days) == ("COMPLIANCE", 2)


def test_store_url_env_builds_urls_the_cli_can_open(store_url_env: Any) -> None:
    s3 = store_url_env.s3(region="eu-west-1", prefix="repo")
    cos = store_url_env.cos(region="ap-beijing")
    assert s3.startswith("s3://") and "credentials=env:DRKIT_MOTO" in s3
    assert cos.startswith("cos://") and "region=ap-beijing" in cos
    for url in (s3, cos):
        store = open_store(url)
        store.put("a/b", b"x")
        assert [o.key for o in store.list()] == ["a/b"]
    assert "DRKIT_MOTO_SECRET_ID" in store_url_env.env
