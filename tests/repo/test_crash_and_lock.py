"""A run that dies half-way leaves nothing visible; the next run reuses what it uploaded,
never objects it did not write itself. Two writers at once: the second is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from drkit.config import load_config
from drkit.errors import LockedError, StorageError
from drkit.progress import NULL_PROGRESS
from drkit.repo.lock import RepositoryLock
from drkit.repo.snapshot import take_snapshot
from drkit.storage.base import ObjectInfo
from drkit.storage.local import LocalStore


class DyingStore(LocalStore):
    """A real local store whose disk 'fails' after a number of writes (fault injection)."""

    def __init__(self, root: Path, fail_after: int) -> None:
        super().__init__(root)
        self.remaining = fail_after

    def put(self, key: str, data: bytes, **kwargs: object) -> ObjectInfo:  # type: ignore[override]
        if self.remaining <= 0:
            raise StorageError(f"{self.url}: injected failure writing {key}")
        self.remaining -= 1
        return super().put(key, data, **kwargs)  # type: ignore[arg-type]


def test_crash_leaves_nothing_visible_and_next_run_reuses(project, drkit, clock) -> None:
    config = load_config(project.root / "drkit.toml")
    # Five puts: the session's intent and key, then (two upload threads) pack intents, packs
    # and indexes in an order that varies from run to run.
    store = DyingStore(project.region, fail_after=5)
    with pytest.raises(StorageError, match="injected failure"):
        take_snapshot(config, clock=clock, progress=NULL_PROGRESS, store=store)
    assert json.loads(drkit("snapshots", "--json").stdout)["snapshots"] == []
    assert drkit("check").exit_code == 0  # leftovers are invisible, not errors

    # Someone with bucket access injects an index file of their own: never adopted.
    (project.region / "index").mkdir(exist_ok=True)
    (project.region / "index" / ("f" * 64)).write_bytes(b'{"format":"drkit-signed"}')

    res = drkit("snapshot", "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    # Every object the dead run wrote, intents included, plus an index file re-created
    # from its intent when the run died between a pack and its index.
    assert out["reused_leftovers"] in (5, 6)
    assert out["bytes_new"] < out["bytes_read"]  # the uploaded pack's chunks were reused
    res = drkit("check", "--read-data", "--json")
    assert res.exit_code == 0, res.stdout
    assert json.loads(res.stdout)["snapshots"] == 1


def test_second_writer_is_refused_with_owner_host_pid_age(project, drkit, clock) -> None:
    config = load_config(project.root / "drkit.toml")
    repo_id = json.loads(drkit("keys", "show", "--json").stdout)["repository_id"]
    held = RepositoryLock(config.cache_dir, repo_id,
                          now=datetime(2026, 11, 23, 2, 0, tzinfo=clock.now().tzinfo))
    held.acquire()
    try:
        res = drkit("snapshot")
        assert res.exit_code == 2
        assert "locked by" in res.stderr and f"pid {os.getpid()}" in res.stderr
        assert "30 min old" in res.stderr
        with pytest.raises(LockedError):
            RepositoryLock(config.cache_dir, repo_id, now=clock.now()).acquire()
    finally:
        held.release()
    assert drkit("snapshot").exit_code == 0


def test_stale_lock_of_a_dead_process_is_taken_over(project, drkit) -> None:
    repo_id = json.loads(drkit("keys", "show", "--json").stdout)["repository_id"]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    import socket

    lock = project.root / ".drkit" / "cache" / f"lock-{repo_id}.json"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(json.dumps({"owner": "cron", "host": socket.gethostname(),
                                "pid": int(dead.stdout), "created": "2026-11-22T02:30:00Z"}))
    res = drkit("snapshot")
    assert res.exit_code == 0, res.stderr
    assert not lock.exists()
