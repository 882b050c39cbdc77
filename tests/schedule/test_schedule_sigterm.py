"""SIGTERM to the daemon in the middle of a real `drkit snapshot`.

"terminate" (schedule.on_sigterm, or a second SIGTERM): the snapshot child gets SIGTERM;
the repository must stay verifiable (`drkit check`) with no half-visible snapshot, and the
next run must succeed. "wait" (the default): the running snapshot finishes and is visible,
and nothing new (the chained replication) starts.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from drkit.config import load_config
from drkit.schedule.spec import load_schedule
from drkit.schedule.state import RunStore

SIZE = 80 << 20  # large enough that the snapshot is still running when SIGTERM comes


def _start_mid_snapshot(drkit: Any, repository: Callable[..., Path], only_jobs: Any,
                        seed: Any, daemons: Any, poll: Any, tmp_path: Path, extra: str,
                        **jobs: str) -> tuple[Path, Any, Any]:
    now = datetime.now(UTC)
    path = repository(only_jobs(snapshot=f"{(now.minute - 2) % 60} * * * *", **jobs) + extra,
                      upload_bytes=SIZE)
    settings = load_schedule(load_config(path))
    seed(settings, "snapshot", now - timedelta(hours=1))
    packs = tmp_path / "regions/beijing/packs"
    before = set(packs.rglob("*")) if packs.exists() else set()
    daemon = daemons(path)
    # mid-snapshot: packs are being written, no manifest yet
    poll(lambda: packs.exists() and any(p.is_file() for p in set(packs.rglob("*")) - before),
         "the snapshot to start writing packs", timeout=60)
    return path, settings, daemon


def test_sigterm_terminate_leaves_the_repository_verifiable(
        drkit: Any, repository: Callable[..., Path], only_jobs: Any, seed: Any, daemons: Any,
        poll: Any, tmp_path: Path) -> None:
    path, settings, daemon = _start_mid_snapshot(drkit, repository, only_jobs, seed, daemons,
                                                 poll, tmp_path, 'on_sigterm = "terminate"\n')
    assert daemon.stop(signal.SIGTERM, timeout=60) == 0
    [rec] = RunStore(settings.state_dir).history()
    assert rec.task == "snapshot"
    assert rec.outcome == "terminated", rec
    assert "terminating 1 running command" in daemon.output()
    # nothing half-visible, and the repository checks clean
    listed = json.loads(drkit("--json", "snapshots").stdout)
    assert listed["snapshots"] == []
    check = drkit("--json", "check")
    assert check.exit_code == 0, check.stdout + check.stderr
    # the next run completes
    res = drkit("--json", "schedule", "run-job", "snapshot")
    assert json.loads(res.stdout)["runs"][0]["outcome"] == "ok"
    assert len(json.loads(drkit("--json", "snapshots").stdout)["snapshots"]) == 1
    assert drkit("check").exit_code == 0


def test_sigterm_wait_lets_the_running_snapshot_finish(
        drkit: Any, repository: Callable[..., Path], only_jobs: Any, seed: Any, daemons: Any,
        poll: Any, tmp_path: Path) -> None:
    path, settings, daemon = _start_mid_snapshot(drkit, repository, only_jobs, seed, daemons,
                                                 poll, tmp_path, "", replicate="after-snapshot")
    assert daemon.stop(signal.SIGTERM, timeout=120) == 0
    runs = RunStore(settings.state_dir).history()
    assert [(r.task, r.outcome) for r in runs] == [("snapshot", "ok")]  # no replicate started
    assert "waiting for 1 running command" in daemon.output()
    assert len(json.loads(drkit("--json", "snapshots").stdout)["snapshots"]) == 1
    assert drkit("check").exit_code == 0
