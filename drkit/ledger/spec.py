"""The ledger spec: everything about one incident's compensation that is not code.

A spec is a TOML file (the default one, for the February 2020 incident, ships as
``drkit/ledger/default_spec.toml``). ``load_spec`` reads and validates it and raises
``ConfigError`` naming the file and the key of the first problem (and how many more there
are). The validated ``LedgerSpec`` has a normalised dictionary form (``to_dict``) that is
embedded in every ledger, so a ledger can always be recomputed with exactly the spec it
was built with (``LedgerSpec.from_dict``), and a hash of that form (``sha256``) that names
the spec.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drkit.canonical import canonical_hash
from drkit.errors import ConfigError
from drkit.numbers import MAX_INTEGER, number_problem, overlong_integer, show_number

SPEC_FORMAT = "drkit-ledger-spec/1"
DEFAULT_SPEC_NAME = "drkit/ledger/default_spec.toml"
COMPENSATIONS = ("cash", "traffic")
QUERY_NAMES = ("merchants", "members", "orders")

_TOP = {"format", "incident", "baseline", "outage", "margins", "plans", "provision",
        "revenue", "queries"}
_DAY_MICROSECONDS = 86_400 * 1_000_000


@dataclass(frozen=True)
class Window:
    """A half-open interval of time ``[start, end)``; both ends timezone-aware, in UTC."""

    start: datetime
    end: datetime
    # The spec's own text for each end (local time or with offset), kept for to_dict.
    start_text: str
    end_text: str

    def __contains__(self, instant: datetime) -> bool:
        return self.start <= instant < self.end

    @property
    def days(self) -> Fraction:
        """The window's length in days, exactly (microsecond resolution)."""
        return Fraction((self.end - self.start) // timedelta(microseconds=1), _DAY_MICROSECONDS)


@dataclass(frozen=True)
class PlanTerms:
    """What one value of ``merchants.plan`` means."""

    name: str
    compensation: str  # "cash" or "traffic"
    impressions: int = 0
    extension_months: int = 0


@dataclass(frozen=True)
class LedgerSpec:
    incident: str
    time_zone: str
    baseline: Window
    outage: Window
    margins: dict[str, Decimal]
    margin_texts: dict[str, str]
    plans: dict[str, PlanTerms]
    currency: str
    cap_fen: int
    counted_statuses: tuple[str, ...]
    queries: dict[str, str]
    # The file it came from, for messages only; not part of the spec's identity.
    source: str = field(default="(spec)", compare=False)

    @property
    def industries(self) -> list[str]:
        return sorted(self.margins)

    def to_dict(self) -> dict[str, Any]:
        """The normalised form: what a ledger embeds and what ``sha256`` hashes."""
        plans: dict[str, Any] = {}
        for name, terms in sorted(self.plans.items()):
            entry: dict[str, Any] = {"compensation": terms.compensation}
            if terms.compensation == "traffic":
                entry["impressions"] = terms.impressions
                entry["extension_months"] = terms.extension_months
            plans[name] = entry
        return {
            "format": SPEC_FORMAT,
            "incident": {"name": self.incident, "time_zone": self.time_zone},
            "baseline": {"start": self.baseline.start_text, "end": self.baseline.end_text},
            "outage": {"start": self.outage.start_text, "end": self.outage.end_text},
            "margins": dict(sorted(self.margin_texts.items())),
            "plans": plans,
            "provision": {"currency": self.currency, "cap_fen": self.cap_fen},
            "revenue": {"counted_statuses": list(self.counted_statuses)},
            "queries": dict(self.queries),
        }

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the canonical JSON of ``to_dict()``: the spec's identity."""
        return canonical_hash(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "(embedded spec)") -> LedgerSpec:
        return parse_spec(data, source=source)


class _Reader:
    """Collects every problem so the error can say how many there are."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []

    def problem(self, key: str, reason: str) -> None:
        self.problems.append((key, reason))

    def table(self, data: dict[str, Any], name: str, allowed: set[str] | None = None,
              prefix: str = "") -> dict[str, Any]:
        key = f"{prefix}{name}"
        if name not in data:
            self.problem(key, "missing table")
            return {}
        value = data[name]
        if not isinstance(value, dict):
            self.problem(key, f"must be a table, got {type(value).__name__}")
            return {}
        if allowed is not None:
            for sub in value:
                if sub not in allowed:
                    self.problem(f"{key}.{sub}", "unknown key")
        return value

    def string(self, data: dict[str, Any], key: str, name: str) -> str:
        value = data.get(name)
        if value is None:
            self.problem(f"{key}.{name}", "missing")
            return ""
        if not isinstance(value, str) or not value.strip():
            self.problem(f"{key}.{name}", f"must be a non-empty string, got {value!r}")
            return ""
        return value

    def integer(self, data: dict[str, Any], key: str, name: str, *, minimum: int = 0) -> int:
        value = data.get(name)
        if value is None:
            self.problem(f"{key}.{name}", "missing")
            return 0
        problem = number_problem(value, minimum=minimum, maximum=MAX_INTEGER, integer=True)
        if problem:
            self.problem(f"{key}.{name}", problem)
            return 0
        return int(value)


def _instant(value: Any, zone: ZoneInfo | None, key: str, rd: _Reader) -> tuple[datetime, str]:
    """A TOML datetime or ISO 8601 text -> (aware UTC instant, normalised text)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            rd.problem(key, f"not an ISO 8601 date-time: {value!r}")
            return datetime.min.replace(tzinfo=UTC), ""
    if not isinstance(value, datetime):
        rd.problem(key, f"must be a date-time, got {value!r}")
        return datetime.min.replace(tzinfo=UTC), ""
    text = value.isoformat()
    if value.tzinfo is not None:
        return value.astimezone(UTC), text
    if zone is None:
        return datetime.min.replace(tzinfo=UTC), text
    # A local time that a DST change makes ambiguous or nonexistent is refused: the spec
    # must then give the offset explicitly.
    early = value.replace(tzinfo=zone, fold=0)
    late = value.replace(tzinfo=zone, fold=1)
    if early.utcoffset() != late.utcoffset():
        rd.problem(key, f"local time {text} is ambiguous or does not exist in "
                        f"{zone.key}; give it with an explicit offset")
    elif early.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != value:
        rd.problem(key, f"local time {text} does not exist in {zone.key}")
    return early.astimezone(UTC), text


def _window(data: dict[str, Any], name: str, zone: ZoneInfo | None, rd: _Reader) -> Window:
    table = rd.table(data, name, {"start", "end"})
    ends: list[tuple[datetime, str]] = []
    for end_name in ("start", "end"):
        if end_name not in table:
            if table:
                rd.problem(f"{name}.{end_name}", "missing")
            ends.append((datetime.min.replace(tzinfo=UTC), ""))
            continue
        ends.append(_instant(table[end_name], zone, f"{name}.{end_name}", rd))
    (start, start_text), (end, end_text) = ends
    if start_text and end_text and zone is not None and not start < end:
        rd.problem(f"{name}.end", f"must be after {name}.start ({start_text})")
    return Window(start, end, start_text, end_text)


def _decimal(value: Any, key: str, rd: _Reader) -> tuple[Decimal, str]:
    if isinstance(value, float):
        rd.problem(key, f"write the rate as a decimal string (\"{value}\"), not a float: "
                        "floats are inexact")
        return Decimal(0), ""
    if not isinstance(value, str):
        rd.problem(key, f"must be a decimal string such as \"0.12\", got {show_number(value)}")
        return Decimal(0), ""
    try:
        rate = Decimal(value.strip())
    except InvalidOperation:
        rd.problem(key, f"not a decimal number: {show_number(value)}")
        return Decimal(0), ""
    if not rate.is_finite() or not Decimal(0) <= rate <= Decimal(1):
        rd.problem(key, f"must be a rate between 0 and 1, got {show_number(value)}")
        return Decimal(0), ""
    return rate, value.strip()


def parse_spec(data: Any, *, source: str = "(spec)") -> LedgerSpec:
    """Validate a parsed spec (TOML table or a ledger's embedded ``spec``) -> LedgerSpec.

    Raises ``ConfigError`` naming ``source`` and the key of the first problem.
    """
    rd = _Reader()
    if not isinstance(data, dict):
        raise ConfigError("a ledger spec must be a table", file=source)
    for name in data:
        if name not in _TOP:
            rd.problem(name, "unknown key")
    fmt = data.get("format")
    if fmt != SPEC_FORMAT:
        rd.problem("format", f"must be {SPEC_FORMAT!r}, got {fmt!r}")

    incident = rd.table(data, "incident", {"name", "time_zone"})
    name = rd.string(incident, "incident", "name") if incident else ""
    tz_name = rd.string(incident, "incident", "time_zone") if incident else ""
    zone: ZoneInfo | None = None
    if tz_name:
        try:
            zone = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            rd.problem("incident.time_zone", f"unknown IANA time zone {tz_name!r}")
    baseline = _window(data, "baseline", zone, rd)
    outage = _window(data, "outage", zone, rd)

    margins: dict[str, Decimal] = {}
    margin_texts: dict[str, str] = {}
    for industry, value in rd.table(data, "margins").items():
        rate, text = _decimal(value, f"margins.{industry}", rd)
        if text:
            margins[industry] = rate
            margin_texts[industry] = text
    if "margins" in data and isinstance(data["margins"], dict) and not data["margins"]:
        rd.problem("margins", "no industries listed")

    plans: dict[str, PlanTerms] = {}
    raw_plans = rd.table(data, "plans")
    for plan, terms in raw_plans.items():
        key = f"plans.{plan}"
        if not isinstance(terms, dict):
            rd.problem(key, "must be a table")
            continue
        kind = terms.get("compensation")
        if kind not in COMPENSATIONS:
            rd.problem(f"{key}.compensation", f"must be one of {', '.join(COMPENSATIONS)}, "
                                              f"got {kind!r}")
            continue
        allowed = {"compensation"} | ({"impressions", "extension_months"}
                                      if kind == "traffic" else set())
        for sub in terms:
            if sub not in allowed:
                rd.problem(f"{key}.{sub}", f"unknown key for a {kind} plan")
        if kind == "traffic":
            plans[plan] = PlanTerms(plan, kind, rd.integer(terms, key, "impressions"),
                                    rd.integer(terms, key, "extension_months"))
        else:
            plans[plan] = PlanTerms(plan, kind)
    if isinstance(raw_plans, dict) and "plans" in data and not raw_plans:
        rd.problem("plans", "no plans listed")

    provision = rd.table(data, "provision", {"currency", "cap_fen"})
    currency = rd.string(provision, "provision", "currency") if provision else ""
    cap_fen = rd.integer(provision, "provision", "cap_fen") if provision else 0

    revenue = rd.table(data, "revenue", {"counted_statuses"})
    statuses = revenue.get("counted_statuses") if revenue else None
    if revenue and (not isinstance(statuses, list) or not statuses
                    or not all(isinstance(s, str) and s for s in statuses)):
        rd.problem("revenue.counted_statuses", "must be a non-empty list of status strings")
        statuses = []

    queries_table = rd.table(data, "queries", set(QUERY_NAMES))
    queries: dict[str, str] = {}
    if queries_table:
        for query in QUERY_NAMES:
            text = rd.string(queries_table, "queries", query)
            if text:
                queries[query] = text.strip()

    if rd.problems:
        key, reason = rd.problems[0]
        more = ""
        if len(rd.problems) > 1:
            others = ", ".join(k for k, _ in rd.problems[1:4])
            tail = ", ..." if len(rd.problems) > 4 else ""
            more = f" (and {len(rd.problems) - 1} more: {others}{tail})"
        raise ConfigError(f"{reason}{more}", file=source, key=key)
    return LedgerSpec(
        incident=name,
        time_zone=tz_name,
        baseline=baseline,
        outage=outage,
        margins=margins,
        margin_texts=margin_texts,
        plans=plans,
        currency=currency,
        cap_fen=cap_fen,
        counted_statuses=tuple(statuses or ()),
        queries=queries,
        source=source,
    )


def parse_spec_text(text: str, *, source: str = "(spec)") -> LedgerSpec:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=source) from None
    except ValueError:  # an integer of more than 4,300 digits
        raise ConfigError(f"not usable TOML: {overlong_integer(text)}", file=source) from None
    return parse_spec(data, source=source)


def load_spec(path: Path | None = None) -> LedgerSpec:
    """Read and validate a spec file; ``None`` gives the default spec shipped with drkit."""
    if path is None:
        return default_spec()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("ledger spec not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read ledger spec: {exc}", file=str(path)) from None
    return parse_spec_text(text, source=str(path))


def default_spec_text() -> str:
    return resources.files("drkit.ledger").joinpath("default_spec.toml").read_text("utf-8")


def default_spec() -> LedgerSpec:
    """The spec of the February 2020 incident, shipped as package data."""
    return parse_spec_text(default_spec_text(), source=DEFAULT_SPEC_NAME)
