"""``sqlite`` source: a consistent copy via SQLite's online backup API, plus control totals.

The copy is taken with ``sqlite3.Connection.backup`` in one step, which holds a read
transaction for the duration, so it is a consistent image even while other processes
write (in WAL mode they keep writing; in rollback mode they wait). Control totals, row
count and a content hash per table, are computed on that copy and stored in the snapshot
so a restore drill can prove the restored database holds the same rows.

When neither the database file nor its ``-wal`` file changed (size, mtime, ctime, inode)
since the last committed snapshot, the previous copy's content is reused without a new
backup, like the files cache.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from drkit.errors import InputError
from drkit.progress import ProgressTask
from drkit.sources.base import ChunkSink, Source, SourceResult
from drkit.sources.sqlite_totals import (
    ALGORITHM_V1,
    ALGORITHM_V2,
    ALGORITHMS,
    TotalsRun,
    connect_ro,
    totals_v1,
    totals_v2,
)

log = logging.getLogger(__name__)
TOTALS_ALGORITHM = ALGORITHM_V2
CACHE_VERSION = 1
BUSY_TIMEOUT_S = 10.0


def _connect_ro(path: Path) -> sqlite3.Connection:
    uri = "file:" + str(path.resolve()).replace("?", "%3f").replace("#", "%23") + "?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False)


def _db_error(path: Path, exc: sqlite3.Error) -> InputError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return InputError(f"{path}: database is locked (another process holds it); "
                          "try again later")
    if "not a database" in text or "malformed" in text:
        return InputError(f"{path}: not a SQLite database (or it is corrupted)")
    return InputError(f"{path}: SQLite error: {text}")


def control_totals(path: Path, *, algorithm: str = TOTALS_ALGORITHM) -> dict[str, Any]:
    """Row count and content hash of every table of the SQLite database at ``path``, by
    ``algorithm`` (``drkit.sources.sqlite_totals`` defines both). The drill recomputes a
    snapshot's totals on the restored file with the algorithm the snapshot names."""
    if algorithm not in ALGORITHMS:
        raise InputError(f"{path}: unknown control totals algorithm {algorithm!r}")
    if not path.is_file():
        raise InputError(f"{path}: database file does not exist")
    try:
        if algorithm == ALGORITHM_V1:
            con = connect_ro(path)
            try:
                return totals_v1(con)
            finally:
                con.close()
        return totals_v2(path, want_cache=False).totals
    except sqlite3.Error as exc:
        raise _db_error(path, exc) from None


def _stat_key(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


class SQLiteSource(Source):
    type = "sqlite"

    @property
    def path(self) -> Path:
        assert self.config.path is not None
        return self.config.path

    @property
    def copy_path(self) -> Path:
        return self.cache_dir / f"sqlite-{self.repository_id}-{self.name}.copy"

    @property
    def cache_path(self) -> Path:
        return self.cache_dir / f"sqlite-{self.repository_id}-{self.name}.json"

    def check(self) -> None:
        if not self.path.exists():
            raise InputError(f"source {self.name!r}: {self.path} does not exist")
        if not self.path.is_file():
            raise InputError(f"source {self.name!r}: {self.path} is not a file")
        with self.path.open("rb") as fh:
            header = fh.read(16)
        if header and header != b"SQLite format 3\x00":
            raise InputError(f"source {self.name!r}: {self.path} is not a SQLite database")

    def estimate_bytes(self) -> int | None:
        try:
            return self.path.stat().st_size
        except OSError:
            return None

    def _fingerprint(self) -> list[Any]:
        # SQLite itself creates an empty -wal file, or touches its ctime, whenever a
        # connection opens the database (ours included), so an absent and an empty WAL are
        # the same state (no frames: the main file says it all), and otherwise only size,
        # mtime and inode count; every commit changes the size or the mtime.
        wal = _stat_key(Path(str(self.path) + "-wal"))
        return [_stat_key(self.path), [wal[0], wal[1], wal[3]] if wal and wal[0] else None]

    def snapshot(self, sink: ChunkSink, pool: Executor, task: ProgressTask) -> SourceResult:
        result = SourceResult(self.name, self.type, str(self.path), files=1)
        fingerprint = self._fingerprint()
        self._pending_cache: dict[str, Any] | None = None
        cached_blocks = None
        with contextlib.suppress(OSError, ValueError, AttributeError):
            cached = json.loads(self.cache_path.read_text())
            if cached.get("version") == CACHE_VERSION:
                cached_blocks = cached.get("totals_blocks")
            if cached.get("version") == CACHE_VERSION and cached.get("fingerprint") == fingerprint:
                entry = cached["entry"]
                if sink.has_all(tuple(bytes.fromhex(c) for c in entry["chunks"])):
                    result.entries.append(entry)
                    result.control_totals = cached["control_totals"]
                    result.bytes_total = int(entry["size"])
                    self._pending_cache = cached
                    task.advance(result.bytes_total)
                    return result
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        copy = self.copy_path
        with contextlib.suppress(FileNotFoundError):
            copy.unlink()
        try:
            src = _connect_ro(self.path)
            try:
                # Take the read transaction first: this honours the busy timeout, whereas
                # Connection.backup retries a locked source forever. Holding it, the copy
                # is one consistent state of the database.
                src.execute("BEGIN")
                src.execute("SELECT count(*) FROM sqlite_master").fetchone()
                dst = sqlite3.connect(copy)
                try:
                    src.backup(dst)
                finally:
                    dst.close()
            finally:
                src.close()
        except sqlite3.Error as exc:
            raise _db_error(self.path, exc) from None
        # Control totals (sqlite3 shell processes, or Python without the shell) run beside
        # the chunking of the copy, on a thread of their own so that they never hold one of
        # the pool's workers while they wait for the shell.
        previous = cached_blocks if isinstance(cached_blocks, dict) else None
        with ThreadPoolExecutor(1, thread_name_prefix="sqlite-totals") as own:
            totals_future = own.submit(self._totals, copy, previous)
            content = sink.store_file(copy)
            run = totals_future.result()
        totals = run.totals
        log.info("source %s: control totals: %d block(s) read, %d reused from the last "
                 "snapshot", self.name, run.blocks_read, run.blocks_reused)
        st = self.path.stat()
        entry = {"path": self.path.name, "type": "file", "mode": st.st_mode & 0o7777,
                 "mtime_ns": st.st_mtime_ns, "size": content.size, "sha256": content.sha256,
                 "chunks": [c.hex() for c in content.chunks]}
        result.entries.append(entry)
        result.control_totals = totals
        result.bytes_total = result.bytes_read = content.size
        self._pending_cache = {"version": CACHE_VERSION, "fingerprint": fingerprint,
                               "entry": entry, "control_totals": totals,
                               "totals_blocks": run.cache}
        return result

    def _totals(self, copy: Path, previous: dict[str, Any] | None) -> TotalsRun:
        try:
            return totals_v2(copy, previous=previous)
        except sqlite3.Error as exc:
            raise _db_error(self.path, exc) from None

    def committed(self) -> None:
        if getattr(self, "_pending_cache", None) is not None:
            tmp = self.cache_path.with_name(self.cache_path.name + ".tmp")
            tmp.write_text(json.dumps(self._pending_cache))
            os.replace(tmp, self.cache_path)

    def cleanup(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.copy_path.unlink()


SOURCE = SQLiteSource
