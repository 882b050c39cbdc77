"""The configuration pinned in the repository, and which config changes are dangerous.

``drkit keys init`` pins the initial drkit.toml (``approval/config/NNNNNN.json``,
create-only, each object a leaf of the repository journal, so its bytes are covered by the
writer's signed checkpoints and replicated with the data). From then on the pinned
configuration is the one that counts: the approval gate takes quorum, expiry, clock skew
and the production sources from it, and ``drkit config apply NEW.toml`` compares NEW with
the newest pinned version only, never with the editable live file.

A change is dangerous (needs an approved ``config-apply`` request) when it weakens any
guarantee; see ``dangerous_changes`` and docs/approval.md for the list. Anything drkit does
not know to be harmless counts as dangerous, so a new setting fails closed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from drkit.approval.policy import (
    DEFAULT_EXPIRY_HOURS,
    DEFAULT_SKEW_MINUTES,
    approval_problems,
    quorum_from_raw,
)
from drkit.canonical import canonical_json
from drkit.clock import Clock, utc_iso
from drkit.errors import ConfigError, IntegrityError, ObjectExists, ObjectNotFound
from drkit.numbers import MAX_INTEGER, number_problem, overlong_integer
from drkit.storage.base import Store

if TYPE_CHECKING:
    from drkit.config import Config
    from drkit.journal import JournalEntry

log = logging.getLogger(__name__)

CONFIG_PREFIX = "approval/config/"
PIN_FORMAT = "drkit-pinned-config"


@dataclass(frozen=True)
class PinnedConfig:
    number: int
    toml: str
    sha256: str
    doc: dict[str, Any]
    journal_index: int = -1  # position of its leaf in the repository journal

    @property
    def raw(self) -> dict[str, Any]:
        return tomllib.loads(self.toml)

    @property
    def request(self) -> str | None:
        value = self.doc.get("request")
        return value if isinstance(value, str) else None

    @property
    def name(self) -> str:
        return f"pinned config {self.number}"


def parse_toml(text: str, *, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=where) from None
    except ValueError:  # an integer of more than 4,300 digits
        raise ConfigError(f"not usable TOML: {overlong_integer(text)}", file=where) from None


def _number_of(key: str) -> int | None:
    name = key[len(CONFIG_PREFIX):]
    if name.endswith(".json") and name[:-5].isdigit() and len(name) == 11:
        return int(name[:-5])
    return None


def pinned_versions(store: Store, entries: Sequence[JournalEntry]) -> list[PinnedConfig]:
    """Every pinned version the journal logged, oldest first, each checked against its leaf
    (present, same bytes, chained to the one before). Objects under ``approval/config/``
    that the journal does not name (a crash between write and journal, or an injected
    file) are ignored with a warning: they were never pinned."""
    versions: list[PinnedConfig] = []
    logged: set[str] = set()
    previous: str | None = None
    for index, entry in enumerate(entries):
        if not entry.key.startswith(CONFIG_PREFIX):
            continue
        if entry.kind == "tombstone":
            raise IntegrityError(f"{store.url}: {entry.key}: a pinned config was tombstoned; "
                                 "pinned configs are never deleted")
        if entry.kind != "object":
            continue
        logged.add(entry.key)
        number = _number_of(entry.key)
        if number is None:
            raise IntegrityError(f"{store.url}: {entry.key}: not a pinned-config name")
        try:
            data = store.get(entry.key)
        except ObjectNotFound:
            raise IntegrityError(f"{store.url}: {entry.key}: journaled pinned config is "
                                 "missing (deleted?)") from None
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise IntegrityError(f"{store.url}: {entry.key}: pinned config differs from "
                                 "the journal (edited or replaced)")
        try:
            doc = json.loads(data)
            text = str(doc["toml"])
        except (ValueError, KeyError, TypeError):
            raise IntegrityError(f"{store.url}: {entry.key}: damaged pinned config") from None
        sha = hashlib.sha256(text.encode()).hexdigest()
        if doc.get("format") != PIN_FORMAT or doc.get("sha256") != sha \
                or doc.get("previous") != previous or doc.get("number") != number:
            raise IntegrityError(f"{store.url}: {entry.key}: pinned config does not chain "
                                 "to the one before")
        versions.append(PinnedConfig(number, text, sha, doc, index))
        previous = sha
    stray = sorted(i.key for i in store.list(CONFIG_PREFIX) if i.key not in logged)
    if stray:
        log.warning("%s: %s not in the journal: never pinned, ignored (left by a crash, or "
                    "written by hand)", store.url, ", ".join(stray))
    return versions


def journal_entries(store: Store, repository_id: str, trusted: Sequence[Any]
                    ) -> list[JournalEntry]:
    from drkit.journal import Journal

    _cp, entries = Journal(store, "drkit:" + repository_id).entries(trusted)
    return entries


def latest_pinned(store: Store, entries: Sequence[JournalEntry]) -> PinnedConfig | None:
    versions = pinned_versions(store, entries)
    return versions[-1] if versions else None


def pin(config: Config, store: Store, text: str, *, now: datetime, request_id: str | None,
        actor: dict[str, str], clock: Clock | None = None) -> PinnedConfig:
    """Write ``text`` as the next pinned version and journal it (under the repository lock,
    through ``append_to_primary``). ``store`` is the primary region's store."""
    from drkit.journal import JournalEntry
    from drkit.repo.journal_writer import append_to_primary
    from drkit.repo.keys import load_trusted_writer_keys, read_repository_id

    trusted = load_trusted_writer_keys(config)
    repository_id = read_repository_id(store, trusted)
    current = latest_pinned(store, journal_entries(store, repository_id, trusted))
    # Numbers continue after any object already there (an unjournaled leftover of a crash
    # keeps its name; create-only objects can't be reused).
    existing = [n for n in (_number_of(i.key) for i in store.list(CONFIG_PREFIX)) if n]
    number = max(existing, default=0) + 1
    sha = hashlib.sha256(text.encode()).hexdigest()
    doc = {"format": PIN_FORMAT, "version": 1, "number": number, "toml": text, "sha256": sha,
           "previous": current.sha256 if current else None, "applied": utc_iso(now),
           "request": request_id, **actor}
    key = f"{CONFIG_PREFIX}{number:06d}.json"
    try:
        info = store.put(key, canonical_json(doc))
    except ObjectExists:
        raise IntegrityError(f"{store.url}: pinned config {number} appeared concurrently; "
                             "run the command again") from None
    append_to_primary(config, [JournalEntry.from_info(info)], now=now, clock=clock)
    return PinnedConfig(number, text, sha, doc)


# -- what weakens a configuration -------------------------------------------------------------
def _table(raw: Any, name: str) -> dict[str, Any]:
    value = raw.get(name) if isinstance(raw, dict) else None
    return value if isinstance(value, dict) else {}


def _tables(raw: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in _table(raw, name).items() if isinstance(v, dict)}


def _num(value: Any, default: float = 0.0) -> float:
    # NaN would make every comparison below false (a shortening would go unnoticed) and a
    # huge integer would overflow float(): anything unusable counts as ``default``.
    if number_problem(value, minimum=-MAX_INTEGER, maximum=MAX_INTEGER) is None:
        return float(value)
    return default


#: How much protection a storage class gives a copy: single-zone is the weakest, archive
#: classes are the cold (offline) copies the recovery plan asks for. Moving a region to a
#: lower rank is a downgrade.
STORAGE_CLASS_RANK = {
    "ONEZONE_IA": 0,
    "STANDARD": 1, "STANDARD_IA": 1, "INTELLIGENT_TIERING": 1, "GLACIER_IR": 1,
    "MAZ_STANDARD": 2, "MAZ_STANDARD_IA": 2,
    "GLACIER": 3, "ARCHIVE": 3, "DEEP_ARCHIVE": 3,
}

#: Settings whose change cannot weaken a guarantee (where local files live, pack size).
#: Every other setting drkit does not model below counts as dangerous when changed.
HARMLESS = {("repository", "keys"), ("repository", "cache"), ("repository", "pack_size_mib"),
            ("approval", "registry_file")}


def _leaves(raw: Any, path: tuple[str, ...] = ()) -> Iterable[tuple[tuple[str, ...], Any]]:
    if isinstance(raw, dict):
        for key in sorted(raw):
            yield from _leaves(raw[key], (*path, str(key)))
    else:
        yield path, raw


def _region_changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = []
    old_primary = _table(old, "repository").get("primary")
    new_primary = _table(new, "repository").get("primary")
    if old_primary != new_primary:
        changes.append({"change": "primary-changed", "from": old_primary, "to": new_primary})
    old_regions, new_regions = _tables(old, "regions"), _tables(new, "regions")
    for name in sorted(old_regions):
        before = old_regions[name]
        after = new_regions.get(name)
        if after is None:
            changes.append({"change": "region-removed", "region": name,
                            "url": before.get("url")})
            continue
        if after.get("url") != before.get("url"):
            changes.append({"change": "region-moved", "region": name,
                            "from": before.get("url"), "to": after.get("url")})
        for key in ("retention_days", "lock_days"):
            if _num(after.get(key, 0)) < _num(before.get(key, 0)):
                changes.append({"change": f"{key}-shortened", "region": name,
                                "from": before.get(key, 0), "to": after.get(key, 0)})
        if _num(after.get("max_lag_hours", 26.0)) > _num(before.get("max_lag_hours", 26.0)):
            changes.append({"change": "max_lag_hours-raised", "region": name,
                            "from": before.get("max_lag_hours", 26.0),
                            "to": after.get("max_lag_hours")})
        old_class = str(before.get("storage_class", "STANDARD")).upper()
        new_class = str(after.get("storage_class", "STANDARD")).upper()
        if STORAGE_CLASS_RANK.get(new_class, -1) < STORAGE_CLASS_RANK.get(old_class, -1):
            changes.append({"change": "storage-class-downgraded", "region": name,
                            "from": old_class, "to": new_class})
        for key in sorted(set(before) - {"url", "retention_days", "lock_days",
                                         "max_lag_hours", "storage_class"}):
            if after.get(key) != before.get(key):
                changes.append({"change": "region-setting-changed", "region": name,
                                "key": key})
    return changes


def _source_changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = []
    old_sources, new_sources = _tables(old, "sources"), _tables(new, "sources")
    for name in sorted(old_sources):
        before = old_sources[name]
        after = new_sources.get(name)
        if after is None:
            changes.append({"change": "source-removed", "source": name,
                            "production": bool(before.get("production", False))})
            continue
        if before.get("production") is True and after.get("production") is not True:
            changes.append({"change": "production-removed", "source": name})
        if after.get("path") != before.get("path"):
            kind = "production-path-changed" if before.get("production") is True \
                else "source-path-changed"
            changes.append({"change": kind, "source": name, "from": before.get("path"),
                            "to": after.get("path")})
        added = sorted(set(after.get("exclude", []) or []) - set(before.get("exclude", [])
                                                                  or []))
        if added:
            changes.append({"change": "exclude-added", "source": name, "patterns": added})
        # Anything else about a source (type, database, host, tables...) can make the
        # backups cover less or point at another database: dangerous when changed.
        for key in sorted((set(before) | set(after)) - {"production", "path", "exclude"}):
            if after.get(key) != before.get(key):
                changes.append({"change": "source-changed", "source": name, "key": key})
    return changes


def _verify_changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = []
    old_verify, new_verify = _table(old, "verify"), _table(new, "verify")
    old_keys = set(old_verify.get("writer_keys", []) or [])
    new_keys = set(new_verify.get("writer_keys", []) or [])
    for key in sorted(new_keys - old_keys):
        changes.append({"change": "writer-key-added", "key": key})
    for key in sorted(old_keys - new_keys):
        changes.append({"change": "writer-key-removed", "key": key})
    if old_verify.get("state_dir") != new_verify.get("state_dir"):
        # A verifier pointed at a fresh folder has lost the state that detects rollbacks.
        changes.append({"change": "verify-state-moved", "from": old_verify.get("state_dir"),
                        "to": new_verify.get("state_dir")})
    old_obj, new_obj = _table(old, "objectives"), _table(new, "objectives")
    for key, default in (("rto_minutes", 240.0), ("rpo_hours", 26.0)):
        if _num(new_obj.get(key, default)) > _num(old_obj.get(key, default)):
            changes.append({"change": "objective-relaxed", "key": f"objectives.{key}",
                            "from": old_obj.get(key, default), "to": new_obj.get(key)})
    return changes


def operation_names() -> list[str]:
    """The registered dangerous operations (``operations.OPERATIONS`` is the one list)."""
    from drkit.approval.operations import OPERATIONS

    return sorted(OPERATIONS)


def _approval_changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = []
    old_approval, new_approval = _table(old, "approval"), _table(new, "approval")
    for op in operation_names():
        before_q = _quorum_or_default(old_approval, op)
        after_q = _quorum_or_default(new_approval, op)
        if after_q < before_q:
            changes.append({"change": "quorum-lowered", "operation": op,
                            "from": before_q, "to": after_q})
    before_e = _num(old_approval.get("expiry_hours", DEFAULT_EXPIRY_HOURS),
                    DEFAULT_EXPIRY_HOURS)
    after_e = _num(new_approval.get("expiry_hours", DEFAULT_EXPIRY_HOURS), float("inf"))
    if after_e > before_e:
        changes.append({"change": "expiry-lengthened", "from": before_e, "to": after_e})
    before_s = _num(old_approval.get("max_skew_minutes", DEFAULT_SKEW_MINUTES),
                    DEFAULT_SKEW_MINUTES)
    after_s = _num(new_approval.get("max_skew_minutes", DEFAULT_SKEW_MINUTES), float("inf"))
    if after_s > before_s:
        changes.append({"change": "max_skew-raised", "from": before_s, "to": after_s})
    return changes


def _quorum_or_default(table: dict[str, Any], op: str) -> int:
    try:
        return quorum_from_raw(table, op, where="config")
    except ConfigError:
        return 0  # an invalid quorum is never "at least as strong"; plans refuse it anyway


_MODELLED = {"regions", "sources", "verify", "objectives", "approval"}


def _other_changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Settings outside the sections modelled above ([cloud], [schedule], [ledger], and
    whatever is added later): removing or changing one is dangerous, adding one is not."""
    changes: list[dict[str, Any]] = []
    new_leaves = dict(_leaves({k: v for k, v in new.items() if k not in _MODELLED}))
    for path, value in _leaves({k: v for k, v in old.items() if k not in _MODELLED}):
        if path[:2] in HARMLESS or path == ("repository", "primary"):
            continue
        if path not in new_leaves:
            changes.append({"change": "setting-removed", "key": ".".join(path)})
        elif new_leaves[path] != value:
            changes.append({"change": "setting-changed", "key": ".".join(path)})
    return changes


def dangerous_changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Every way ``new`` weakens ``old`` (two parsed drkit.toml files), in a stable order."""
    return (_region_changes(old, new) + _source_changes(old, new)
            + _verify_changes(old, new) + _approval_changes(old, new)
            + _other_changes(old, new))


def check_approval_section(raw: dict[str, Any], *, where: str) -> None:
    """Refuse an ``[approval]`` table the gate could not use (a quorum of 0, an unknown
    operation name, a negative expiry) before it is ever pinned."""
    problems = approval_problems(_table(raw, "approval"), operation_names())
    if problems:
        raise ConfigError(problems[0][1], file=where, key=problems[0][0])
