"""The journal as stored: create-only batch objects and signed checkpoint objects.

Layout under the reserved prefix ``journal/`` of a store (keys sort numerically)::

    journal/batch/<start:016d>-<end:016d>-<sha256 of the object, 16 hex>
    journal/checkpoint/<size:016d>

A batch object is one header line and then one leaf (``JournalEntry.to_bytes()``, which
is canonical JSON and so never contains a newline) per line::

    drkit-journal-batch/1 <origin> <start> <count> <previous batch key or ->

Each checkpoint names the batch that ends at its size, and each batch names the one
before it, so the log is the chain read backwards from the latest valid checkpoint.
The content hash in a batch key lets a writer that crashed between writing a batch and
its checkpoint write a fresh batch next time without overwriting anything; the stray
batch is never part of the chain and is reported as a warning.

``read_log`` collects every problem it finds (it is what ``drkit verify`` uses);
``Journal`` raises ``IntegrityError`` on the first error-level problem.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from drkit import faults
from drkit.errors import InputError, IntegrityError, ObjectExists, ObjectNotFound
from drkit.journal.checkpoint import Checkpoint
from drkit.journal.entry import JOURNAL_PREFIX, JournalEntry
from drkit.journal.merkle import RootBuilder, hash_leaf
from drkit.storage.base import ObjectInfo, Store

log = logging.getLogger(__name__)

BATCH_PREFIX = JOURNAL_PREFIX + "batch/"
CHECKPOINT_PREFIX = JOURNAL_PREFIX + "checkpoint/"
BATCH_MAGIC = "drkit-journal-batch/1"
_BATCH_RE = re.compile(r"^journal/batch/(\d{16})-(\d{16})-([0-9a-f]{16})$")
_CHECKPOINT_RE = re.compile(r"^journal/checkpoint/(\d{16})$")


def checkpoint_key(size: int) -> str:
    return f"{CHECKPOINT_PREFIX}{size:016d}"


def batch_key(start: int, end: int, data: bytes) -> str:
    return f"{BATCH_PREFIX}{start:016d}-{end:016d}-{hashlib.sha256(data).hexdigest()[:16]}"


def encode_batch(origin: str, start: int, entries: Sequence[JournalEntry], prev: str | None
                 ) -> bytes:
    header = f"{BATCH_MAGIC} {origin} {start} {len(entries)} {prev or '-'}\n".encode()
    return header + b"".join(e.to_bytes() + b"\n" for e in entries)


@dataclass(frozen=True)
class Batch:
    key: str
    start: int
    prev: str | None
    entries: tuple[JournalEntry, ...]

    @property
    def end(self) -> int:
        return self.start + len(self.entries)


def decode_batch(key: str, data: bytes, origin: str) -> Batch:
    """Parse and check a batch object against its key; IntegrityError naming the problem."""
    m = _BATCH_RE.match(key)
    if not m:
        raise IntegrityError(f"{key}: not a journal batch key")
    if hashlib.sha256(data).hexdigest()[:16] != m.group(3):
        raise IntegrityError(f"{key}: content does not match the hash in its key (altered)")
    header, sep, body = data.partition(b"\n")
    parts = header.decode("utf-8", "replace").split(" ")
    if not sep or len(parts) != 5 or parts[0] != BATCH_MAGIC:
        raise IntegrityError(f"{key}: not a drkit journal batch")
    if parts[1] != origin:
        raise IntegrityError(f"{key}: batch is for origin {parts[1]!r}, expected {origin!r}")
    try:
        start, count = int(parts[2]), int(parts[3])
    except ValueError:
        raise IntegrityError(f"{key}: malformed batch header") from None
    if start != int(m.group(1)) or start + count != int(m.group(2)) or count < 1:
        raise IntegrityError(f"{key}: batch header does not match its key")
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
    return Batch(key=key, start=start, prev=prev, entries=tuple(entries))


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

    def raise_for_errors(self, where: str) -> None:
        errors = self.errors
        if errors:
            more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
            raise IntegrityError(f"{where}: journal: {errors[0]}{more}")


def read_log(store: Store, origin: str, trusted: Sequence[Ed25519PublicKey]) -> LogView:
    """Read and verify a store's journal, collecting problems instead of stopping."""
    view = LogView(origin=origin)
    view.listing = {info.key: info for info in store.list(JOURNAL_PREFIX)}
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
        chain = _load_chain(store, origin, cp, cache, view, key)
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
            for entry in batch.entries:
                entries.append(entry)
                leaf = hash_leaf(entry.to_bytes())
                leaf_hashes.append(leaf)
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
    in_chain = set(view.batch_keys)
    for key in sorted(batch_keys):
        if key not in in_chain:
            view.problem("warning", "stray-batch", key,
                         "batch not covered by the verified log (left by an interrupted "
                         "append, or injected); its entries are not trusted")
    return view


def _load_chain(store: Store, origin: str, cp: Checkpoint, cache: dict[str, Batch],
                view: LogView, cp_key: str) -> list[Batch] | None:
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
                batch = decode_batch(key, store.get(key), origin)
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
    """The append-only log of every object a repository writes, in one store."""

    def __init__(self, store: Store, origin: str) -> None:
        if not origin or any(c in origin for c in " \n\r\t"):
            raise InputError(f"journal origin {origin!r} must be one word")
        self.store = store
        self.origin = origin

    def read(self, trusted: Sequence[Ed25519PublicKey]) -> LogView:
        return read_log(self.store, self.origin, trusted)

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
        """Write ``entries`` as one batch, then a signed checkpoint over the whole log.

        ``trusted`` are the keys the existing log is verified against (default: the
        signer's own public key). Raises IntegrityError if the existing log does not
        verify or an entry contradicts an earlier one (same key, different bytes).
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
        for entry in entries:
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
        start = view.size
        prev = view.batch_keys[-1] if view.batch_keys else None
        data = encode_batch(self.origin, start, entries, prev)
        bkey = batch_key(start, start + len(entries), data)
        try:
            self.store.put(bkey, data)
        except ObjectExists:
            if self.store.get(bkey) != data:  # pragma: no cover - would need a hash collision
                raise IntegrityError(f"{bkey}: exists with other content") from None
        faults.point("journal.batch.after")
        builder = RootBuilder()
        for leaf in view.leaf_hashes:
            builder.add(leaf)
        for entry in entries:
            builder.add(hash_leaf(entry.to_bytes()))
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
        log.info("journal %s: appended %d entries, size %d", self.store.url, len(entries),
                 cp.size)
        return Checkpoint.open(self.store.get(ckey), [signer.public_key()], origin=self.origin)
