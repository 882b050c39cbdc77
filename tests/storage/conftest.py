"""Backends for the one storage contract suite (tests/storage/test_store_contract.py).

Each ``Backend`` knows how to make a fresh, empty store (a folder, a moto bucket through
boto3, the same through cos-python-sdk-v5 and the COS test adapter, or a unique prefix in a
real cloud bucket named by DRKIT_TEST_S3_URL / DRKIT_TEST_COS_URL) and what that service
can show in a test (real clouds cannot be reconfigured or thawed within a test run).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from moto_server import (
    COS_APPID,
    cos_url,
    create_bucket,
    s3_client,
    s3_url,
    unique_bucket,
    unreachable_endpoint,
)

from drkit.clock import FixedClock, SystemClock
from drkit.storage.base import Store
from drkit.storage.cos import COSStore
from drkit.storage.local import LocalStore
from drkit.storage.s3 import S3Store
from drkit.storage.url import open_store, parse_store_url

LISTING_KEYS = 2500
#: The environment before the autouse isolation fixture cleans it, so that a real-cloud
#: run can use ``credentials=env:NAME`` in DRKIT_TEST_S3_URL / DRKIT_TEST_COS_URL.
_ORIGINAL_ENV = dict(os.environ)
_CREDENTIAL_SUFFIXES = ("_ACCESS_KEY_ID", "_SECRET_ACCESS_KEY", "_SESSION_TOKEN",
                        "_SECRET_ID", "_SECRET_KEY")


@dataclass
class Backend:
    name: str
    #: make(lock_days=None, versioning=False) -> a fresh empty store
    make: Callable[..., Store]
    archive_class: str
    #: a store of this kind whose endpoint nothing listens on (None for local folders)
    unreachable: Callable[[], Store] | None
    #: a store on a bucket that does not exist (None for local folders)
    missing_bucket: Callable[[], Store] | None
    #: a store holding LISTING_KEYS keys under many/ and one key under other/
    listing_store: Callable[[], Store] | None = None
    #: boto3 client on the moto server holding the bucket (None for local and real clouds)
    admin: Any = None
    real: bool = False
    #: can retain objects (object lock / sidecar) in this run
    can_retain: bool = True
    #: can thaw archive objects at once (moto and local; real clouds take hours)
    instant_thaw: bool = True


def populate_listing(store: Store) -> Store:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: store.put(f"many/{i:05d}", str(i).encode()),
                      range(LISTING_KEYS)))
    store.put("other/outside-the-prefix", b"x")
    return store


def _with_unique_prefix(url: str) -> str:
    parts = urlsplit(url)
    path = parts.path.rstrip("/") + f"/drkit-contract-{uuid.uuid4().hex[:12]}"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


BACKENDS = ["local", "s3", "cos", "s3-real", "cos-real"]


@pytest.fixture(scope="session")
def listing_bucket(moto_endpoint: str) -> str:
    """One moto bucket holding ``LISTING_KEYS`` keys under ``many/``, shared by the S3 and
    COS listing tests (populating it costs ~9 s, so it is done once)."""
    from moto_server import ACCESS_KEY_ID, SECRET_ACCESS_KEY

    bucket = create_bucket(moto_endpoint, unique_bucket("drkit-list", cos=True))
    store = S3Store(
        bucket,
        endpoint=moto_endpoint,
        region="us-east-1",
        credentials={"aws_access_key_id": ACCESS_KEY_ID,
                     "aws_secret_access_key": SECRET_ACCESS_KEY},
    )
    populate_listing(store)
    store.close()
    return bucket


@pytest.fixture(params=BACKENDS)
def backend(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Backend]:
    name: str = request.param
    made: list[Store] = []

    def keep(store: Store) -> Store:
        made.append(store)
        return store

    if name == "local":
        counter = iter(range(1000))

        def make_local(lock_days: int | None = None, versioning: bool = False) -> Store:
            return keep(LocalStore(tmp_path / f"store-{next(counter)}", clock=clock))

        yield Backend("local", make_local, "ARCHIVE", None, None,
                      listing_store=lambda: populate_listing(make_local()))
    elif name in ("s3", "cos"):
        endpoint: str = request.getfixturevalue("moto_endpoint")
        request.getfixturevalue("moto_credentials")
        request.getfixturevalue("cos_adapter")
        is_cos = name == "cos"
        to_url = cos_url if is_cos else s3_url

        def make_cloud(lock_days: int | None = None, versioning: bool = False) -> Store:
            bucket = create_bucket(endpoint, unique_bucket(cos=is_cos),
                                   versioning=versioning, object_lock_days=lock_days)
            return keep(open_store(parse_store_url(to_url(endpoint, bucket)), clock=clock))

        def unreachable() -> Store:
            url = to_url(unreachable_endpoint(), unique_bucket(cos=is_cos))
            if is_cos:
                store = COSStore.from_url(parse_store_url(url), clock=clock)
                store._client._retry = 0  # one attempt: the point is the error, not the wait
                return keep(store)
            parsed = parse_store_url(url)
            return keep(S3Store(parsed.bucket, endpoint=parsed.params["endpoint"],
                                region="us-east-1", url=url, max_attempts=1,
                                credentials={"aws_access_key_id": "x",
                                             "aws_secret_access_key": "y"}))

        def missing_bucket() -> Store:
            bucket = f"drkit-never-created-{COS_APPID}"
            return keep(open_store(parse_store_url(to_url(endpoint, bucket)), clock=clock))

        def listing_store() -> Store:
            bucket = request.getfixturevalue("listing_bucket")
            return keep(open_store(parse_store_url(to_url(endpoint, bucket)), clock=clock))

        yield Backend(name, make_cloud, "ARCHIVE" if is_cos else "GLACIER", unreachable,
                      missing_bucket, listing_store=listing_store, admin=s3_client(endpoint))
    else:
        var = "DRKIT_TEST_S3_URL" if name == "s3-real" else "DRKIT_TEST_COS_URL"
        base = os.environ.get(var)
        if not base:
            pytest.skip(f"{var} is not set (and credentials for it): real-cloud run skipped")
        is_cos = name == "cos-real"
        cred = parse_store_url(base).params.get("credentials", "")
        if cred.startswith("env:"):
            for suffix in _CREDENTIAL_SUFFIXES:
                value = _ORIGINAL_ENV.get(cred[4:] + suffix)
                if value:
                    monkeypatch.setenv(cred[4:] + suffix, value)

        def make_real(lock_days: int | None = None, versioning: bool = False) -> Store:
            url = _with_unique_prefix(base)
            return keep(open_store(parse_store_url(url), clock=SystemClock()))

        yield Backend(name, make_real, "ARCHIVE" if is_cos else "GLACIER", None, None,
                      listing_store=lambda: populate_listing(make_real()), real=True,
                      can_retain=False, instant_thaw=False)
    for store in made:
        if name.endswith("-real"):
            for info in list(store.list()):
                with contextlib.suppress(Exception):  # best-effort cleanup of a real bucket
                    store.delete(info.key)
        store.close()
