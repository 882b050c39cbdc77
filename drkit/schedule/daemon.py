"""``drkit schedule run``: the long-running scheduler on APScheduler 3.x.

- ``BlockingScheduler`` in the foreground (systemd, a container or a terminal supervise it);
- a persistent ``SQLAlchemyJobStore`` (SQLite in the state folder by default, any
  SQLAlchemy URL such as PostgreSQL), so after a restart the scheduler knows which runs it
  missed while it was down;
- ``coalesce=True`` (a backlog of missed runs becomes one run), ``max_instances=1`` and
  ``misfire_grace_time`` from ``schedule.misfire_grace_seconds``; a run later than the
  grace time is reported as *missed* (record, audit, metrics, webhook), never dropped
  silently;
- each job calls ``runner.run_job`` in a worker thread; the runner takes the per-kind lock
  file and runs the drkit command as a child process;
- SIGTERM/SIGINT: stop taking new runs and wait for the running ones (a chained or
  multi-region job stops after its current command). With ``on_sigterm = "terminate"``,
  or on a second signal, the running commands get SIGTERM and are awaited; drkit
  commands leave the repository as it was before (nothing is visible until its manifest
  and checkpoint are written).

Jobs are kept in the store across restarts as long as their definition is unchanged (the
definition is stored in the job's kwargs), so a restart does not forget a missed run;
changed jobs are replaced and jobs no longer configured are removed.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from threading import TIMEOUT_MAX
from types import FrameType
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_SCHEDULER_STARTED,
    JobExecutionEvent,
    SchedulerEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.schedulers.blocking import BlockingScheduler

from drkit.clock import Clock, utc_iso
from drkit.config import Config
from drkit.errors import ConfigError
from drkit.schedule.runner import ACTIVE, JobResult, report, run_job
from drkit.schedule.spec import ScheduleSettings
from drkit.schedule.state import RunRecord, RunStore

log = logging.getLogger(__name__)
JOB_FUNC = "drkit.schedule.daemon:daemon_job"
TABLE = "drkit_schedule_jobs"


@dataclass
class _Context:
    config: Config
    settings: ScheduleSettings
    clock: Clock


_CONTEXT: _Context | None = None


def daemon_job(name: str, definition: str = "", config: str = "") -> None:
    """Entry point APScheduler calls (by reference, so the job store can persist it)."""
    ctx = _CONTEXT
    if ctx is None:  # pragma: no cover - only reachable if a foreign scheduler runs it
        log.error("job %s fired outside 'drkit schedule run'; ignored", name)
        return
    try:
        run_job(ctx.config, ctx.settings, name, clock=ctx.clock, origin="daemon")
    except Exception as exc:
        # A bug in drkit itself: report it like a crashed command and keep the daemon up.
        log.exception("job %s raised", name)
        now = utc_iso(ctx.clock.now())
        rec = RunRecord(task=name, target="", command=[], origin="daemon", started=now,
                        finished=now, duration_seconds=0.0, exit_code=None,
                        outcome="crashed", message=f"{type(exc).__name__}: {exc}"[:500])
        report(ctx.config, ctx.settings, RunStore(ctx.settings.state_dir), rec,
               clock=ctx.clock, result=JobResult(name))


def job_definitions(settings: ScheduleSettings) -> dict[str, dict[str, Any]]:
    """id -> add_job() arguments for every cron-driven job of ``settings``."""
    out: dict[str, dict[str, Any]] = {}
    for job in settings.jobs:
        definition = (f"{job.expr}|tz={settings.timezone_name}|"
                      f"grace={settings.misfire_grace_seconds}")
        out[job.name] = {
            "func": JOB_FUNC,
            "trigger": job.trigger,
            "id": job.name,
            "name": job.name,
            "kwargs": {"name": job.name, "definition": definition,
                       "config": str(settings.config_file)},
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": settings.misfire_grace_seconds,
            "replace_existing": True,
        }
    return out


def make_jobstore(settings: ScheduleSettings) -> SQLAlchemyJobStore:
    if settings.jobstore_url.startswith("sqlite:///"):
        settings.state_dir.mkdir(parents=True, exist_ok=True)
    try:
        return SQLAlchemyJobStore(url=settings.jobstore_url, tablename=TABLE)
    except Exception as exc:  # bad URL or missing driver
        raise ConfigError(f"cannot use job store: {type(exc).__name__}: {exc}",
                          file=str(settings.config_file), key="schedule.jobstore") from None


class DrkitScheduler(BlockingScheduler):
    """BlockingScheduler whose main loop also ends when a stop is requested.

    The signal handler only sets ``stop_requested`` and wakes the loop; the shutdown
    itself then happens in the main thread outside job processing, never inside a
    signal handler that may have interrupted the job store.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stop_requested = threading.Event()

    def _main_loop(self) -> None:
        wait_seconds: float | None = TIMEOUT_MAX
        while self.state != STATE_STOPPED and not self.stop_requested.is_set():
            self._event.wait(wait_seconds)
            self._event.clear()
            if self.stop_requested.is_set():
                break
            wait_seconds = self._process_jobs()


def build_scheduler(config: Config, settings: ScheduleSettings, clock: Clock
                    ) -> DrkitScheduler:
    global _CONTEXT
    _CONTEXT = _Context(config, settings, clock)
    workers = max(2, len(settings.jobs))
    scheduler = DrkitScheduler(
        jobstores={"default": make_jobstore(settings)},
        executors={"default": ThreadPoolExecutor(workers)},
        job_defaults={"coalesce": True, "max_instances": 1,
                      "misfire_grace_time": settings.misfire_grace_seconds},
        timezone=settings.timezone,
    )
    definitions = job_definitions(settings)

    def reconcile(_event: SchedulerEvent) -> None:
        try:
            existing = {job.id: job for job in scheduler.get_jobs()}
            for job_id in existing.keys() - definitions.keys():
                log.info("removing job %s (no longer configured)", job_id)
                scheduler.remove_job(job_id)
            for job_id, args in definitions.items():
                old = existing.get(job_id)
                if old is not None and old.kwargs == args["kwargs"]:
                    log.info("job %s kept from the job store, next run %s", job_id,
                             old.next_run_time)
                    continue
                job = scheduler.add_job(**args)
                log.info("job %s scheduled (%s), next run %s", job_id,
                         args["kwargs"]["definition"], job.next_run_time)
        finally:
            scheduler.resume()

    def on_missed(event: JobExecutionEvent) -> None:
        from drkit.schedule.runner import record_missed

        record_missed(config, settings, event.job_id, event.scheduled_run_time, clock=clock)

    def on_error(event: JobExecutionEvent) -> None:
        log.error("job %s raised %s", event.job_id, type(event.exception).__name__)

    def on_max_instances(event: SchedulerEvent) -> None:
        log.warning("job %s still running; this run is skipped", getattr(event, "job_id", "?"))

    scheduler.add_listener(reconcile, EVENT_SCHEDULER_STARTED)
    scheduler.add_listener(on_missed, EVENT_JOB_MISSED)
    scheduler.add_listener(on_error, EVENT_JOB_ERROR)
    scheduler.add_listener(on_max_instances, EVENT_JOB_MAX_INSTANCES)
    return scheduler


def run_daemon(config: Config, settings: ScheduleSettings, clock: Clock) -> None:
    """Run until SIGTERM/SIGINT; returns after the running jobs have finished."""
    from drkit.schedule.streams import StreamSupervisor

    scheduler = build_scheduler(config, settings, clock)
    streams = StreamSupervisor(config, settings, clock)
    ACTIVE.stopping.clear()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        again = scheduler.stop_requested.is_set()
        ACTIVE.stopping.set()
        # A stream never ends on its own: it is stopped on the first signal (it archives
        # what it has received first).
        streams.request_stop()
        if again or settings.on_sigterm == "terminate":
            log.warning("%s: terminating %d running command(s)", name, ACTIVE.count())
            ACTIVE.terminate_all()
        else:
            log.warning("%s: no new runs; waiting for %d running command(s) "
                        "(send it again to terminate them)", name, ACTIVE.count())
        scheduler.stop_requested.set()
        scheduler.wakeup()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        log.info("drkit scheduler starting: %d job(s), job store %s", len(settings.jobs),
                 _redact_store(settings.jobstore_url))
        streams.start()
        if settings.wal_streams:
            log.info("supervising WAL streams: %s", ", ".join(settings.wal_streams))
        scheduler.start(paused=True)
        # The loop ended on a signal: wait for running jobs, then close the job store.
        if scheduler.state != STATE_STOPPED:
            scheduler.shutdown(wait=True)
        streams.request_stop()
        streams.join()
        log.info("drkit scheduler stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _redact_store(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("://", 1)[0] + "://***"
