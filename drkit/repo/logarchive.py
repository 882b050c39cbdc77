"""The log archive: a database's write-ahead log (PostgreSQL WAL, MySQL/MariaDB binlog)
kept as a sequence of segments in the repository, for point-in-time recovery.

A *segment* is one file as the server names it (``000000010000000000000003``,
``mysql-bin.000042``). Archiving one is an ordinary writer run: its bytes are chunked,
encrypted to the recovery key and packed like snapshot data, and a signed ``log-segment``
record (``logs/<sha256>``) names its chunks. The record's journal entry carries the
segment's catalogue fields in its ``note`` (``{"log": {...}}``), so every reader that has
verified a region's journal knows the whole archive of that region (names, order, time
range, keyed content id) without another request; replication and verify treat the
packs, index files, session key and record like any other object.

Order. Each segment has a *lineage* (PostgreSQL: the timeline; MySQL: the binlog base
name or server) and a position range ``start``..``end``: lists of integers compared
lexicographically (PostgreSQL: ``[LSN]``; MySQL: ``[file number, offset]``, a closed
file ending at ``[n + 1, 0]``). Within a lineage the archive is contiguous when each
segment starts at or before the furthest end seen so far; anything else is a gap
(``find_gaps``). Files outside the sequence (timeline history files, backup labels) have
empty positions.

Versions. A name is archived once (``partial`` false); archiving it again with the same
bytes is a no-op and with other bytes is refused (never an overwrite). An in-progress
file (``partial`` true: a streamed WAL ``.partial`` or the binlog being written) may be
archived again as it grows; the version reaching furthest counts.

Only this module writes records; the database halves (``drkit.pitr``) supply names,
positions and times.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from drkit.clock import parse_iso, utc_iso
from drkit.errors import IntegrityError
from drkit.journal import JournalEntry
from drkit.repo.documents import open_document, sign_document
from drkit.repo.formats import _check_version, content_key, key_digest

if TYPE_CHECKING:
    from drkit.config import Config

LOG_PREFIX = "logs"
SEGMENT_KIND = "log-segment"
SEGMENT_VERSION = 1
#: Log kinds drkit archives (the ``kind`` field).
LOG_KINDS = ("postgres-wal", "mysql-binlog")
_CONTENT_DOMAIN = b"drkit/log-segment-content/v1"


def content_id(id_key: bytes, data: bytes) -> str:
    """Keyed hash of a segment's bytes: equal segments compare equal without revealing a
    plain hash of the content to whoever reads the (unencrypted) record."""
    return hmac.new(id_key, _CONTENT_DOMAIN + data, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class SegmentInfo:
    """What the database half knows about a segment before it is archived."""

    archive: str  # the drkit source name (``[sources.NAME]``)
    kind: str  # one of LOG_KINDS
    name: str  # file name as the server names it
    lineage: str  # PostgreSQL timeline (8 hex digits); MySQL binlog base name
    start: tuple[int, ...] = ()  # position of the first byte; () = not in the sequence
    end: tuple[int, ...] = ()  # position just past the last byte
    partial: bool = False  # in progress: may be archived again as it grows
    first_time: str | None = None  # first commit time inside (UTC ISO), if known
    last_time: str | None = None  # last commit time inside
    extra: dict[str, Any] = field(default_factory=dict)  # kind-specific (GTID set, ...)

    def __post_init__(self) -> None:
        if self.kind not in LOG_KINDS:
            raise ValueError(f"unknown log kind {self.kind!r}")
        if bool(self.start) != bool(self.end) or self.end < self.start:
            raise ValueError(f"{self.name}: bad position range {self.start}..{self.end}")


@dataclass(frozen=True)
class ArchivedSegment:
    """One archived version of a segment, as its journal entry catalogues it."""

    key: str  # logs/<sha256> (the signed record)
    info: SegmentInfo
    archived: str  # when it was archived (UTC ISO)
    size: int
    content: str  # content_id
    session: str
    packs: tuple[str, ...]  # pack digests holding its chunks

    @property
    def in_sequence(self) -> bool:
        return bool(self.info.start)

    def note(self) -> dict[str, Any]:
        i = self.info
        return {"log": {"archive": i.archive, "kind": i.kind, "name": i.name,
                        "lineage": i.lineage, "start": list(i.start), "end": list(i.end),
                        "partial": i.partial, "first_time": i.first_time,
                        "last_time": i.last_time, "archived": self.archived,
                        "size": self.size, "content": self.content,
                        "session": self.session, "packs": list(self.packs)}}

    @classmethod
    def from_entry(cls, entry: JournalEntry) -> ArchivedSegment | None:
        """The catalogue fields of a journal entry, or None if it is not a log segment."""
        log = (entry.note or {}).get("log")
        if not entry.key.startswith(LOG_PREFIX + "/") or not isinstance(log, dict):
            return None
        try:
            info = SegmentInfo(
                archive=str(log["archive"]), kind=str(log["kind"]), name=str(log["name"]),
                lineage=str(log["lineage"]), start=tuple(int(x) for x in log["start"]),
                end=tuple(int(x) for x in log["end"]), partial=bool(log["partial"]),
                first_time=log.get("first_time"), last_time=log.get("last_time"))
            return cls(key=entry.key, info=info, archived=str(log["archived"]),
                       size=int(log["size"]), content=str(log["content"]),
                       session=str(log["session"]),
                       packs=tuple(str(p) for p in log["packs"]))
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class SegmentRecord:
    """The signed ``log-segment`` document: catalogue fields plus the chunks, in order."""

    repository_id: str
    segment: ArchivedSegment
    host: str
    chunks: tuple[str, ...]  # hex chunk ids
    indexes: tuple[str, ...]  # index/<sha256> keys of the packs written for it

    def body(self) -> dict[str, Any]:
        return {"segment_version": SEGMENT_VERSION, "repository_id": self.repository_id,
                **self.segment.note()["log"], "extra": self.segment.info.extra,
                "host": self.host, "chunks": list(self.chunks), "indexes": list(self.indexes)}

    def encode(self, signer: Ed25519PrivateKey) -> bytes:
        return sign_document(SEGMENT_KIND, self.body(), signer, compress=True)

    @classmethod
    def decode(cls, data: bytes, key: str, trusted: Sequence[Ed25519PublicKey], *,
               name: str) -> SegmentRecord:
        body = open_document(data, SEGMENT_KIND, trusted, name=name)
        _check_version(body, "segment_version", SEGMENT_VERSION, name)
        entry = JournalEntry(kind="object", key=key, size=len(data),
                             sha256=hashlib.sha256(data).hexdigest(), note={"log": body})
        segment = ArchivedSegment.from_entry(entry)
        try:
            if segment is None:
                raise ValueError("catalogue fields")
            extra = body.get("extra") or {}
            segment = replace(segment, info=replace(segment.info, extra=dict(extra)))
            return cls(repository_id=str(body["repository_id"]), segment=segment,
                       host=str(body["host"]), chunks=tuple(str(c) for c in body["chunks"]),
                       indexes=tuple(str(i) for i in body["indexes"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"{name}: malformed log-segment record ({exc})") from None


# -- the catalogue (read from a verified journal) -------------------------------------------
class LogCatalog:
    """Every archived segment a journal names, by archive."""

    def __init__(self, segments: Iterable[ArchivedSegment]) -> None:
        self.segments = sorted(segments, key=lambda s: (s.info.archive, s.info.lineage,
                                                        s.info.start, s.info.end, s.archived,
                                                        s.key))

    @classmethod
    def from_entries(cls, entries: Iterable[JournalEntry]) -> LogCatalog:
        return cls(s for s in (ArchivedSegment.from_entry(e) for e in entries)
                   if s is not None)

    def archives(self) -> list[str]:
        return sorted({s.info.archive for s in self.segments})

    def of(self, archive: str) -> list[ArchivedSegment]:
        return [s for s in self.segments if s.info.archive == archive]

    def versions(self, archive: str, name: str) -> list[ArchivedSegment]:
        return [s for s in self.of(archive) if s.info.name == name]

    def current(self, archive: str, name: str) -> ArchivedSegment | None:
        """The version that counts: the complete one, else the partial reaching furthest."""
        versions = self.versions(archive, name)
        complete = [v for v in versions if not v.info.partial]
        if complete:
            return complete[0]
        return max(versions, key=lambda v: (v.info.end, v.archived), default=None)

    def newest(self, archive: str) -> ArchivedSegment | None:
        seq = [s for s in self.of(archive) if s.in_sequence]
        return max(seq, key=lambda s: (s.info.lineage, s.info.end, s.archived), default=None)


@dataclass(frozen=True)
class Gap:
    archive: str
    lineage: str
    after: str  # the segment before the hole
    before: str  # the segment after it
    missing_from: tuple[int, ...]
    missing_to: tuple[int, ...]

    def describe(self) -> str:
        return (f"{self.archive}: log missing between {self.after} and {self.before} "
                f"(lineage {self.lineage}, positions {list(self.missing_from)}.."
                f"{list(self.missing_to)})")


def find_gaps(segments: Iterable[ArchivedSegment]) -> list[Gap]:
    """Holes in each archive's sequence, lineage by lineage (see the module docstring)."""
    by_line: dict[tuple[str, str], list[ArchivedSegment]] = {}
    for s in segments:
        if s.in_sequence:
            by_line.setdefault((s.info.archive, s.info.lineage), []).append(s)
    gaps: list[Gap] = []
    for (archive, lineage), items in sorted(by_line.items()):
        items.sort(key=lambda s: (s.info.start, s.info.end))
        reach, last = items[0].info.end, items[0]
        for s in items[1:]:
            if s.info.start > reach:
                gaps.append(Gap(archive, lineage, last.info.name, s.info.name, reach,
                                s.info.start))
            if s.info.end >= reach:
                reach, last = s.info.end, s
    return gaps


@dataclass(frozen=True)
class ArchiveStatus:
    archive: str
    kind: str
    segments: int
    newest: str | None
    newest_archived: str | None
    last_commit: str | None
    rpo_seconds: float | None
    gaps: list[Gap]

    def to_dict(self) -> dict[str, Any]:
        return {"archive": self.archive, "kind": self.kind, "segments": self.segments,
                "newest": self.newest, "newest_archived": self.newest_archived,
                "last_commit": self.last_commit,
                "rpo_seconds": None if self.rpo_seconds is None else round(self.rpo_seconds, 1),
                "gaps": [g.describe() for g in self.gaps]}


def archive_status(catalog: LogCatalog, archive: str, now: datetime) -> ArchiveStatus:
    """The achieved RPO of an archive: seconds since its newest segment was archived
    (what a loss of the server now would cost), and its gaps."""
    segs = catalog.of(archive)
    newest = catalog.newest(archive)
    archived = max((s.archived for s in segs if s.in_sequence), default=None)
    rpo = (now - parse_iso(archived)).total_seconds() if archived else None
    last_commit = max((s.info.last_time for s in segs if s.info.last_time), default=None)
    return ArchiveStatus(archive=archive, kind=segs[0].info.kind if segs else "",
                         segments=len(segs), newest=newest.info.name if newest else None,
                         newest_archived=archived, last_commit=last_commit,
                         rpo_seconds=rpo, gaps=find_gaps(segs))


def needed_objects(entries: Iterable[JournalEntry]) -> tuple[set[str], set[str]]:
    """Pack digests and session ids the archived log needs (kept by prune)."""
    packs: set[str] = set()
    sessions: set[str] = set()
    for seg in LogCatalog.from_entries(entries).segments:
        packs.update(seg.packs)
        sessions.add(seg.session)
    return packs, sessions


# -- writing ----------------------------------------------------------------------------
class SegmentConflict(IntegrityError):
    """A different segment is already archived under this name."""


def archive_segment(writer: Any, info: SegmentInfo, data: bytes, *, now: datetime
                    ) -> tuple[ArchivedSegment, bool]:
    """Archive ``data`` as segment ``info`` with an open ``RepositoryWriter``; commit.

    Returns (the segment that counts, whether anything was written). The same bytes
    already archived under the name: nothing is written. Other bytes under a complete
    name: SegmentConflict, nothing written. A partial version that reaches no further
    than one already held is not written again either.
    """
    from drkit.progress import NULL_PROGRESS
    from drkit.repo.chunking import ChunkStore

    assert writer.repo is not None, "the writer must be open"
    catalog = LogCatalog.from_entries(writer.repo.visible.values())
    cid = content_id(writer.keys.id_key, data)
    versions = catalog.versions(info.archive, info.name)
    for old in versions:
        if old.content == cid and old.size == len(data):
            return old, False
    complete = [v for v in versions if not v.info.partial]
    if complete:
        if info.partial:  # the finished file is held already
            return complete[0], False
        old = complete[0]
        raise SegmentConflict(
            f"{info.archive}: {info.name} is already archived with other content "
            f"({old.size} B, archived {old.archived}); refusing to replace it")
    if info.partial and any(v.info.end >= info.end for v in versions):
        current = catalog.current(info.archive, info.name)
        assert current is not None
        return current, False
    task = NULL_PROGRESS.task("log", None, "B")
    sink = ChunkStore(writer, writer.keys.id_key, task)
    chunks = sink.store_stream(io.BytesIO(data)).chunks if data else ()
    session, _key = writer.session
    writer.flush()
    new_indexes = tuple(sorted(e.key for e in writer.written if e.key.startswith("index/")))
    packs = sorted({key_digest(writer.known[c].pack) for c in chunks})
    segment = ArchivedSegment(key="", info=info, archived=utc_iso(now), size=len(data),
                              content=cid, session=session, packs=tuple(packs))
    record = SegmentRecord(writer.keys.repository_id, segment, socket.gethostname(),
                           tuple(c.hex() for c in chunks), new_indexes)
    encoded = record.encode(writer.keys.signing_key)
    key = content_key(LOG_PREFIX, encoded)
    segment = replace(segment, key=key)
    writer.put_object(key, encoded, note=segment.note())
    writer.commit()
    return segment, True


def archive_waiting(config: Config, info: SegmentInfo, data: bytes, *, now: datetime,
                    wait: float) -> tuple[ArchivedSegment, bool]:
    """:func:`archive_segment` with a writer of ``config``'s primary region, waiting up to
    ``wait`` seconds while another writer (a snapshot, another push) holds the repository
    lock (:meth:`drkit.repo.lock.RepositoryLock.acquire`)."""
    from drkit.repo.writer import RepositoryWriter

    writer = RepositoryWriter.for_config(config, now=now)
    writer.lock_wait = wait
    with writer:
        return archive_segment(writer, info, data, now=now)


# -- reading ----------------------------------------------------------------------------
def read_record(repo: Any, key: str) -> SegmentRecord:
    return SegmentRecord.decode(repo.get_verified(key), key, repo.trusted,
                                name=f"{repo.store.url}: {key}")


def read_segment(repo: Any, key: str, recovery: X25519PrivateKey,
                 id_key: bytes | None = None) -> bytes:
    """The bytes of an archived segment, every chunk authenticated; with ``id_key`` the
    keyed content id is checked too."""
    from drkit.repo.formats import IndexFile

    record = read_record(repo, key)
    locations: dict[bytes, Any] = {}
    wanted = {bytes.fromhex(c) for c in record.chunks}
    for index_key in record.indexes:
        index = IndexFile.decode(repo.get_verified(index_key), repo.trusted, name=index_key)
        locations.update(index.locations())
    if not wanted <= set(locations):
        locations = repo.load_index()  # chunks shared with an earlier run's packs
    data = b"".join(repo.read_chunk(bytes.fromhex(c), recovery, locations)
                    for c in record.chunks)
    name = f"{repo.store.url}: {key}"
    if len(data) != record.segment.size:
        raise IntegrityError(f"{name}: segment has {len(data)} bytes, the record says "
                             f"{record.segment.size}")
    if id_key is not None and content_id(id_key, data) != record.segment.content:
        raise IntegrityError(f"{name}: segment content does not match its record")
    return data
