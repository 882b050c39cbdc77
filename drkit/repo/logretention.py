"""Retention of the archived database log: which log segments the approved prune may
delete.

A point-in-time restore starts from a *base* and replays the log from the base's
position on: a PostgreSQL base backup (``postgres-base`` snapshot) from its WAL start
LSN on its timeline, a MySQL/MariaDB daily dump (``mysql`` snapshot) from the binlog
position it recorded under its read lock. Where each base stands is written into the
snapshot's signed, unencrypted manifest (``stats.log_bases``, by ``describe_bases`` when
the snapshot is taken), so the plan needs no recovery key.

A version of a segment is prunable when:

- **before every kept base**: its whole file (a WAL segment's full 16 MiB range, a
  binlog file up to its successor) ends at or before the position of every base that is
  kept, on a lineage the base descends from (PostgreSQL: a timeline number at most the
  base's; MySQL: the same binlog base name). The file holding a base's position is never
  pruned. Nothing is pruned this way while a kept snapshot of the source does not say
  where it stands (one taken before drkit recorded it), or no base is kept at all; or
  - **superseded**: an in-progress (partial) version whose file is held complete, or
  held in progress reaching further. The version that counts stays.

Only versions archived before the newest snapshot was taken are considered, so the plan
does not change while a stream keeps archiving (a prune request is approved hours after
it is filed); a new snapshot changes the plan anyway. Position pruning takes the oldest
files first and stops at the first one it may not take (a record still under its
lock), so no hole opens inside what is kept; ``check_no_new_gap`` makes sure of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from drkit.clock import parse_iso
from drkit.errors import IntegrityError
from drkit.repo.logarchive import ArchivedSegment, LogCatalog, find_gaps

#: Snapshot source type holding the bases of each log kind, and the source type whose
#: log it is.
BASE_SOURCE_TYPES = {"postgres-base": "postgres-wal", "mysql": "mysql-binlog"}
STATS_KEY = "log_bases"


# -- where a snapshot's bases stand (written when the snapshot is taken) ------------------
def describe_bases(results: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """``{source: {"kind", "lineage", "start"}}`` for the snapshot's database sources that
    can start a point-in-time restore (``start`` None: this snapshot is no base, e.g. a
    dump whose binlog position is not exact). ``results`` are the sources' results, whose
    entries are still in memory before the tree is encrypted."""
    out: dict[str, dict[str, Any]] = {}
    for r in results:
        try:
            found = _base_of(r)
        except (KeyError, TypeError, ValueError):
            found = None  # not recorded: prune then keeps this source's whole log
        if found is not None:
            out[r.name] = found
    return out


def _base_of(r: Any) -> dict[str, Any] | None:
    if r.type == "postgres-base":
        entry = next((e for e in r.entries if e.get("wal_start")), None)
        if entry is None:
            return {"kind": "postgres-wal", "lineage": None, "start": None}
        return {"kind": "postgres-wal", "lineage": f"{int(entry['timeline']):08X}",
                "start": [_lsn(str(entry["wal_start"]))]}
    if r.type == "mysql":
        dumps = [e for e in r.entries if e.get("database")]
        marks = [e.get("binlog") or {} for e in dumps]
        if not dumps or not all(m.get("exact") for m in marks):
            return {"kind": "mysql-binlog", "lineage": None, "start": None}
        positions = [(*_binlog_file(str(m["file"])), int(m["position"])) for m in marks]
        base, number, offset = min(positions, key=lambda p: (p[1], p[2]))
        return {"kind": "mysql-binlog", "lineage": base, "start": [number, offset]}
    return None


def _lsn(text: str) -> int:
    """``16/B374D848`` -> the LSN as an integer (as PostgreSQL prints it)."""
    hi, _sep, lo = text.partition("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def _binlog_file(name: str) -> tuple[str, int]:
    """``mysql-bin.000042`` -> ("mysql-bin", 42)."""
    base, _sep, number = name.rpartition(".")
    return base, int(number)


@dataclass(frozen=True)
class LogBase:
    archive: str
    kind: str
    lineage: str
    start: tuple[int, ...]
    snapshot: str

    def to_dict(self) -> dict[str, Any]:
        return {"snapshot": self.snapshot, "lineage": self.lineage, "start": list(self.start)}


def kept_bases(snapshots: Iterable[Any]) -> tuple[dict[str, list[LogBase]], dict[str, str]]:
    """The bases among ``snapshots`` (SnapshotInfo) by archive, and the archives whose
    bases are unknown (a snapshot that does not say where it stands), with the reason."""
    bases: dict[str, list[LogBase]] = {}
    unknown: dict[str, str] = {}
    for snap in snapshots:
        recorded = snap.manifest.stats.get(STATS_KEY)
        for src in snap.manifest.sources:
            if src.type not in BASE_SOURCE_TYPES:
                continue
            info = recorded.get(src.name) if isinstance(recorded, dict) else None
            if not isinstance(info, dict):
                unknown.setdefault(src.name, f"snapshot {snap.id[:12]} does not record where "
                                             "its base stands in the log")
                continue
            start = info.get("start")
            if start is None:
                continue  # not a base (an inexact binlog position): needs no log
            try:
                base = LogBase(src.name, str(info["kind"]), str(info["lineage"]),
                               tuple(int(x) for x in start), snap.id)
            except (KeyError, TypeError, ValueError):
                unknown.setdefault(src.name, f"snapshot {snap.id[:12]}: unreadable log base")
                continue
            bases.setdefault(src.name, []).append(base)
    return bases, unknown


# -- the plan --------------------------------------------------------------------------
@dataclass(frozen=True)
class PrunableSegment:
    segment: ArchivedSegment
    reason: str  # "before-base" or "superseded"

    def to_dict(self) -> dict[str, Any]:
        i = self.segment.info
        return {"archive": i.archive, "name": i.name, "key": self.segment.key,
                "partial": i.partial, "start": list(i.start), "end": list(i.end),
                "archived": self.segment.archived, "reason": self.reason}


@dataclass
class LogPrunePlan:
    archived_before: str | None
    segments: list[PrunableSegment]
    bases: dict[str, list[LogBase]]
    held_back: dict[str, str]  # archive -> why nothing is pruned by position

    @property
    def keys(self) -> set[str]:
        return {p.segment.key for p in self.segments}

    def to_dict(self) -> dict[str, Any]:
        return {"archived_before": self.archived_before,
                "bases": {a: [b.to_dict() for b in bs] for a, bs in sorted(self.bases.items())},
                "held_back": dict(sorted(self.held_back.items())),
                "segments": [p.to_dict() for p in self.segments]}


def _segment_size(versions: Sequence[ArchivedSegment]) -> int | None:
    """A WAL archive's segment size, from its complete segments (None if none is held or
    they disagree)."""
    sizes = {v.info.end[0] - v.info.start[0] for v in versions
             if not v.info.partial and v.in_sequence and len(v.info.start) == 1}
    return sizes.pop() if len(sizes) == 1 else None


def _full_end(seg: ArchivedSegment, segsize: int | None) -> tuple[int, ...] | None:
    """Where the segment's whole file ends, however much of it a version holds."""
    if seg.info.kind == "mysql-binlog":
        return (seg.info.start[0] + 1, 0)
    if segsize is None:
        return None
    return (seg.info.start[0] // segsize * segsize + segsize,)


def _descends(kind: str, lineage: str, base: LogBase) -> bool:
    """Whether log of ``lineage`` lies on the way to ``base`` (PostgreSQL: an earlier or
    the same timeline; MySQL: the same binlog base name)."""
    if kind == "postgres-wal":
        try:
            return int(lineage, 16) <= int(base.lineage, 16)
        except ValueError:
            return False
    return lineage == base.lineage


def plan_log_prune(catalog: LogCatalog, kept_snapshots: Sequence[Any], *,
                   newest_snapshot: str | None,
                   locked: Callable[[ArchivedSegment], bool]) -> LogPrunePlan:
    """The prunable versions of every archive in ``catalog`` (see the module docstring).
    ``newest_snapshot``: the newest snapshot's time (None: nothing is pruned);
    ``locked(segment)``: whether its record is still under its lock."""
    bases, unknown = kept_bases(kept_snapshots)
    if newest_snapshot is None:
        return LogPrunePlan(None, [], bases, {a: "no snapshot" for a in catalog.archives()})
    bound: datetime = parse_iso(newest_snapshot)
    considered = [s for s in catalog.segments if s.in_sequence
                  and parse_iso(s.archived) < bound]
    prunable: dict[str, PrunableSegment] = {}
    held_back: dict[str, str] = {}
    for archive in sorted({s.info.archive for s in considered}):
        mine = [s for s in considered if s.info.archive == archive]
        by_name: dict[str, list[ArchivedSegment]] = {}
        for s in mine:
            by_name.setdefault(s.info.name, []).append(s)
        # Superseded in-progress versions: the version that counts covers them.
        for versions in by_name.values():
            complete = [v for v in versions if not v.info.partial]
            reach = max(v.info.end for v in versions)
            for v in versions:
                if v.info.partial and (complete or v.info.end < reach) and not locked(v):
                    prunable[v.key] = PrunableSegment(v, "superseded")
        # Whole files before every kept base, oldest first, stopping at the first that
        # may not go (so what stays has no hole).
        reason = unknown.get(archive)
        if reason is None and not bases.get(archive):
            reason = "no kept snapshot is a base of this log"
        if reason is not None:
            held_back[archive] = reason
            continue
        kind = mine[0].info.kind
        segsize = _segment_size(catalog.of(archive))
        if kind == "postgres-wal" and segsize is None:
            held_back[archive] = "no complete WAL segment tells the segment size"
            continue
        names: dict[str, tuple[int, ...]] = {}
        for s in catalog.of(archive):  # every name held, archived before the bound or not
            if s.in_sequence:
                names[s.info.name] = min(names.get(s.info.name, s.info.start), s.info.start)
        for name in sorted(names, key=lambda n: (names[n], n)):
            versions = by_name.get(name, [])
            if not versions:
                break  # only archived after the bound: it stays, and so does what follows
            first = versions[0]
            end = _full_end(first, segsize)
            before = end is not None and all(
                _descends(kind, first.info.lineage, b) and end <= b.start
                for b in bases[archive])
            if not before or any(locked(v) for v in versions):
                break
            for v in versions:
                prunable[v.key] = PrunableSegment(v, "before-base")
    plan = LogPrunePlan(newest_snapshot, sorted(prunable.values(), key=lambda p: (
        p.segment.info.archive, p.segment.info.lineage, p.segment.info.start,
        p.segment.info.end, p.segment.archived, p.segment.key)), bases, held_back)
    check_no_new_gap(catalog, plan.keys)
    return plan


def check_no_new_gap(catalog: LogCatalog, removed: set[str]) -> None:
    """IntegrityError if removing ``removed`` would open a hole in what is kept: every
    gap of the remaining log must already be a gap of the whole log."""
    def holes(segments: Iterable[ArchivedSegment]) -> set[tuple[Any, ...]]:
        return {(g.archive, g.lineage, g.missing_from, g.missing_to)
                for g in find_gaps(segments)}

    before = holes(catalog.segments)
    after = [s for s in catalog.segments if s.key not in removed]
    new = holes(after) - before
    if new:
        archive, lineage, start, end = sorted(new)[0]
        raise IntegrityError(f"{archive}: pruning these log segments would open a hole in "
                             f"the kept log (lineage {lineage}, positions {list(start)}.."
                             f"{list(end)}); refusing")
