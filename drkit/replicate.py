"""Copy the repository to every non-primary region: ``drkit replicate``.

For each target region, in this order (so a kill at any point leaves a region that the
next run completes, and never a journal that names objects the region lacks):

0. a region without a ``region-identity`` object gets one (signed by the writer);
1. list the region once; every object the region owes by the primary's verified journal
   (``object`` entries less those with a proven tombstone naming this region) is checked
   against it: present with the same size and checksum -> skipped; present with
   *different* bytes -> a finding, never overwritten; absent -> read from the primary,
   checked against the journal's SHA-256, written create-only with the region's storage
   class and retain-until (now + lock_days, COMPLIANCE where the bucket has object lock),
   then re-checked with ``head`` (or read back) against the journal's SHA-256;
2. the audit and approval records (``RECORD_PREFIXES``), create-only: they prove the
   tombstones;
3. only if every data object is in place: the journal's batch objects, then its signed
   checkpoints, oldest first (STANDARD class so verify can read them without a thaw).
   Records go first so that a region's newest checkpoint vouches for every record the
   primary held at its time (``drkit.verify.records`` relies on it).

Copies run in a thread pool (boto3 clients are thread-safe; SDK calls and hashing release
the GIL). Objects present in the region are checked against listing checksums where the
listing has them; otherwise only entries the region's own journal does not yet cover are
hashed (those the region's journal covers are ``drkit verify``'s job).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from drkit import faults
from drkit.approval.proof import live_objects
from drkit.config import RegionConfig
from drkit.errors import (
    BackendUnavailable,
    DrkitError,
    IntegrityError,
    ObjectExists,
    StorageError,
)
from drkit.journal import JournalEntry, LogView, read_log
from drkit.progress import NULL_PROGRESS, Progress
from drkit.repo.retention import always_standard, journaled_until, later
from drkit.storage.base import ObjectInfo, Store
from drkit.verify.context import (
    Match,
    lag_hours,
    listing_match,
    stored_sha256,
)
from drkit.verify.findings import Finding

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 8


@dataclass
class RegionReplication:
    region: str
    objects_copied: int = 0
    bytes_copied: int = 0
    objects_present: int = 0
    journal_objects_copied: int = 0
    records_copied: int = 0
    size_before: int = 0
    size_after: int = 0
    primary_size: int = 0
    lag_hours: float = 0.0
    retention: str = "none"
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"region": self.region, "objects_copied": self.objects_copied,
                "bytes_copied": self.bytes_copied, "objects_present": self.objects_present,
                "journal_objects_copied": self.journal_objects_copied,
                "records_copied": self.records_copied,
                "log_size_before": self.size_before, "log_size_after": self.size_after,
                "primary_log_size": self.primary_size,
                "lag_entries": self.primary_size - self.size_after,
                "lag_hours": round(self.lag_hours, 3), "retention": self.retention,
                "findings": [f.to_dict() for f in self.findings]}


def retention_mode(store: Store, region: RegionConfig) -> str:
    """How retain-until can be applied in this region: "object-lock", "sidecar" or "none"."""
    if region.lock_days <= 0:
        return "none"
    if region.url.scheme == "file":
        return "sidecar"
    try:
        settings = store.bucket_settings()
    except StorageError as exc:
        log.warning("%s: cannot read bucket settings (%s); writing without retain-until",
                    store.url, exc)
        return "none"
    if not settings.object_lock_enabled:
        return "none"
    if region.url.scheme == "cos" and (settings.default_retention_days or 0) < region.lock_days:
        # COS has no per-object retention; its bucket default must already reach it.
        return "none"
    return "object-lock"


class _Copier:
    def __init__(self, primary: Store, target: Store, region: RegionConfig,
                 result: RegionReplication, retain_until: datetime | None,
                 advance: Callable[[float], None]) -> None:
        self.primary = primary
        self.target = target
        self.region = region
        self.result = result
        self.retain_until = retain_until
        self.advance = advance
        self.lock = threading.Lock()

    def finding(self, severity: str, check: str, message: str, key: str = "",
                expected: str = "", found: str = "") -> None:
        with self.lock:
            self.result.findings.append(Finding(severity, self.region.name, check, message,
                                                key, expected, found))

    def check_existing(self, entry: JournalEntry, info: ObjectInfo, *, hash_unknown: bool
                       ) -> bool:
        """True if the region's object is the logged one; a finding if it differs."""
        match = listing_match(entry, info)
        if match is Match.UNKNOWN and hash_unknown:
            try:
                match = (Match.SAME if stored_sha256(self.target, entry.key) == entry.sha256
                         else Match.DIFFERENT)
            except DrkitError as exc:
                log.info("%s: %s: cannot hash (%s); size matched", self.target.url,
                         entry.key, exc)
                match = Match.SAME
        if match is Match.DIFFERENT:
            self.finding("critical", "replica-differs",
                         "region holds different bytes under a logged key; not overwritten",
                         entry.key, f"{entry.size} B sha256 {entry.sha256[:16]}",
                         f"{info.size} B {(info.sha256 or info.md5 or '?')[:16]}")
            return False
        with self.lock:
            self.result.objects_present += 1
        return True

    def copy(self, entry: JournalEntry, storage_class: str | None) -> bool:
        try:
            data = self.primary.get(entry.key)
        except BackendUnavailable:
            raise
        except StorageError as exc:  # missing or archived on the primary
            self.finding("high", "primary-unreadable",
                         f"cannot read the object from the primary: {exc}", entry.key)
            return False
        if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
            self.finding("critical", "primary-differs",
                         "primary's object does not match its journal; not copied",
                         entry.key, entry.sha256[:16], hashlib.sha256(data).hexdigest()[:16])
            return False
        # Never below what the journal promised this region's copy (drkit.repo.retention).
        retain = (later(self.retain_until, journaled_until(entry, self.region.name))
                  if self.retain_until is not None else None)
        try:
            self.target.put(entry.key, data, storage_class=storage_class, retain_until=retain)
            faults.point("replicate.put.after")
        except ObjectExists:
            # Appeared since the listing (another replicate run): check, never overwrite.
            return self.check_existing(entry, self.target.head(entry.key), hash_unknown=True)
        except BackendUnavailable:
            raise
        except StorageError as exc:  # refused: storage class, retention, permissions
            self.finding("high", "copy-failed", f"cannot write the copy: {exc}", entry.key)
            return False
        got = stored_sha256(self.target, entry.key)
        if got != entry.sha256:
            self.finding("critical", "copy-corrupted",
                         "object read back after copy does not match the journal",
                         entry.key, entry.sha256[:16], got[:16])
            return False
        with self.lock:
            self.result.objects_copied += 1
            self.result.bytes_copied += len(data)
        self.advance(len(data))
        return True


def replicate_region(primary: Store, primary_view: LogView, target: Store,
                     region: RegionConfig, *, trusted: Sequence[Ed25519PublicKey],
                     now: datetime, progress: Progress = NULL_PROGRESS,
                     workers: int = DEFAULT_WORKERS,
                     signer: Ed25519PrivateKey | None = None) -> RegionReplication:
    """Bring one region up to the primary's verified journal. Raises StorageError if the
    region cannot be reached; differences are findings in the result. With ``signer`` (the
    writer key) a region without an identity object gets one."""
    origin = primary_view.origin
    result = RegionReplication(region=region.name, primary_size=primary_view.size)
    _ensure_identity(target, region, origin.removeprefix("drkit:"), signer, trusted, now,
                     result)
    target.clean_temp_files()  # of an earlier replicate that was killed
    region_view = read_log(target, origin, trusted)
    result.size_before = region_view.size
    listing = {info.key: info for info in target.list("")}
    mode = retention_mode(target, region)
    result.retention = mode
    retain = now + timedelta(days=region.lock_days) if mode != "none" else None
    covered = {e.key for e in region_view.entries}

    to_copy: list[JournalEntry] = []
    to_check: list[tuple[JournalEntry, ObjectInfo]] = []
    # What this region owes: tombstones count only with their proof (checked against the
    # primary's approval records) and only for the regions they name.
    owed = live_objects(primary, origin.removeprefix("drkit:"), primary_view.entries,
                        region=region.name)
    for key, entry in owed.items():
        info = listing.get(key)
        if info is None:
            to_copy.append(entry)
        else:
            to_check.append((entry, info))

    task = progress.task(f"replicate {region.name}", total=sum(e.size for e in to_copy),
                         unit="B")
    copier = _Copier(primary, target, region, result, retain, task.advance)
    ok = True
    try:
        with ThreadPoolExecutor(max(1, workers), thread_name_prefix=f"repl-{region.name}") as ex:
            checks = [ex.submit(copier.check_existing, entry, info,
                                hash_unknown=entry.key not in covered)
                      for entry, info in to_check]
            copies = [ex.submit(copier.copy, entry,
                                "STANDARD" if always_standard(entry.key)
                                else region.storage_class)
                      for entry in to_copy]
            for fut in checks + copies:
                ok = fut.result() and ok
    finally:
        task.close()
    # The approval records go first: the journal's tombstones are proven by them, so a
    # region never holds a tombstone whose proof it cannot check; and a region whose newest
    # checkpoint has time T then holds every audit and approval record the primary had at T,
    # which verify relies on.
    # Journaled objects under approval/ (the pinned configs) were copied above as data.
    _copy_records(primary, target, listing, copier,
                  journaled={e.key for e in primary_view.entries if e.kind == "object"})
    if ok:
        _copy_journal(primary, primary_view, target, listing, copier)
    else:
        copier.finding("high", "journal-not-copied",
                       "journal not copied because data objects are missing or differ")
    after = read_log(target, origin, trusted)
    result.size_after = after.size
    result.lag_hours = lag_hours(primary_view, after.size, now)
    return result


def _ensure_identity(target: Store, region: RegionConfig, repository_id: str,
                     signer: Ed25519PrivateKey | None, trusted: Sequence[Ed25519PublicKey],
                     now: datetime, result: RegionReplication) -> None:
    from drkit.repo.region_identity import check_identity, ensure_identity

    try:
        if signer is None:
            check_identity(target, trusted, region=region.name, repository_id=repository_id)
        else:
            ensure_identity(target, signer, trusted, region=region.name,
                            repository_id=repository_id, now=now)
    except IntegrityError as exc:
        result.findings.append(Finding("high", region.name, "region-identity",
                                       str(exc).split(": ", 1)[-1], "region-identity"))


def _copy_journal(primary: Store, view: LogView, target: Store, listing: dict[str, ObjectInfo],
                  copier: _Copier) -> None:
    keys = list(view.batch_keys) + [key for key, _cp in view.checkpoints]
    for key in keys:
        data = primary.get(key)
        existing = listing.get(key)
        if existing is not None:
            if existing.size != len(data) or target.get(key) != data:
                copier.finding("critical", "replica-differs",
                               "region's journal object differs from the primary's; "
                               "not overwritten", key)
            continue
        try:
            target.put(key, data, storage_class="STANDARD", retain_until=copier.retain_until)
            faults.point("replicate.journal.after")
        except ObjectExists:
            if target.get(key) != data:
                copier.finding("critical", "replica-differs",
                               "region's journal object differs from the primary's", key)
            continue
        if target.get(key) != data:
            copier.finding("critical", "copy-corrupted",
                           "journal object read back after copy differs", key)
            continue
        copier.result.journal_objects_copied += 1


#: Self-authenticating records kept beside the repository: the audit log (its own Merkle
#: log with per-host signed checkpoints) and approval requests, decisions and registry
#: versions (signed documents). They are not leaves of the repository journal, so they are
#: copied by prefix, create-only, so that losing the primary does not lose who did and
#: approved what. ``drkit audit verify --region`` checks the copies.
RECORD_PREFIXES = ("audit/", "approval/")


def _copy_records(primary: Store, target: Store, listing: dict[str, ObjectInfo],
                  copier: _Copier, journaled: set[str] | frozenset[str] = frozenset()
                  ) -> None:
    for prefix in RECORD_PREFIXES:
        for info in primary.list(prefix):
            if info.key in journaled:
                continue
            existing = listing.get(info.key)
            if existing is not None:
                if existing.size != info.size:
                    copier.finding("critical", "replica-differs",
                                   "region's record differs in size from the primary's; "
                                   "not overwritten", info.key, f"{info.size} B",
                                   f"{existing.size} B")
                continue
            data = primary.get(info.key)
            try:
                target.put(info.key, data, storage_class="STANDARD",
                           retain_until=copier.retain_until)
            except ObjectExists:
                if target.get(info.key) != data:
                    copier.finding("critical", "replica-differs",
                                   "region's record differs from the primary's", info.key)
                continue
            except BackendUnavailable:
                raise
            except StorageError as exc:
                copier.finding("high", "copy-failed", f"cannot write the record: {exc}",
                               info.key)
                continue
            if stored_sha256(target, info.key) != hashlib.sha256(data).hexdigest():
                copier.finding("critical", "copy-corrupted",
                               "record read back after copy differs", info.key)
                continue
            copier.result.records_copied += 1


def replicate(primary: Store, targets: Sequence[tuple[RegionConfig, Store]], *, origin: str,
              trusted: Sequence[Ed25519PublicKey], now: datetime,
              progress: Progress = NULL_PROGRESS, workers: int = DEFAULT_WORKERS,
              signer: Ed25519PrivateKey | None = None
              ) -> tuple[LogView, list[RegionReplication]]:
    """Replicate the primary's verified journal to each target region.

    Raises IntegrityError when the primary's own journal does not verify (nothing is
    copied from a tampered primary). A region that cannot be reached becomes a finding
    and does not stop the others.
    """
    view = read_log(primary, origin, trusted)
    view.raise_for_errors(primary.url)
    if view.checkpoint is None:
        raise IntegrityError(f"{primary.url}: the primary has no journal yet (nothing to copy)")
    results = []
    for region, store in targets:
        try:
            results.append(replicate_region(primary, view, store, region, trusted=trusted,
                                            now=now, progress=progress, workers=workers,
                                            signer=signer))
        except StorageError as exc:
            res = RegionReplication(region=region.name, primary_size=view.size)
            res.findings.append(Finding("critical", region.name, "region-unavailable",
                                        f"cannot replicate: {exc}"))
            results.append(res)
    return view, results
