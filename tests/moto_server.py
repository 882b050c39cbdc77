"""A real S3 server (moto in server mode) on 127.0.0.1 for tests, plus bucket helpers.

Tests talk to it over HTTP with boto3 (``S3Store``) and with cos-python-sdk-v5 through
``tests/cos_adapter.py``; nothing is patched in process. One server is started per test
session by the ``moto_endpoint`` fixture in ``tests/conftest.py``; these helpers are what
that fixture and the store factories use, and other tests may call them directly.

moto keeps all state in this process, so every test must use fresh bucket names
(``unique_bucket``) instead of relying on an empty server.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config

#: Credentials moto accepts (it does not check them unless IAM enforcement is on).
ACCESS_KEY_ID = "AKIADRKITTEST0000000"
SECRET_ACCESS_KEY = "drkit-test-secret-not-a-real-one"
#: ``credentials=env:DRKIT_MOTO`` makes a store read DRKIT_MOTO_ACCESS_KEY_ID, ... (S3)
#: and DRKIT_MOTO_SECRET_ID / DRKIT_MOTO_SECRET_KEY (COS).
CREDENTIALS_ENV = "DRKIT_MOTO"
#: COS bucket names end in the account's APPID.
COS_APPID = "1250000000"

_counter = itertools.count(1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unreachable_endpoint() -> str:
    """An http:// URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    return f"http://127.0.0.1:{free_port()}"


class MotoServer:
    """One ThreadedMotoServer bound to 127.0.0.1 on a free port."""

    def __init__(self) -> None:
        # Must be set before moto builds its EC2 backend, or it loads ~1,300 AMIs/snapshots.
        os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        # One access-log line per request would drown pytest's output.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()


def credentials_env(name: str = CREDENTIALS_ENV) -> dict[str, str]:
    """Environment variables that make ``credentials=env:NAME`` work for S3 and COS."""
    return {
        f"{name}_ACCESS_KEY_ID": ACCESS_KEY_ID,
        f"{name}_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        f"{name}_SECRET_ID": ACCESS_KEY_ID,
        f"{name}_SECRET_KEY": SECRET_ACCESS_KEY,
    }


@functools.lru_cache(maxsize=32)
def s3_client(endpoint: str, region: str = "us-east-1") -> Any:
    """A plain boto3 S3 client on the moto server (for setting bucket state in tests).

    Cached per endpoint and region (clients are thread-safe and slow to make); do not
    close it."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def unique_bucket(stem: str = "drkit-test", *, cos: bool = False) -> str:
    """A bucket name not used before in this process (COS style ``name-APPID`` if cos)."""
    n = next(_counter)
    base = f"{stem}-{os.getpid()}-{n}"
    return f"{base}-{COS_APPID}" if cos else base


def create_bucket(
    endpoint: str,
    bucket: str | None = None,
    *,
    region: str = "us-east-1",
    versioning: bool = False,
    object_lock_days: int | None = None,
    lifecycle: list[dict[str, Any]] | None = None,
    public_read: bool = False,
) -> str:
    """Create a bucket on the moto server and return its name.

    ``object_lock_days`` enables Object Lock (which implies versioning) with a default
    COMPLIANCE retention of that many days; ``lifecycle`` is a list of boto3 lifecycle rules;
    ``public_read`` sets the canned ACL public-read. Buckets in any AWS region work.
    """
    bucket = bucket or unique_bucket()
    client = s3_client(endpoint, region)
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    if object_lock_days is not None:
        kwargs["ObjectLockEnabledForBucket"] = True
    client.create_bucket(**kwargs)
    if object_lock_days is not None:
        client.put_object_lock_configuration(
            Bucket=bucket,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": object_lock_days}},
            },
        )
    elif versioning:
        client.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
        )
    if lifecycle:
        client.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": lifecycle}
        )
    if public_read:
        client.put_bucket_acl(Bucket=bucket, ACL="public-read")
    return bucket


def s3_url(
    endpoint: str,
    bucket: str,
    *,
    prefix: str = "",
    region: str = "us-east-1",
    credentials: str = CREDENTIALS_ENV,
) -> str:
    """An ``s3://`` URL for a bucket on the moto server, usable in drkit.toml."""
    path = f"/{prefix}" if prefix else ""
    return f"s3://{bucket}{path}?region={region}&endpoint={endpoint}&credentials=env:{credentials}"


def cos_url(
    endpoint: str,
    bucket: str,
    *,
    prefix: str = "",
    region: str = "ap-shanghai",
    credentials: str = CREDENTIALS_ENV,
) -> str:
    """A ``cos://`` URL for a bucket on the moto server (reached through the COS adapter)."""
    path = f"/{prefix}" if prefix else ""
    return (
        f"cos://{bucket}{path}?region={region}&endpoint={endpoint}&credentials=env:{credentials}"
    )


def retain_until(days: int) -> datetime:
    """A retain-until time ``days`` from the real now (moto compares with its own clock)."""
    return datetime.now(UTC) + timedelta(days=days)


class MotoURLs:
    """URL builder behind the ``store_url_env`` fixture (creates a bucket per call)."""

    def __init__(self, endpoint: str, env: dict[str, str]) -> None:
        self.endpoint = endpoint
        self.env = dict(env)

    def s3(
        self,
        bucket: str | None = None,
        *,
        region: str = "us-east-1",
        prefix: str = "",
        versioning: bool = False,
        object_lock_days: int | None = None,
    ) -> str:
        name = create_bucket(
            self.endpoint, bucket, region=region, versioning=versioning,
            object_lock_days=object_lock_days,
        )
        return s3_url(self.endpoint, name, prefix=prefix, region=region)

    def cos(
        self,
        bucket: str | None = None,
        *,
        region: str = "ap-shanghai",
        prefix: str = "",
        versioning: bool = False,
        object_lock_days: int | None = None,
    ) -> str:
        name = create_bucket(
            self.endpoint, bucket or unique_bucket(cos=True), versioning=versioning,
            object_lock_days=object_lock_days,
        )
        return cos_url(self.endpoint, name, prefix=prefix, region=region)
