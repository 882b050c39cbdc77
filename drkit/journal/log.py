"""The journal as stored: create-only batch objects and signed checkpoint objects.

Layout under the reserved prefix ``journal/`` of a store (keys sort numerically)::

    journal/batch/<start:016d>-<end:016d>-<sha256 of the object, 16 hex>
    journal/checkpoint/<size:016d>

A batch object is a signed note (the signature scheme of checkpoints): one header line,
one leaf (``JournalEntry.to_bytes()``, canonical JSON, never a newline) per line, a
blank line and the signature line(s)::

    drkit-journal-batch/2 <origin> <start> <count> <previous batch key or -> <prev status>
    <entry>...

    — drkit-writer/0123456789abcdef BASE64(key id || Ed25519 signature)

``prev status`` says what the writer saw about the previous batch: ``checkpointed`` (a
checkpoint ended at it), ``unclaimed`` (no checkpoint covered it and it was not this
host's own interrupted append: a deleted checkpoint, adopted so its entries are kept),
or ``-`` (no previous batch). Version 1 batches (header without the status, no
signature) are still read; they are never adopted.

Each checkpoint names the batch that ends at its size, and each batch names the one
before it, so the log is the chain read backwards from the latest valid checkpoint.
Rules that make erasing a checkpoint visible (issue 24):

- every batch of the chain ends at a checkpoint (``checkpoint-deleted`` otherwise),
  unless the next batch adopted it as ``unclaimed`` (also ``checkpoint-deleted``: the
  deletion happened before the adoption, and the message names the adopted entries);
- a signed batch that extends the verified log but no checkpoint covers is
  ``batch-uncovered`` (its entries named), unless this host recorded it write-ahead as
  its own append (``AppendIntents``): then it is an interrupted append (a warning) and
  the next append completes it with the checkpoint it missed;
- an append never takes a position where such a batch exists: it adopts it first;
- any other batch outside the chain (unsigned, or conflicting) is a ``stray-batch``
  warning and never trusted.

``read_log`` collects every problem it finds (it is what ``drkit verify`` uses);
``Journal`` raises ``IntegrityError`` on the first error-level problem.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from drkit import faults
from drkit.errors import InputError, IntegrityError, ObjectExists, ObjectNotFound
from drkit.journal.checkpoint import Checkpoint, open_note, sign_note
from drkit.journal.entry import JOURNAL_PREFIX, JournalEntry
from drkit.journal.merkle import RootBuilder, hash_leaf
from drkit.storage.base import ObjectInfo, Store

log = logging.getLogger(__name__)

BATCH_PREFIX = JOURNAL_PREFIX + "batch/"
CHECKPOINT_PREFIX = JOURNAL_PREFIX + "checkpoint/"
BATCH_MAGIC = "drkit-journal-batch/2"
BATCH_MAGIC_V1 = "drkit-journal-batch/1"
PREV_STATUSES = ("-", "checkpointed", "unclaimed")
#: Problems that do not make the log's verified content untrustworthy: reading and
#: appending go on (the append adopts the batch); verify, check and audit verify report them.
NON_BLOCKING = frozenset({"checkpoint-deleted", "batch-uncovered"})
_BATCH_RE = re.compile(r"^journal/batch/(\d{16})-(\d{16})-([0-9a-f]{16})$")
_CHECKPOINT_RE = re.compile(r"^journal/checkpoint/(\d{16})$")


def checkpoint_key(size: int) -> str:
    return f"{CHECKPOINT_PREFIX}{size:016d}"


def batch_key(start: int, end: int, data: bytes) -> str:
    return f"{BATCH_PREFIX}{start:016d}-{end:016d}-{hashlib.sha256(data).hexdigest()[:16]}"


def encode_batch(origin: str, start: int, entries: Sequence[JournalEntry], prev: str | None,
                 *, signer: Ed25519PrivateKey | None = None,
                 prev_status: str = "checkpointed") -> bytes:
    """A batch object: version 2 (signed) with ``signer``, else the old version 1."""
    body = b"".join(e.to_bytes() + b"\n" for e in entries)
    if signer is None:
        return f"{BATCH_MAGIC_V1} {origin} {start} {len(entries)} {prev or '-'}\n".encode() \
            + body
    if prev_status not in PREV_STATUSES:
        raise ValueError(f"unknown previous-batch status {prev_status!r}")
    status = prev_status if prev else "-"
    text = (f"{BATCH_MAGIC} {origin} {start} {len(entries)} {prev or '-'} {status}\n".encode()
            + body).decode("utf-8")
    return f"{text}\n{sign_note(text, signer)}".encode()


@dataclass(frozen=True)
class Batch:
    key: str
    start: int
    prev: str | None
    entries: tuple[JournalEntry, ...]
    version: int = 1
    prev_status: str = "checkpointed"  # version 1: every append wrote its checkpoint
    signers: tuple[str, ...] = ()  # trusted keys whose signatures verified (version 2)
    leaves: tuple[bytes, ...] = ()  # the RFC 6962 leaf hash of each entry, in order

    @property
    def end(self) -> int:
        return self.start + len(self.entries)


class _ParsedBatches:
    """Batches already parsed in this process, by origin, key and SHA-256 of the stored
    bytes (an LRU bounded by the number of entries held).

    Parsing a batch is a pure function of those bytes: each of its entries is checked to
    be canonical, which costs about 10 µs an entry, and one ``drkit verify`` reads the
    same journal several times (the key history, the primary's log for every region, the
    audit log's writer keys, the rotation proofs) and the same batches in every region.
    Only the parse is kept: the signature of a batch is verified on every read, against
    the keys trusted by that read."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[tuple[str, str, bytes], Batch] = OrderedDict()
        self._entries = 0

    def get(self, origin: str, key: str, digest: bytes) -> Batch | None:
        batch = self._items.get((origin, key, digest))
        if batch is not None:
            self._items.move_to_end((origin, key, digest))
        return batch

    def put(self, origin: str, key: str, digest: bytes, batch: Batch) -> None:
        if len(batch.entries) > self.max_entries:
            return
        self._items[(origin, key, digest)] = batch
        self._entries += len(batch.entries)
        while self._entries > self.max_entries:
            _key, old = self._items.popitem(last=False)
            self._entries -= len(old.entries)

    def clear(self) -> None:
        self._items.clear()
        self._entries = 0


#: About 0.5 KiB of memory an entry; a journal of 500,000 objects describes some
#: terabytes of packs.
PARSED_BATCHES = _ParsedBatches(max_entries=500_000)


def decode_batch(key: str, data: bytes, origin: str,
                 trusted: Sequence[Ed25519PublicKey] = ()) -> Batch:
    """Parse and check a batch object against its key; IntegrityError naming the problem.

    ``signers`` of the result are the ``trusted`` keys that signed it (version 2 only)."""
    m = _BATCH_RE.match(key)
    if not m:
        raise IntegrityError(f"{key}: not a journal batch key")
    digest = hashlib.sha256(data).digest()
    if digest.hex()[:16] != m.group(3):
        raise IntegrityError(f"{key}: content does not match the hash in its key (altered)")
    signers: tuple[str, ...] = ()
    if data.startswith(BATCH_MAGIC.encode() + b" "):
        try:
            text, good = open_note(data, trusted, what=f"{key}: batch")
        except IntegrityError as exc:
            raise IntegrityError(str(exc) if str(exc).startswith(key) else f"{key}: {exc}"
                                 ) from None
        signers = tuple(good)
        data = text.encode("utf-8")
    batch = PARSED_BATCHES.get(origin, key, digest)
    if batch is None:
        batch = _parse_batch(key, m, data, origin)
        PARSED_BATCHES.put(origin, key, digest, batch)
    return replace(batch, signers=signers) if signers else batch


def _parse_batch(key: str, m: re.Match[str], data: bytes, origin: str) -> Batch:
    """The header and entries of a batch's text (the signature already checked)."""
    header, sep, body = data.partition(b"\n")
    parts = header.decode("utf-8", "replace").split(" ")
    if not sep or not ((len(parts) == 5 and parts[0] == BATCH_MAGIC_V1)
                       or (len(parts) == 6 and parts[0] == BATCH_MAGIC)):
        raise IntegrityError(f"{key}: not a drkit journal batch")
    version = 1 if parts[0] == BATCH_MAGIC_V1 else 2
    if parts[1] != origin:
        raise IntegrityError(f"{key}: batch is for origin {parts[1]!r}, expected {origin!r}")
    try:
        start, count = int(parts[2]), int(parts[3])
    except ValueError:
        raise IntegrityError(f"{key}: malformed batch header") from None
    if start != int(m.group(1)) or start + count != int(m.group(2)) or count < 1:
        raise IntegrityError(f"{key}: batch header does not match its key")
    prev_status = "checkpointed"
    if version == 2:
        prev_status = parts[5]
        if prev_status not in PREV_STATUSES or (prev_status == "-") != (parts[4] == "-"):
            raise IntegrityError(f"{key}: malformed batch header (previous-batch status)")
    lines = body.split(b"\n")
    if lines[-1] != b"" or len(lines) - 1 != count:
        raise IntegrityError(f"{key}: batch holds {len(lines) - 1} lines, header says {count}")
    entries = []
    for i, line in enumerate(lines[:-1]):
        try:
            entries.append(JournalEntry.from_bytes(line))
        except IntegrityError as exc:
            raise IntegrityError(f"{key}: entry {start + i}: {exc}") from None
    prev = None if parts[4] == "-" else parts[4]
    # from_bytes proved each line is its entry's canonical form, so the line is the leaf.
    return Batch(key=key, start=start, prev=prev, entries=tuple(entries), version=version,
                 prev_status=prev_status, leaves=tuple(hash_leaf(line) for line in lines[:-1]))


def describe_entries(entries: Sequence[JournalEntry], limit: int = 10) -> str:
    """Entries named for a finding: an audit event by action, time and result, anything
    else by its key. They are evidence, so they are named, not counted."""
    names = []
    for entry in entries[:limit]:
        note = entry.note if isinstance(entry.note, dict) else None
        if note and "action" in note:
            raw_who = note.get("who")
            who: dict[str, Any] = raw_who if isinstance(raw_who, dict) else {}
            names.append(f"event {note.get('action')} at {note.get('at')} "
                         f"({note.get('result')}, by {who.get('os_user')}@{who.get('host')})")
        else:
            names.append(f"{entry.kind} {entry.key}")
    more = f" and {len(entries) - limit} more" if len(entries) > limit else ""
    return "; ".join(names) + more


class AppendIntents:
    """Write-ahead record, in this host's local state, of batches this host is about to
    append to one journal. A batch it names that no checkpoint covers is this host's own
    interrupted append (a crash between the batch and its checkpoint), not a deleted
    checkpoint: the next append completes it instead of reporting it."""

    def __init__(self, directory: Path, store_url: str, origin: str) -> None:
        name = hashlib.sha256(f"{store_url}\n{origin}".encode()).hexdigest()[:16]
        self.path = Path(directory) / f"journal-intents-{name}.json"

    def batches(self) -> set[str]:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            return {str(k) for k in doc["batches"]}
        except FileNotFoundError:
            return set()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("%s: unreadable journal write-ahead record (%s); ignored", self.path,
                        exc)
            return set()

    def _write(self, keys: set[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".intents-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"format": "drkit-journal-intents", "version": 1,
                           "batches": sorted(keys)}, fh)
                fh.flush()
                os.fsync(fh.fileno())  # durable before the batch is put: write-ahead
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def add(self, key: str) -> None:
        self._write(self.batches() | {key})

    def discard(self, keys: set[str]) -> None:
        current = self.batches()
        if current & keys:
            self._write(current - keys)


@dataclass(frozen=True)
class LogProblem:
    severity: str  # "error" (tampering or corruption) or "warning"
    kind: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}" if self.key else self.message


@dataclass
class LogView:
    """What a store's journal says, after verification, plus every problem found."""

    origin: str
    checkpoint: Checkpoint | None = None
    entries: list[JournalEntry] = field(default_factory=list)
    leaf_hashes: list[bytes] = field(default_factory=list)
    batch_keys: list[str] = field(default_factory=list)  # the chain, oldest first
    checkpoints: list[tuple[str, Checkpoint]] = field(default_factory=list)  # valid, ascending
    listing: dict[str, ObjectInfo] = field(default_factory=dict)
    problems: list[LogProblem] = field(default_factory=list)
    # Signed batches extending the verified log that no checkpoint covers, in order, each
    # with whether this host's write-ahead record claims it as its own interrupted append.
    uncovered: list[tuple[Batch, bool]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return self.checkpoint.size if self.checkpoint else 0

    @property
    def errors(self) -> list[LogProblem]:
        return [p for p in self.problems if p.severity == "error"]

    def problem(self, severity: str, kind: str, key: str, message: str) -> None:
        self.problems.append(LogProblem(severity, kind, key, message))

    def root_at(self, size: int) -> bytes:
        builder = RootBuilder()
        for leaf in self.leaf_hashes[:size]:
            builder.add(leaf)
        return builder.root()

    def raise_for_errors(self, where: str, *, ignore: frozenset[str] = NON_BLOCKING) -> None:
        """IntegrityError for the first error that makes the log's content untrustworthy.

        By default a deleted checkpoint or an uncovered batch does not stop reading or
        appending (the content is proven by a newer checkpoint, and the append adopts the
        batch); verify, check and audit verify report them."""
        errors = [p for p in self.errors if p.kind not in ignore]
        if errors:
            more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
            raise IntegrityError(f"{where}: journal: {errors[0]}{more}")

    def copy(self, listing: dict[str, ObjectInfo]) -> LogView:
        """A view of its own (lists copied, the immutable items shared) with ``listing``."""
        return LogView(origin=self.origin, checkpoint=self.checkpoint,
                       entries=list(self.entries), leaf_hashes=list(self.leaf_hashes),
                       batch_keys=list(self.batch_keys), checkpoints=list(self.checkpoints),
                       listing=listing, problems=list(self.problems),
                       uncovered=list(self.uncovered))


class _RecordingReader:
    """``store.get`` that remembers the SHA-256 of every object it returned (None for one
    that was not found): what a reading of the log depended on."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.digests: dict[str, bytes | None] = {}

    def get(self, key: str) -> bytes:
        try:
            data = self.store.get(key)
        except ObjectNotFound:
            self.digests[key] = None
            raise
        self.digests[key] = hashlib.sha256(data).digest()
        return data


@dataclass
class _Reading:
    shape: tuple[tuple[str, int], ...]  # the journal listing: keys and sizes
    digests: dict[str, bytes | None]  # every object read, by key
    view: LogView


class _RecentReadings:
    """The last readings of a few journals in this process.

    ``read_log`` is a function of the journal listing's keys, the bytes of the objects it
    reads, the origin, the trusted keys and ``own``. A new reading with the same four
    inputs, whose listing has the same keys and sizes and whose objects (each read again)
    have the same SHA-256, gives the same view: it is returned without verifying 100,000
    entries and a Merkle tree again. One ``drkit verify`` reads the primary's journal for
    the key history, for each region, for the audit log's writer keys and for the writer
    key rotations."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[Any, ...], _Reading] = OrderedDict()

    def get(self, key: tuple[Any, ...], store: Store, listing: dict[str, ObjectInfo]
            ) -> LogView | None:
        reading = self._items.get(key)
        if reading is None or reading.shape != _shape(listing):
            return None
        for name, digest in reading.digests.items():
            try:
                now: bytes | None = hashlib.sha256(store.get(name)).digest()
            except ObjectNotFound:
                now = None
            if now != digest:
                return None
        self._items.move_to_end(key)
        return reading.view.copy(listing)

    def put(self, key: tuple[Any, ...], listing: dict[str, ObjectInfo],
            digests: dict[str, bytes | None], view: LogView) -> None:
        self._items[key] = _Reading(_shape(listing), dict(digests), view.copy(dict(listing)))
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


def _shape(listing: dict[str, ObjectInfo]) -> tuple[tuple[str, int], ...]:
    return tuple((key, info.size) for key, info in listing.items())


RECENT_READINGS = _RecentReadings(size=8)


def read_log(store: Store, origin: str, trusted: Sequence[Ed25519PublicKey],
             own: frozenset[str] | set[str] = frozenset()) -> LogView:
    """Read and verify a store's journal, collecting problems instead of stopping.

    ``own`` are batch keys this host recorded write-ahead (``AppendIntents``): an
    uncovered batch among them is an interrupted append, not a deleted checkpoint."""
    listing = {info.key: info for info in store.list(JOURNAL_PREFIX)}
    memo = (store.url, origin, tuple(k.public_bytes_raw() for k in trusted), frozenset(own))
    view = RECENT_READINGS.get(memo, store, listing)
    if view is not None:
        return view
    reader = _RecordingReader(store)
    view = _read_log(reader, origin, trusted, own, listing)
    RECENT_READINGS.put(memo, listing, reader.digests, view)
    return view


def _read_log(store: _RecordingReader, origin: str, trusted: Sequence[Ed25519PublicKey],
              own: frozenset[str] | set[str], listing: dict[str, ObjectInfo]) -> LogView:
    view = LogView(origin=origin)
    view.listing = listing
    checkpoint_keys: list[tuple[int, str]] = []
    batch_keys: list[str] = []
    for key in view.listing:
        if m := _CHECKPOINT_RE.match(key):
            checkpoint_keys.append((int(m.group(1)), key))
        elif _BATCH_RE.match(key):
            batch_keys.append(key)
        else:
            view.problem("warning", "unexpected-object", key,
                         "object under journal/ that is not a batch or checkpoint")
    valid: list[tuple[str, Checkpoint]] = []
    for size, key in sorted(checkpoint_keys, reverse=True):
        try:
            cp = Checkpoint.open(store.get(key), trusted, origin=origin)
        except IntegrityError as exc:
            view.problem("error", "checkpoint-invalid", key, str(exc))
            continue
        except ObjectNotFound:
            view.problem("error", "checkpoint-missing", key, "listed but cannot be read")
            continue
        if cp.size != size:
            view.problem("error", "checkpoint-invalid", key,
                         f"signed size {cp.size} does not match the key")
            continue
        valid.append((key, cp))

    cache: dict[str, Batch] = {}
    for key, cp in valid:  # newest first; fall back to older ones if the chain is broken
        chain = _load_chain(store, origin, trusted, cp, cache, view, key)
        if chain is None:
            continue
        builder = RootBuilder()
        roots: dict[int, bytes] = {}
        sizes = {c.size for _k, c in valid if c.size <= cp.size}
        leaf_hashes: list[bytes] = []
        entries: list[JournalEntry] = []
        if 0 in sizes:
            roots[0] = builder.root()
        for batch in chain:
            entries.extend(batch.entries)
            leaf_hashes.extend(batch.leaves)
            for leaf in batch.leaves:
                builder.add(leaf)
                if builder.size in sizes:
                    roots[builder.size] = builder.root()
        if roots.get(cp.size) != cp.root:
            view.problem("error", "root-mismatch", key,
                         f"entries do not hash to the signed root of size {cp.size}")
            continue
        view.checkpoint = cp
        view.entries = entries
        view.leaf_hashes = leaf_hashes
        view.batch_keys = [b.key for b in chain]
        for other_key, other in valid:
            if other.size <= cp.size and roots.get(other.size) != other.root:
                view.problem("error", "fork", other_key,
                             f"signed root at size {other.size} disagrees with the log "
                             "(two different histories)")
        view.checkpoints = sorted(((k, c) for k, c in valid if c.size <= cp.size),
                                  key=lambda kc: kc[1].size)
        break
    listed_sizes = {size for size, _key in checkpoint_keys}
    chain_batches = [cache[k] for k in view.batch_keys]
    _check_checkpoints_kept(view, chain_batches, listed_sizes)
    _find_uncovered(store, origin, trusted, own, view, batch_keys, cache)
    in_chain = set(view.batch_keys) | {b.key for b, _own in view.uncovered}
    for key in sorted(batch_keys):
        if key not in in_chain:
            view.problem("warning", "stray-batch", key,
                         "batch not covered by the verified log (left by an interrupted "
                         "append, or injected); its entries are not trusted")
    return view


def _check_checkpoints_kept(view: LogView, chain: Sequence[Batch], listed: set[int]) -> None:
    """Every batch of the chain ended at a checkpoint when it was written; a checkpoint
    that is gone was deleted from a copy that may only grow (issue 24, item 7)."""
    for batch, nxt in zip(chain, chain[1:], strict=False):
        if batch.end in listed:
            continue
        if nxt.prev_status == "unclaimed":
            view.problem("error", "checkpoint-deleted", checkpoint_key(batch.end),
                         f"no checkpoint covered batch {batch.key} when the next append "
                         "adopted it (its checkpoint was deleted); its entries are kept: "
                         + describe_entries(batch.entries))
        else:
            view.problem("error", "checkpoint-deleted", checkpoint_key(batch.end),
                         f"the checkpoint of size {batch.end} (ending batch {batch.key}) is "
                         "gone: deleted from a copy that may only grow")


def _find_uncovered(store: _RecordingReader, origin: str, trusted: Sequence[Ed25519PublicKey],
                    own: frozenset[str] | set[str], view: LogView, batch_keys: list[str],
                    cache: dict[str, Batch]) -> None:
    """Signed batches that extend the verified log and that no checkpoint covers: the
    trace of a deleted newest checkpoint, or of this host's interrupted append."""
    by_start: dict[int, list[str]] = {}
    for key in batch_keys:
        m = _BATCH_RE.match(key)
        if m:
            by_start.setdefault(int(m.group(1)), []).append(key)
    head = view.batch_keys[-1] if view.batch_keys else None
    position = view.size
    if view.checkpoint is None and view.errors:
        return  # nothing verified to extend
    while True:
        found: Batch | None = None
        for key in sorted(by_start.get(position, [])):
            if key in view.batch_keys:
                continue
            try:
                batch = cache.get(key) or decode_batch(key, store.get(key), origin, trusted)
            except (IntegrityError, ObjectNotFound):
                continue  # reported as a stray batch
            if batch.prev == head and (batch.signers or key in own):
                found = batch
                break
        if found is None:
            return
        claimed = found.key in own
        view.uncovered.append((found, claimed))
        if claimed:
            view.problem("warning", "interrupted-append", found.key,
                         "this host's append was interrupted before its checkpoint; the next "
                         "append completes it")
        else:
            view.problem("error", "batch-uncovered", found.key,
                         f"signed batch extends the log at {found.start} but no checkpoint "
                         "covers it (the newest checkpoint was deleted); its entries: "
                         + describe_entries(found.entries))
        head, position = found.key, found.end


def _load_chain(store: _RecordingReader, origin: str, trusted: Sequence[Ed25519PublicKey],
                cp: Checkpoint, cache: dict[str, Batch], view: LogView, cp_key: str
                ) -> list[Batch] | None:
    chain: list[Batch] = []
    if cp.size == 0:
        return chain
    key = cp.batch
    expected_end = cp.size
    if not key:
        view.problem("error", "checkpoint-invalid", cp_key, "checkpoint names no batch")
        return None
    while key is not None:
        batch = cache.get(key)
        if batch is None:
            try:
                batch = decode_batch(key, store.get(key), origin, trusted)
            except ObjectNotFound:
                view.problem("error", "batch-missing", key,
                             f"batch of the log up to size {cp.size} is missing (deleted)")
                return None
            except IntegrityError as exc:
                view.problem("error", "batch-invalid", key, str(exc))
                return None
            cache[key] = batch
        if batch.end != expected_end:
            view.problem("error", "batch-invalid", key,
                         f"batch ends at {batch.end}, the log expects {expected_end}")
            return None
        chain.append(batch)
        expected_end = batch.start
        key = batch.prev
    if expected_end != 0:
        view.problem("error", "batch-invalid", chain[-1].key,
                     f"the batch chain stops at {expected_end} instead of 0")
        return None
    chain.reverse()
    return chain


class Journal:
    """The append-only log of every object a repository writes, in one store.

    ``intents_dir`` is a folder of this host's local state for the write-ahead record of
    its appends (``AppendIntents``); without it an interrupted append of this host looks
    like a deleted checkpoint to the next append (adopted, and reported)."""

    def __init__(self, store: Store, origin: str, *, intents_dir: Path | None = None) -> None:
        if not origin or any(c in origin for c in " \n\r\t"):
            raise InputError(f"journal origin {origin!r} must be one word")
        self.store = store
        self.origin = origin
        self.intents = (AppendIntents(intents_dir, store.url, origin)
                        if intents_dir is not None else None)

    def read(self, trusted: Sequence[Ed25519PublicKey]) -> LogView:
        own = self.intents.batches() if self.intents is not None else set()
        return read_log(self.store, self.origin, trusted, own)

    def latest(self, trusted: Sequence[Ed25519PublicKey]) -> Checkpoint | None:
        return self.entries(trusted)[0]

    def entries(self, trusted: Sequence[Ed25519PublicKey]
                ) -> tuple[Checkpoint | None, list[JournalEntry]]:
        view = self.read(trusted)
        view.raise_for_errors(self.store.url)
        return view.checkpoint, view.entries

    def append(self, entries: Sequence[JournalEntry], signer: Ed25519PrivateKey, *,
               now: datetime, trusted: Sequence[Ed25519PublicKey] | None = None
               ) -> Checkpoint:
        """Write ``entries`` as one signed batch, then a signed checkpoint over the log.

        ``trusted`` are the keys the existing log is verified against (default: the
        signer's own public key). Raises IntegrityError if the existing log does not
        verify or an entry contradicts an earlier one (same key, different bytes).

        A position where a signed batch already extends the log is never taken again:
        this host's own interrupted append is completed with the checkpoint it missed
        (and entries it holds are not appended twice); any other such batch is adopted,
        so its entries stay in the log, and the new batch records it as ``unclaimed``.
        """
        keys = list(trusted) if trusted is not None else [signer.public_key()]
        view = self.read(keys)
        view.raise_for_errors(self.store.url)
        if not entries:
            if view.checkpoint is None:
                raise InputError("nothing to append to an empty journal")
            return view.checkpoint
        known: dict[str, JournalEntry] = {}
        for entry in view.entries:
            if entry.kind != "external":
                known[entry.key] = entry
        builder = RootBuilder()
        for leaf in view.leaf_hashes:
            builder.add(leaf)
        head = view.batch_keys[-1] if view.batch_keys else None
        status = "checkpointed"
        completed: Checkpoint | None = None
        done: set[str] = set()
        already: set[bytes] = set()
        for batch, claimed in view.uncovered:
            for entry in batch.entries:
                builder.add(hash_leaf(entry.to_bytes()))
                if entry.kind != "external":
                    known[entry.key] = entry
            head = batch.key
            if claimed and status == "checkpointed":
                completed = self._put_checkpoint(builder, batch.key, signer, now, batch.start)
                done.add(batch.key)
                already |= {e.to_bytes() for e in batch.entries}
                log.warning("journal %s: completed this host's interrupted append %s",
                            self.store.url, batch.key)
            else:
                status = "unclaimed"
                log.warning("journal %s: adopted %s, which no checkpoint covered",
                            self.store.url, batch.key)
        todo = [e for e in entries if e.to_bytes() not in already]
        if not todo:  # all of it was in this host's interrupted append, now completed
            assert completed is not None
            self._forget(done, completed.size)
            return completed
        for entry in todo:
            if not isinstance(entry, JournalEntry):
                raise InputError("journal entries must be JournalEntry objects")
            old = known.get(entry.key)
            if (entry.kind == "object" and old is not None and old.kind == "object"
                    and (old.sha256, old.size) != (entry.sha256, entry.size)):
                raise IntegrityError(
                    f"{entry.key}: already logged with different content; objects are "
                    "never overwritten"
                )
            if entry.kind != "external":
                known[entry.key] = entry
        start = builder.size
        data = encode_batch(self.origin, start, todo, head, signer=signer, prev_status=status)
        bkey = batch_key(start, start + len(todo), data)
        if self.intents is not None:
            self.intents.add(bkey)  # write-ahead: before the batch exists
        try:
            self.store.put(bkey, data)
        except ObjectExists:
            if self.store.get(bkey) != data:  # pragma: no cover - would need a hash collision
                raise IntegrityError(f"{bkey}: exists with other content") from None
        faults.point("journal.batch.after")
        for entry in todo:
            builder.add(hash_leaf(entry.to_bytes()))
        cp = self._put_checkpoint(builder, bkey, signer, now, start)
        self._forget(done | {bkey}, cp.size)
        log.info("journal %s: appended %d entries, size %d", self.store.url, len(todo),
                 cp.size)
        return cp

    def _put_checkpoint(self, builder: RootBuilder, bkey: str, signer: Ed25519PrivateKey,
                        now: datetime, start: int) -> Checkpoint:
        cp = Checkpoint(origin=self.origin, size=builder.size, root=builder.root(),
                        time=now, batch=bkey)
        ckey = checkpoint_key(cp.size)
        try:
            self.store.put(ckey, cp.sign(signer))
        except ObjectExists:
            raise IntegrityError(
                f"{self.store.url}: {ckey} already exists although the verified log ends at "
                f"{start}: another writer or a forged checkpoint"
            ) from None
        return Checkpoint.open(self.store.get(ckey), [signer.public_key()], origin=self.origin)

    def _forget(self, keys: set[str], size: int) -> None:
        """Drop write-ahead records that are now covered, or that can no longer extend the
        log (a lost race: their position is taken)."""
        if self.intents is None:
            return
        stale = set(keys)
        for key in self.intents.batches():
            m = _BATCH_RE.match(key)
            if m and int(m.group(1)) < size:
                stale.add(key)
        self.intents.discard(stale)
