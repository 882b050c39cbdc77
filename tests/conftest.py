"""Shared fixtures: isolation of environment and home, a frozen clock, the CLI runner."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from drkit.cli.common import AppContext
from drkit.cli.main import cli
from drkit.clock import FixedClock

_KEEP_ENV = {"PATH", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV", "CI",
             "DRKIT_TEST_S3_URL", "DRKIT_TEST_COS_URL", "AWS_ACCESS_KEY_ID",
             "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "TENCENTCLOUD_SECRET_ID",
             "TENCENTCLOUD_SECRET_KEY", "DRKIT_TEST_PG", "DRKIT_TEST_MYSQL"}


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No test sees the developer's environment, home directory or drkit config."""
    home = tmp_path_factory.mktemp("home")
    for name in list(os.environ):
        if name not in _KEEP_ENV and not name.startswith("PYTEST"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local/state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    yield home


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 23, 2, 30, tzinfo=UTC))


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


class DrkitRunner:
    """Runs the real click command tree in-process, with an injected clock."""

    def __init__(self, cwd: Path, clock: FixedClock) -> None:
        self.cwd = cwd
        self.clock = clock

    def __call__(self, *args: str, input: str | None = None,
                 env: dict[str, str] | None = None) -> Result:
        runner = CliRunner()
        old = Path.cwd()
        os.chdir(self.cwd)
        try:
            res = runner.invoke(cli, list(args), obj=AppContext(clock=self.clock),
                                input=input, env=env, catch_exceptions=False)
        finally:
            os.chdir(old)
        return Result(res.exit_code, res.stdout, res.stderr)


@pytest.fixture
def drkit(tmp_path: Path, clock: FixedClock) -> DrkitRunner:
    """Invoke drkit as a user would, in ``tmp_path``, with a frozen clock."""
    return DrkitRunner(tmp_path, clock)


# --- Object-storage fixtures (owned by the storage backends; see docs/storage.md) ---------
# A real moto S3 server on 127.0.0.1 for the whole session, S3 and COS stores on fresh
# buckets, and URLs for drkit.toml. Helpers live in tests/moto_server.py and
# tests/cos_adapter.py (importable: tests/ is on the pytest path).


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """URL ``http://127.0.0.1:PORT`` of one moto S3 server shared by the whole session.

    A real HTTP server (``ThreadedMotoServer``), not the in-process decorator. State is
    shared between tests, so always use fresh bucket names (``moto_server.unique_bucket``,
    or let the factories below pick one). Use ``moto_server.s3_client(moto_endpoint)`` to
    set bucket state directly with boto3 (policies, ACLs, lifecycle, replication).
    """
    from moto_server import MotoServer

    server = MotoServer().start()
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture
def moto_credentials(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Puts test credentials into the environment for ``credentials=env:DRKIT_MOTO``.

    Sets DRKIT_MOTO_ACCESS_KEY_ID / _SECRET_ACCESS_KEY (S3) and DRKIT_MOTO_SECRET_ID /
    _SECRET_KEY (COS); returns the variables set.
    """
    from moto_server import credentials_env

    env = credentials_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def cos_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Routes every ``COSStore`` in this test through the COS->S3 test adapter.

    Sets ``COSStore.session_factory`` to ``cos_adapter.adapter_session`` (undone after the
    test), so cos-python-sdk-v5 runs for real over HTTP against the moto server, including
    stores opened by the CLI from a ``cos://`` URL. The adapter is a test double; see
    tests/cos_adapter.py for what it translates and what it cannot show.
    """
    from cos_adapter import adapter_session

    from drkit.storage.cos import COSStore

    monkeypatch.setattr(COSStore, "session_factory", staticmethod(adapter_session))


@pytest.fixture
def s3_store_factory(
    moto_endpoint: str, moto_credentials: dict[str, str], clock: FixedClock
) -> Iterator[Any]:
    """Returns ``make(bucket=None, *, region="us-east-1", versioning=False,
    object_lock_days=None, prefix="") -> S3Store`` on a fresh bucket of the moto server.

    ``object_lock_days=N`` creates the bucket with Object Lock and a default COMPLIANCE
    retention of N days (moto applies it with its own real clock). The store uses the
    test's frozen ``clock``. Stores are closed after the test. ``store.url`` is an ``s3://``
    URL with ``endpoint=`` and ``credentials=env:DRKIT_MOTO`` that ``open_store`` (and the
    CLI, in this test) can open too.
    """
    from moto_server import create_bucket, s3_url

    from drkit.storage.s3 import S3Store
    from drkit.storage.url import parse_store_url

    made: list[S3Store] = []

    def make(bucket: str | None = None, *, region: str = "us-east-1",
             versioning: bool = False, object_lock_days: int | None = None,
             prefix: str = "") -> S3Store:
        name = create_bucket(moto_endpoint, bucket, region=region, versioning=versioning,
                             object_lock_days=object_lock_days)
        url = s3_url(moto_endpoint, name, prefix=prefix, region=region)
        store = S3Store.from_url(parse_store_url(url), clock=clock)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def cos_store_factory(
    moto_endpoint: str, moto_credentials: dict[str, str], cos_adapter: None,
    clock: FixedClock,
) -> Iterator[Any]:
    """Returns ``make(bucket=None, *, region="ap-shanghai", versioning=False,
    object_lock_days=None, prefix="") -> COSStore`` on a fresh bucket of the moto server.

    The bucket is named ``NAME-1250000000`` (COS style) and created with boto3; the store
    talks through the real cos-python-sdk-v5 and the test adapter (``cos_adapter`` fixture).
    ``object_lock_days=N`` gives the bucket-level COMPLIANCE lock COS has. ``store.url`` is
    a ``cos://`` URL the CLI can open in this test.
    """
    from moto_server import cos_url, create_bucket, unique_bucket

    from drkit.storage.cos import COSStore
    from drkit.storage.url import parse_store_url

    made: list[COSStore] = []

    def make(bucket: str | None = None, *, region: str = "ap-shanghai",
             versioning: bool = False, object_lock_days: int | None = None,
             prefix: str = "") -> COSStore:
        name = create_bucket(moto_endpoint, bucket or unique_bucket(cos=True),
                             versioning=versioning, object_lock_days=object_lock_days)
        url = cos_url(moto_endpoint, name, prefix=prefix, region=region)
        store = COSStore.from_url(parse_store_url(url), clock=clock)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def store_url_env(
    moto_endpoint: str, moto_credentials: dict[str, str], cos_adapter: None
) -> Any:
    """Builds ``s3://`` and ``cos://`` URLs on fresh moto buckets for drkit.toml / the CLI.

    ``store_url_env.s3(bucket=None, *, region="us-east-1", prefix="", versioning=False,
    object_lock_days=None) -> str`` and ``store_url_env.cos(...)`` (region "ap-shanghai")
    create the bucket and return a URL with ``endpoint=`` and ``credentials=env:DRKIT_MOTO``.
    The credentials are already in the environment and COS goes through the test adapter,
    so ``drkit`` (the in-process CLI fixture) opens these URLs as a user's config would.
    ``store_url_env.env`` is the dict of credential variables (pass it to a subprocess).
    """
    from moto_server import MotoURLs

    return MotoURLs(moto_endpoint, moto_credentials)
