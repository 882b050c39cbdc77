"""The read side of a repository, on any region's store.

``Repository.open(store, trusted)`` needs only a Store and the trusted writer public keys:
it verifies the signed ``config`` object and the journal, and from then on sees only
objects the journal lists (a crashed run's leftovers and objects an attacker injected
are invisible). Decrypting needs the recovery private key, passed where it is needed.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from drkit.errors import InputError, IntegrityError, NeedsThaw, ObjectNotFound, StorageError
from drkit.journal import Journal, JournalEntry
from drkit.repo.crypto import ChunkCipher, unseal_session_key
from drkit.repo.formats import (
    ChunkLocation,
    IndexFile,
    Manifest,
    decode_tree,
    key_digest,
)
from drkit.repo.keys import CONFIG_KEY, RepositoryConfig, read_repository_config
from drkit.storage.base import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SnapshotInfo:
    id: str
    key: str
    manifest: Manifest

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest
        return {"id": self.id, "time": m.time, "host": m.host,
                "sources": [s.to_dict() for s in m.sources], "stats": m.stats}


class Repository:
    def __init__(self, store: Store, config: RepositoryConfig,
                 trusted: Sequence[Ed25519PublicKey], visible: dict[str, JournalEntry]) -> None:
        self.store = store
        self.config = config
        self.trusted = list(trusted)
        self.visible = visible
        self._keys: dict[str, bytes] = {}
        self._lock = threading.Lock()
        # Where to read an archived object's identical copy (see get_verified).
        self.fallback: Store | None = None
        # Journal problems that do not stop reading (a deleted checkpoint, an uncovered
        # batch): ``drkit check`` reports them.
        self.journal_problems: list[str] = []

    @classmethod
    def open(cls, store: Store, trusted: Sequence[Ed25519PublicKey], *,
             region: str | None = None) -> Repository:
        """Open the repository in ``region``'s store. Only proven tombstones that name
        ``region`` hide an object (``region=None`` honours none of the region-bound ones:
        everything logged stays expected)."""
        from drkit.approval.proof import live_objects

        config = read_repository_config(store, trusted)
        journal = Journal(store, config.origin)
        view = journal.read(trusted)
        view.raise_for_errors(store.url)
        entries = view.entries
        visible = live_objects(store, config.repository_id, entries, region=region)
        logged = visible.get(CONFIG_KEY)
        if logged is not None:
            actual = hashlib.sha256(store.get(CONFIG_KEY)).hexdigest()
            if actual != logged.sha256:
                raise IntegrityError(f"{store.url}: {CONFIG_KEY}: differs from the journal")
        repo = cls(store, config, trusted, visible)
        repo.journal_problems = [f"journal: {p}" for p in view.errors]
        return repo

    @property
    def repository_id(self) -> str:
        return self.config.repository_id

    def keys_under(self, prefix: str) -> list[str]:
        return sorted(k for k in self.visible if k.startswith(prefix))

    def get_verified(self, key: str) -> bytes:
        """Read an object and check it against the journal's sha256."""
        entry = self.visible.get(key)
        if entry is None:
            raise IntegrityError(f"{self.store.url}: {key} is not in the journal")
        try:
            data = self.store.get(key)
        except ObjectNotFound:
            raise IntegrityError(f"{self.store.url}: {key} is missing") from None
        except NeedsThaw as exc:
            # A cold region's objects are byte-identical copies of the primary's (names are
            # content hashes); reading the primary's copy and checking it against THIS
            # region's journal lets a listing work without a thaw. Without a readable
            # fallback the region must be thawed ('drkit thaw').
            if self.fallback is None:
                raise NeedsThaw(f"{exc}; thaw the region first with 'drkit thaw --region "
                                "REGION [SNAPSHOT]'") from None
            try:
                data = self.fallback.get(key)
            except (ObjectNotFound, StorageError):
                raise NeedsThaw(f"{self.store.url}: {key} is archived and no other region "
                                "has it readable; run 'drkit thaw --region REGION'") from None
        if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
            raise IntegrityError(f"{self.store.url}: {key} does not match the journal "
                                 f"(size {len(data)}, journaled {entry.size})")
        return data

    # -- snapshots -----------------------------------------------------------------------
    def snapshots(self) -> list[SnapshotInfo]:
        """The snapshots, oldest first: by time, then by their order in the journal.

        Manifest times have whole seconds; two snapshots taken in one second are ordered
        by when the log made them visible (``visible`` keeps journal order), so "latest"
        is the one journaled last, never the lower id.
        """
        out = []
        position: dict[str, int] = {}
        for index, key in enumerate(k for k in self.visible if k.startswith("snapshots/")):
            manifest = Manifest.decode(self.get_verified(key), self.trusted,
                                       name=f"{self.store.url}: {key}")
            position[key] = index
            out.append(SnapshotInfo(key_digest(key), key, manifest))
        out.sort(key=lambda s: (s.manifest.time, position[s.key]))
        return out

    def find_snapshot(self, ref: str) -> SnapshotInfo:
        snaps = self.snapshots()
        if ref == "latest":
            if not snaps:
                raise InputError(f"{self.store.url}: no snapshots")
            return snaps[-1]
        found = [s for s in snaps if s.id.startswith(ref.lower())] if ref else []
        if not found:
            raise InputError(f"{self.store.url}: no snapshot {ref!r}")
        if len(found) > 1:
            raise InputError(f"snapshot id {ref!r} is ambiguous ({len(found)} match)")
        return found[0]

    # -- index ---------------------------------------------------------------------------
    def index_files(self) -> list[tuple[str, IndexFile]]:
        out = []
        for key in self.keys_under("index/"):
            out.append((key, IndexFile.decode(self.get_verified(key), self.trusted,
                                              name=f"{self.store.url}: {key}")))
        return out

    def load_index(self) -> dict[bytes, ChunkLocation]:
        locations: dict[bytes, ChunkLocation] = {}
        for _key, index in self.index_files():
            locations.update(index.locations())
        return locations

    # -- decryption ----------------------------------------------------------------------
    def session_key(self, session: str, recovery: X25519PrivateKey) -> bytes:
        with self._lock:
            cached = self._keys.get(session)
        if cached is not None:
            return cached
        key = f"sessions/{session}"
        value = unseal_session_key(self.get_verified(key), recovery,
                                   name=f"{self.store.url}: {key}")
        with self._lock:
            self._keys[session] = value
        return value

    def cipher(self, session: str, recovery: X25519PrivateKey) -> ChunkCipher:
        return ChunkCipher(self.session_key(session, recovery))

    def read_chunk(self, cid: bytes, recovery: X25519PrivateKey,
                   index: dict[bytes, ChunkLocation] | None = None) -> bytes:
        """One chunk, fetched by range from its pack and authenticated."""
        loc = (index if index is not None else self.load_index()).get(cid)
        if loc is None:
            raise IntegrityError(f"{self.store.url}: chunk {cid.hex()[:16]} is not indexed")
        if loc.pack not in self.visible:
            raise IntegrityError(f"{self.store.url}: {loc.pack} is not in the journal")
        try:
            blob = self.store.get(loc.pack, offset=loc.offset, length=loc.length)
        except ObjectNotFound:
            raise IntegrityError(f"{self.store.url}: {loc.pack} is missing") from None
        data = self.cipher(loc.session, recovery).decrypt(cid, blob,
                                                          name=f"{self.store.url}: {loc.pack}")
        if len(data) != loc.raw_length:
            raise IntegrityError(f"{self.store.url}: {loc.pack}: chunk {cid.hex()[:16]} "
                                 "has the wrong length")
        return data

    def read_tree(self, snapshot: SnapshotInfo, recovery: X25519PrivateKey,
                  index: dict[bytes, ChunkLocation] | None = None) -> dict[str, Any]:
        index = index if index is not None else self.load_index()
        name = f"{self.store.url}: {snapshot.key}"
        data = b"".join(self.read_chunk(bytes.fromhex(c), recovery, index)
                        for c in snapshot.manifest.tree_chunks)
        if len(data) != snapshot.manifest.tree_size or \
                hashlib.sha256(data).hexdigest() != snapshot.manifest.tree_sha256:
            raise IntegrityError(f"{name}: snapshot tree does not match its hash")
        return decode_tree(data, name=name)
