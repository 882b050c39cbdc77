"""``drkit schedule run|show|crontab|run-job``: scheduled operation (docs/schedule.md)."""

from __future__ import annotations

import signal
from datetime import datetime
from typing import Any

import click

from drkit.cli.common import emit, get_app, json_option
from drkit.clock import utc_iso
from drkit.errors import UsageError
from drkit.schedule.cron import next_fire_times
from drkit.schedule.crontab import crontab_lines, crontab_text
from drkit.schedule.runner import ACTIVE, last_drills, plan_commands, run_job
from drkit.schedule.spec import AFTER_SNAPSHOT, OFF, ScheduleSettings, drill_rotation, load_schedule
from drkit.schedule.state import RunStore


def _settings() -> ScheduleSettings:
    return load_schedule(get_app().config)


@click.group("schedule")
def schedule_group() -> None:
    """Run drkit on a schedule: as a daemon, or as crontab lines."""


@schedule_group.command("run")
def run_command() -> None:
    """Run the scheduler in the foreground until SIGTERM (for systemd or a container).

    Jobs persist in schedule.jobstore (SQLite in the cache folder by default). On SIGTERM
    no new run starts and the running one finishes; a second SIGTERM terminates it.
    """
    import logging

    from drkit.schedule.daemon import run_daemon

    app = get_app()
    settings = _settings()
    if not app.quiet:
        # A service's log is its journal: say what starts, runs and stops (INFO) even
        # without -v; -q keeps it to errors.
        logging.getLogger("drkit.schedule").setLevel(
            min(logging.getLogger().getEffectiveLevel(), logging.INFO))
    run_daemon(app.config, settings, app.clock)


def _job_rows(settings: ScheduleSettings, now: datetime, count: int) -> list[dict[str, Any]]:
    store = RunStore(settings.state_dir)
    by_name = {job.name: job for job in settings.jobs}
    rows: list[dict[str, Any]] = []
    for name, expr in settings.exprs.items():
        row: dict[str, Any] = {"name": name, "schedule": expr, "next_runs": []}
        job = by_name.get(name)
        if expr == AFTER_SNAPSHOT:
            row["note"] = "runs after each successful snapshot"
        if job is None:
            rows.append(row)
            continue
        times = next_fire_times(job.trigger, now, count)
        row["next_runs"] = [utc_iso(t) for t in times]
        if name == "drill":
            row["regions"] = drill_rotation(settings.regions,
                                            last_drills(store, settings.regions), len(times))
        row["commands"] = [["drkit", *c.argv] for c in plan_commands(settings, name, store)]
        if name == "snapshot" and settings.replicate_after_snapshot:
            row["then"] = "replicate"
        rows.append(row)
    return rows


@schedule_group.command("show")
@click.option("--count", type=click.IntRange(1, 100), default=3, show_default=True,
              help="Next run times to show per job.")
@json_option
def show_command(count: int) -> None:
    """Every job with its schedule and next run times."""
    app = get_app()
    settings = _settings()
    now = app.clock.now()
    rows = _job_rows(settings, now, count)
    data = {
        "config": str(settings.config_file),
        "now": utc_iso(now),
        "timezone": settings.timezone_name,
        "misfire_grace_seconds": settings.misfire_grace_seconds,
        "metrics_file": str(settings.metrics_file),
        "state_dir": str(settings.state_dir),
        "webhook": {"generic": bool(settings.webhook.url), "wecom": bool(settings.webhook.wecom)},
        "jobs": rows,
    }

    def text() -> str:
        out = [f"schedule of {settings.config_file} (times in {settings.timezone_name}, "
               f"shown in UTC)"]
        for row in rows:
            if row["schedule"] in (OFF, AFTER_SNAPSHOT):
                out.append(f"  {row['name']:<17} {row['schedule']}")
                continue
            nxt = ", ".join(row["next_runs"])
            extra = ""
            if "regions" in row:
                extra = f"  regions: {', '.join(row['regions'])}"
            out.append(f"  {row['name']:<17} {row['schedule']:<18} next: {nxt}{extra}")
        return "\n".join(out)

    emit(data, text)


@schedule_group.command("crontab")
@json_option
def crontab_command() -> None:
    """Print crontab lines equivalent to the schedule (each under flock -n)."""
    settings = _settings()
    lines = crontab_lines(settings)
    text = crontab_text(settings, lines)
    emit({"config": str(settings.config_file), "timezone": settings.timezone_name,
          "crontab": text,
          "lines": [{"job": ln.job, "schedule": ln.expr, "command": ln.command}
                    for ln in lines]}, text.rstrip("\n"))


@schedule_group.command("run-job")
@click.argument("name")
@click.option("--origin", type=click.Choice(["manual", "cron"]), default="manual",
              show_default=True, help="Recorded with the run (crontab lines pass 'cron').")
@json_option
def run_job_command(name: str, origin: str) -> None:
    """Run one scheduled job now, with recording, metrics and notification.

    Exit code: the worst of its commands (0 clean, 1 findings, 2 error, 3 refused); a run
    skipped because another job of its kind is running exits 0.
    """
    app = get_app()
    settings = _settings()
    if not settings.runnable(name):
        raise UsageError(f"job {name!r} is not enabled: schedule.{name.replace('-', '_')} "
                         f"is {settings.exprs.get(name, 'unknown')!r}"
                         if name in settings.exprs else
                         f"unknown job {name!r} (jobs: {', '.join(settings.exprs)})")

    def forward(_signum: int, _frame: Any) -> None:
        ACTIVE.terminate_all()

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        result = run_job(app.config, settings, name, clock=app.clock, origin=origin)
    finally:
        signal.signal(signal.SIGTERM, previous)
    data = {"job": name, "exit_code": result.exit_code,
            "runs": [r.to_dict() for r in result.records],
            "notifications": [d.to_dict() for d in result.deliveries]}

    def text() -> str:
        out = []
        for r in result.records:
            what = r.task + (f" [{r.target}]" if r.target else "")
            out.append(f"{what}: {r.outcome} (exit {r.exit_code}, {r.duration_seconds:.1f} s)"
                       + (f": {r.message}" if r.message else ""))
        for d in result.deliveries:
            out.append(f"notification {d.target} {d.url}: "
                       + ("sent" if d.ok else f"FAILED ({d.error})"))
        return "\n".join(out)

    emit(data, text)
    if result.exit_code:
        click.get_current_context().exit(result.exit_code)


COMMANDS = [schedule_group]
