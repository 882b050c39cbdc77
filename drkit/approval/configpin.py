"""The configuration pinned in the repository, and which config changes are dangerous.

``drkit config apply NEW.toml`` compares the new file with the last pinned one
(``approval/config/NNNNNN.json``, create-only; the live drkit.toml when nothing is pinned
yet) and needs an approval only for changes that shrink or endanger the backups:

- a region removed, or its URL changed (the old location stops receiving copies);
- ``retention_days`` or ``lock_days`` of a region shortened;
- a source removed;
- a trusted writer key added to ``[verify] writer_keys`` (adding a key);
- an approval quorum lowered, or the expiry lengthened.

Everything else (a new region, a longer retention, a new source) applies at once.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from drkit.approval.policy import DEFAULT_EXPIRY_HOURS, quorum_from_raw
from drkit.canonical import canonical_json
from drkit.clock import utc_iso
from drkit.errors import ConfigError, IntegrityError, ObjectExists
from drkit.numbers import MAX_INTEGER, number_problem, overlong_integer
from drkit.storage.base import Store

CONFIG_PREFIX = "approval/config/"
PIN_FORMAT = "drkit-pinned-config"
OPERATIONS_FOR_QUORUM = ("prune", "delete-object", "config-apply", "approvers",
                         "restore-production", "keys")


@dataclass(frozen=True)
class PinnedConfig:
    number: int
    toml: str
    sha256: str
    doc: dict[str, Any]

    @property
    def raw(self) -> dict[str, Any]:
        return tomllib.loads(self.toml)


def parse_toml(text: str, *, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=where) from None
    except ValueError:  # an integer of more than 4,300 digits
        raise ConfigError(f"not usable TOML: {overlong_integer(text)}", file=where) from None


def latest_pinned(store: Store) -> PinnedConfig | None:
    keys = sorted(i.key for i in store.list(CONFIG_PREFIX))
    latest: PinnedConfig | None = None
    previous: str | None = None
    for index, key in enumerate(keys, start=1):
        if key != f"{CONFIG_PREFIX}{index:06d}.json":
            raise IntegrityError(f"{store.url}: {key}: unexpected pinned-config object "
                                 "(a version is missing)")
        data = store.get(key)
        try:
            doc = json.loads(data)
            text = str(doc["toml"])
        except (ValueError, KeyError, TypeError):
            raise IntegrityError(f"{store.url}: {key}: damaged pinned config") from None
        sha = hashlib.sha256(text.encode()).hexdigest()
        if doc.get("format") != PIN_FORMAT or doc.get("sha256") != sha \
                or doc.get("previous") != previous:
            raise IntegrityError(f"{store.url}: {key}: pinned config was edited or replaced")
        latest = PinnedConfig(index, text, sha, doc)
        previous = sha
    return latest


def pin(store: Store, text: str, *, now: datetime, request_id: str | None,
        actor: dict[str, str]) -> PinnedConfig:
    current = latest_pinned(store)
    number = 1 if current is None else current.number + 1
    sha = hashlib.sha256(text.encode()).hexdigest()
    doc = {"format": PIN_FORMAT, "version": 1, "number": number, "toml": text, "sha256": sha,
           "previous": current.sha256 if current else None, "applied": utc_iso(now),
           "request": request_id, **actor}
    try:
        store.put(f"{CONFIG_PREFIX}{number:06d}.json", canonical_json(doc))
    except ObjectExists:
        raise IntegrityError(f"{store.url}: pinned config {number} appeared concurrently; "
                             "run the command again") from None
    return PinnedConfig(number, text, sha, doc)


def _regions(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    regions = raw.get("regions", {})
    return {k: v for k, v in regions.items() if isinstance(v, dict)} \
        if isinstance(regions, dict) else {}


def _num(value: Any) -> float:
    # NaN would make every comparison below false (a shortening would go unnoticed) and a
    # huge integer would overflow float(): anything unusable counts as 0.
    if number_problem(value, minimum=-MAX_INTEGER, maximum=MAX_INTEGER) is None:
        return float(value)
    return 0.0


def dangerous_changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """The removals and shortenings between two parsed drkit.toml files, in a stable order."""
    changes: list[dict[str, Any]] = []
    old_regions, new_regions = _regions(old), _regions(new)
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
    old_sources = old.get("sources", {}) if isinstance(old.get("sources"), dict) else {}
    new_sources = new.get("sources", {}) if isinstance(new.get("sources"), dict) else {}
    for name in sorted(set(old_sources) - set(new_sources)):
        changes.append({"change": "source-removed", "source": name})
    old_keys = set((old.get("verify") or {}).get("writer_keys", []) or [])
    new_keys = set((new.get("verify") or {}).get("writer_keys", []) or [])
    for key in sorted(new_keys - old_keys):
        changes.append({"change": "writer-key-added", "key": key})
    old_approval = old.get("approval") if isinstance(old.get("approval"), dict) else {}
    new_approval = new.get("approval") if isinstance(new.get("approval"), dict) else {}
    for op in OPERATIONS_FOR_QUORUM:
        try:
            before_q = quorum_from_raw(old_approval or {}, op, where="pinned")
            after_q = quorum_from_raw(new_approval or {}, op, where="new")
        except ConfigError:
            continue
        if after_q < before_q:
            changes.append({"change": "quorum-lowered", "operation": op,
                            "from": before_q, "to": after_q})
    before_e = _num((old_approval or {}).get("expiry_hours", DEFAULT_EXPIRY_HOURS))
    after_e = _num((new_approval or {}).get("expiry_hours", DEFAULT_EXPIRY_HOURS))
    if after_e > before_e:
        changes.append({"change": "expiry-lengthened", "from": before_e, "to": after_e})
    return changes


def pinned_quorum(store: Store, operation: str) -> int:
    """The quorum the pinned configuration asks for (1 when nothing is pinned)."""
    current = latest_pinned(store)
    if current is None:
        return 1
    raw = current.raw.get("approval", {})
    try:
        return quorum_from_raw(raw if isinstance(raw, dict) else {}, operation,
                               where="pinned config")
    except ConfigError:
        return 1
