"""drkit.toml -> a typed, validated ``Config``.

Validation collects every problem at once (``check_config``) so ``drkit config check`` can
report them all with file, key and reason; ``load_config`` raises ``ConfigError`` naming
the first one. Paths in the file are relative to the file's folder.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drkit.errors import ConfigError, InputError
from drkit.numbers import number_problem, overlong_integer
from drkit.storage.url import StoreURL, parse_store_url

DEFAULT_CONFIG = "drkit.toml"
SOURCE_TYPES = ("files", "sqlite", "postgres", "mysql")
STORAGE_CLASSES = (
    "STANDARD",
    "STANDARD_IA",
    "INTELLIGENT_TIERING",
    "ONEZONE_IA",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
    "ARCHIVE",
    "MAZ_STANDARD",
    "MAZ_STANDARD_IA",
)
#: Bounds of the guardrail numbers. Object Lock allows at most 100 years of retention;
#: a lag, RTO or RPO objective of more than a year is no objective at all (it is how an
#: alarm is switched off without saying so).
MAX_DAYS = 36500
MAX_HOURS = 24 * 366


@dataclass(frozen=True)
class Problem:
    file: str
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.reason}"


@dataclass(frozen=True)
class RegionConfig:
    name: str
    url: StoreURL
    primary: bool = False
    storage_class: str = "STANDARD"
    lock_days: int = 0
    retention_days: int = 0
    max_lag_hours: float = 26.0


@dataclass(frozen=True)
class SourceConfig:
    name: str
    type: str
    path: Path | None = None
    exclude: tuple[str, ...] = ()
    production: bool = False
    # Database sources (postgres/mysql): connection settings; secrets come from the
    # environment or a secrets file, never from here.
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Objectives:
    rto_minutes: float = 240.0
    rpo_hours: float = 26.0
    # For an archived database log (WAL, binlog): the newest segment's age allowed.
    log_rpo_seconds: float = 300.0


@dataclass(frozen=True)
class Config:
    path: Path
    base_dir: Path
    primary: str
    keys_dir: Path
    cache_dir: Path
    regions: dict[str, RegionConfig]
    sources: dict[str, SourceConfig]
    objectives: Objectives = Objectives()
    pack_size_mib: int = 16
    verify_state_dir: Path | None = None
    verify_anchor_file: Path | None = None
    writer_keys: tuple[str, ...] = ()
    ledger: dict[str, Any] = field(default_factory=dict)
    schedule: dict[str, Any] = field(default_factory=dict)
    approval: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def primary_region(self) -> RegionConfig:
        return self.regions[self.primary]

    def region(self, name: str) -> RegionConfig:
        try:
            return self.regions[name]
        except KeyError:
            known = ", ".join(sorted(self.regions)) or "none"
            raise InputError(f"unknown region {name!r} (configured: {known})") from None

    def source(self, name: str) -> SourceConfig:
        try:
            return self.sources[name]
        except KeyError:
            known = ", ".join(sorted(self.sources)) or "none"
            raise InputError(f"unknown source {name!r} (configured: {known})") from None

    def source_of_type(self, name: str | None, type_: str, what: str, option: str) -> str:
        """The ``type_`` source a command is about: ``name``, or the only one configured
        (``what`` names the kind in messages, ``option`` the flag that picks one)."""
        if name is not None:
            if self.source(name).type != type_:
                raise InputError(f"source {name!r} is not a {what} source")
            return name
        names = sorted(n for n, s in self.sources.items() if s.type == type_)
        if len(names) != 1:
            raise InputError(f"name the {what} source with {option} "
                             f"(configured: {', '.join(names) or 'none'})")
        return names[0]


def config_path(explicit: str | os.PathLike[str] | None) -> Path:
    """--config, then DRKIT_CONFIG, then ./drkit.toml."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("DRKIT_CONFIG")
    return Path(env) if env else Path(DEFAULT_CONFIG)


class _Checker:
    """Small typed reader that records problems instead of stopping at the first."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def problem(self, key: str, reason: str) -> None:
        self.problems.append(Problem(self.file, key, reason))

    def table(self, data: dict[str, Any], key: str, name: str) -> dict[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, dict):
            self.problem(f"{key}{name}", f"must be a table, got {type(value).__name__}")
            return {}
        return value

    def unknown(self, data: dict[str, Any], key: str, allowed: set[str]) -> None:
        for name in data:
            if name not in allowed:
                self.problem(f"{key}{name}", "unknown key")

    def get(self, data: dict[str, Any], key: str, name: str, kind: type | tuple[type, ...],
            default: Any) -> Any:
        if name not in data:
            return default
        value = data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # TOML booleans are not numbers here, even though bool is an int subclass.
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not ok:
            names = " or ".join(k.__name__ for k in kinds)
            self.problem(f"{key}{name}", f"must be {names}, got {type(value).__name__}")
            return default
        return value

    def path(self, data: dict[str, Any], key: str, name: str, default: Any) -> Any:
        """A path string; a NUL byte (which no file name can hold, and which makes every
        later file operation raise ValueError) is a problem here instead."""
        value = self.get(data, key, name, str, default)
        if isinstance(value, str) and "\x00" in value:
            self.problem(f"{key}{name}", "must not contain a NUL character")
            return default
        return value

    def number(self, data: dict[str, Any], key: str, name: str, default: float,
               *, minimum: float, maximum: float) -> float:
        """A finite number within bounds; NaN, inf and absurd values are problems."""
        if name not in data:
            return default
        problem = number_problem(data[name], minimum=minimum, maximum=maximum)
        if problem:
            self.problem(f"{key}{name}", problem)
            return default
        return float(data[name])

    def integer(self, data: dict[str, Any], key: str, name: str, default: int,
                *, minimum: int, maximum: int) -> int:
        if name not in data:
            return default
        problem = number_problem(data[name], minimum=minimum, maximum=maximum, integer=True)
        if problem:
            self.problem(f"{key}{name}", problem)
            return default
        return int(data[name])


_TOP = {"repository", "regions", "sources", "objectives", "verify", "ledger", "schedule",
        "approval", "cloud", "oplog"}
_REPO = {"primary", "keys", "cache", "pack_size_mib"}
_REGION = {"url", "storage_class", "lock_days", "retention_days", "max_lag_hours"}
_SOURCE = {"type", "path", "exclude", "production", "database", "host", "port", "user",
           "databases", "secrets_file", "tables", "dump_tool", "pg_bin"}
_OBJECTIVES = {"rto_minutes", "rpo_hours", "log_rpo_seconds"}
_VERIFY = {"state_dir", "writer_keys", "anchor_file"}


def check_config(path: Path) -> tuple[Config | None, list[Problem]]:
    """Read and validate ``path``; return the config (None if unusable) and every problem."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Problem(file, "(file)", "not found (run 'drkit init' to create one)")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(file, "(file)", f"cannot read: {exc}")]
    return check_config_text(text, path)


def check_config_text(text: str, path: Path) -> tuple[Config | None, list[Problem]]:
    """Validate drkit.toml content as if it were the file ``path`` (relative paths in it
    resolve against that file's folder): the pinned configuration is read this way."""
    file = str(path)
    chk = _Checker(file)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [Problem(file, "(syntax)", f"not valid TOML: {exc}")]
    except ValueError:
        # tomllib lets Python's int() limit escape: an integer of more than 4,300 digits.
        return None, [Problem(file, "(syntax)", f"not usable TOML: {overlong_integer(text)}")]
    base = path.resolve().parent
    chk.unknown(data, "", _TOP)

    repo = chk.table(data, "", "repository")
    chk.unknown(repo, "repository.", _REPO)
    primary = chk.get(repo, "repository.", "primary", str, "")
    keys_dir = base / chk.path(repo, "repository.", "keys", "keys")
    cache_dir = base / chk.path(repo, "repository.", "cache", ".drkit/cache")
    pack_size = chk.integer(repo, "repository.", "pack_size_mib", 16, minimum=1, maximum=512)

    regions: dict[str, RegionConfig] = {}
    raw_regions = chk.table(data, "", "regions")
    seen_urls: dict[str, str] = {}
    for name, region in raw_regions.items():
        key = f"regions.{name}."
        if not isinstance(region, dict):
            chk.problem(f"regions.{name}", "must be a table")
            continue
        chk.unknown(region, key, _REGION)
        url_text = chk.get(region, key, "url", str, None)
        if url_text is None:
            chk.problem(f"{key}url", "missing")
            continue
        try:
            url = parse_store_url(url_text, base_dir=base)
        except InputError as exc:
            chk.problem(f"{key}url", str(exc))
            continue
        lowered = name.lower()
        if lowered in seen_urls:
            chk.problem(f"regions.{name}", f"duplicate region name (also {seen_urls[lowered]!r})")
        seen_urls[lowered] = name
        storage_class = chk.get(region, key, "storage_class", str, "STANDARD").upper()
        if storage_class not in STORAGE_CLASSES:
            chk.problem(f"{key}storage_class",
                        f"unknown storage class {storage_class!r} "
                        f"(known: {', '.join(STORAGE_CLASSES)})")
        lock_days = chk.integer(region, key, "lock_days", 0, minimum=0, maximum=MAX_DAYS)
        retention_days = chk.integer(region, key, "retention_days", 0, minimum=0,
                                     maximum=MAX_DAYS)
        if retention_days and lock_days and retention_days < lock_days:
            chk.problem(f"{key}retention_days",
                        f"retention of {retention_days} days is shorter than the lock period "
                        f"of {lock_days} days")
        regions[name] = RegionConfig(
            name=name,
            url=url,
            primary=(name == primary),
            storage_class=storage_class,
            lock_days=lock_days,
            retention_days=retention_days,
            max_lag_hours=chk.number(region, key, "max_lag_hours", 26.0, minimum=0,
                                     maximum=MAX_HOURS),
        )
        for other_name, other in regions.items():
            if other_name != name and other.url.location == url.location:
                chk.problem(f"{key}url", f"same location as region {other_name!r}")
    if not raw_regions:
        chk.problem("regions", "no regions configured")
    if not primary:
        chk.problem("repository.primary", "missing: name the primary region")
    elif primary not in raw_regions:
        chk.problem("repository.primary", f"region {primary!r} is not defined under [regions]")

    sources: dict[str, SourceConfig] = {}
    for name, src in chk.table(data, "", "sources").items():
        key = f"sources.{name}."
        if not isinstance(src, dict):
            chk.problem(f"sources.{name}", "must be a table")
            continue
        chk.unknown(src, key, _SOURCE)
        stype = chk.get(src, key, "type", str, None)
        if stype is None:
            chk.problem(f"{key}type", f"missing (one of {', '.join(SOURCE_TYPES)})")
            continue
        if stype not in SOURCE_TYPES:
            chk.problem(f"{key}type", f"unknown source type {stype!r} "
                                      f"(one of {', '.join(SOURCE_TYPES)})")
            continue
        spath = chk.path(src, key, "path", None)
        if stype in ("files", "sqlite") and spath is None and "path" not in src:
            chk.problem(f"{key}path", "missing")
        exclude = chk.get(src, key, "exclude", list, [])
        if not all(isinstance(e, str) for e in exclude):
            chk.problem(f"{key}exclude", "must be a list of strings")
            exclude = []
        options = {k: v for k, v in src.items()
                   if k not in ("type", "path", "exclude", "production")}
        sources[name] = SourceConfig(
            name=name,
            type=stype,
            path=(base / spath) if spath else None,
            exclude=tuple(exclude),
            production=bool(chk.get(src, key, "production", bool, False)),
            options=options,
        )

    obj = chk.table(data, "", "objectives")
    chk.unknown(obj, "objectives.", _OBJECTIVES)
    objectives = Objectives(
        rto_minutes=chk.number(obj, "objectives.", "rto_minutes", 240.0, minimum=0.001,
                               maximum=MAX_HOURS * 60),
        rpo_hours=chk.number(obj, "objectives.", "rpo_hours", 26.0, minimum=0.001,
                             maximum=MAX_HOURS),
        log_rpo_seconds=chk.number(obj, "objectives.", "log_rpo_seconds", 300.0,
                                   minimum=0.001, maximum=MAX_HOURS * 3600),
    )
    ver = chk.table(data, "", "verify")
    chk.unknown(ver, "verify.", _VERIFY)
    state_dir = chk.path(ver, "verify.", "state_dir", None)
    anchor_file = chk.path(ver, "verify.", "anchor_file", None)
    writer_keys = chk.get(ver, "verify.", "writer_keys", list, [])
    if not all(isinstance(k, str) for k in writer_keys):
        chk.problem("verify.writer_keys", "must be a list of public-key strings")
        writer_keys = []

    if chk.problems and (not regions or primary not in regions):
        return None, chk.problems
    config = Config(
        path=path,
        base_dir=base,
        primary=primary,
        keys_dir=keys_dir,
        cache_dir=cache_dir,
        regions=regions,
        sources=sources,
        objectives=objectives,
        pack_size_mib=pack_size,
        verify_state_dir=(base / state_dir) if state_dir else None,
        verify_anchor_file=(base / anchor_file) if anchor_file else None,
        writer_keys=tuple(writer_keys),
        ledger=chk.table(data, "", "ledger"),
        schedule=chk.table(data, "", "schedule"),
        approval=chk.table(data, "", "approval"),
        raw=data,
    )
    return config, chk.problems


def load_config(path: Path) -> Config:
    """Load a config, raising ConfigError (exit 2) naming the first problem."""
    config, problems = check_config(path)
    if problems:
        first = problems[0]
        more = ""
        if len(problems) > 1:
            more = f" (and {len(problems) - 1} more; see 'drkit config check')"
        raise ConfigError(f"{first.reason}{more}", file=first.file, key=first.key)
    assert config is not None
    return config
