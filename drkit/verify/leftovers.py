"""Leftovers of the repository's own interrupted writes, told apart from injected data.

The writer stores a signed intent (``intents/<sha256>``, see ``drkit.repo.formats.Intent``)
before the objects it names. An object that no journal names is a leftover when an
unjournaled intent signed by a trusted writer key for this repository names it with
exactly its size and SHA-256 (the intent itself is a leftover too). Anything else is
injected data. The test is by content, so someone with write access to the bucket but
not the writer key cannot pass their own bytes off as a leftover: at most they can copy
bytes the writer itself signed for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from drkit.clock import parse_iso
from drkit.errors import DrkitError
from drkit.repo.formats import INTENT_PREFIX, Intent, content_key
from drkit.storage.base import ObjectInfo, Store
from drkit.verify.context import stored_sha256


@dataclass
class LeftoverGroup:
    intent: str
    host: str
    time: datetime | None
    keys: list[str]

    def age_hours(self, now: datetime) -> float:
        if self.time is None:
            return 0.0
        return max(0.0, (now - self.time).total_seconds() / 3600)


@dataclass
class Leftovers:
    groups: list[LeftoverGroup] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    #: unlogged objects an intent names with other bytes: why they are not leftovers
    rejected: dict[str, str] = field(default_factory=dict)


def find_leftovers(store: Store, unlogged: dict[str, ObjectInfo], origin: str,
                   trusted: Sequence[Ed25519PublicKey]) -> Leftovers:
    """Classify ``unlogged`` (key -> listing info): which are our own leftovers."""
    out = Leftovers()
    repository_id = origin.removeprefix("drkit:")
    for key in sorted(k for k in unlogged if k.startswith(INTENT_PREFIX + "/")):
        try:
            data = store.get(key)
            intent = Intent.decode(data, trusted, name=key)
        except DrkitError:
            continue  # unreadable or not signed by a trusted writer key: injected
        if intent.repository_id != repository_id or content_key(INTENT_PREFIX, data) != key:
            continue
        try:
            when: datetime | None = parse_iso(intent.time)
        except ValueError:
            when = None
        group = LeftoverGroup(intent=key, host=intent.host, time=when, keys=[key])
        for name, size, sha256 in intent.objects:
            info = unlogged.get(name)
            if info is None or name in out.keys:
                continue  # journaled, never written, or already claimed by another intent
            if info.size != size or _sha256(store, name, info) != sha256:
                out.rejected[name] = f"its bytes differ from what intent {key} names"
                continue
            group.keys.append(name)
        out.groups.append(group)
        out.keys.update(group.keys)
    return out


def _sha256(store: Store, key: str, info: ObjectInfo) -> str | None:
    if info.sha256 is not None:
        return info.sha256
    try:
        return stored_sha256(store, key)
    except DrkitError:
        return None  # cold or gone: cannot be shown to be ours
