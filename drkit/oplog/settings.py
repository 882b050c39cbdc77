"""The ``[oplog]`` table of drkit.toml (every key optional)::

    [oplog]
    timezone = "Asia/Shanghai"     # the zone working hours are read in (default UTC)
    work_hours = "09:00-19:00"     # activity outside is off-hours
    work_days = "mon-fri"          # or a list such as "mon,tue,wed,thu,fri,sat"
    data_paths = ["/data", "/var/lib/mysql"]  # where rm -rf is destruction (default: a list)
    slack_minutes = 15             # an approved execution covers events this much around it
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drkit.config import Config
from drkit.errors import ConfigError
from drkit.oplog.rules import DEFAULT_DATA_PATHS

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_KEYS = {"timezone", "work_hours", "work_days", "data_paths", "slack_minutes"}


@dataclass(frozen=True)
class OplogSettings:
    zone: tzinfo
    zone_name: str
    start: time
    end: time
    days: frozenset[int]  # 0 = Monday
    data_paths: tuple[str, ...]
    slack: timedelta

    def off_hours(self, when: datetime) -> bool:
        local = when.astimezone(self.zone)
        return local.weekday() not in self.days or not (self.start <= local.time() < self.end)

    def to_dict(self) -> dict[str, Any]:
        return {"timezone": self.zone_name, "work_hours": f"{self.start:%H:%M}-{self.end:%H:%M}",
                "work_days": [_DAYS[d] for d in sorted(self.days)],
                "slack_minutes": self.slack.total_seconds() / 60}


def _days(text: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        first, dash, last = part.partition("-")
        if first not in _DAYS or (dash and last not in _DAYS):
            raise ValueError(part)
        a = _DAYS.index(first)
        b = _DAYS.index(last) if dash else a
        out.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(out)


def load_settings(config: Config | None) -> OplogSettings:
    raw: dict[str, Any] = dict((config.raw.get("oplog") or {}) if config is not None else {})
    where = str(config.path) if config is not None else "drkit.toml"

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(problem, file=where, key=f"oplog.{key}")

    for key in raw:
        if key not in _KEYS:
            raise fail(key, f"unknown key (known: {', '.join(sorted(_KEYS))})")
    zone_name = str(raw.get("timezone", "UTC"))
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail("timezone", f"{zone_name!r} is not an IANA time zone") from None
    hours = str(raw.get("work_hours", "09:00-19:00"))
    m = re.fullmatch(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})", hours.strip())
    if not m or int(m[1]) > 23 or int(m[3]) > 24 or int(m[2]) > 59 or int(m[4]) > 59:
        raise fail("work_hours", f"{hours!r}: use HH:MM-HH:MM")
    end = time(23, 59, 59) if int(m[3]) == 24 else time(int(m[3]), int(m[4]))
    try:
        days = _days(str(raw.get("work_days", "mon-fri")))
    except ValueError as exc:
        raise fail("work_days", f"{exc}: use day names such as mon-fri or "
                                "mon,tue,wed") from None
    paths = raw.get("data_paths", list(DEFAULT_DATA_PATHS))
    if not isinstance(paths, list) or not all(isinstance(p, str) and p.startswith("/")
                                              for p in paths):
        raise fail("data_paths", "must be a list of absolute paths")
    slack = raw.get("slack_minutes", 15)
    if not isinstance(slack, int | float) or isinstance(slack, bool) or not 0 <= slack <= 1440:
        raise fail("slack_minutes", "must be a number of minutes from 0 to 1440")
    return OplogSettings(zone, zone_name, time(int(m[1]), int(m[2])), end, days,
                         tuple(paths), timedelta(minutes=float(slack)))
