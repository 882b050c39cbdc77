"""The chunk sink: FastCDC cut points, keyed ids, dedup, then the writer's packer."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import BinaryIO

from pyfastcdc import FastCDC

from drkit.errors import InputError
from drkit.progress import ProgressTask
from drkit.repo.crypto import chunk_id, chunker_seed
from drkit.repo.keys import CHUNK_AVG, CHUNK_MAX, CHUNK_MIN
from drkit.repo.writer import RepositoryWriter
from drkit.sources.base import StoredContent

SMALL_FILE = 1 << 20
# The tree is cut finer so that unchanged stretches deduplicate between snapshots.
TREE_MIN, TREE_AVG, TREE_MAX = 4096, 16384, 65536


class ChunkStore:
    """Implements ``drkit.sources.base.ChunkSink`` on top of a RepositoryWriter."""

    def __init__(self, writer: RepositoryWriter, id_key: bytes, task: ProgressTask) -> None:
        self.writer = writer
        self.id_key = id_key
        self.task = task
        self._seed = chunker_seed(id_key)
        self._local = threading.local()
        self._lock = threading.Lock()
        self.bytes_read = 0

    def _cdc(self) -> FastCDC:
        # FastCDC objects are not safe to share between threads.
        cdc = getattr(self._local, "cdc", None)
        if cdc is None:
            cdc = FastCDC(CHUNK_AVG, min_size=CHUNK_MIN, max_size=CHUNK_MAX,
                          normalized_chunking=1, seed=self._seed)
            self._local.cdc = cdc
        return cdc

    def has_all(self, chunks: tuple[bytes, ...]) -> bool:
        return all(self.writer.has(c) for c in chunks)

    def _consume(self, pieces: object, *, count: bool = True) -> StoredContent:
        digest = hashlib.sha256()
        ids: list[bytes] = []
        size = 0
        for piece in pieces:  # type: ignore[attr-defined]
            data = piece.data
            digest.update(data)
            cid = chunk_id(self.id_key, data)
            ids.append(cid)
            size += len(data)
            if not self.writer.has(cid):
                self.writer.add_chunk(cid, data)
            if count:
                self.task.advance(len(data))
        if count:
            with self._lock:
                self.bytes_read += size
        return StoredContent(size, digest.hexdigest(), tuple(ids))

    def store_tree(self, data: bytes) -> StoredContent:
        cdc = FastCDC(TREE_AVG, min_size=TREE_MIN, max_size=TREE_MAX, normalized_chunking=1,
                      seed=self._seed)
        return self._consume(cdc.cut_buf(data), count=False)

    def store_stream(self, reader: BinaryIO) -> StoredContent:
        return self._consume(self._cdc().cut_stream(reader))

    def _one_chunk(self, data: bytes) -> StoredContent:
        """Data no longer than the smallest chunk: FastCDC would return it whole."""
        cid = chunk_id(self.id_key, data)
        if not self.writer.has(cid):
            self.writer.add_chunk(cid, data)
        self.task.advance(len(data))
        with self._lock:
            self.bytes_read += len(data)
        return StoredContent(len(data), hashlib.sha256(data).hexdigest(), (cid,))

    def store_file(self, path: Path | str, size: int | None = None) -> StoredContent:
        """Store one file; ``size`` is its size from the walk, if the caller has it."""
        try:
            with open(path, "rb") as fh:
                if size is None:
                    size = os.fstat(fh.fileno()).st_size
                if size <= SMALL_FILE:
                    data = fh.read()
                    if not data:
                        return StoredContent(0, hashlib.sha256(b"").hexdigest(), ())
                    if len(data) <= CHUNK_MIN:
                        return self._one_chunk(data)
                    return self._consume(self._cdc().cut_buf(data))
                return self._consume(self._cdc().cut_stream(fh))
        except FileNotFoundError:
            raise InputError(f"{path}: vanished while being read") from None
        except PermissionError:
            raise InputError(f"{path}: permission denied") from None
