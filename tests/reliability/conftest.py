"""Fixtures of the reliability tests (helpers in crashkit.py, shared with bench/crash.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability.crashkit import PASSPHRASE, CrashProject, make_project


@pytest.fixture
def crash_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CrashProject:
    monkeypatch.setenv("DRKIT_RECOVERY_PASSPHRASE", PASSPHRASE)
    return make_project(tmp_path / "project")
