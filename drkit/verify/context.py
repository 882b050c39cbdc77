"""What replicate and verify share: trusted keys, the repository origin, content checks."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from enum import Enum

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from drkit.config import Config
from drkit.errors import DrkitError, InputError
from drkit.journal import JournalEntry, LogView
from drkit.storage.base import ObjectInfo, Store

#: Key prefixes of the store that other subsystems own: the audit log (its own journal
#: under ``audit/``) and the approval records (signed documents under ``approval/``). They
#: are not leaves of the repository journal, so the object check leaves them to
#: ``drkit.verify.records``, which checks them against their owners' rules.
#: The exception is the approver registry: its versions are journaled, replicated and
#: verified like objects.
OTHER_AREAS = ("audit/", "approval/")

#: The approver registry (``drkit.approval.registry``): each version is anchored in the
#: repository journal like any object, so a version missing or replaced in a region is
#: CRITICAL, and a registry object the journal does not anchor is CRITICAL too (whoever
#: put it there by hand wanted it to decide who approves).
REGISTRY_PREFIX = "approval/registry/"
_REGISTRY_CHECKS = {"object-missing": "approver-registry-missing",
                    "object-changed": "approver-registry-replaced"}


def check_name(key: str, check: str) -> str:
    """The finding name for ``check`` on ``key`` (registry objects get their own)."""
    return _REGISTRY_CHECKS.get(check, check) if key.startswith(REGISTRY_PREFIX) else check


def trusted_writer_keys(config: Config) -> list[Ed25519PublicKey]:
    """The writer public keys checkpoints must be signed by (keys folder + config)."""
    from drkit.repo.keys import load_trusted_writer_keys

    return load_trusted_writer_keys(config)


def repository_origin(stores: Sequence[tuple[str, Store]],
                      trusted: Sequence[Ed25519PublicKey]) -> str:
    """The journal origin from the first region whose signed ``config`` object verifies.

    The primary comes first; the others are a fallback so that a region can still be
    verified when the primary has been destroyed.
    """
    from drkit.repo.keys import read_repository_config

    problems = []
    for name, store in stores:
        try:
            return read_repository_config(store, trusted).origin
        except DrkitError as exc:
            problems.append(f"{name}: {exc}")
    raise InputError("cannot determine the repository id from any region: "
                     + "; ".join(problems))


class Match(Enum):
    SAME = "same"
    DIFFERENT = "different"
    UNKNOWN = "unknown"  # the listing cannot tell; the bytes must be hashed


def listing_match(entry: JournalEntry, info: ObjectInfo) -> Match:
    """Compare a logged entry with what a listing or head says, without reading data."""
    if info.size != entry.size:
        return Match.DIFFERENT
    if info.sha256 is not None:
        return Match.SAME if info.sha256 == entry.sha256 else Match.DIFFERENT
    if info.md5 is not None and entry.md5 is not None:
        return Match.SAME if info.md5 == entry.md5 else Match.DIFFERENT
    return Match.UNKNOWN


def stored_sha256(store: Store, key: str) -> str:
    """SHA-256 of a stored object: from ``head`` where the backend computes or keeps it
    (a local folder hashes the file), otherwise by reading it (NeedsThaw for cold data)."""
    info = store.head(key)
    if info.sha256 is not None:
        return info.sha256
    return hashlib.sha256(store.get(key)).hexdigest()


def lag_hours(primary: LogView, region_size: int, now: datetime) -> float:
    """Hours since the oldest primary checkpoint the region does not have yet (0 if none)."""
    for _key, cp in primary.checkpoints:
        if cp.size > region_size and cp.time is not None:
            return max(0.0, (now - cp.time).total_seconds() / 3600)
    return 0.0
