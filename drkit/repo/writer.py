"""The write side: new objects for one run, packed, indexed and journaled at commit.

A run writes its sealed session key, then packs (each followed at once by its signed
index file), then whatever documents the caller adds (a snapshot manifest), and finally
appends to the journal once (``repo.journal_writer.append_locked``, under the lock it
holds) with an entry for every object it wrote. Until that last step nothing is visible
to readers.

Write-ahead: before each group of objects (the session key; a pack with its index; a
document) the writer stores a signed intent (``intents/<sha256>``, ``formats.Intent``)
naming the keys, sizes and hashes it is about to create. So every object drkit writes is
either journaled or named by a signed intent, on any host: verify reports an unjournaled
object whose bytes match a trusted intent as a leftover of an interrupted write (a low
note), not as injected data, and the next run adopts the leftovers whose bytes verify into
the journal (reusing their chunks). Objects that are neither journaled nor named by a
trusted intent (for instance injected by someone with write access to the bucket) are
never used.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from drkit import faults
from drkit.clock import utc_iso
from drkit.config import Config, RegionConfig
from drkit.errors import IntegrityError, ObjectExists, ObjectNotFound
from drkit.journal import Checkpoint, JournalEntry
from drkit.repo.crypto import ChunkCipher, encrypt_document, seal_session_key
from drkit.repo.formats import (
    INTENT_PREFIX,
    PACK_MAGIC,
    ChunkLocation,
    IndexFile,
    Intent,
    content_key,
    pack_key,
)
from drkit.repo.journal_writer import append_locked
from drkit.repo.keys import (
    CONFIG_KEY,
    WriterKeys,
    encode_repository_config,
    load_trusted_writer_keys,
    load_writer_keys,
    read_repository_config,
)
from drkit.repo.lock import RepositoryLock
from drkit.repo.region_identity import ensure_identity
from drkit.repo.repository import Repository
from drkit.repo.retention import retention_note
from drkit.storage.base import ObjectInfo, Store
from drkit.storage.url import open_store

log = logging.getLogger(__name__)


def retain_until(region: RegionConfig, now: datetime) -> datetime | None:
    return now + timedelta(days=region.lock_days) if region.lock_days > 0 else None


def initialise_repository(store: Store, region: RegionConfig, keys: WriterKeys, *,
                          now: datetime, cache_dir: Path) -> ObjectInfo:
    """Write the signed ``config`` object and journal it, and the region's identity;
    refuse a foreign repository."""
    trusted = [keys.signing_key.public_key()]
    if store.exists(CONFIG_KEY):
        existing = read_repository_config(store, trusted)
        if existing.repository_id != keys.repository_id:
            raise IntegrityError(f"{store.url}: holds repository {existing.repository_id}, "
                                 f"not {keys.repository_id}")
        ensure_identity(store, keys.signing_key, trusted, region=region.name,
                        repository_id=keys.repository_id, now=now)
        return store.head(CONFIG_KEY)
    with RepositoryLock(cache_dir, keys.repository_id, now=now) as lock:
        info = store.put(CONFIG_KEY, encode_repository_config(keys, now=now),
                         storage_class=region.storage_class,
                         retain_until=retain_until(region, now))
        append_locked(store, keys.repository_id, [JournalEntry.from_info(info)],
                      keys.signing_key, trusted=trusted, now=now, lock=lock,
                      intents_dir=cache_dir)
    ensure_identity(store, keys.signing_key, trusted, region=region.name,
                    repository_id=keys.repository_id, now=now)
    return info


class RepositoryWriter:
    """One run's writer on the primary region. Use as a context manager (holds the lock)."""

    def __init__(self, store: Store, region: RegionConfig, keys: WriterKeys,
                 trusted: Sequence[Ed25519PublicKey], cache_dir: Path, *, now: datetime,
                 pack_size: int = 16 << 20, upload_threads: int = 2,
                 regions: Sequence[RegionConfig] = (), config: Config | None = None
                 ) -> None:
        self.store = store
        self.config = config
        self.region = region
        # Journaled with every new object: the class and retain-until each region's copy
        # must keep (drkit.repo.retention), so an edited local sidecar is found by verify.
        self.retention = retention_note(regions or [region], now)
        self.keys = keys
        self.trusted = list(trusted)
        self.now = now
        self.pack_size = pack_size
        self.lock = RepositoryLock(cache_dir, keys.repository_id, now=now)
        # Seconds to wait for a lock another live process holds (0: refuse at once).
        self.lock_wait = 0.0
        self.cache_dir = cache_dir
        self.written: list[JournalEntry] = []
        self.reused: list[JournalEntry] = []
        self.repo: Repository | None = None
        self.known: dict[bytes, ChunkLocation] = {}
        self._known_loaded = False
        self._state = threading.Lock()
        # The open pack: its blobs in order (joined once when it is full: growing one
        # bytearray would copy every byte several times) and its length so far.
        self._pack_parts: list[bytes | bytearray] = []
        self._pack_length = 0
        self._pack_chunks: list[tuple[bytes, int, int, int]] = []
        self._adding: set[bytes] = set()
        self._uploads: list[Future[None]] = []
        self._pool = ThreadPoolExecutor(max(1, upload_threads), thread_name_prefix="upload")
        self._in_flight = 1 if store.url.startswith("file:") else max(1, upload_threads)
        self._session_lock = threading.Lock()
        self._upload_lock = threading.Lock()
        self._session: str | None = None
        self._cipher: ChunkCipher | None = None
        self._session_key: bytes | None = None
        self.bytes_new = 0
        self.bytes_stored = 0
        self.chunks_new = 0

    @classmethod
    def for_config(cls, config: Config, *, now: datetime, store: Store | None = None,
                   upload_threads: int = 2) -> RepositoryWriter:
        from drkit.repo.keyhistory import repository_history

        region = config.primary_region
        store = store or open_store(region.url, base_dir=config.base_dir)
        # The writer checks the log, and its own key, against the repository's journaled
        # key history from this host's anchor; a local ``verify.writer_keys`` edit cannot
        # make a hand-swapped key a writer.
        try:
            trusted = repository_history(config, store)
        except ObjectNotFound:  # no repository yet: Repository.open says so
            trusted = load_trusted_writer_keys(config, store)
        return cls(store, region, load_writer_keys(config), trusted, config.cache_dir,
                   now=now, pack_size=config.pack_size_mib << 20, upload_threads=upload_threads,
                   regions=list(config.regions.values()), config=config)

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> RepositoryWriter:
        self.lock.acquire(wait=self.lock_wait)
        try:
            self.repo = Repository.open(self.store, self.trusted, region=self.region.name)
            if self.repo.repository_id != self.keys.repository_id:
                raise IntegrityError(f"{self.store.url}: holds repository "
                                     f"{self.repo.repository_id}, keys are for "
                                     f"{self.keys.repository_id}")
            if self.config is not None:
                from drkit.repo.keyhistory import require_in_history

                require_in_history(self.config, self.keys.signing_key.public_key(),
                                   self.trusted)
            self.store.clean_temp_files()  # of earlier runs that were killed
            self._reuse_leftovers()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.lock.release()

    def _reuse_leftovers(self) -> None:
        """Adopt the objects of interrupted runs: every unjournaled intent signed by a
        trusted writer key for this repository, and each object it names whose bytes are
        exactly the ones it names. Runs under the lock, so no live writer owns them."""
        assert self.repo is not None
        for listed in self.store.list(INTENT_PREFIX + "/"):
            if listed.key in self.repo.visible:
                continue
            try:
                data = self.store.get(listed.key)
                intent = Intent.decode(data, self.trusted, name=f"{self.store.url}: "
                                                               f"{listed.key}")
            except (IntegrityError, ObjectNotFound) as exc:
                log.warning("%s: %s is not a trusted intent; not adopted (%s)",
                            self.store.url, listed.key, exc)
                continue
            if (intent.repository_id != self.keys.repository_id
                    or content_key(INTENT_PREFIX, data) != listed.key):
                log.warning("%s: %s belongs to another repository or is misnamed; "
                            "not adopted", self.store.url, listed.key)
                continue
            self.reused.append(JournalEntry(kind="object", key=listed.key, size=len(data),
                                            sha256=hashlib.sha256(data).hexdigest()))
            present = 0
            for key, size, sha256 in intent.objects:
                if key in self.repo.visible:
                    present += 1
                    continue
                # An embedded object (a pack's index) is re-created only when everything
                # else the intent names is in place: never an index without its pack.
                complete = present == len(intent.objects) - 1
                entry = self._leftover_entry(
                    key, size, sha256, intent.embedded_object(key) if complete else None)
                if entry is not None:
                    self.reused.append(entry)
                    present += 1
        if self.reused:
            log.info("%s: adopting %d objects left by an interrupted run", self.store.url,
                     len(self.reused))

    def _leftover_entry(self, key: str, size: int, sha256: str,
                        embedded: bytes | None) -> JournalEntry | None:
        try:
            info = self.store.head(key)
        except ObjectNotFound:
            if embedded is None:
                return None  # the run died before creating it
            # An index file the dead run did not get to write: its bytes are in the intent.
            try:
                info = self.store.put(key, embedded, storage_class=self.region.storage_class,
                                      retain_until=retain_until(self.region, self.now))
            except ObjectExists:
                info = self.store.head(key)
        if info.size != size:
            log.warning("%s: %s differs from its intent; not adopted", self.store.url, key)
            return None
        md5 = info.md5
        if info.sha256 is None:
            data = self.store.get(key)
            got = hashlib.sha256(data).hexdigest()
            md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        else:
            got = info.sha256
        if got != sha256:
            log.warning("%s: %s differs from its intent; not adopted", self.store.url, key)
            return None
        return JournalEntry(kind="object", key=key, size=size, sha256=sha256, md5=md5)

    # -- objects -------------------------------------------------------------------------
    def put_objects(self, items: Sequence[tuple[str, bytes]], *,
                    embed: Sequence[str] = (), digests: Sequence[str] | None = None,
                    notes: dict[str, dict[str, Any]] | None = None) -> list[ObjectInfo]:
        """Create each ``(key, data)`` after a signed intent naming them all (write-ahead);
        the objects named in ``embed`` are carried whole in the intent. ``digests``: the
        hex SHA-256 of each item's data when the caller has it already (a pack's name).
        ``notes`` adds fields to the journal entry's ``note`` of the keys it names (a log
        segment's catalogue entry, ``drkit.repo.logarchive``)."""
        sha = list(digests) if digests is not None else \
            [hashlib.sha256(data).hexdigest() for _key, data in items]
        intent = Intent(self.keys.repository_id, utc_iso(self.now), socket.gethostname(),
                        tuple((key, len(data), digest)
                              for (key, data), digest in zip(items, sha, strict=True)),
                        tuple((key, data) for key, data in items if key in embed))
        encoded = intent.encode(self.keys.signing_key)
        faults.point("writer.intent.before")
        self._put(content_key(INTENT_PREFIX, encoded), encoded)
        faults.point("writer.intent.after")
        return [self._put(key, data, digest, (notes or {}).get(key))
                for (key, data), digest in zip(items, sha, strict=True)]

    def put_object(self, key: str, data: bytes, *, note: dict[str, Any] | None = None
                   ) -> ObjectInfo:
        """Create ``key`` with the primary region's storage class and retention (after its
        intent); record it for the journal (with ``note`` merged into its entry's note)."""
        return self.put_objects([(key, data)], notes={key: note} if note else None)[0]

    def _put(self, key: str, data: bytes, sha256: str | None = None,
             extra: dict[str, Any] | None = None) -> ObjectInfo:
        faults.point("writer.put.before")
        if sha256 is None:
            sha256 = hashlib.sha256(data).hexdigest()
        note: dict[str, Any] | None = self.retention
        try:
            info = self.store.put(key, data, storage_class=self.region.storage_class,
                                  retain_until=retain_until(self.region, self.now))
        except ObjectExists:
            # Written by an earlier run, with that run's retention: nothing to promise.
            note = None
            # Content-addressed keys: an identical object already exists (our own earlier
            # run). It is reused only if its bytes are exactly ours.
            info = self.store.head(key)
            if info.sha256 not in (None, sha256) or info.size != len(data):
                raise IntegrityError(f"{self.store.url}: {key} exists with other content") \
                    from None
            info = ObjectInfo(key=key, size=len(data), sha256=sha256,
                              md5=hashlib.md5(data, usedforsecurity=False).hexdigest())
        if info.sha256 is None:
            info = ObjectInfo(key=info.key, size=info.size, sha256=sha256, md5=info.md5)
        elif info.sha256 != sha256:
            raise IntegrityError(f"{self.store.url}: {key} was stored with other content")
        faults.point("writer.put.after")
        entry = JournalEntry.from_info(info)
        if extra:
            note = {**(note or {}), **extra}
        if note is not None:
            entry = replace(entry, note=note)
        with self._state:
            self.written.append(entry)
            self.bytes_stored += info.size
        return info

    def put_document(self, prefix: str, data: bytes, *, encrypt: bool) -> ObjectInfo:
        """Store a document under ``prefix/<sha256>`` (sealed to the recovery key if asked)."""
        if encrypt:
            data = encrypt_document(self.keys.recovery_public, self.keys.repository_id, data)
        return self.put_object(content_key(prefix.strip("/"), data), data)

    # -- chunks --------------------------------------------------------------------------
    def load_known_chunks(self) -> None:
        """Every chunk already in the repository (journaled or our own leftovers) whose
        pack is present with the indexed size."""
        assert self.repo is not None
        packs = {info.key: info.size for info in self.store.list("packs/")}
        indexes = list(self.repo.index_files())
        reused_keys = {e.key for e in self.reused}
        for entry in self.reused:
            if entry.key.startswith("index/"):
                data = self.store.get(entry.key)
                if hashlib.sha256(data).hexdigest() != entry.sha256:
                    continue
                indexes.append((entry.key, IndexFile.decode(data, self.trusted,
                                                            name=entry.key)))
        for _key, index in indexes:
            pack_ok = index.pack in self.repo.visible or index.pack in reused_keys
            session_ok = (f"sessions/{index.session}" in self.repo.visible
                          or f"sessions/{index.session}" in reused_keys)
            if pack_ok and session_ok and packs.get(index.pack) == index.pack_size:
                self.known.update(index.locations())
        self._known_loaded = True

    def _ensure_session(self) -> ChunkCipher:
        with self._session_lock:
            if self._cipher is None:
                sealed = seal_session_key(self.keys.recovery_public, self.keys.repository_id)
                self.put_objects([(f"sessions/{sealed.session_id}", sealed.data)])
                self._session = sealed.session_id
                self._session_key = sealed.key
                self._cipher = ChunkCipher(sealed.key)
            return self._cipher

    @property
    def session(self) -> tuple[str, bytes]:
        self._ensure_session()
        assert self._session is not None and self._session_key is not None
        return self._session, self._session_key

    def has(self, cid: bytes) -> bool:
        return cid in self.known or cid in self._adding

    def add_chunk(self, cid: bytes, data: bytes | memoryview) -> bool:
        """Encrypt and pack a chunk unless the repository has it; True if it was new.
        Thread-safe: compression and encryption run outside the lock."""
        with self._state:
            if cid in self.known or cid in self._adding:
                return False
            self._adding.add(cid)
        cipher = self._ensure_session()
        blob = cipher.encrypt(cid, data)
        full: tuple[list[bytes | bytearray], list[tuple[bytes, int, int, int]]] | None = None
        with self._state:
            if not self._pack_parts:
                self._pack_parts.append(PACK_MAGIC)
                self._pack_length = len(PACK_MAGIC)
            self._pack_chunks.append((cid, self._pack_length, len(blob), len(data)))
            self._pack_parts.append(blob)
            self._pack_length += len(blob)
            self.bytes_new += len(data)
            self.chunks_new += 1
            if self._pack_length >= self.pack_size:
                full = (self._pack_parts, self._pack_chunks)
                self._pack_parts = []
                self._pack_chunks = []
        if full is not None:
            self._submit_pack(*full)
        return True

    def _submit_pack(self, parts: list[bytes | bytearray],
                     chunks: list[tuple[bytes, int, int, int]]) -> None:
        # Bound memory: a full pack waits (as its blobs) until fewer than ``_in_flight``
        # packs are uploading, and is joined into one object only then. A local store
        # writes a pack faster than the chunkers fill the next, so one is enough there;
        # a remote one keeps several requests going. A failed upload surfaces here.
        with self._upload_lock:
            for done in [f for f in self._uploads if f.done()]:
                done.result()
                self._uploads.remove(done)
            while len(self._uploads) >= self._in_flight:
                self._uploads.pop(0).result()
            data = b"".join(parts)
            parts.clear()
            self._uploads.append(self._pool.submit(self._upload_pack, data, chunks))

    def _upload_pack(self, data: bytes, chunks: list[tuple[bytes, int, int, int]]) -> None:
        session, _key = self.session
        digest = hashlib.sha256(data).hexdigest()
        key = pack_key(data, digest=digest)
        index = IndexFile(self.keys.repository_id, session, key, len(data), tuple(chunks))
        encoded = index.encode(self.keys.signing_key)
        # One intent for the pack and its index, carrying the index: a pack is never left
        # without a record, and a run killed between the two loses no uploaded pack.
        index_digest = hashlib.sha256(encoded).hexdigest()
        index_key = f"index/{index_digest}"
        self.put_objects([(key, data), (index_key, encoded)], embed=[index_key],
                         digests=[digest, index_digest])
        locations = index.locations()
        with self._state:
            self.known.update(locations)
            self._adding.difference_update(locations)

    def flush(self) -> None:
        """Upload the last partial pack and wait for every upload."""
        with self._state:
            rest = (self._pack_parts, self._pack_chunks) if self._pack_chunks else None
            self._pack_parts = []
            self._pack_chunks = []
        if rest is not None:
            self._submit_pack(*rest)
        with self._upload_lock:
            while self._uploads:
                self._uploads.pop(0).result()

    # -- commit --------------------------------------------------------------------------
    def commit(self) -> Checkpoint:
        """Journal every object of this run (and reused leftovers): the visibility point."""
        self.flush()
        adopted = {e.key for e in self.reused}
        # A leftover this run happened to write again (same bytes) is journaled once.
        entries = self.reused + [e for e in self.written if e.key not in adopted]
        # The existing log is verified against the journaled key history only (which holds
        # the retired keys that signed older parts); never against our own key just
        # because it is ours. The write-ahead record of the append sits in the cache
        # folder, so a crash between the batch and its checkpoint is completed by the next
        # run, not reported.
        faults.point("writer.journal.before")
        checkpoint = append_locked(
            self.store, self.keys.repository_id, entries, self.keys.signing_key,
            trusted=self.trusted, now=self.now, lock=self.lock, intents_dir=self.cache_dir)
        faults.point("writer.journal.after")
        assert self.repo is not None
        for entry in entries:
            self.repo.visible[entry.key] = entry
        self.reused = []
        self.written = []
        return checkpoint


def put_document(config: Config, prefix: str, data: bytes, *, encrypt: bool, now: datetime,
                 store: Store | None = None) -> ObjectInfo:
    """Store a signed document (ledger, approval request, audit log) in the primary region
    and journal it at once. Returns the stored object's info."""
    with RepositoryWriter.for_config(config, now=now, store=store) as writer:
        info = writer.put_document(prefix, data, encrypt=encrypt)
        writer.commit()
    return info
