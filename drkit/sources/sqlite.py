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
import hashlib
import json
import logging
import os
import sqlite3
import subprocess
import sys
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from drkit.errors import InputError
from drkit.progress import ProgressTask
from drkit.sources.base import ChunkSink, Source, SourceResult

log = logging.getLogger(__name__)
TOTALS_ALGORITHM = "drkit-sqlite-rows-v1"
CACHE_VERSION = 1
BUSY_TIMEOUT_S = 10.0


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


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


BLOCK_SHIFT = 16  # rows of a rowid table are hashed in blocks of 65,536 rowid values
MAX_BLOCKS = 4096  # sparser tables are hashed as one block

WorkItem = tuple[str, int | None]  # (table, block number or None for the whole table)


def _tables(con: sqlite3.Connection) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' "
        "AND name NOT LIKE 'sqlite_%' ORDER BY name")]


def _plan(con: sqlite3.Connection) -> list[WorkItem]:
    """Every (table, block) to hash, in order. A table without rowid, or with too sparse
    rowids, is one item."""
    items: list[WorkItem] = []
    for name in _tables(con):
        try:
            blocks = [r[0] for r in con.execute(
                f"SELECT DISTINCT rowid >> {BLOCK_SHIFT} FROM {_quote(name)} ORDER BY 1")]
        except sqlite3.OperationalError:
            blocks = []  # WITHOUT ROWID
            items.append((name, None))
            continue
        if not blocks or len(blocks) > MAX_BLOCKS:
            items.append((name, None))
        else:
            items.extend((name, b) for b in blocks)
    return items


def _hash_item(con: sqlite3.Connection, item: WorkItem) -> tuple[int, str]:
    name, block = item
    if block is None:
        try:
            cur = con.execute(f"SELECT * FROM {_quote(name)} ORDER BY rowid")
        except sqlite3.OperationalError:
            cur = con.execute(f"SELECT * FROM {_quote(name)}")
    else:
        cur = con.execute(f"SELECT * FROM {_quote(name)} WHERE rowid >= ? AND rowid < ? "
                          "ORDER BY rowid", (block << BLOCK_SHIFT, (block + 1) << BLOCK_SHIFT))
    digest = hashlib.sha256()
    rows = 0
    while batch := cur.fetchmany(20000):
        rows += len(batch)
        digest.update(("\n".join(map(repr, batch)) + "\n").encode("utf-8", "surrogatepass"))
    return rows, digest.hexdigest()


def _combine(con: sqlite3.Connection, plan: list[WorkItem],
             results: list[tuple[int, str]]) -> dict[str, Any]:
    tables: dict[str, dict[str, Any]] = {}
    digests: dict[str, Any] = {}
    for (name, block), (rows, hexdigest) in zip(plan, results, strict=True):
        entry = tables.setdefault(name, {"rows": 0})
        entry["rows"] += rows
        h = digests.setdefault(name, hashlib.sha256())
        h.update((block or 0).to_bytes(8, "big", signed=True) + bytes.fromhex(hexdigest))
    for name in _tables(con):  # tables with no rows at all
        tables.setdefault(name, {"rows": 0})
        digests.setdefault(name, hashlib.sha256())
    for name, h in digests.items():
        tables[name]["sha256"] = h.hexdigest()
    return {"algorithm": TOTALS_ALGORITHM, "tables": dict(sorted(tables.items()))}


def control_totals(path: Path) -> dict[str, Any]:
    """Row count and content hash of every table of the SQLite database at ``path``.

    Rows are taken in rowid order (primary-key order for WITHOUT ROWID tables) and
    grouped into blocks of 65,536 rowid values (one block if the table has no rowid or
    more than 4,096 blocks). A block's digest is SHA-256 over ``repr(row) + "\\n"`` of
    its rows; the table hash is SHA-256 over (block number, 8 bytes signed big-endian ||
    block digest) for every non-empty block in order. The drill recomputes this on a
    restored file.
    """
    if not path.is_file():
        raise InputError(f"{path}: database file does not exist")
    try:
        con = _connect_ro(path)
        try:
            plan = _plan(con)
            return _combine(con, plan, [_hash_item(con, item) for item in plan])
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise _db_error(path, exc) from None


def control_totals_in_child(path: Path, workers: int = 2) -> dict[str, Any]:
    """``control_totals`` with the hashing in child processes.

    The work is mostly building and printing row tuples, which holds the GIL; in child
    processes it runs on the other cores while this process chunks, compresses and
    encrypts. Falls back to the in-process function if no child can be started.
    """
    if not path.is_file():
        raise InputError(f"{path}: database file does not exist")
    try:
        con = _connect_ro(path)
        try:
            plan = _plan(con)
            shares = [list(range(i, len(plan), workers)) for i in range(workers)]
            shares = [s for s in shares if s]
            try:
                procs = [subprocess.Popen(
                    [sys.executable, "-m", "drkit.sources.sqlite", str(path)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True) for _share in shares]
            except OSError:
                return _combine(con, plan, [_hash_item(con, item) for item in plan])
            results: list[tuple[int, str] | None] = [None] * len(plan)
            outputs = [p.communicate(json.dumps([plan[i] for i in share]))
                       for p, share in zip(procs, shares, strict=True)]
            for proc, share, (out, err) in zip(procs, shares, outputs, strict=True):
                if proc.returncode == 2:  # the child's own one-line error
                    lines = err.strip().splitlines()
                    raise InputError(lines[-1] if lines else f"{path}: control totals failed")
                if proc.returncode != 0:  # the child could not run: do it here
                    log.warning("control totals child failed (%s); computing in-process",
                                err.strip().splitlines()[-1:] or proc.returncode)
                    return _combine(con, plan, [_hash_item(con, item) for item in plan])
                for i, (rows, digest) in zip(share, json.loads(out), strict=True):
                    results[i] = (int(rows), str(digest))
            return _combine(con, plan, [r for r in results if r is not None])
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise _db_error(path, exc) from None


def _child_main(path: Path) -> None:
    """Hash the (table, block) items read as JSON from stdin; print [[rows, digest]...]."""
    items = [(str(t), None if b is None else int(b)) for t, b in json.loads(sys.stdin.read())]
    try:
        con = _connect_ro(path)
        try:
            print(json.dumps([list(_hash_item(con, item)) for item in items]))
        finally:
            con.close()
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
        with contextlib.suppress(OSError, ValueError):
            cached = json.loads(self.cache_path.read_text())
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
        # Control totals (SQLite and repr, mostly holding the GIL) run beside the chunking
        # of the copy (hashing, zstd and AES, which release it): both cores stay busy.
        totals_future = pool.submit(control_totals_in_child, copy)
        content = sink.store_file(copy)
        totals = totals_future.result()
        st = self.path.stat()
        entry = {"path": self.path.name, "type": "file", "mode": st.st_mode & 0o7777,
                 "mtime_ns": st.st_mtime_ns, "size": content.size, "sha256": content.sha256,
                 "chunks": [c.hex() for c in content.chunks]}
        result.entries.append(entry)
        result.control_totals = totals
        result.bytes_total = result.bytes_read = content.size
        self._pending_cache = {"version": CACHE_VERSION, "fingerprint": fingerprint,
                               "entry": entry, "control_totals": totals}
        return result

    def committed(self) -> None:
        if getattr(self, "_pending_cache", None) is not None:
            tmp = self.cache_path.with_name(self.cache_path.name + ".tmp")
            tmp.write_text(json.dumps(self._pending_cache))
            os.replace(tmp, self.cache_path)

    def cleanup(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.copy_path.unlink()


SOURCE = SQLiteSource


if __name__ == "__main__":  # pragma: no cover - exercised through control_totals_in_child
    try:
        _child_main(Path(sys.argv[1]))
    except InputError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
