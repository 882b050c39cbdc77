"""SQLite control totals v2: the sqlite3 shell and the Python fallback give the same bytes,
blocks whose pages did not change are reused and the result always equals a fresh
computation, and v1 (older snapshots) is still computed for the drill."""

from __future__ import annotations

import hashlib
import random
import shutil
import sqlite3
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from drkit.sources import sqlite_totals as st
from drkit.sources.sqlite import control_totals

needs_shell = pytest.mark.skipif(shutil.which("sqlite3") is None,
                                 reason="the sqlite3 shell is not installed (Debian: sqlite3)")


def _mixed(path: Path) -> None:
    """Every value type, a quoted table name, negative and sparse rowids, overflow rows,
    a WITHOUT ROWID table and an empty table."""
    con = sqlite3.connect(path)
    con.execute('CREATE TABLE "odd ""name""" (a, b, c, d)')
    con.executemany('INSERT INTO "odd ""name""" VALUES (?, ?, ?, ?)', [
        (None, -5, 1.5, "héllo"), (2**63 - 1, -0.0, b"\x00\xff", ""),
        (float("inf"), "x" * 9000, b"", None), (-(2**63), 3, "t'q", b"y" * 5000)])
    con.execute("INSERT INTO \"odd \"\"name\"\"\" VALUES (CAST(x'c3' AS TEXT), 1, 2, 3)")
    con.execute("CREATE TABLE sparse (id INTEGER PRIMARY KEY, v TEXT)")
    con.executemany("INSERT INTO sparse VALUES (?, ?)",
                    [(n << 17, str(n)) for n in range(-10, 4200)])
    con.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID")
    con.executemany("INSERT INTO kv VALUES (?, ?)", [(f"k{n}", bytes([n % 256]) * n)
                                                     for n in range(300)])
    con.execute("CREATE TABLE empty (x)")
    con.commit()
    con.close()


def _orders(path: Path, rows: int = 140_000) -> None:
    rng = random.Random(5)
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, merchant INTEGER, "
                "amount INTEGER, status TEXT, note BLOB)")
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
                    ((n, rng.randrange(10**6), rng.randrange(10**7),
                      rng.choice(["paid", "refunded"]), None) for n in range(rows)))
    con.commit()
    con.close()


def _sha3_reference(path: Path, sql: str) -> bytes:
    """sha3_query written out from its definition, independently of the module."""
    con = sqlite3.connect(path)
    con.text_factory = bytes
    description = con.execute(sql).description
    assert description is not None
    h = hashlib.sha3_256()
    h.update(b"S%d:" % len(sql.encode()) + sql.encode())
    width = len(description)
    # The query's columns named c0.. so that typeof() can refer to them.
    cols = ", ".join(f"typeof(c{i})" for i in range(width))
    names = ", ".join(f"c{i}" for i in range(width))
    for row in con.execute(f"WITH q({names}) AS ({sql}) SELECT {cols}, * FROM q"):
        h.update(b"R")
        for kind, value in zip(row[:width], row[width:], strict=True):
            if kind == b"null":
                h.update(b"N")
            elif kind == b"integer":
                h.update(b"I" + struct.pack(">q", value))
            elif kind == b"real":
                h.update(b"F" + struct.pack(">d", value))
            else:
                h.update((b"T" if kind == b"text" else b"B") + b"%d:" % len(value) + value)
    con.close()
    return h.digest()


def test_python_digest_follows_the_definition(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    _mixed(db)
    con = st.connect_ro(db)
    for table in ('odd "name"', "kv"):
        sql = st.block_query(table, None, table != "kv")
        assert st.sha3_query_py(con, sql) == _sha3_reference(db, sql)
    con.close()


@needs_shell
def test_shell_and_python_agree(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    _mixed(db)
    shell = st.totals_v2(db, want_cache=False).totals
    python = st.totals_v2(db, want_cache=False, use_shell=False).totals
    assert shell == python
    tables = shell["tables"]
    assert tables['odd "name"']["rows"] == 5
    assert tables["sparse"]["rows"] == 4210  # more than 4,096 blocks: hashed whole
    assert tables["kv"]["rows"] == 300
    assert tables["empty"] == {"rows": 0, "sha256": hashlib.sha256().hexdigest()}
    # The sparse table is one block numbered 0, with the whole-table query.
    con = st.connect_ro(db)
    whole = st.sha3_query_py(con, 'SELECT * FROM "sparse" ORDER BY rowid')
    con.close()
    assert tables["sparse"]["sha256"] == hashlib.sha256(bytes(8) + whole).hexdigest()


def test_v1_is_still_computed_for_older_snapshots(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    _orders(db, 70_000)
    v1 = control_totals(db, algorithm=st.ALGORITHM_V1)
    assert v1["algorithm"] == "drkit-sqlite-rows-v1"
    con = sqlite3.connect(db)
    # v1 by its definition: SHA-256 of repr(row) + "\n" per block of 65,536 rowids.
    expected = hashlib.sha256()
    for block in (0, 1):
        rows = con.execute("SELECT * FROM orders WHERE rowid >= ? AND rowid < ? "
                           "ORDER BY rowid", (block << 16, (block + 1) << 16)).fetchall()
        digest = hashlib.sha256("".join(repr(r) + "\n" for r in rows).encode()).digest()
        expected.update(block.to_bytes(8, "big", signed=True) + digest)
    con.close()
    assert v1["tables"]["orders"] == {"rows": 70_000, "sha256": expected.hexdigest()}
    assert control_totals(db)["algorithm"] == "drkit-sqlite-rows-v2"
    with pytest.raises(Exception, match="unknown control totals algorithm"):
        control_totals(db, algorithm="drkit-sqlite-rows-v9")


def _copy(db: Path, to: Path) -> Path:
    """A backup-API copy, as the source takes it (same page numbers)."""
    if to.exists():
        to.unlink()
    src = sqlite3.connect(db)
    dst = sqlite3.connect(to)
    src.backup(dst)
    dst.close()
    src.close()
    return to


Change = Callable[[sqlite3.Connection], None]
CHANGES: dict[str, tuple[Change, int | None]] = {
    # name: (change, most blocks it may re-read out of the 3 of 140,000 rows)
    "one row updated": (lambda c: c.execute(
        "UPDATE orders SET amount = amount + 1 WHERE id = 100000"), 1),
    "rows appended": (lambda c: c.executemany(
        "INSERT INTO orders (merchant, amount, status) VALUES (?, ?, ?)",
        [(1, 2, "paid")] * 5000), 1),
    "a row deleted": (lambda c: c.execute("DELETE FROM orders WHERE id = 70000"), 2),
    "long text grows into overflow pages": (lambda c: c.execute(
        "UPDATE orders SET note = ? WHERE id = 100000", (b"z" * 20000,)), 1),
    "1% of rows everywhere": (lambda c: c.execute(
        "UPDATE orders SET status = 'disputed' WHERE id % 100 = 42"), 3),
    "column added": (lambda c: c.execute(
        "ALTER TABLE orders ADD COLUMN flag INTEGER DEFAULT 7"), 3),
    "rows deleted, then vacuum": (lambda c: c.executescript(
        "DELETE FROM orders WHERE id BETWEEN 5000 AND 6000; VACUUM;"), 3),
    # Moved far beyond the last block: the blocks in between are read (and are empty).
    "rows moved to other rowids": (lambda c: c.execute(
        "UPDATE orders SET id = id + 1000000 WHERE id BETWEEN 10 AND 20"), None),
}


@pytest.fixture(scope="module")
def orders_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("orders") / "orders.db"
    _orders(db)
    return db


@pytest.mark.parametrize("use_shell", [pytest.param(True, marks=needs_shell), False])
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_reused_blocks_give_the_fresh_totals(tmp_path: Path, orders_db: Path, change: str,
                                             use_shell: bool) -> None:
    db = _copy(orders_db, tmp_path / "o.db")
    first = st.totals_v2(_copy(db, tmp_path / "c1.db"), use_shell=use_shell)
    assert (first.blocks_read, first.blocks_reused) == (3, 0)
    unchanged = st.totals_v2(_copy(db, tmp_path / "c2.db"), previous=first.cache,
                             use_shell=use_shell)
    assert (unchanged.blocks_read, unchanged.blocks_reused) == (0, 3)
    assert unchanged.totals == first.totals
    con = sqlite3.connect(db, isolation_level=None)
    mutate, most = CHANGES[change]
    mutate(con)
    con.close()
    copy = _copy(db, tmp_path / "c3.db")
    again = st.totals_v2(copy, previous=first.cache, use_shell=use_shell)
    fresh = st.totals_v2(copy, want_cache=False, use_shell=use_shell)
    assert again.totals == fresh.totals
    assert again.totals != first.totals
    if most is not None:
        assert again.blocks_read <= most
        if most < 3:
            assert again.blocks_reused >= 1


def test_a_cache_of_another_schema_is_not_used(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    _orders(db, 1000)
    first = st.totals_v2(_copy(db, tmp_path / "c1.db"), use_shell=False)
    forged = {**first.cache}
    forged["tables"] = {"orders": {**first.cache["tables"]["orders"], "key": "0" * 64}}
    again = st.totals_v2(_copy(db, tmp_path / "c2.db"), previous=forged, use_shell=False)
    assert (again.blocks_read, again.blocks_reused) == (1, 0)
    assert again.totals == first.totals


def test_the_source_reuses_blocks_between_snapshots(tmp_path: Path, orders_db: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from drkit.config import SourceConfig
    from drkit.progress import NULL_PROGRESS
    from drkit.sources.sqlite import SQLiteSource

    from .test_sqlite_snapshot_source import CopyingSink

    db = _copy(orders_db, tmp_path / "live.db")
    cfg = SourceConfig(name="shop", type="sqlite", path=db)

    def snapshot() -> tuple[dict[str, object], bytes]:
        source = SQLiteSource(cfg, tmp_path / "cache", "0" * 32)
        sink = CopyingSink()
        with ThreadPoolExecutor(2) as pool:
            result = source.snapshot(sink, pool, NULL_PROGRESS.task("t"))
        source.committed()
        source.cleanup()
        assert result.control_totals is not None
        return result.control_totals, sink.data[0]

    first, _ = snapshot()
    con = sqlite3.connect(db)
    con.execute("UPDATE orders SET amount = -1 WHERE id = 100000")
    con.commit()
    con.close()
    caplog.set_level("INFO", logger="drkit.sources.sqlite")
    second, copied = snapshot()
    assert "1 block(s) read, 2 reused" in caplog.text
    restored = tmp_path / "restored.db"
    restored.write_bytes(copied)
    assert second == control_totals(restored) != first
