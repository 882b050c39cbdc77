"""Retention of a local region's objects against what the journal promised.

A local folder keeps each object's storage class and retain-until in a metadata sidecar
(``drkit.storage.local``), the stand-in for Object Lock, which anyone who can write the
folder can edit. The journal records what each region's copy was promised
(``drkit.repo.retention``), so for every live logged object of a local region:

* the sidecar must exist (``retention-metadata-missing``, HIGH) and be readable, and
  describe this object (size and SHA-256 as logged) (``retention-metadata-invalid``, HIGH);
* its retain-until must not be earlier than the journaled one, nor absent when one was
  journaled (``retention-shortened``, HIGH: the object could be deleted early);
* in the primary, its storage class must be the journaled one (``retention-class``,
  medium; replicas are held to the configured class by the ``storage-class`` check).

S3 and COS are not checked here: their retention is enforced by the service (COMPLIANCE
object lock cannot be shortened) and the bucket guardrails check its default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drkit.clock import parse_iso, utc_iso
from drkit.config import RegionConfig
from drkit.errors import IntegrityError
from drkit.journal import JournalEntry, LogView, live_entries
from drkit.repo.retention import promise
from drkit.storage.base import Store
from drkit.storage.local import LocalStore

#: What reading one object's sidecar gave: its content, None (no sidecar) or the error.
Sidecar = dict[str, Any] | None | IntegrityError


def read_sidecar(store: LocalStore, key: str) -> Sidecar:
    try:
        return store.sidecar(key)
    except IntegrityError as exc:
        return exc


def check_retention(report: Any, store: Store, region: RegionConfig, view: LogView,
                    unproven: set[int] | None = None,
                    sidecars: Mapping[str, Sidecar] | None = None) -> None:
    """Add retention findings for a local region to ``report`` (a RegionReport): for every
    object this region still owes (proven tombstones naming it excepted).

    ``sidecars`` are the sidecars of the objects present, already read (by the object
    check, which reads each once); without it they are read here."""
    if not isinstance(store, LocalStore):
        return
    live = live_entries(view.entries, region=region.name, ignore=unproven or set())
    for key, entry in sorted(live.items()):
        if sidecars is not None:
            if key not in sidecars:
                continue  # reported as object-missing
            meta = sidecars[key]
        elif not (store.root / key).is_file():
            continue  # reported as object-missing
        else:
            meta = read_sidecar(store, key)
        check_sidecar(report, region, key, entry, meta)


def check_sidecar(report: Any, region: RegionConfig, key: str, entry: JournalEntry,
                  meta: Sidecar) -> None:
    """The retention findings of one present object of a local region."""
    if isinstance(meta, IntegrityError):
        report.add("high", "retention-metadata-invalid",
                   f"retention metadata (sidecar) cannot be read: {meta}", key,
                   "a readable sidecar", "unreadable")
        return
    if meta is None:
        report.add("high", "retention-metadata-missing",
                   "retention metadata (sidecar) is missing: the object's retain-until "
                   "is gone", key, "a sidecar", "absent")
        return
    if meta.get("size") != entry.size or meta.get("sha256") != entry.sha256:
        report.add("high", "retention-metadata-invalid",
                   "retention metadata (sidecar) does not describe the logged object "
                   "(edited)", key, f"{entry.size} B sha256 {entry.sha256[:16]}",
                   f"{meta.get('size')} B sha256 {str(meta.get('sha256'))[:16]}")
        return
    promised = promise(entry, region.name)
    if promised is None:
        return  # logged before retention was journaled, or region added later
    raw = meta.get("retain_until")
    found = parse_iso(str(raw)) if raw else None
    if promised.until is not None and (found is None or found < promised.until):
        report.add("high", "retention-shortened",
                   "retain-until is earlier than the journal promised: the copy could "
                   "be deleted before its retention ends", key,
                   utc_iso(promised.until), utc_iso(found) if found else "none")
    if region.primary and promised.storage_class is not None:
        cls = str(meta.get("storage_class") or "STANDARD")
        if cls != promised.storage_class:
            report.add("medium", "retention-class",
                       "storage class differs from the journaled one", key,
                       promised.storage_class, cls)
