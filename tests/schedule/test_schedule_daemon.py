"""`drkit schedule run` as a real process: catch-up after downtime, missed runs, failures,
two daemons on one repository, SIGTERM, and the job store on SQLite and PostgreSQL.

The daemon runs on the real clock (APScheduler's); a downtime is simulated the way it
happens: the job store holds a job whose next run time has passed. The fire-time logic
itself is tested with an injected clock in test_schedule_cron.py.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from drkit.config import load_config
from drkit.schedule.spec import load_schedule
from drkit.schedule.state import RunStore


def recent_minute_expr(now: datetime) -> str:
    """An hourly expression whose last fire time was 2-3 minutes ago (next one ~57 min)."""
    return f"{(now.minute - 2) % 60} * * * *"


def test_daemon_catches_up_once_reports_failure_and_keeps_running(
        make_config: Callable[..., Path], only_jobs: Callable[..., str], seed: Any,
        stored: Any, daemons: Any, poll: Any, hook: Any) -> None:
    now = datetime.now(UTC)
    path = make_config(only_jobs(verify=recent_minute_expr(now))
                       + f'[schedule.webhook]\nurl = "{hook.url("/hook")}"\n')
    settings = load_schedule(load_config(path))
    # The daemon was down for three days: 72 hourly runs were missed.
    seed(settings, "verify", now - timedelta(days=3))
    daemon = daemons(path)
    store = RunStore(settings.state_dir)
    poll(lambda: store.history(), "the catch-up run")
    [rec] = store.history()
    assert rec.task == "verify" and rec.origin == "daemon"
    assert rec.outcome != "ok"  # no repository was ever initialised here: verify fails
    assert poll(lambda: hook.requests, "the failure notification")
    assert hook.requests[0]["json"]["task"] == "verify"
    assert (settings.metrics_file.read_text().count('drkit_job_last_exit_code{target="",'
                                                    'task="verify"}') == 1)
    # coalesced: one run for 72 missed ones; the next is in the future; daemon still up
    jobs = stored(settings)
    assert jobs["verify"] > (now + timedelta(minutes=50)).timestamp()
    assert daemon.proc.poll() is None
    assert len(store.history()) == 1
    assert daemon.stop() == 0
    assert "drkit scheduler stopped" in daemon.output()


def test_run_later_than_grace_is_reported_missed(make_config: Callable[..., Path],
                                                 only_jobs: Callable[..., str], seed: Any,
                                                 daemons: Any, poll: Any, hook: Any) -> None:
    path = make_config(only_jobs(drill_all="0 0 1 1 *") + "misfire_grace_seconds = 60\n"
                       + f'[schedule.webhook]\nurl = "{hook.url("/hook")}"\n')
    settings = load_schedule(load_config(path))
    due = datetime(datetime.now(UTC).year, 1, 1, tzinfo=UTC)
    seed(settings, "drill-all", due)
    daemon = daemons(path)
    store = RunStore(settings.state_dir)
    poll(lambda: store.history(), "the missed-run record")
    [rec] = store.history()
    assert rec.outcome == "missed" and rec.task == "drill-all"
    assert rec.scheduled_for == due.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "schedule.misfire_grace_seconds" in rec.message
    event = poll(lambda: hook.requests, "the missed-run notification")[0]["json"]
    assert event["event"] == "job_missed"
    assert daemon.proc.poll() is None
    assert daemon.stop() == 0


def test_two_daemons_never_run_the_same_job_at_once(make_config: Callable[..., Path],
                                                    only_jobs: Callable[..., str], seed: Any,
                                                    daemons: Any, poll: Any) -> None:
    now = datetime.now(UTC)
    path = make_config(only_jobs(verify=recent_minute_expr(now)))
    # A second daemon for the same repository with a job store of its own (as on another
    # host, or a second service started by mistake); both share the state folder.
    other = path.with_name("drkit-b.toml")
    other.write_text(path.read_text().replace(
        "[schedule]\n", f'[schedule]\njobstore = "sqlite:///{path.parent}/b.sqlite"\n'))
    settings = load_schedule(load_config(path))
    settings_b = load_schedule(load_config(other))
    assert settings_b.jobstore_url != settings.jobstore_url
    assert settings_b.state_dir == settings.state_dir
    seed(settings, "verify", now - timedelta(hours=1))
    seed(settings_b, "verify", now - timedelta(hours=1))
    first, second = daemons(path), daemons(other)
    store = RunStore(settings.state_dir)
    poll(lambda: len(store.history()) >= 2, "both daemons to handle the due run")
    runs = store.history()
    ran = [r for r in runs if r.outcome != "skipped"]
    assert len(runs) == 2
    if len(ran) == 2:  # both ran: then strictly one after the other, never together
        a, b = sorted(ran, key=lambda r: r.started)
        assert b.started >= a.finished
    else:
        [skipped] = [r for r in runs if r.outcome == "skipped"]
        assert "another verify job holds the lock" in skipped.message
    assert first.stop() == 0 and second.stop() == 0


def test_sigterm_when_idle_stops_cleanly_and_restart_keeps_jobs(
        make_config: Callable[..., Path], daemons: Any, poll: Any, stored: Any) -> None:
    path = make_config()
    settings = load_schedule(load_config(path))
    daemon = daemons(path)
    poll(lambda: "job prune-request scheduled" in daemon.output(), "jobs to be scheduled")
    assert daemon.stop() == 0
    before = stored(settings)
    assert set(before) == {"snapshot", "verify", "verify-read-data", "drill", "drill-all",
                           "prune-request"}
    again = daemons(path)
    poll(lambda: "job prune-request kept" in again.output(), "jobs to be reloaded")
    assert again.stop(signal.SIGINT) == 0
    assert stored(settings) == before
