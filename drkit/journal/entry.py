"""``JournalEntry``: one leaf of the journal, in a versioned canonical byte form.

The leaf bytes are the canonical JSON (``drkit.canonical``) of::

    {"v": 1, "kind": "object"|"tombstone"|"external", "key": ..., "size": ...,
     "sha256": ..., "md5": ... (optional), "note": {...} (optional)}

* ``object``: an object the repository wrote, at ``key`` in every region, with the size and
  SHA-256 (hex) of its stored bytes; ``md5`` (hex) lets S3/COS listings prove content.
* ``tombstone``: an approved deletion of ``key`` (size/sha256 of what was deleted) in the
  regions ``note["regions"]`` names; from then on the object is expected to be absent
  there. ``note`` carries the proof of approval, which ``drkit.approval.proof`` checks:
  without a valid one the tombstone is ignored (and verify reports it).
* ``external``: something outside the store (a cloud snapshot id, say); ``key`` names it,
  and it is not looked for in any bucket.

Parsing is strict: bytes that are not exactly the canonical form of a valid entry are
refused, so one entry has one leaf hash.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from drkit.canonical import canonical_json
from drkit.errors import IntegrityError, InvalidObjectKey
from drkit.storage.base import ObjectInfo, validate_key

ENTRY_VERSION = 1
KINDS = ("object", "tombstone", "external")
JOURNAL_PREFIX = "journal/"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class JournalEntry:
    kind: str
    key: str
    size: int
    sha256: str
    md5: str | None = None
    note: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise ValueError(f"invalid journal entry for {self.key!r}: {problem}")

    def _problem(self) -> str | None:
        if self.kind not in KINDS:
            return f"unknown kind {self.kind!r}"
        if not isinstance(self.key, str) or not self.key or _CONTROL.search(self.key):
            return "key is empty or has control characters"
        if self.kind != "external":
            try:
                validate_key(self.key)
            except InvalidObjectKey as exc:
                return str(exc)
            if self.key.startswith(JOURNAL_PREFIX):
                return "keys under journal/ are the journal's own and are not logged"
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            return "size must be a non-negative integer"
        if not isinstance(self.sha256, str) or not _HEX64.match(self.sha256):
            return "sha256 must be 64 lowercase hex digits"
        if self.md5 is not None and (not isinstance(self.md5, str) or not _HEX32.match(self.md5)):
            return "md5 must be 32 lowercase hex digits"
        if self.note is not None and not isinstance(self.note, dict):
            return "note must be a JSON object"
        return None

    @classmethod
    def from_info(cls, info: ObjectInfo) -> JournalEntry:
        """An ``object`` entry for what a store reported after ``put``."""
        if info.sha256 is None:
            raise ValueError(f"{info.key}: no sha256 known; cannot log it")
        return cls(kind="object", key=info.key, size=info.size, sha256=info.sha256,
                   md5=info.md5)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"v": ENTRY_VERSION, "kind": self.kind, "key": self.key,
                                "size": self.size, "sha256": self.sha256}
        if self.md5 is not None:
            data["md5"] = self.md5
        if self.note is not None:
            data["note"] = self.note
        return data

    def to_bytes(self) -> bytes:
        """Canonical leaf bytes (hashed as an RFC 6962 leaf)."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> JournalEntry:
        """Parse leaf bytes; IntegrityError unless they are a canonical, valid entry."""
        try:
            raw = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise IntegrityError("journal entry is not valid JSON") from None
        if not isinstance(raw, dict):
            raise IntegrityError("journal entry is not a JSON object")
        if raw.get("v") != ENTRY_VERSION:
            raise IntegrityError(f"journal entry has unsupported version {raw.get('v')!r}")
        allowed = {"v", "kind", "key", "size", "sha256", "md5", "note"}
        extra = sorted(set(raw) - allowed)
        if extra:
            raise IntegrityError(f"journal entry has unknown field {extra[0]!r}")
        try:
            entry = cls(kind=raw.get("kind"), key=raw.get("key"),  # type: ignore[arg-type]
                        size=raw.get("size"), sha256=raw.get("sha256"),  # type: ignore[arg-type]
                        md5=raw.get("md5"), note=raw.get("note"))
        except ValueError as exc:
            raise IntegrityError(str(exc)) from None
        if entry.to_bytes() != data:
            raise IntegrityError(f"journal entry for {entry.key!r} is not in canonical form")
        return entry


def tombstone_regions(entry: JournalEntry) -> tuple[str, ...] | None:
    """The regions whose copy a tombstone removes; None when it names none (a cloud-snapshot
    expiry, which is not a copy in any region)."""
    note = entry.note or {}
    regions = note.get("regions")
    if not isinstance(regions, list):
        return None
    return tuple(r for r in regions if isinstance(r, str))


def live_entries(entries: Sequence[JournalEntry], kind: str = "object", *,
                 region: str | None = None, ignore: Collection[int] = ()
                 ) -> dict[str, JournalEntry]:
    """Entries of ``kind`` the log says exist now in ``region``, by key: logged, and not
    removed by a later tombstone for that region.

    A tombstone counts only with its proof, which this layer cannot check: the caller
    passes the positions of unproven tombstones as ``ignore`` (see
    ``drkit.approval.proof``). A tombstone that names regions removes the object only in
    those; ``region=None`` (cloud snapshots, which live in no region) honours every
    tombstone that names no region.
    """
    live: dict[str, JournalEntry] = {}
    for index, entry in enumerate(entries):
        if entry.kind == kind:
            live[entry.key] = entry
        elif entry.kind == "tombstone" and index not in ignore:
            names = tombstone_regions(entry)
            if names is None or region in names:
                live.pop(entry.key, None)
    return live
