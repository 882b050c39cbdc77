"""Control totals of a SQLite database: row count and content hash of every table.

Two algorithms, both defined on the rows (not the file's bytes), so a drill proves that a
restored database holds the rows the snapshot recorded:

``drkit-sqlite-rows-v2`` (written since this version). Rows are grouped into blocks of
65,536 rowid values (``rowid >> 16``); a table without rowid, or with more than 4,096
non-empty blocks, is one block numbered 0. A block's digest is SQLite's own
``sha3_query(SQL, 256)`` (SHA3-256, FIPS 202) of the query
``SELECT * FROM "<table>" WHERE rowid >= <lo> AND rowid < <hi> ORDER BY rowid``
(``SELECT * FROM "<table>" ORDER BY rowid`` for a whole rowid table, ``SELECT * FROM
"<table>"`` for a table without rowid, which SQLite returns in primary-key order). That
function hashes ``"S<n>:" || SQL text`` and then, per row, ``"R"`` and per value ``"N"``
(NULL), ``"I"`` + 8 bytes big-endian (integer), ``"F"`` + the 8 bytes of the IEEE double
big-endian (real), ``"T<n>:"`` + UTF-8 bytes (text) or ``"B<n>:"`` + bytes (blob). The table
hash is SHA-256 over ``block number (8 bytes, signed, big-endian) || block digest`` for
every non-empty block in order; ``rows`` is the row count. The digests are computed by
the ``sqlite3`` command-line shell (Debian package ``sqlite3``), which runs the query in C,
on both cores; without it, by this module in Python (same bytes, about four times the CPU).

``drkit-sqlite-rows-v1`` (older snapshots; still computed to check them): the same blocks,
each hashed as SHA-256 over ``repr(row) + "\\n"`` of its rows in Python.

Reuse (``BlockCache``): the writer remembers, per block, a digest of the table b-tree's
leaf pages (and their overflow pages) that can hold the block's rowids, with the block's
row count and digest. A block whose pages are byte-for-byte the ones of the last snapshot
(same schema, page size and text encoding) has the same rows, so its totals are taken
from the cache instead of reading its rows again. A change confined to some pages re-reads
only the blocks those pages hold.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sqlite3
import struct
import subprocess
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ALGORITHM_V1 = "drkit-sqlite-rows-v1"
ALGORITHM_V2 = "drkit-sqlite-rows-v2"
ALGORITHMS = (ALGORITHM_V1, ALGORITHM_V2)
BLOCK_SHIFT = 16  # rows of a rowid table are hashed in blocks of 65,536 rowid values
MAX_BLOCKS = 4096  # sparser tables are hashed as one block
BUSY_TIMEOUT_S = 10.0
WHOLE = 0  # the block number of a table hashed as one block
CACHE_VERSION = 1

Block = int | None  # a block number, or None for the whole table


def quote_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def connect_ro(path: Path) -> sqlite3.Connection:
    uri = "file:" + str(path.resolve()).replace("?", "%3f").replace("#", "%23") + "?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False)


def tables(con: sqlite3.Connection) -> list[tuple[str, str]]:
    """(name, CREATE statement) of every user table, by name."""
    return [(r[0], r[1] or "") for r in con.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' "
        "AND name NOT LIKE 'sqlite_%' ORDER BY name")]


def has_rowid(con: sqlite3.Connection, table: str) -> bool:
    try:
        con.execute(f"SELECT rowid FROM {quote_name(table)} LIMIT 0")
    except sqlite3.OperationalError:
        return False  # WITHOUT ROWID
    return True


def distinct_blocks(con: sqlite3.Connection, table: str) -> list[int]:
    return [r[0] for r in con.execute(
        f"SELECT DISTINCT rowid >> {BLOCK_SHIFT} FROM {quote_name(table)} ORDER BY 1")]


# -- version 1 ---------------------------------------------------------------------------

def _v1_plan(con: sqlite3.Connection) -> list[tuple[str, Block]]:
    items: list[tuple[str, Block]] = []
    for name, _sql in tables(con):
        if not has_rowid(con, name):
            items.append((name, None))
            continue
        blocks = distinct_blocks(con, name)
        if not blocks or len(blocks) > MAX_BLOCKS:
            items.append((name, None))
        else:
            items.extend((name, b) for b in blocks)
    return items


def _v1_item(con: sqlite3.Connection, name: str, block: Block) -> tuple[int, bytes]:
    if block is None:
        try:
            cur = con.execute(f"SELECT * FROM {quote_name(name)} ORDER BY rowid")
        except sqlite3.OperationalError:
            cur = con.execute(f"SELECT * FROM {quote_name(name)}")
    else:
        cur = con.execute(f"SELECT * FROM {quote_name(name)} WHERE rowid >= ? AND rowid < ? "
                          "ORDER BY rowid", (block << BLOCK_SHIFT, (block + 1) << BLOCK_SHIFT))
    digest = hashlib.sha256()
    rows = 0
    while batch := cur.fetchmany(20000):
        rows += len(batch)
        digest.update(("\n".join(map(repr, batch)) + "\n").encode("utf-8", "surrogatepass"))
    return rows, digest.digest()


def totals_v1(con: sqlite3.Connection) -> dict[str, Any]:
    plan = _v1_plan(con)
    results = {(name, block): _v1_item(con, name, block) for name, block in plan}
    return combine(ALGORITHM_V1, [n for n, _ in tables(con)],
                   [(n, b, *results[(n, b)]) for n, b in plan], keep_empty=True)


def combine(algorithm: str, names: Iterable[str],
            items: Sequence[tuple[str, Block, int, bytes]], *, keep_empty: bool = False
            ) -> dict[str, Any]:
    """The totals document from (table, block, rows, digest) in table and block order."""
    out: dict[str, dict[str, Any]] = {}
    hashes: dict[str, Any] = {}
    for name, block, rows, digest in items:
        if rows == 0 and not keep_empty:
            continue
        entry = out.setdefault(name, {"rows": 0})
        entry["rows"] += rows
        h = hashes.setdefault(name, hashlib.sha256())
        h.update((WHOLE if block is None else block).to_bytes(8, "big", signed=True) + digest)
    for name in names:  # tables with no rows at all
        out.setdefault(name, {"rows": 0})
        hashes.setdefault(name, hashlib.sha256())
    for name, h in hashes.items():
        out[name]["sha256"] = h.hexdigest()
    return {"algorithm": algorithm, "tables": dict(sorted(out.items()))}


# -- version 2: the query of a block and its digest ---------------------------------------

def block_query(table: str, block: Block, rowid: bool) -> str:
    q = quote_name(table)
    if block is not None:
        lo, hi = block << BLOCK_SHIFT, (block + 1) << BLOCK_SHIFT
        return f"SELECT * FROM {q} WHERE rowid >= {lo} AND rowid < {hi} ORDER BY rowid"
    return f"SELECT * FROM {q} ORDER BY rowid" if rowid else f"SELECT * FROM {q}"


def count_query(table: str, block: Block) -> str:
    q = quote_name(table)
    if block is None:
        return f"SELECT count(*) FROM {q}"
    lo, hi = block << BLOCK_SHIFT, (block + 1) << BLOCK_SHIFT
    return f"SELECT count(*) FROM {q} WHERE rowid >= {lo} AND rowid < {hi}"


class _Text(bytes):
    """A TEXT value's UTF-8 bytes (a BLOB comes back as plain ``bytes``)."""


def _text_factory(value: bytes) -> _Text:
    return _Text(value)


def sha3_query_py(con: sqlite3.Connection, sql: str) -> bytes:
    """SQLite's ``sha3_query(sql, 256)`` computed in Python (same bytes, see above)."""
    old = con.text_factory
    con.text_factory = _text_factory
    try:
        h = hashlib.sha3_256()
        text = sql.encode("utf-8")
        h.update(b"S%d:" % len(text) + text)
        pack_i, pack_f = struct.Struct(">q").pack, struct.Struct(">d").pack
        cur = con.execute(sql)
        while batch := cur.fetchmany(4096):
            parts: list[bytes] = []
            for row in batch:
                parts.append(b"R")
                for value in row:
                    if value is None:
                        parts.append(b"N")
                    elif isinstance(value, int):
                        parts.append(b"I" + pack_i(value))
                    elif isinstance(value, float):
                        parts.append(b"F" + pack_f(value))
                    elif isinstance(value, _Text):
                        parts.append(b"T%d:" % len(value) + value)
                    else:
                        parts.append(b"B%d:" % len(value) + bytes(value))
            h.update(b"".join(parts))
        return h.digest()
    finally:
        con.text_factory = old


@dataclass(frozen=True)
class Item:
    table: str
    block: Block
    rowid: bool

    @property
    def number(self) -> int:
        return WHOLE if self.block is None else self.block


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_SELF_CHECK = "SELECT 1, -2, 2.5, 'text', x'00ff', NULL"


def _self_check_digest() -> str:
    """What the shell must answer for the self-check query (computed here once)."""
    with _state_lock:
        if "check" not in _state:
            mem = sqlite3.connect(":memory:")
            try:
                _state["check"] = sha3_query_py(mem, _SELF_CHECK).hex()
            finally:
                mem.close()
        return _state["check"]


_state: dict[str, str] = {}
_state_lock = threading.Lock()


def _shell() -> str | None:
    return shutil.which("sqlite3")


def _run_shell(shell: str, path: Path, items: Sequence[Item]) -> list[tuple[int, bytes]] | None:
    """Row count and digest of each item, by one ``sqlite3`` shell process; None if the
    shell cannot do it (too old, or its answer to a known query is not ours)."""
    lines = [f"SELECT 'check', lower(hex(sha3_query({_sql_literal(_SELF_CHECK)}, 256)));"]
    for n, item in enumerate(items):
        lines.append(f"SELECT {n}, ({count_query(item.table, item.block)}), lower(hex("
                     f"sha3_query({_sql_literal(block_query(item.table, item.block, item.rowid))}"
                     ", 256)));")
    try:
        proc = subprocess.run(
            [shell, "-batch", "-bail", "-readonly", "-init", os.devnull, "-list",
             "-separator", "|", "-noheader", str(path)],
            input="\n".join(lines) + "\n", capture_output=True, text=True, check=False,
            env={**os.environ, "HOME": os.devnull})
    except OSError as exc:
        log.warning("sqlite3 shell %s cannot run (%s); control totals in Python", shell, exc)
        return None
    if proc.returncode != 0:
        log.warning("sqlite3 shell failed (%s); control totals in Python",
                    (proc.stderr.strip().splitlines() or [str(proc.returncode)])[-1])
        return None
    out = proc.stdout.splitlines()
    if len(out) != len(items) + 1 or out[0] != f"check|{_self_check_digest()}":
        log.warning("sqlite3 shell gave an unexpected answer; control totals in Python")
        return None
    results: list[tuple[int, bytes]] = []
    for n, line in enumerate(out[1:]):
        fields = line.split("|")
        if len(fields) != 3 or fields[0] != str(n) or len(fields[2]) != 64:
            log.warning("sqlite3 shell gave an unexpected answer; control totals in Python")
            return None
        results.append((int(fields[1]), bytes.fromhex(fields[2])))
    return results


def _run_python(path: Path, items: Sequence[Item]) -> list[tuple[int, bytes]]:
    con = connect_ro(path)
    try:
        out = []
        for item in items:
            rows = int(con.execute(count_query(item.table, item.block)).fetchone()[0])
            out.append((rows, sha3_query_py(con, block_query(item.table, item.block,
                                                             item.rowid))))
        return out
    finally:
        con.close()


def digest_items(path: Path, items: Sequence[Item], *, workers: int = 2,
                 use_shell: bool = True) -> list[tuple[int, bytes]]:
    """Row count and digest of each item of the database at ``path``, in order. Spread
    over ``workers`` shell processes (each reads its own blocks), else in Python."""
    if not items:
        return []
    shell = _shell() if use_shell else None
    if shell is not None:
        shares = [list(range(i, len(items), workers)) for i in range(workers)]
        shares = [s for s in shares if s]
        with ThreadPoolExecutor(len(shares)) as pool:
            answers = list(pool.map(
                lambda share: _run_shell(shell, path, [items[i] for i in share]), shares))
        if all(a is not None for a in answers):
            results: list[tuple[int, bytes] | None] = [None] * len(items)
            for share, answer in zip(shares, answers, strict=True):
                assert answer is not None
                for i, value in zip(share, answer, strict=True):
                    results[i] = value
            return [r for r in results if r is not None]
    return _run_python(path, items)


# -- version 2: which pages hold which blocks ---------------------------------------------

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """SQLite's big-endian varint at ``pos``: (value, next position)."""
    value = 0
    for i in range(8):
        byte = buf[pos + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos + i + 1
    return (value << 8) | buf[pos + 8], pos + 9


@dataclass(frozen=True)
class Leaf:
    first: int  # smallest rowid on the page
    last: int  # largest rowid on the page
    digest: bytes  # SHA-256 of the page and its rows' overflow pages


@dataclass
class TableLayout:
    """The pages of one table: its rowid leaves in rowid order, and a digest of all its
    pages (for a table hashed whole)."""

    leaves: list[Leaf]
    all_pages: bytes


def table_layouts(con: sqlite3.Connection, path: Path, names: Iterable[str]
                  ) -> dict[str, TableLayout] | None:
    """Page layout of the tables ``names`` of the database file at ``path`` (no WAL: a
    backup copy), from the ``dbstat`` virtual table; None where SQLite lacks it."""
    wanted = set(names)
    try:
        rows = con.execute("SELECT name, pageno, pagetype, path FROM dbstat").fetchall()
        page_size = int(con.execute("PRAGMA page_size").fetchone()[0])
    except sqlite3.Error:
        return None
    by_table: dict[str, list[tuple[str, int, str]]] = {}
    for name, pageno, pagetype, where in rows:
        if name in wanted:
            by_table.setdefault(name, []).append((str(where), int(pageno), str(pagetype)))
    layouts: dict[str, TableLayout] = {}
    fd = os.open(path, os.O_RDONLY)
    try:
        for name, pages in by_table.items():
            pages.sort()
            whole = hashlib.sha256()
            overflow: dict[str, Any] = {}
            # (path, first rowid, last rowid, SHA-256 of the page): only digests are kept.
            leaves: list[tuple[str, int, int, bytes]] = []
            for where, number, kind in pages:
                data = os.pread(fd, page_size, (number - 1) * page_size)
                if len(data) != page_size:
                    raise sqlite3.DatabaseError(f"page {number} lies beyond the end of the file")
                digest = hashlib.sha256(data).digest()
                whole.update(number.to_bytes(4, "big") + digest)
                if kind == "overflow":
                    # "<leaf path><cell, 3 hex digits>+<overflow page, 6 hex digits>"
                    cut = where.index("+")
                    leaf_path = where[:where.rindex("/", 0, cut) + 1]
                    overflow.setdefault(leaf_path, hashlib.sha256()).update(digest)
                elif kind == "leaf" and data[0] == 0x0D:  # a table (rowid) leaf page
                    cells = int.from_bytes(data[3:5], "big")
                    if cells == 0:
                        continue
                    first_ptr = int.from_bytes(data[8:10], "big")
                    last_ptr = int.from_bytes(data[6 + 2 * cells:8 + 2 * cells], "big")
                    # A cell: varint payload size, varint rowid, payload.
                    first = _varint(data, _varint(data, first_ptr)[1])[0]
                    last = _varint(data, _varint(data, last_ptr)[1])[0]
                    leaves.append((where, _signed(first), _signed(last), digest))
            out = []
            for where, first, last, digest in leaves:
                if where in overflow:
                    digest = hashlib.sha256(digest + overflow[where].digest()).digest()
                out.append(Leaf(first, last, digest))
            out.sort(key=lambda leaf: leaf.first)
            layouts[name] = TableLayout(out, whole.digest())
    finally:
        os.close(fd)
    return layouts


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def candidate_blocks(leaves: Sequence[Leaf]) -> list[int] | None:
    """Every block a leaf's rowid range touches (a superset of the non-empty blocks), or
    None if there are more than MAX_BLOCKS."""
    blocks: set[int] = set()
    for leaf in leaves:
        lo, hi = leaf.first >> BLOCK_SHIFT, leaf.last >> BLOCK_SHIFT
        if hi - lo > MAX_BLOCKS or len(blocks) > MAX_BLOCKS:
            return None
        blocks.update(range(lo, hi + 1))
    return sorted(blocks) if len(blocks) <= MAX_BLOCKS else None


def block_pages(leaves: Sequence[Leaf], blocks: Sequence[int]) -> dict[int, bytes]:
    """Per block, a digest of every leaf whose rowid range meets the block's: every page
    that can hold one of its rows."""
    out: dict[int, bytes] = {}
    start = 0
    for block in blocks:
        lo, hi = block << BLOCK_SHIFT, ((block + 1) << BLOCK_SHIFT) - 1
        while start < len(leaves) and leaves[start].last < lo:
            start += 1
        h = hashlib.sha256()
        i = start
        while i < len(leaves) and leaves[i].first <= hi:
            if leaves[i].last >= lo:
                h.update(leaves[i].digest)
            i += 1
        out[block] = h.digest()
    return out


# -- version 2: the whole computation ----------------------------------------------------

@dataclass
class TotalsRun:
    """What one computation produced: the totals, the cache for the next one, and how
    many blocks were read rather than reused."""

    totals: dict[str, Any]
    cache: dict[str, Any]
    blocks_read: int
    blocks_reused: int


def _layout_key(table_sql: str, page_size: int, encoding: str) -> str:
    return hashlib.sha256(f"{ALGORITHM_V2}\0{page_size}\0{encoding}\0{table_sql}"
                          .encode("utf-8", "surrogatepass")).hexdigest()


def totals_v2(path: Path, *, previous: dict[str, Any] | None = None, want_cache: bool = True,
              workers: int = 2, use_shell: bool = True) -> TotalsRun:
    """Totals of the database file at ``path`` (a consistent copy without WAL), reusing
    the blocks of ``previous`` (a cache this function returned) whose pages are unchanged.
    ``want_cache=False`` (a drill's check) skips the page layout: every block is read."""
    con = connect_ro(path)
    try:
        names = tables(con)
        layouts = table_layouts(con, path, [n for n, _ in names]) if want_cache else None
        page_size = int(con.execute("PRAGMA page_size").fetchone()[0])
        encoding = str(con.execute("PRAGMA encoding").fetchone()[0])
        old_tables: dict[str, Any] = {}
        if previous and previous.get("version") == CACHE_VERSION \
                and previous.get("algorithm") == ALGORITHM_V2:
            old_tables = previous.get("tables") or {}
        plan: list[tuple[Item, str | None]] = []  # (item, pages digest or None)
        new_cache: dict[str, Any] = {}
        for name, table_sql in names:
            rowid = has_rowid(con, name)
            layout = layouts.get(name) if layouts is not None else None
            key = _layout_key(table_sql, page_size, encoding)
            cache_entry: dict[str, Any] = {"key": key, "blocks": {}}
            new_cache[name] = cache_entry
            if rowid:
                blocks = candidate_blocks(layout.leaves) if layout is not None else None
                if blocks is None:
                    exact = distinct_blocks(con, name)
                    blocks = exact if len(exact) <= MAX_BLOCKS else None
                if blocks is not None:
                    held = block_pages(layout.leaves, blocks) if layout is not None else {}
                    plan.extend((Item(name, b, True), held[b].hex() if b in held else None)
                                for b in blocks)
                    continue
            whole = layout.all_pages.hex() if layout is not None else None
            plan.append((Item(name, None, rowid), whole))
        results: dict[int, tuple[int, bytes]] = {}
        todo: list[int] = []
        for n, (item, digest_of_pages) in enumerate(plan):
            old = old_tables.get(item.table) or {}
            hit = (old.get("blocks") or {}).get(str(item.block)) \
                if old.get("key") == new_cache[item.table]["key"] else None
            if digest_of_pages is not None and isinstance(hit, list) and len(hit) == 3 \
                    and hit[0] == digest_of_pages:
                results[n] = (int(hit[1]), bytes.fromhex(hit[2]))
            else:
                todo.append(n)
        for n, value in zip(todo, digest_items(path, [plan[n][0] for n in todo],
                                               workers=workers, use_shell=use_shell),
                            strict=True):
            results[n] = value
        items: list[tuple[str, Block, int, bytes]] = []
        for n, (item, digest_of_pages) in enumerate(plan):
            rows, digest = results[n]
            if digest_of_pages is not None:
                new_cache[item.table]["blocks"][str(item.block)] = [digest_of_pages, rows,
                                                                    digest.hex()]
            items.append((item.table, item.block, rows, digest))
        totals = combine(ALGORITHM_V2, [n for n, _ in names], items)
        return TotalsRun(totals, {"version": CACHE_VERSION, "algorithm": ALGORITHM_V2,
                                  "tables": new_cache},
                         blocks_read=len(todo), blocks_reused=len(plan) - len(todo))
    finally:
        con.close()
