"""``drkit verify``: prove that each region still holds everything ever logged, unchanged.

Per region, every step runs and adds findings; nothing stops at the first problem:

1. the region's journal: every checkpoint's signature against the trusted writer keys,
   the batch chain, the root recomputed from the entries, older checkpoints agreeing with
   the newest (``drkit.journal.read_log``);
2. consistency with this host's trusted state (rollback/truncation, fork) and with the
   primary's log (fork, or a region ahead of a rolled-back primary), and replication lag
   against ``max_lag_hours`` using the checkpoints' signed times;
3. every live logged object exists with the logged size and content: S3/COS listings
   carry the MD5 ETag, so one LIST request per 1,000 objects proves content; objects the
   listing cannot prove (local folders, whose metadata sidecar is not trustworthy, and
   multipart uploads) are hashed (``head`` hashes a local file; otherwise a read);
   ``--read-data`` additionally reads a random sample (or all) and hashes the bytes;
4. objects in the bucket that no log names are injected data (objects the primary has
   logged but this region's journal does not cover yet are replication in progress);
5. storage class as configured (non-primary regions) and the bucket guardrails
   (``drkit.verify.guardrails``) for S3 and COS.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from drkit import faults
from drkit.config import RegionConfig
from drkit.errors import NeedsThaw, ObjectNotFound, StorageError
from drkit.journal import JOURNAL_PREFIX, JournalEntry, LogView, live_entries, read_log
from drkit.journal.merkle import RootBuilder
from drkit.progress import NULL_PROGRESS, Progress
from drkit.repo.region_identity import IDENTITY_KEY
from drkit.repo.retention import always_standard
from drkit.storage.base import ObjectInfo, Store
from drkit.storage.local import LocalStore
from drkit.verify.anchors import Anchor, check_anchor
from drkit.verify.context import (
    OTHER_AREAS,
    REGISTRY_PREFIX,
    Match,
    check_name,
    lag_hours,
    listing_match,
    stored_sha256,
)
from drkit.verify.findings import Finding, sort_findings
from drkit.verify.guardrails import check_bucket
from drkit.verify.leftovers import Leftovers, find_leftovers
from drkit.verify.logs import check_log_gaps
from drkit.verify.records import RecordsCheck
from drkit.verify.retention import Sidecar, check_retention, read_sidecar
from drkit.verify.state import TrustedState
from drkit.verify.tombstones import check_region_identity, check_tombstones

log = logging.getLogger(__name__)
DEFAULT_WORKERS = 8
_HASH_TASK = 256  # objects hashed per thread-pool task at most

_JOURNAL_CHECKS = {
    "checkpoint-invalid": ("critical", "journal-checkpoint-invalid"),
    "checkpoint-missing": ("critical", "journal-checkpoint-missing"),
    "batch-missing": ("critical", "journal-batch-missing"),
    "batch-invalid": ("critical", "journal-batch-invalid"),
    "root-mismatch": ("critical", "journal-root-mismatch"),
    "fork": ("critical", "journal-fork"),
    "checkpoint-deleted": ("critical", "journal-checkpoint-deleted"),
    "batch-uncovered": ("critical", "journal-batch-uncovered"),
    "unexpected-object": ("medium", "journal-unexpected-object"),
}


@dataclass
class RegionReport:
    region: str
    url: str
    primary: bool = False
    log_size: int = 0
    primary_log_size: int | None = None
    objects_logged: int = 0
    objects_checked_by_listing: int = 0
    objects_hashed: int = 0
    objects_read: int = 0
    bytes_read: int = 0
    objects_pending: int = 0
    objects_unverified_cold: int = 0
    lag_hours: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    leftovers: list[dict[str, Any]] = field(default_factory=list)

    def add(self, severity: str, check: str, message: str, key: str = "", expected: str = "",
            found: str = "") -> None:
        self.findings.append(Finding(severity, self.region, check, message, key, expected,
                                     found))

    @property
    def clean(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {"region": self.region, "url": self.url, "primary": self.primary,
                "clean": self.clean, "log_size": self.log_size,
                "primary_log_size": self.primary_log_size,
                "objects_logged": self.objects_logged,
                "objects_checked_by_listing": self.objects_checked_by_listing,
                "objects_hashed": self.objects_hashed, "objects_read": self.objects_read,
                "bytes_read": self.bytes_read, "objects_pending": self.objects_pending,
                "objects_unverified_cold": self.objects_unverified_cold,
                "lag_hours": round(self.lag_hours, 3),
                "findings": [f.to_dict() for f in sort_findings(self.findings)],
                "notes": self.notes, "leftovers": self.leftovers}


@dataclass
class VerifyReport:
    origin: str
    regions: list[RegionReport]

    @property
    def findings(self) -> list[Finding]:
        return sort_findings([f for r in self.regions for f in r.findings])

    def to_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "clean": not self.findings,
                "regions": [r.to_dict() for r in self.regions],
                "findings": [f.to_dict() for f in self.findings]}


def _roots_at(view: LogView, sizes: set[int]) -> dict[int, bytes]:
    builder = RootBuilder()
    roots = {0: builder.root()} if 0 in sizes else {}
    for leaf in view.leaf_hashes:
        builder.add(leaf)
        if builder.size in sizes:
            roots[builder.size] = builder.root()
    return roots


def _batch_end(key: str) -> int:
    """The log size a batch ends at, from its key (``journal/batch/START-END-HASH``)."""
    try:
        return int(key.rsplit("/", 1)[-1].split("-")[1])
    except (IndexError, ValueError):
        return 0


def _describe(entry: JournalEntry) -> str:
    return f"{entry.size} B sha256 {entry.sha256[:16]}"


def _check_journal(report: RegionReport, view: LogView, region: RegionConfig,
                   state: TrustedState, primary_view: LogView | None, now: datetime) -> None:
    primary_batches = set(primary_view.batch_keys) if primary_view is not None else set()
    seen = state.region(region.name)
    for problem in view.problems:
        if (problem.kind == "batch-uncovered" and not report.primary
                and problem.key in primary_batches
                and (seen is None or _batch_end(problem.key) > seen.size)):
            # The primary's verified log holds this batch under a checkpoint and this host
            # never saw this region's log that long: a replicate copied the batch and not yet
            # its checkpoint (or was killed between them); the next replicate completes it.
            # (A checkpoint this host saw and that is gone is a rollback, reported below.)
            report.notes.append(f"{problem.key}: batch copied, its checkpoint not yet "
                                "(replication in progress)")
            continue
        mapped = _JOURNAL_CHECKS.get(problem.kind)
        if mapped is None:
            report.notes.append(str(problem))
            continue
        report.add(mapped[0], mapped[1], problem.message, problem.key)
    prev = state.region(region.name)
    largest = state.largest()
    wanted = {s.size for s in (prev, largest) if s is not None and s.size <= view.size}
    if primary_view is not None and not report.primary and view.size <= primary_view.size:
        wanted.add(view.size)
    roots = _roots_at(view, wanted)
    if prev is not None:
        if view.size < prev.size:
            report.add("critical", "journal-rollback",
                       "the log is shorter than this host verified before "
                       "(rolled back, truncated, or its newest checkpoint deleted)",
                       "", f">= {prev.size} entries", f"{view.size} entries")
        elif roots.get(prev.size) != prev.root:
            report.add("critical", "journal-fork",
                       "the log does not extend the one this host verified before",
                       "", f"root at size {prev.size} as seen before", "a different root")
    # The largest log seen in any region must be a prefix of this one once it is as long
    # (skipped when this region's own earlier state already covers that size).
    covered = prev is not None and prev.size >= (largest.size if largest else 0)
    if (largest is not None and view.size >= largest.size and not covered
            and roots.get(largest.size) != largest.root):
        report.add("critical", "journal-fork",
                   f"the log disagrees with the largest log this host verified "
                   f"(region {largest.region})", "", f"root at size {largest.size}",
                   "a different root")
    if primary_view is None or report.primary:
        return
    report.primary_log_size = primary_view.size
    if view.size > primary_view.size:
        report.add("high", "journal-ahead-of-primary",
                   "this region's log is longer than the primary's: the primary may have "
                   "been rolled back", "", f"<= {primary_view.size} entries",
                   f"{view.size} entries")
    elif view.checkpoint is not None and primary_view.checkpoint is not None:
        primary_roots = _roots_at(primary_view, {view.size})
        if primary_roots.get(view.size) != view.checkpoint.root:
            report.add("critical", "journal-fork",
                       "this region's log is not a prefix of the primary's", "",
                       f"primary root at size {view.size}", "a different root")
    report.lag_hours = lag_hours(primary_view, view.size, now)
    if report.lag_hours > region.max_lag_hours:
        report.add("high", "replication-lag",
                   f"region lags the primary by {primary_view.size - view.size} entries",
                   "", f"<= {region.max_lag_hours:g} h behind", f"{report.lag_hours:.1f} h")
    elif view.size < primary_view.size:
        report.notes.append(f"{primary_view.size - view.size} entries not replicated yet "
                            f"({report.lag_hours:.1f} h, allowance {region.max_lag_hours:g} h)")


def _check_anchors(report: RegionReport, view: LogView, anchors: Sequence[Anchor],
                   primary_view: LogView | None) -> None:
    """A log below or diverging from a trust anchor held off this host: rolled back or
    forked, whatever this host's own state says (it may have been deleted). A replica
    below an anchor the primary has reached is only behind (the lag check covers it)."""
    for anchor in anchors:
        problem = check_anchor(view, anchor)
        if problem is None:
            continue
        check, message = problem
        if (check == "journal-below-anchor" and not report.primary
                and primary_view is not None and check_anchor(primary_view, anchor) is None):
            report.notes.append(f"below the trust anchor of size {anchor.size}, which the "
                                "primary has reached (replication in progress)")
            continue
        report.add("critical", check, message, "", f"extends {anchor}",
                   f"{view.size} entries")


def _check_objects(report: RegionReport, store: Store, view: LogView, region: RegionConfig,
                   primary_view: LogView | None, read_fraction: float | None,
                   progress: Progress, workers: int, unproven: set[int] | None = None, *,
                   trusted: Sequence[Ed25519PublicKey], now: datetime
                   ) -> dict[str, Sidecar] | None:
    """Every live logged object: present, same size and content; then injected objects.

    Returns the metadata sidecars of a local region's objects (each read once, beside
    the object's bytes, for the retention check); None for other stores."""
    # A local folder's listing is file names and sizes only: its sidecars are read below,
    # once per object, with the bytes (the listing would read each of them too).
    local = store if isinstance(store, LocalStore) else None
    # Only proven tombstones for this region excuse an absence (drkit.verify.tombstones).
    live = live_entries(view.entries, region=region.name, ignore=unproven or set())
    report.objects_logged = len(live)
    tombstoned = {e.key for e in view.entries if e.kind == "tombstone"} - set(live)
    # Objects named by a signed batch no checkpoint covers are not injected: that batch is
    # already a finding (deleted checkpoint) or this host's own interrupted append.
    logged_keys = {e.key for e in view.entries} | {
        e.key for batch, _own in view.uncovered for e in batch.entries}
    primary_keys = {e.key for e in primary_view.entries} if primary_view else set()
    listing: dict[str, ObjectInfo] = {}
    other_areas = 0
    for listed in (local.scan("") if local is not None else store.list("")):
        if (listed.key.startswith(OTHER_AREAS) and not listed.key.startswith(REGISTRY_PREFIX)
                and listed.key not in logged_keys):
            other_areas += 1
        elif not listed.key.startswith(JOURNAL_PREFIX) and listed.key != IDENTITY_KEY:
            listing[listed.key] = listed
    if other_areas:
        report.notes.append(f"{other_areas} objects under {', '.join(OTHER_AREAS)} belong to "
                            "the audit log and approval records (checked as records)")

    task = progress.task(f"verify {region.name}", total=len(live))
    lock = threading.Lock()
    to_hash: list[JournalEntry] = []
    present: list[JournalEntry] = []
    wrong_class: list[tuple[str, str]] = []
    sidecars: dict[str, Sidecar] = {}
    try:
        for key, entry in live.items():
            info = listing.get(key)
            if info is None:
                report.add("critical", check_name(key, "object-missing"),
                           "logged object is missing", key, _describe(entry), "absent")
                task.advance()
                continue
            present.append(entry)
            if local is not None:
                to_hash.append(entry)  # a folder's metadata proves nothing: hash it
                continue
            if (not report.primary and not always_standard(key)
                    and (info.storage_class or "STANDARD") != region.storage_class):
                wrong_class.append((key, info.storage_class or "STANDARD"))
            match = listing_match(entry, info)
            if match is Match.UNKNOWN:
                to_hash.append(entry)
                continue
            task.advance()
            if match is Match.SAME:
                report.objects_checked_by_listing += 1
            else:
                report.add("critical", check_name(key, "object-changed"),
                           "object differs from the logged one (overwritten or truncated)",
                           key, _describe(entry),
                           f"{info.size} B {(info.sha256 or info.md5 or '?')[:16]}")

        def hash_one(entry: JournalEntry) -> None:
            try:
                if local is not None:
                    got = local.content_sha256(entry.key)
                    sidecars[entry.key] = read_sidecar(local, entry.key)
                else:
                    got = stored_sha256(store, entry.key)
            except NeedsThaw:
                with lock:
                    report.objects_unverified_cold += 1
                return
            except ObjectNotFound:
                with lock:
                    report.add("critical", check_name(entry.key, "object-missing"),
                               "logged object is missing", entry.key, _describe(entry),
                               "absent")
                return
            finally:
                task.advance()
            with lock:
                report.objects_hashed += 1
                if got != entry.sha256:
                    report.add("critical", check_name(entry.key, "object-changed"),
                               "object's bytes differ from the logged ones (overwritten)",
                               entry.key, _describe(entry), f"sha256 {got[:16]}")

        def hash_some(entries: Sequence[JournalEntry]) -> None:
            for entry in entries:
                hash_one(entry)

        # Tasks of many objects each: a task per object of 1 KiB cost more in the pool
        # than the hashing.
        step = max(1, min(_HASH_TASK, len(to_hash) // max(1, workers * 4)))
        with ThreadPoolExecutor(max(1, workers), thread_name_prefix="verify") as pool:
            list(pool.map(hash_some, [to_hash[i:i + step]
                                      for i in range(0, len(to_hash), step)]))
    finally:
        task.close()
    if local is not None and not report.primary:
        for entry in present:
            meta = sidecars.get(entry.key)
            found = str(meta.get("storage_class") or "STANDARD") if isinstance(meta, dict) \
                else "STANDARD"
            if not always_standard(entry.key) and found != region.storage_class:
                wrong_class.append((entry.key, found))

    if read_fraction:
        _read_data(report, store, present, read_fraction, progress, workers)

    unlogged: dict[str, ObjectInfo] = {}
    for key in sorted(listing):
        if key in logged_keys:
            continue
        if key in primary_keys:
            report.objects_pending += 1
            continue
        unlogged[key] = listing[key]
    leftovers = find_leftovers(store, unlogged, view.origin, trusted)
    _note_leftovers(report, leftovers, now)
    for key, info in unlogged.items():
        if key in leftovers.keys:
            continue
        if key.startswith(REGISTRY_PREFIX):
            report.add("critical", "approver-registry-unanchored",
                       "approver registry object that the repository journal does not "
                       "anchor (put by hand); it decides nothing", key, "absent",
                       f"{info.size} B")
            continue
        why = leftovers.rejected.get(key)
        report.add("high", "object-unlogged",
                   "object in the bucket that no journal entry names (injected data)"
                   + (f"; {why}" if why else ""), key, "absent", f"{info.size} B")
    present_tombstoned = sorted(tombstoned & set(listing))
    if present_tombstoned:
        report.notes.append(f"{len(present_tombstoned)} objects deleted by approval are still "
                            f"present (e.g. {present_tombstoned[0]})")
    if wrong_class:
        key, found = wrong_class[0]
        report.add("medium", "storage-class",
                   f"{len(wrong_class)} objects are not in the configured storage class",
                   key, region.storage_class, found)
    if report.objects_pending:
        report.notes.append(f"{report.objects_pending} objects copied but not yet in this "
                            "region's journal (replication in progress)")
    return sidecars if local is not None else None


def _note_leftovers(report: RegionReport, leftovers: Leftovers, now: datetime) -> None:
    """One low note per interrupted write group, naming its objects and its age."""
    for group in leftovers.groups:
        age = group.age_hours(now)
        report.leftovers.extend({"key": k, "intent": group.intent, "age_hours": round(age, 2),
                                 "host": group.host} for k in group.keys)
        report.notes.append(
            f"low: leftover of an interrupted write, {age:.1f} h old "
            f"(host {group.host}, {group.intent}): {', '.join(group.keys)}; the next "
            "snapshot adopts it into the journal")


def _read_data(report: RegionReport, store: Store, present: list[JournalEntry],
               fraction: float, progress: Progress, workers: int) -> None:
    import hashlib

    count = len(present) if fraction >= 1 else math.ceil(len(present) * fraction)
    # An unpredictable sample: whoever tampers cannot know which objects will be read.
    sample = random.SystemRandom().sample(present, count)
    lock = threading.Lock()
    task = progress.task(f"read {report.region}", total=sum(e.size for e in sample), unit="B")

    def read_one(entry: JournalEntry) -> None:
        try:
            data = store.get(entry.key)
        except NeedsThaw:
            with lock:
                report.objects_unverified_cold += 1
            return
        except ObjectNotFound:
            return  # already reported as missing
        got = hashlib.sha256(data).hexdigest()
        task.advance(len(data))
        with lock:
            report.objects_read += 1
            report.bytes_read += len(data)
            if got != entry.sha256 or len(data) != entry.size:
                report.add("critical", "object-changed",
                           "object's bytes read back differ from the logged ones",
                           entry.key, _describe(entry), f"{len(data)} B sha256 {got[:16]}")

    try:
        with ThreadPoolExecutor(max(1, workers), thread_name_prefix="read") as pool:
            list(pool.map(read_one, sample))
    finally:
        task.close()
    if report.objects_unverified_cold:
        report.notes.append(f"{report.objects_unverified_cold} objects are in an archive "
                            "class and were not read (thaw them to read their data)")


def verify_region(region: RegionConfig, store: Store, *, origin: str,
                  trusted: Sequence[Ed25519PublicKey], state: TrustedState, now: datetime,
                  primary_view: LogView | None = None, view: LogView | None = None,
                  read_fraction: float | None = None, progress: Progress = NULL_PROGRESS,
                  workers: int = DEFAULT_WORKERS,
                  records: RecordsCheck | None = None, anchors: Sequence[Anchor] = ()
                  ) -> RegionReport:
    """Verify one region; problems become findings. Raises StorageError if unreachable.

    With ``records``, the audit log and approval records of the region are checked too
    (``drkit.verify.records``), so every object in the region is covered."""
    report = RegionReport(region=region.name, url=str(region.url), primary=region.primary)
    if view is None:
        view = read_log(store, origin, trusted)
    report.log_size = view.size
    _check_journal(report, view, region, state, primary_view, now)
    _check_anchors(report, view, anchors, primary_view)
    unproven = check_tombstones(report, store, view)
    check_region_identity(report, store, region, view, trusted)
    sidecars = _check_objects(report, store, view, region, primary_view, read_fraction,
                              progress, workers, unproven, trusted=trusted, now=now)
    check_retention(report, store, region, view, unproven, sidecars)
    check_log_gaps(report, live_entries(view.entries, region=region.name,
                                        ignore=unproven or set()))
    if records is not None:
        records.check(report, region, store, view, {e.key for e in view.entries})
    if region.url.scheme in ("s3", "cos"):
        try:
            report.findings.extend(check_bucket(store.bucket_settings(), region))
        except StorageError as exc:
            report.add("high", "bucket-settings-unreadable",
                       f"cannot read the bucket's settings: {exc}")
    journal_bad = any(f.check.startswith("journal-") and f.severity == "critical"
                      for f in report.findings)
    if view.checkpoint is not None and not journal_bad:
        state.record(region.name, view.size, view.checkpoint.root, view.checkpoint.time, now)
    return report


def verify_regions(regions: Sequence[tuple[RegionConfig, Store]], *, origin: str,
                   trusted: Sequence[Ed25519PublicKey], state: TrustedState, now: datetime,
                   primary: tuple[RegionConfig, Store] | None = None,
                   read_fraction: float | None = None, progress: Progress = NULL_PROGRESS,
                   workers: int = DEFAULT_WORKERS,
                   records: RecordsCheck | None = None, anchors: Sequence[Anchor] = (),
                   save_state: bool = True, own_batches: frozenset[str] = frozenset()
                   ) -> VerifyReport:
    """Verify each region against its own log, the primary's and the trusted state.

    ``primary`` is read for lag and fork checks even when it is not among ``regions``.
    A region that cannot be reached is a finding; the others are still verified. The
    trusted state is saved at the end (unless ``save_state`` is false: a first contact
    that was not accepted pins nothing). ``anchors`` are checkpoint fingerprints held
    off this host (``drkit.verify.anchors``). ``own_batches`` are the primary journal's
    batches this host recorded write-ahead as its own appends (when verify runs on the
    writer host): an interrupted append of its own is a note, not a deleted checkpoint.
    """
    primary_view: LogView | None = None
    if primary is not None:
        try:
            primary_view = read_log(primary[1], origin, trusted, own_batches)
        except StorageError as exc:
            log.warning("primary %s unreadable: %s", primary[0].name, exc)
    reports = []
    for region, store in regions:
        try:
            view = primary_view if (primary is not None and region.name == primary[0].name) \
                else None
            reports.append(verify_region(region, store, origin=origin, trusted=trusted,
                                         state=state, now=now, primary_view=primary_view,
                                         view=view, read_fraction=read_fraction,
                                         progress=progress, workers=workers,
                                         records=records, anchors=anchors))
        except StorageError as exc:
            report = RegionReport(region=region.name, url=str(region.url),
                                  primary=region.primary)
            report.add("critical", "region-unavailable", f"cannot verify the region: {exc}")
            reports.append(report)
    if primary is not None and primary_view is None and not any(
            r.region == primary[0].name for r in reports):
        report = RegionReport(region=primary[0].name, url=str(primary[0].url), primary=True)
        report.add("critical", "region-unavailable", "cannot read the primary's journal")
        reports.append(report)
    if save_state:
        faults.point("verify.state.before")
        state.save()
        faults.point("verify.state.after")
        if records is not None:
            records.save()
    return VerifyReport(origin=origin, regions=reports)
