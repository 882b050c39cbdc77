"""Shared fixtures: isolation of environment and home, a frozen clock, the CLI runner."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

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
