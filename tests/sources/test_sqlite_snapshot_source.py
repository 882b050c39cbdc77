"""The sqlite source: a consistent copy while the database is written to, control totals,
a locked database and a file that is not SQLite."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from drkit.config import SourceConfig
from drkit.errors import InputError
from drkit.progress import NULL_PROGRESS
from drkit.sources import sqlite as sqlite_source
from drkit.sources.base import StoredContent
from drkit.sources.sqlite import SQLiteSource, control_totals


class CopyingSink:
    """A ChunkSink that keeps the bytes it is given (the real one is tested in tests/repo)."""

    def __init__(self) -> None:
        self.data: list[bytes] = []

    def store_file(self, path: Path | str, size: int | None = None) -> StoredContent:
        import hashlib

        data = Path(path).read_bytes()
        self.data.append(data)
        return StoredContent(len(data), hashlib.sha256(data).hexdigest(), ())

    def store_stream(self, reader):  # pragma: no cover - not used by the sqlite source
        raise NotImplementedError

    def has_all(self, chunks: tuple[bytes, ...]) -> bool:
        return False


def _db(path: Path, journal_mode: str) -> None:
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA journal_mode={journal_mode}")
    con.execute("CREATE TABLE ledger (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER)")
    # Invariant kept by every transaction: a + b == 100 on every row.
    con.executemany("INSERT INTO ledger (a, b) VALUES (?, ?)", [(50, 50)] * 2000)
    con.commit()
    con.close()


@pytest.mark.parametrize("journal_mode", ["wal", "delete"])
def test_consistent_copy_while_being_written(tmp_path: Path, journal_mode: str) -> None:
    db = tmp_path / "live.db"
    _db(db, journal_mode)
    stop = threading.Event()
    writes = 0

    def writer() -> None:
        nonlocal writes
        con = sqlite3.connect(db, timeout=30)
        while not stop.is_set():
            # Two statements in one transaction: a copy taken between them would break
            # the invariant.
            con.execute("UPDATE ledger SET a = a + 1 WHERE id % 7 = ?", (writes % 7,))
            con.execute("UPDATE ledger SET b = b - 1 WHERE id % 7 = ?", (writes % 7,))
            con.execute("INSERT INTO ledger (a, b) VALUES (10, 90)")
            con.commit()
            writes += 1
        con.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        cfg = SourceConfig(name="live", type="sqlite", path=db)
        results = []
        for _ in range(3):
            source = SQLiteSource(cfg, tmp_path / "cache", "0" * 32)
            sink = CopyingSink()
            with ThreadPoolExecutor(2) as pool:
                results.append((source.snapshot(sink, pool, NULL_PROGRESS.task("t")), sink))
            source.cleanup()
    finally:
        stop.set()
        thread.join()
    assert writes > 0
    for result, sink in results:
        copy = tmp_path / "copy.db"
        copy.write_bytes(sink.data[0])
        con = sqlite3.connect(copy)
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert con.execute("SELECT count(*) FROM ledger WHERE a + b != 100").fetchone() == (0,)
        rows = con.execute("SELECT count(*) FROM ledger").fetchone()[0]
        con.close()
        assert result.control_totals == control_totals(copy)
        assert result.control_totals["tables"]["ledger"]["rows"] == rows


def test_control_totals_see_every_change(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    _db(db, "delete")
    before = control_totals(db)
    assert before["tables"]["ledger"]["rows"] == 2000
    con = sqlite3.connect(db)
    con.execute("UPDATE ledger SET a = 51, b = 49 WHERE id = 1234")
    con.commit()
    con.close()
    after = control_totals(db)
    assert after["tables"]["ledger"]["rows"] == 2000
    assert after["tables"]["ledger"]["sha256"] != before["tables"]["ledger"]["sha256"]


def test_locked_and_not_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "locked.db"
    _db(db, "delete")
    monkeypatch.setattr(sqlite_source, "BUSY_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        source = SQLiteSource(SourceConfig(name="db", type="sqlite", path=db),
                              tmp_path / "cache", "0" * 32)
        with ThreadPoolExecutor(2) as pool, pytest.raises(InputError, match="locked"):
            source.snapshot(CopyingSink(), pool, NULL_PROGRESS.task("t"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    text = tmp_path / "notes.db"
    text.write_text("just some notes, not a database at all")
    with pytest.raises(InputError, match="not a SQLite database"):
        SQLiteSource(SourceConfig(name="n", type="sqlite", path=text), tmp_path, "0" * 32).check()
    with pytest.raises(InputError, match="not a SQLite database"):
        control_totals(text)
