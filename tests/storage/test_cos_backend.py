"""COS-only behaviour, through the real cos-python-sdk-v5 and the test adapter."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cos_adapter import COSToS3Adapter, adapter_session
from moto_server import ACCESS_KEY_ID, COS_APPID, create_bucket, s3_client, unique_bucket

from drkit.errors import BackendUnavailable, InvalidObjectKey, ObjectExists, Unsupported
from drkit.storage.cos import COSStore
from drkit.storage.url import open_store


def test_retain_until_beyond_the_bucket_default_is_unsupported(cos_store_factory: Any) -> None:
    store = cos_store_factory(object_lock_days=30)
    now = store.clock.now()
    store.put("kept", b"x", retain_until=now + timedelta(days=29))
    with pytest.raises(Unsupported) as err:
        store.put("too-long", b"x", retain_until=now + timedelta(days=31))
    message = str(err.value)
    assert "no per-object retention" in message and "30 days" in message
    assert "\n" not in message
    assert not store.exists("too-long")


def test_retain_until_without_bucket_lock_is_unsupported(cos_store_factory: Any) -> None:
    store = cos_store_factory()
    with pytest.raises(Unsupported):
        store.put("k", b"x", retain_until=store.clock.now() + timedelta(days=1))


def test_retention_is_reported_from_the_bucket_lock(cos_store_factory: Any) -> None:
    store = cos_store_factory(object_lock_days=5)
    store.put("journal/leaf", b"x")
    info = store.head("journal/leaf")
    assert info.retain_until is not None and info.last_modified is not None
    assert info.retain_until - info.last_modified >= timedelta(days=5) - timedelta(seconds=2)


def test_unknown_storage_class_is_unsupported(cos_store_factory: Any) -> None:
    store = cos_store_factory()
    with pytest.raises(Unsupported) as err:
        store.put("k", b"x", storage_class="GLACIER_IR")
    assert "GLACIER_IR" in str(err.value)


def test_deep_archive_needs_thaw(cos_store_factory: Any) -> None:
    store = cos_store_factory()
    store.put("k", b"x", storage_class="DEEP_ARCHIVE")
    assert store.head("k").needs_thaw
    assert store.thaw("k", days=2)
    assert store.get("k") == b"x"


def test_archive_is_stored_as_the_s3_equivalent(cos_store_factory: Any,
                                                moto_endpoint: str) -> None:
    # The adapter maps COS ARCHIVE to S3 GLACIER, so moto enforces the thaw.
    store = cos_store_factory()
    store.put("k", b"x", storage_class="ARCHIVE")
    head = s3_client(moto_endpoint).head_object(Bucket=store.bucket, Key="k")
    assert head["StorageClass"] == "GLACIER"


def test_overwrite_refused_by_the_server_not_by_a_head_first(
    cos_store_factory: Any, moto_endpoint: str
) -> None:
    store = cos_store_factory()
    adapter = store._client._session.get_adapter("http://")
    assert isinstance(adapter, COSToS3Adapter)
    store.put("k", b"one")
    adapter.requests_seen.clear()
    with pytest.raises(ObjectExists):
        store.put("k", b"two")
    assert [r.split(" ")[0] for r in adapter.requests_seen] == ["PUT"]
    assert store.get("k") == b"one"


def test_bad_keys_send_no_request_even_to_a_live_server(cos_store_factory: Any) -> None:
    store = cos_store_factory()
    adapter = store._client._session.get_adapter("http://")
    adapter.requests_seen.clear()
    for key in ("../x", "/abs", "a\nb", "a/./b"):
        for call in (lambda k=key: store.put(k, b"x"), lambda k=key: store.head(k),
                     lambda k=key: store.delete(k)):
            with pytest.raises(InvalidObjectKey):
                call()
    assert adapter.requests_seen == []


def test_credentials_named_and_default(moto_endpoint: str, cos_adapter: None,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = create_bucket(moto_endpoint, unique_bucket(cos=True))
    named = f"cos://{bucket}?region=ap-nanjing&endpoint={moto_endpoint}&credentials=env:NJ"
    default = f"cos://{bucket}?region=ap-nanjing&endpoint={moto_endpoint}"
    for url, var in ((named, "NJ_SECRET_ID"), (default, "TENCENTCLOUD_SECRET_ID")):
        with pytest.raises(BackendUnavailable) as err:
            open_store(url)
        assert var in str(err.value)
    monkeypatch.setenv("NJ_SECRET_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("NJ_SECRET_KEY", "cos-secret-never-shown")
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", "AKIDDEFAULT")
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", "default-secret-never-shown")
    store = open_store(named)
    assert isinstance(store, COSStore)
    assert store._client._conf._secret_id == ACCESS_KEY_ID
    store.put("k", b"v")
    assert open_store(default)._client._conf._secret_id == "AKIDDEFAULT"  # type: ignore[attr-defined]
    with pytest.raises(BackendUnavailable) as err:
        open_store(named.replace(bucket, f"drkit-absent-{COS_APPID}")).get("k")
    assert "never-shown" not in str(err.value)


def test_endpoint_forms() -> None:
    # An IP endpoint sends every request to that address; a host name replaces the
    # regional domain (the SDK then builds bucket.host URLs).
    by_ip = COSStore(f"b-{COS_APPID}", region="ap-shanghai", secret_id="id", secret_key="k",
                     endpoint="http://127.0.0.1:9000", session=adapter_session())
    assert by_ip._client._conf.uri(bucket=by_ip.bucket, path="k") == "http://127.0.0.1:9000/k"
    by_name = COSStore(f"b-{COS_APPID}", region="ap-shanghai", secret_id="id", secret_key="k",
                       endpoint="https://cos.ap-shanghai.tencentcos.cn")
    assert by_name._client._conf.uri(bucket=by_name.bucket, path="k") == (
        f"https://b-{COS_APPID}.cos.ap-shanghai.tencentcos.cn/k"
    )
    default = COSStore(f"b-{COS_APPID}", region="ap-beijing", secret_id="id", secret_key="k")
    assert default._client._conf.uri(bucket=default.bucket, path="k").startswith(
        f"https://b-{COS_APPID}.cos.ap-beijing.myqcloud.com/"
    )


def test_bucket_policy_for_anyone_is_public(cos_store_factory: Any, moto_endpoint: str) -> None:
    import json

    store = cos_store_factory()
    s3_client(moto_endpoint).put_bucket_policy(Bucket=store.bucket, Policy=json.dumps({
        "Statement": [{"Effect": "Allow", "Principal": {"qcs": ["qcs::cam::anyone:anyone"]},
                       "Action": ["name/cos:GetObject"], "Resource": ["*"]}],
    }))
    settings = store.bucket_settings()
    assert settings.public_access
    assert settings.public_reasons == ("bucket policy allows name/cos:GetObject to anyone",)
