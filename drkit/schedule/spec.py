"""The ``[schedule]`` table of drkit.toml -> validated ``ScheduleSettings`` and job list.

``config.schedule`` is the raw table (drkit.config leaves it to this module); problems are
reported as ``ConfigError`` naming drkit.toml and the key, like the rest of the config.
Every job is a drkit command run as a child process (see docs/schedule.md); this module
only says *which* commands and *when*.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger

from drkit.config import Config
from drkit.errors import ConfigError, InputError
from drkit.numbers import number_problem
from drkit.schedule.cron import CronSyntaxError, cron_trigger

OFF = "off"
AFTER_SNAPSHOT = "after-snapshot"

# name -> default crontab expression. Monthly drill rotates through the regions; the
# quarterly drill covers every region; retention is only ever *requested* (prune request).
DEFAULTS: dict[str, str] = {
    "snapshot": "0 2 * * *",
    "replicate": AFTER_SNAPSHOT,
    "verify": "15 * * * *",
    "verify_read_data": "30 4 * * *",
    "ledger": OFF,
    "drill": "0 6 1 * *",
    "drill_all": "0 8 15 1,4,7,10 *",
    "prune_request": "0 9 * * sun",
    # Daily cloud disk/database snapshots; only on when drkit.toml has a [cloud] section.
    "cloud_snapshot": "30 1 * * *",
}
# config key -> job name (job names are what users type: `drkit schedule run-job NAME`)
JOB_NAMES: dict[str, str] = {
    "snapshot": "snapshot",
    "replicate": "replicate",
    "verify": "verify",
    "verify_read_data": "verify-read-data",
    "ledger": "ledger",
    "drill": "drill",
    "drill_all": "drill-all",
    "prune_request": "prune-request",
    "cloud_snapshot": "cloud-snapshot",
}
# Jobs of one kind share a lock: never two verifications or two drills at once.
LOCK_KIND: dict[str, str] = {
    "snapshot": "snapshot",
    "replicate": "replicate",
    "verify": "verify",
    "verify-read-data": "verify",
    "ledger": "ledger",
    "drill": "drill",
    "drill-all": "drill",
    "prune-request": "prune-request",
    "cloud-snapshot": "cloud-snapshot",
}
_KEYS = set(DEFAULTS) | {"timezone", "misfire_grace_seconds", "jobstore", "metrics_file",
                         "state_dir", "read_data_sample", "ledger_sources", "on_sigterm",
                         "webhook", "recovery_key", "passphrase_file", "wal_stream"}
_WEBHOOK_KEYS = {"url", "wecom", "timeout_seconds"}
_SAMPLE = re.compile(r"^(\d+(?:\.\d+)?)%$")


@dataclass(frozen=True)
class WebhookSettings:
    url: str | None = None      # generic JSON POST
    wecom: str | None = None    # WeCom group robot (…/cgi-bin/webhook/send?key=…)
    timeout_seconds: float = 10.0

    @property
    def configured(self) -> bool:
        return bool(self.url or self.wecom)


@dataclass(frozen=True)
class JobSpec:
    """One schedulable job: its name, when it fires, and the lock it takes."""

    name: str
    expr: str                       # crontab expression as configured
    trigger: BaseTrigger = field(compare=False)

    @property
    def lock_kind(self) -> str:
        return LOCK_KIND[self.name]


@dataclass(frozen=True)
class ScheduleSettings:
    config_file: Path
    timezone: tzinfo
    timezone_name: str
    exprs: dict[str, str]           # job name -> crontab expression, "off", "after-snapshot"
    jobs: tuple[JobSpec, ...]       # the cron-driven jobs (not chained or disabled ones)
    misfire_grace_seconds: int | None
    jobstore_url: str
    metrics_file: Path
    state_dir: Path
    read_data_sample: str
    ledger_sources: tuple[str, ...]
    on_sigterm: str                 # "wait" or "terminate"
    webhook: WebhookSettings
    regions: tuple[str, ...]
    # Drills decrypt: the recovery key and a file holding its passphrase (else the child
    # inherits $DRKIT_RECOVERY_PASSPHRASE; it never gets a terminal to prompt on).
    recovery_key: Path | None = None
    passphrase_file: Path | None = None
    # PostgreSQL sources whose WAL ``drkit wal stream`` follows as a supervised child of
    # the daemon (``drkit.schedule.streams``).
    wal_streams: tuple[str, ...] = ()

    @property
    def replicate_after_snapshot(self) -> bool:
        return self.exprs.get("replicate") == AFTER_SNAPSHOT

    def job(self, name: str) -> JobSpec:
        for job in self.jobs:
            if job.name == name:
                return job
        known = ", ".join(j.name for j in self.jobs) or "none"
        if name in self.exprs:
            raise InputError(f"job {name!r} is not scheduled ({self.exprs[name]}); "
                             f"scheduled jobs: {known}")
        raise InputError(f"unknown job {name!r} (scheduled jobs: {known})")

    def runnable(self, name: str) -> bool:
        return name in self.exprs and self.exprs[name] != OFF

    def lock_dir(self) -> Path:
        return self.state_dir / "locks"


def _fail(config: Config, key: str, reason: str) -> ConfigError:
    return ConfigError(reason, file=str(config.path), key=f"schedule.{key}")


def load_schedule(config: Config) -> ScheduleSettings:
    """Validate ``config.schedule``; raise ConfigError naming drkit.toml and the key."""
    raw: dict[str, Any] = dict(config.schedule)
    for key in raw:
        if key not in _KEYS:
            raise _fail(config, key, f"unknown key (known: {', '.join(sorted(_KEYS))})")

    def text(key: str, default: str) -> str:
        value = raw.get(key, default)
        if not isinstance(value, str):
            raise _fail(config, key, f"must be a string, got {type(value).__name__}")
        return value.strip()

    tz_name = text("timezone", "UTC")
    try:
        tz: tzinfo = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(config, "timezone", f"unknown time zone {tz_name!r} "
                                        "(use an IANA name such as Asia/Shanghai)") from None

    exprs: dict[str, str] = {}
    jobs: list[JobSpec] = []
    for key, default in DEFAULTS.items():
        if key == "cloud_snapshot" and "cloud" not in config.raw:
            default = OFF
        expr = text(key, default)
        name = JOB_NAMES[key]
        if expr.lower() == OFF:
            exprs[name] = OFF
            continue
        if key == "replicate" and expr.lower() == AFTER_SNAPSHOT:
            exprs[name] = AFTER_SNAPSHOT
            continue
        try:
            trigger = cron_trigger(expr, tz)
        except CronSyntaxError as exc:
            hint = " or \"after-snapshot\"" if key == "replicate" else ""
            raise _fail(config, key, f"{exc} (a crontab expression, \"off\"{hint})") from None
        exprs[name] = expr
        jobs.append(JobSpec(name=name, expr=expr, trigger=trigger))
    if exprs["replicate"] == AFTER_SNAPSHOT and exprs["snapshot"] == OFF:
        raise _fail(config, "replicate", "is \"after-snapshot\" but snapshot is \"off\"; "
                                         "give replicate its own crontab expression")

    grace_raw = raw.get("misfire_grace_seconds", 6 * 3600)
    # At most a week: a catch-up run later than that is a different schedule.
    problem = number_problem(grace_raw, minimum=0, maximum=7 * 86400, integer=True)
    if problem:
        raise _fail(config, "misfire_grace_seconds",
                    f"{problem} (whole seconds; 0 = no limit)")
    grace = grace_raw or None

    state_dir = config.base_dir / text("state_dir", str(config.cache_dir / "schedule"))
    jobstore = text("jobstore", "")
    if not jobstore:
        jobstore = f"sqlite:///{state_dir / 'jobs.sqlite'}"
    elif "://" not in jobstore:
        raise _fail(config, "jobstore", "must be an SQLAlchemy URL such as "
                                        "sqlite:////var/lib/drkit/jobs.sqlite or "
                                        "postgresql+psycopg://drkit@db/drkit")
    metrics_file = config.base_dir / text("metrics_file", str(state_dir / "drkit.prom"))
    if not metrics_file.name.endswith(".prom"):
        raise _fail(config, "metrics_file", "must end in .prom (node_exporter's textfile "
                                            "collector only reads *.prom files)")

    sample = text("read_data_sample", "5%")
    m = _SAMPLE.match(sample)
    if not m or not 0 < float(m.group(1)) <= 100:
        raise _fail(config, "read_data_sample", f"must be a percentage such as \"5%\", "
                                                f"got {sample!r}")

    sources_raw = raw.get("ledger_sources", [])
    if not isinstance(sources_raw, list) or not all(isinstance(s, str) for s in sources_raw):
        raise _fail(config, "ledger_sources", "must be a list of source names")
    for name in sources_raw:
        if name not in config.sources:
            raise _fail(config, "ledger_sources", f"unknown source {name!r} (configured: "
                                                  f"{', '.join(sorted(config.sources))})")
    if exprs["ledger"] != OFF and not sources_raw:
        raise _fail(config, "ledger_sources", "missing: name the sources whose compensation "
                                              "ledger the scheduled ledger job builds")

    on_sigterm = text("on_sigterm", "wait")
    if on_sigterm not in ("wait", "terminate"):
        raise _fail(config, "on_sigterm", f"must be \"wait\" or \"terminate\", got "
                                          f"{on_sigterm!r}")

    hook = raw.get("webhook", {})
    if not isinstance(hook, dict):
        raise _fail(config, "webhook", "must be a table")
    for key in hook:
        if key not in _WEBHOOK_KEYS:
            raise _fail(config, f"webhook.{key}", "unknown key (known: url, wecom, "
                                                  "timeout_seconds)")
    urls: dict[str, str | None] = {}
    for key in ("url", "wecom"):
        value = hook.get(key)
        if value is not None and (not isinstance(value, str)
                                  or not value.startswith(("http://", "https://"))):
            raise _fail(config, f"webhook.{key}", "must be an http:// or https:// URL")
        urls[key] = value
    timeout = hook.get("timeout_seconds", 10)
    problem = number_problem(timeout, minimum=0, maximum=600, exclusive_minimum=True)
    if problem:
        raise _fail(config, "webhook.timeout_seconds", problem)

    streams_raw = raw.get("wal_stream", [])
    if not isinstance(streams_raw, list) or not all(isinstance(s, str) for s in streams_raw):
        raise _fail(config, "wal_stream", "must be a list of PostgreSQL source names")
    for name in streams_raw:
        if name not in config.sources or config.sources[name].type != "postgres":
            pg = sorted(n for n, s in config.sources.items() if s.type == "postgres")
            raise _fail(config, "wal_stream", f"{name!r} is not a PostgreSQL source "
                                              f"(configured: {', '.join(pg) or 'none'})")

    recovery_key = text("recovery_key", "")
    passphrase_file = text("passphrase_file", "")

    return ScheduleSettings(
        recovery_key=(config.base_dir / recovery_key) if recovery_key else None,
        passphrase_file=(config.base_dir / passphrase_file) if passphrase_file else None,
        config_file=config.path.resolve(),
        timezone=tz,
        timezone_name=tz_name,
        exprs=exprs,
        jobs=tuple(jobs),
        misfire_grace_seconds=grace,
        jobstore_url=jobstore,
        metrics_file=metrics_file,
        state_dir=state_dir,
        read_data_sample=sample,
        ledger_sources=tuple(sources_raw),
        on_sigterm=on_sigterm,
        webhook=WebhookSettings(url=urls["url"], wecom=urls["wecom"],
                                timeout_seconds=float(timeout)),
        regions=tuple(sorted(config.regions)),
        wal_streams=tuple(dict.fromkeys(streams_raw)),
    )


def drill_rotation(regions: tuple[str, ...], last_drilled: dict[str, datetime | None],
                   count: int = 1) -> list[str]:
    """The next ``count`` regions the monthly drill takes, assuming each drill succeeds.

    The region whose last successful drill is oldest goes next (never-drilled first, ties
    in name order). Derived from the run records rather than from a counter, so a missed
    or failed month does not skip a region and a newly added region is drilled soon.
    """
    # Rank: (0, "", name) for never drilled, (1, iso time, name) otherwise; a simulated
    # future drill gets rank (2, sequence) so it sorts after every real one.
    rank: dict[str, tuple[int, str, str]] = {}
    for region in regions:
        when = last_drilled.get(region)
        rank[region] = (0, "", region) if when is None else (1, when.isoformat(), region)
    order: list[str] = []
    for step in range(count if regions else 0):
        region = min(regions, key=lambda r: rank[r])
        order.append(region)
        rank[region] = (2, f"{step:09d}", region)
    return order
