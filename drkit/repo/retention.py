"""The retention each copy of an object was promised, journaled with the object.

A local region emulates Object Lock with a metadata sidecar (``storage/local.py``) that
anyone with write access to the folder can edit or delete. So that such an edit is seen
and cannot open an early deletion, the repository writer journals, in the ``note`` of each
``object`` entry it writes, the storage class and retain-until every configured region's
copy must have::

    "note": {"retention": {"beijing": {"class": "STANDARD"},
                           "shanghai": {"class": "STANDARD_IA",
                                        "until": "2036-11-20T02:30:00Z"}}}

``until`` is the write time plus the region's ``lock_days`` (absent when it is 0); a
replica's copy, made later, is written with at least that (``drkit replicate`` takes the
later of its own now + ``lock_days`` and the journaled value). Entries written before this
note existed, leftovers adopted from an interrupted run and regions added later carry
none: for them only the sidecar's presence and readability can be checked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from drkit.clock import parse_iso, utc_iso
from drkit.config import RegionConfig
from drkit.journal import JournalEntry

NOTE_KEY = "retention"
def always_standard(key: str) -> bool:
    """Objects every reader needs without a thaw stay STANDARD in every region: the
    repository ``config`` and the journaled control objects under ``approval/`` (the pinned
    configuration and the approver registry versions, which tombstone proofs and the gate
    read). The journal itself is always STANDARD too."""
    return key == "config" or key.startswith("approval/")


@dataclass(frozen=True)
class Promise:
    """What one region's copy of an object was promised when it was journaled."""

    storage_class: str | None
    until: datetime | None


def retention_note(regions: Iterable[RegionConfig], now: datetime, *,
                   key: str = "") -> dict[str, Any]:
    """The ``note`` for an object written at ``now``: each region's class and until."""
    out: dict[str, Any] = {}
    for region in regions:
        item: dict[str, Any] = {"class": "STANDARD" if always_standard(key)
                                and not region.primary else region.storage_class}
        if region.lock_days > 0:
            item["until"] = utc_iso(now + timedelta(days=region.lock_days))
        out[region.name] = item
    return {NOTE_KEY: out}


def promise(entry: JournalEntry, region: str) -> Promise | None:
    """The journaled promise for ``region``'s copy, or None when nothing was journaled."""
    note = entry.note if entry.kind == "object" else None
    table = note.get(NOTE_KEY) if isinstance(note, dict) else None
    item = table.get(region) if isinstance(table, dict) else None
    if not isinstance(item, dict):
        return None
    until = item.get("until")
    try:
        parsed = parse_iso(str(until)) if until else None
    except ValueError:
        parsed = None
    cls = item.get("class")
    return Promise(str(cls) if cls else None, parsed)


def journaled_until(entry: JournalEntry | None, region: str) -> datetime | None:
    if entry is None:
        return None
    p = promise(entry, region)
    return p.until if p is not None else None


def later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)
