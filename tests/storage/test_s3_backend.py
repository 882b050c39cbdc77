"""S3-only behaviour: what the server enforces, what goes over the wire, credentials."""

from __future__ import annotations

import base64
import hashlib
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import botocore.exceptions
import pytest
from moto_server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, create_bucket, s3_client, s3_url

from drkit.clock import FixedClock
from drkit.errors import (
    BackendUnavailable,
    InvalidObjectKey,
    RetentionActive,
    StorageError,
    Unsupported,
)
from drkit.storage.s3 import S3Store
from drkit.storage.url import open_store, parse_store_url

CREDS = {"aws_access_key_id": ACCESS_KEY_ID, "aws_secret_access_key": SECRET_ACCESS_KEY}


def _count_requests(store: S3Store) -> list[str]:
    sent: list[str] = []
    store._client.meta.events.register(
        "before-send.s3", lambda request, **_: sent.append(f"{request.method} {request.url}")
    )
    return sent


def test_uploads_carry_a_sha256_the_server_keeps(s3_store_factory: Any,
                                                  moto_endpoint: str) -> None:
    store = s3_store_factory()
    data = b"pack bytes"
    store.put("packs/p1", data)
    raw = s3_client(moto_endpoint).head_object(
        Bucket=store.bucket, Key="packs/p1", ChecksumMode="ENABLED"
    )
    assert base64.b64decode(raw["ChecksumSHA256"]).hex() == hashlib.sha256(data).hexdigest()
    assert raw["ETag"].strip('"') == hashlib.md5(data).hexdigest()


def test_large_objects_go_up_in_parts(s3_store_factory: Any) -> None:
    store = s3_store_factory()
    store.multipart_threshold = 5 * 1024 * 1024
    store.part_size = 5 * 1024 * 1024
    sent = _count_requests(store)
    data = bytes(11 * 1024 * 1024)
    store.put("packs/parts", data)
    methods = [line.split("?", 1)[-1] for line in sent]
    assert methods[0] == "uploads"
    assert sum("partNumber=" in m for m in methods) == 3
    assert store.get("packs/parts") == data
    assert store.head("packs/parts").sha256 == hashlib.sha256(data).hexdigest()


def test_bad_keys_send_no_request_even_to_a_live_server(s3_store_factory: Any) -> None:
    store = s3_store_factory()
    sent = _count_requests(store)
    for key in ("../x", "/abs", "a\x1fb"):
        with pytest.raises(InvalidObjectKey):
            store.put(key, b"x")
        with pytest.raises(InvalidObjectKey):
            store.get(key)
    assert sent == []


def test_the_server_itself_refuses_to_delete_a_retained_version(
    s3_store_factory: Any, moto_endpoint: str
) -> None:
    store = s3_store_factory(object_lock_days=3)
    store.put("journal/cp", b"checkpoint")
    head = s3_client(moto_endpoint).head_object(Bucket=store.bucket, Key="journal/cp")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        s3_client(moto_endpoint).delete_object(
            Bucket=store.bucket, Key="journal/cp", VersionId=head["VersionId"]
        )
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    # A client whose clock says the retention is over still meets the server's refusal.
    late = S3Store(store.bucket, endpoint=moto_endpoint, credentials=CREDS,
                   region="us-east-1",
                   clock=FixedClock(datetime.now(UTC) + timedelta(days=400)))
    with pytest.raises(RetentionActive):
        late.delete("journal/cp")
    assert store.get("journal/cp") == b"checkpoint"


def test_retain_until_sets_compliance_retention(s3_store_factory: Any,
                                                moto_endpoint: str) -> None:
    store = s3_store_factory(object_lock_days=1)
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=90)
    store.put("snapshots/s", b"s", retain_until=until)
    head = s3_client(moto_endpoint).head_object(Bucket=store.bucket, Key="snapshots/s")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert store.head("snapshots/s").retain_until == until


def test_retain_until_without_object_lock_is_unsupported(s3_store_factory: Any) -> None:
    store = s3_store_factory()
    with pytest.raises(Unsupported) as err:
        store.put("k", b"x", retain_until=datetime.now(UTC) + timedelta(days=1))
    assert "no object lock" in str(err.value)
    assert not store.exists("k")


@pytest.mark.parametrize("storage_class", ["STANDARD_IA", "DEEP_ARCHIVE", "GLACIER_IR"])
def test_storage_classes(s3_store_factory: Any, storage_class: str) -> None:
    store = s3_store_factory()
    store.put("k", b"x", storage_class=storage_class)
    info = store.head("k")
    assert info.storage_class == storage_class
    assert info.needs_thaw == (storage_class == "DEEP_ARCHIVE")


def test_prefix_keeps_keys_relative(s3_store_factory: Any, moto_endpoint: str) -> None:
    store = s3_store_factory(prefix="drkit/repo1")
    store.put("packs/a", b"a")
    keys = [o["Key"] for o in s3_client(moto_endpoint).list_objects_v2(
        Bucket=store.bucket)["Contents"]]
    assert keys == ["drkit/repo1/packs/a"]
    assert [i.key for i in store.list()] == ["packs/a"]


def test_credentials_from_named_environment_variables(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = create_bucket(moto_endpoint)
    url = s3_url(moto_endpoint, bucket, credentials="DRKIT_SHANGHAI")
    with pytest.raises(BackendUnavailable) as err:
        open_store(url)
    message = str(err.value)
    assert "DRKIT_SHANGHAI_ACCESS_KEY_ID" in message and "\n" not in message
    monkeypatch.setenv("DRKIT_SHANGHAI_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("DRKIT_SHANGHAI_SECRET_ACCESS_KEY", "s3cr3t-value-never-shown")
    monkeypatch.setenv("DRKIT_SHANGHAI_SESSION_TOKEN", "token-never-shown")
    store = open_store(url)
    assert isinstance(store, S3Store)
    creds = store._client._request_signer._credentials
    assert (creds.access_key, creds.token) == (ACCESS_KEY_ID, "token-never-shown")
    store.put("k", b"v")
    missing = S3Store("drkit-no-such-bucket", endpoint=moto_endpoint, credentials=CREDS | {
        "aws_secret_access_key": "s3cr3t-value-never-shown"})
    with pytest.raises(BackendUnavailable) as err:
        missing.get("k")
    assert "s3cr3t" not in str(err.value)


def test_unknown_profile_is_backend_unavailable(moto_endpoint: str) -> None:
    url = s3_url(moto_endpoint, "drkit-any") .replace("credentials=env:DRKIT_MOTO",
                                                      "profile=nobody")
    with pytest.raises(BackendUnavailable) as err:
        open_store(parse_store_url(url))
    assert "profile 'nobody' not found" in str(err.value)


def test_no_credentials_at_all_is_backend_unavailable(moto_endpoint: str) -> None:
    # isolated_env removed AWS_* variables and HOME has no ~/.aws.
    store = S3Store("drkit-any", endpoint=moto_endpoint, region="us-east-1", max_attempts=1)
    if store._client._request_signer._credentials is not None:
        pytest.skip("AWS credentials are present in this environment")
    with pytest.raises(BackendUnavailable) as err:
        store.head("k")
    assert "no AWS credentials" in str(err.value)


class _FlakyS3(BaseHTTPRequestHandler):
    """Answers 503 SlowDown to the first ``failures`` requests, then a HEAD of 3 bytes."""

    failures = 2
    seen = 0

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        type(self).seen += 1
        if type(self).seen <= type(self).failures:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.send_header("ETag", '"acbd18db4cc2f85cedef654fccc4a4d8"')
        self.send_header("Last-Modified", "Mon, 23 Nov 2026 02:30:00 GMT")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_throttling_and_5xx_are_retried_with_backoff() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FlakyS3)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        store = S3Store("flaky", endpoint=endpoint, region="us-east-1", credentials=CREDS)
        info = store.head("k")
        assert info.size == 3
        assert info.md5 == "acbd18db4cc2f85cedef654fccc4a4d8"
        assert _FlakyS3.seen == 3
        _FlakyS3.seen, _FlakyS3.failures = 0, 10
        with pytest.raises(StorageError) as err:
            S3Store("flaky", endpoint=endpoint, region="us-east-1", credentials=CREDS,
                    max_attempts=2).head("k")
        assert _FlakyS3.seen == 2
        assert "503" in str(err.value)
    finally:
        server.shutdown()
        server.server_close()


def test_cos_class_names_are_refused_by_s3(s3_store_factory: Any) -> None:
    store = s3_store_factory()
    with pytest.raises(Unsupported) as err:
        store.put("k", b"x", storage_class="ARCHIVE")
    assert "ARCHIVE" in str(err.value)
    assert not store.exists("k")


def test_missing_keys_cost_one_request_once_the_bucket_is_known(s3_store_factory: Any) -> None:
    store = s3_store_factory()
    sent = _count_requests(store)
    for _ in range(3):
        assert not store.exists("absent")
    heads_of_bucket = [line for line in sent if line.endswith(f"/{store.bucket}")]
    assert len(heads_of_bucket) == 1
    assert len(sent) == 4


def test_block_public_access_neutralises_acl_and_policy(s3_store_factory: Any,
                                                         moto_endpoint: str) -> None:
    import json

    store = s3_store_factory()
    admin = s3_client(moto_endpoint)
    admin.put_bucket_acl(Bucket=store.bucket, ACL="public-read")
    admin.put_bucket_policy(Bucket=store.bucket, Policy=json.dumps({"Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["s3:GetObject"],
        "Resource": f"arn:aws:s3:::{store.bucket}/*"}]}))
    before = store.bucket_settings()
    assert before.public_access and len(before.public_reasons) == 2
    admin.put_public_access_block(Bucket=store.bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True,
        "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    after = store.bucket_settings()
    assert not after.public_access and after.public_reasons == ()
