"""Crontab expressions as cron users mean them, on APScheduler 3.x triggers.

APScheduler 3.x numbers days of the week from 0 = Monday, so its own
``CronTrigger.from_crontab("30 2 * * 0")`` fires on Mondays. Crontab(5) numbers them from
0 = Sunday (7 is Sunday too), and when both day-of-month and day-of-week are restricted a
crontab line fires when *either* matches, where APScheduler requires both. ``cron_trigger``
translates: the day-of-week field is expanded to a set of days and written back as
APScheduler weekday names, and the "either" rule becomes an ``OrTrigger`` of two cron
triggers. Everything else (minute, hour, day, month, steps, ranges, month names) means the
same in both and is handed to APScheduler unchanged, which also validates it.

The pure functions at the bottom (``fire_times``, ``plan_runs``) compute what the daemon
will do from a trigger and an injected ``now`` without sleeping: the tests lean on them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

# Crontab numbering: 0 and 7 are Sunday.
_CRON_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_FULL_DAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday",
              "saturday"]
_APS_ORDER = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


_SMALL_NUMBER = re.compile(r"[0-9]{1,4}")


class CronSyntaxError(ValueError):
    """A crontab expression that cannot be understood."""


def _day_number(text: str) -> int:
    token = text.strip().lower()
    # ASCII digits, a few of them: "²".isdigit() is true but int() refuses it, and int() of
    # thousands of digits raises its own ValueError.
    if _SMALL_NUMBER.fullmatch(token):
        value = int(token)
        if not 0 <= value <= 7:
            raise CronSyntaxError(f"day of week {text!r} out of range 0-7")
        return value % 7
    for index, name in enumerate(_CRON_DAYS):
        if token in (name, _FULL_DAYS[index]):
            return index
    raise CronSyntaxError(f"unknown day of week {text!r} (use 0-7 or sun-sat)")


def expand_day_of_week(field: str) -> set[int]:
    """Crontab day-of-week field -> set of days, 0 = Sunday ... 6 = Saturday."""
    days: set[int] = set()
    for part in field.split(","):
        if not part:
            raise CronSyntaxError(f"empty item in day-of-week field {field!r}")
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not _SMALL_NUMBER.fullmatch(step_text) or int(step_text) < 1:
                raise CronSyntaxError(f"bad step {step_text!r} in day-of-week field {field!r}")
            step = int(step_text)
        if part == "*":
            first, last = 0, 6
        elif "-" in part:
            a, b = part.split("-", 1)
            first = _day_number(a)
            # "5-7" (Friday to Sunday) must keep 7 as the end of the range.
            last = 7 if b.strip() == "7" else _day_number(b)
            if last < first:
                raise CronSyntaxError(f"day-of-week range {part!r} runs backwards")
        else:
            first = _day_number(part)
            last = first if step == 1 else 6
        days.update(day % 7 for day in range(first, last + 1, step))
    return days


def _weekday_names(days: set[int]) -> str:
    if len(days) == 7:
        return "*"
    names = {_CRON_DAYS[d] for d in days}
    return ",".join(name for name in _APS_ORDER if name in names)


@dataclass(frozen=True)
class CronFields:
    minute: str
    hour: str
    day: str
    month: str
    day_of_week: str  # crontab meaning, as written


def split_crontab(expr: str) -> CronFields:
    text = " ".join(expr.split())
    text = _ALIASES.get(text.lower(), text)
    fields = text.split(" ")
    if len(fields) != 5:
        raise CronSyntaxError(
            f"{expr!r} is not a crontab expression: need 5 fields "
            "(minute hour day-of-month month day-of-week) or @daily/@hourly/...")
    return CronFields(*fields)


def cron_trigger(expr: str, timezone: tzinfo) -> BaseTrigger:
    """Crontab expression (crontab(5) meaning) -> APScheduler trigger in ``timezone``."""
    f = split_crontab(expr)
    days = expand_day_of_week(f.day_of_week)
    aps_dow = _weekday_names(days)
    try:
        # Vixie cron: a field starting with "*" counts as unrestricted for the OR rule.
        dom_restricted = not f.day.startswith("*")
        dow_restricted = not f.day_of_week.startswith("*")
        if dom_restricted and dow_restricted:
            return OrTrigger([
                CronTrigger(minute=f.minute, hour=f.hour, day=f.day, month=f.month,
                            day_of_week="*", timezone=timezone),
                CronTrigger(minute=f.minute, hour=f.hour, day="*", month=f.month,
                            day_of_week=aps_dow, timezone=timezone),
            ])
        return CronTrigger(minute=f.minute, hour=f.hour, day=f.day, month=f.month,
                           day_of_week=aps_dow, timezone=timezone)
    except ValueError as exc:
        raise CronSyntaxError(f"{expr!r}: {exc}") from None


def fire_times(trigger: BaseTrigger, after: datetime, until: datetime,
               limit: int = 10_000) -> list[datetime]:
    """Every fire time t with after <= t <= until (as the scheduler computes them)."""
    out: list[datetime] = []
    nxt = trigger.get_next_fire_time(None, after)
    while nxt is not None and nxt <= until and len(out) < limit:
        out.append(nxt)
        nxt = trigger.get_next_fire_time(nxt, nxt)
    return out


def next_fire_times(trigger: BaseTrigger, now: datetime, count: int) -> list[datetime]:
    out: list[datetime] = []
    nxt = trigger.get_next_fire_time(None, now)
    while nxt is not None and len(out) < count:
        out.append(nxt)
        nxt = trigger.get_next_fire_time(nxt, nxt)
    return out


@dataclass(frozen=True)
class RunPlan:
    """What the daemon does with one job when it wakes up at ``now``."""

    run_at: datetime | None        # the scheduled time of the one run it starts, if any
    missed: tuple[datetime, ...]   # scheduled times that will not run (coalesced or too late)
    next_run_time: datetime | None


def plan_runs(trigger: BaseTrigger, next_run_time: datetime | None, now: datetime,
              grace: timedelta | None, *, coalesce: bool = True) -> RunPlan:
    """Model of APScheduler 3.x's ``_process_jobs`` + ``run_job`` for one job.

    Due times are ``next_run_time`` and every later fire time up to ``now``. With
    coalescing only the latest is run, the rest are folded into it; the run is itself
    missed when it is later than the grace time. ``drkit schedule run`` uses the same
    settings (coalesce=True, max_instances=1) so this is what the daemon does after a
    downtime, without a real clock.
    """
    due: list[datetime] = []
    nxt = next_run_time
    while nxt is not None and nxt <= now:
        due.append(nxt)
        nxt = trigger.get_next_fire_time(nxt, now)
    if not due:
        return RunPlan(None, (), next_run_time)
    candidates = due[-1:] if coalesce else due
    missed = list(due[:-1]) if coalesce else []
    run_at: datetime | None = None
    for when in candidates:
        if grace is not None and now - when > grace:
            missed.append(when)
        elif run_at is None:
            run_at = when
    return RunPlan(run_at, tuple(missed), nxt)
