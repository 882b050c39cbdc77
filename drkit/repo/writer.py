"""The write side: new objects for one run, packed, indexed and journaled at commit.

A run writes its sealed session key, then packs (each followed at once by its signed
index file), then whatever documents the caller adds (a snapshot manifest), and finally
appends to the journal once (``repo.journal_writer.append_locked``, under the lock it
holds) with an entry for every object it wrote. Until that last step nothing is visible
to readers. Every object written is also recorded in a local pending list
(``pending-<repository id>.jsonl`` in the cache folder) so that a run that crashed is not
wasted: the next run checks its own leftovers against the store, reuses their chunks and
journals them. Objects that are neither journaled nor on our own pending list (for
instance injected by someone with write access to the bucket) are never used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from drkit.config import Config, RegionConfig
from drkit.errors import IntegrityError, ObjectExists, ObjectNotFound
from drkit.journal import Checkpoint, JournalEntry
from drkit.repo.crypto import ChunkCipher, encrypt_document, seal_session_key
from drkit.repo.formats import PACK_MAGIC, ChunkLocation, IndexFile, content_key, pack_key
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
PENDING_FORMAT = "drkit-pending"
PENDING_VERSION = 1


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


class PendingList:
    """Objects written but not yet journaled, kept across crashes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def read(self) -> list[JournalEntry]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines[1:]:
            try:
                d = json.loads(line)
                out.append(JournalEntry(kind="object", key=str(d["key"]), size=int(d["size"]),
                                        sha256=str(d["sha256"]), md5=d.get("md5")))
            except (ValueError, KeyError, TypeError):
                # A line cut short by a crash: the object it names is simply not reused.
                continue
        return out

    def add(self, info: ObjectInfo) -> None:
        line = json.dumps({"key": info.key, "size": info.size, "sha256": info.sha256,
                           "md5": info.md5}, sort_keys=True)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            new = not self.path.exists()
            with self.path.open("a", encoding="utf-8") as fh:
                if new:
                    fh.write(json.dumps({"format": PENDING_FORMAT,
                                         "version": PENDING_VERSION}) + "\n")
                fh.write(line + "\n")
                fh.flush()
                os.fsync(fh.fileno())

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


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
        self.pending = PendingList(cache_dir / f"pending-{keys.repository_id}.jsonl")
        self.cache_dir = cache_dir
        self.written: list[JournalEntry] = []
        self.reused: list[JournalEntry] = []
        self.repo: Repository | None = None
        self.known: dict[bytes, ChunkLocation] = {}
        self._known_loaded = False
        self._state = threading.Lock()
        self._pack = bytearray()
        self._pack_chunks: list[tuple[bytes, int, int, int]] = []
        self._adding: set[bytes] = set()
        self._uploads: list[Future[None]] = []
        self._pool = ThreadPoolExecutor(max(1, upload_threads), thread_name_prefix="upload")
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
        self.lock.acquire()
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
        assert self.repo is not None
        for entry in self.pending.read():
            if entry.key in self.repo.visible:
                continue  # journaled after all (crash between append and clearing the list)
            try:
                info = self.store.head(entry.key)
            except ObjectNotFound:
                continue
            same = info.size == entry.size and (
                (info.sha256 is not None and info.sha256 == entry.sha256)
                or (info.sha256 is None and info.md5 is not None and info.md5 == entry.md5))
            if same:
                self.reused.append(entry)
            else:
                log.warning("%s: %s differs from what this host wrote; not reused",
                            self.store.url, entry.key)

    # -- objects -------------------------------------------------------------------------
    def put_object(self, key: str, data: bytes) -> ObjectInfo:
        """Create ``key`` with the primary region's storage class and retention; record it."""
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
            if info.sha256 not in (None, hashlib.sha256(data).hexdigest()) \
                    or info.size != len(data):
                raise IntegrityError(f"{self.store.url}: {key} exists with other content") \
                    from None
            info = ObjectInfo(key=key, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                              md5=hashlib.md5(data, usedforsecurity=False).hexdigest())
        if info.sha256 is None:
            info = ObjectInfo(key=info.key, size=info.size,
                              sha256=hashlib.sha256(data).hexdigest(), md5=info.md5)
        self.pending.add(info)
        entry = JournalEntry.from_info(info)
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
                self.put_object(f"sessions/{sealed.session_id}", sealed.data)
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
        full: tuple[bytes, list[tuple[bytes, int, int, int]]] | None = None
        with self._state:
            if not self._pack:
                self._pack += PACK_MAGIC
            self._pack_chunks.append((cid, len(self._pack), len(blob), len(data)))
            self._pack += blob
            self.bytes_new += len(data)
            self.chunks_new += 1
            if len(self._pack) >= self.pack_size:
                full = (bytes(self._pack), self._pack_chunks)
                self._pack = bytearray()
                self._pack_chunks = []
        if full is not None:
            self._submit_pack(*full)
        return True

    def _submit_pack(self, data: bytes, chunks: list[tuple[bytes, int, int, int]]) -> None:
        # Bound memory: at most three packs wait for upload; a failed upload surfaces here.
        with self._upload_lock:
            for done in [f for f in self._uploads if f.done()]:
                done.result()
                self._uploads.remove(done)
            while len(self._uploads) >= 3:
                self._uploads.pop(0).result()
            self._uploads.append(self._pool.submit(self._upload_pack, data, chunks))

    def _upload_pack(self, data: bytes, chunks: list[tuple[bytes, int, int, int]]) -> None:
        session, _key = self.session
        key = pack_key(data)
        self.put_object(key, data)
        index = IndexFile(self.keys.repository_id, session, key, len(data), tuple(chunks))
        encoded = index.encode(self.keys.signing_key)
        self.put_object(content_key("index", encoded), encoded)
        locations = index.locations()
        with self._state:
            self.known.update(locations)
            self._adding.difference_update(locations)

    def flush(self) -> None:
        """Upload the last partial pack and wait for every upload."""
        with self._state:
            rest = (bytes(self._pack), self._pack_chunks) if self._pack_chunks else None
            self._pack = bytearray()
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
        entries = self.reused + self.written
        # The existing log is verified against the journaled key history only (which holds
        # the retired keys that signed older parts); never against our own key just
        # because it is ours. The write-ahead record of the append sits beside the pending
        # list, so a crash between the batch and its checkpoint is completed by the next
        # run, not reported.
        checkpoint = append_locked(
            self.store, self.keys.repository_id, entries, self.keys.signing_key,
            trusted=self.trusted, now=self.now, lock=self.lock, intents_dir=self.cache_dir)
        self.pending.clear()
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
