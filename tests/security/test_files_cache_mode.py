"""Issue 12 item 12: the files cache (every path with its SHA-256) is not world-readable.

Role: another local user on the writer host, who can read any file the umask leaves open.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability.crashkit import PASSPHRASE, CrashProject, make_project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrashProject]:
    monkeypatch.setenv("DRKIT_RECOVERY_PASSPHRASE", PASSPHRASE)
    old = os.umask(0o022)  # the usual umask: new files 0644, folders 0755
    try:
        yield make_project(tmp_path / "project")
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_cache_is_owner_only(project: CrashProject) -> None:
    res = project.run("snapshot")
    assert res.exit_code == 0, res.stderr
    cache_dir = project.root / ".drkit" / "cache"
    caches = list(cache_dir.glob("files-*-uploads.json"))
    assert len(caches) == 1
    assert _mode(caches[0]) == 0o600
    assert _mode(cache_dir) == 0o700
    # The other local user's attempt: nothing readable by group or others.
    assert not any(_mode(p) & 0o077 for p in [cache_dir, *cache_dir.iterdir()]
                   if p.name.startswith("files-"))
    assert project.run("verify", "--region", "beijing").exit_code == 0  # and no false alarm


def test_cache_left_readable_by_an_older_drkit_is_tightened(project: CrashProject) -> None:
    assert project.run("snapshot").exit_code == 0
    cache_dir = project.root / ".drkit" / "cache"
    cache = next(cache_dir.glob("files-*-uploads.json"))
    os.chmod(cache, 0o644)
    os.chmod(cache_dir, 0o755)
    (project.uploads / "more.txt").write_text("more")
    assert project.run("snapshot").exit_code == 0
    assert _mode(cache) == 0o600 and _mode(cache_dir) == 0o700


def test_unchanged_cache_is_not_rewritten_unless_its_mode_is_loose(
        project: CrashProject) -> None:
    assert project.run("snapshot").exit_code == 0
    cache_dir = project.root / ".drkit" / "cache"
    cache = next(cache_dir.glob("files-*-uploads.json"))
    before = cache.stat()
    assert project.run("snapshot").exit_code == 0  # nothing changed: the file stays as it is
    after = cache.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    os.chmod(cache, 0o644)
    assert project.run("snapshot").exit_code == 0  # nothing changed, but the mode was loose
    assert _mode(cache) == 0o600 and cache.stat().st_ino != before.st_ino
