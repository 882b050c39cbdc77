"""``postgres`` source: a consistent logical dump of each database, streamed into the
chunker, with control totals computed in the very same MVCC snapshot.

How consistency is guaranteed: drkit opens a ``REPEATABLE READ, READ ONLY`` transaction and
exports its snapshot with ``pg_export_snapshot()``. Everything in the dump is read in that
one snapshot: the schema by ``pg_dump --snapshot=<id>`` (sections pre-data and post-data,
plus the data section without tables, i.e. large objects), and every table's rows (by
``COPY (SELECT ... ORDER BY <primary key>) TO STDOUT``) and sequence value in drkit's own
transaction, which also computes the control totals. Whatever other connections write
meanwhile, dump and totals see exactly the same committed data.

Why not plain ``pg_dump --format=custom``: pg_dump copies each table in physical (heap)
order, and PostgreSQL puts new and updated rows wherever its free-space map finds room,
all over the table. Measured with bench/dbdump.py, a day with 0.5% new rows and 0.5%
updated recent rows changed every 1 MiB chunk of a custom-format dump (100% stored again).
In primary-key order the same day's changes stay in a few chunks. The dump is therefore
one plain SQL script, ``pg_dump`` pre-data + large objects + ``COPY`` blocks in key order +
``setval`` of every sequence + ``pg_dump`` post-data, uncompressed (the repository
compresses chunks with zstd), piped straight into the chunk sink: nothing is written to
disk. It loads with ``psql`` (see
``load_dump``). Tables without a primary key are copied in physical order.

Control totals ("drkit-pg-rowsum-v1"): for every ordinary table outside the system
schemas, ``count(*)`` and two sums over all rows of 60-bit slices of ``md5(row::text)``.
The sums do not depend on row order, so the totals of a restored copy equal the
original's exactly when it holds the same multiset of rows, and computing them is one
server-side aggregate per table.

Roles are cluster-wide and not part of a database dump: loading on another cluster needs
the owning roles to exist there (``pg_dumpall --globals-only``), or the load stops at the
first ``ALTER ... OWNER TO``.
"""

from __future__ import annotations

import contextlib
import logging
import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from drkit.config import Config, SourceConfig
from drkit.errors import InputError
from drkit.sources.base import ChunkSink
from drkit.sources.dbcommon import (
    DatabaseSource,
    DbSettings,
    check_scratch_name,
    db_settings,
    find_tool,
    private_dir,
    run_tool,
    sibling_tool,
    stderr_summary,
    verify_totals,
    write_private,
)

log = logging.getLogger(__name__)

TOTALS_ALGORITHM = "drkit-pg-rowsum-v1"
DUMP_FORMAT = "drkit-pg-sql-v1"
MIN_PG_DUMP = 10
_TABLES_SQL = """
SELECT n.nspname, c.relname FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
ORDER BY 1, 2
"""
_SUMS = ("coalesce(sum(('x' || substr(md5(t::text), {0}, 15))::bit(60)::bigint::numeric), 0)")


def settings_for(source: SourceConfig) -> DbSettings:
    return db_settings(source, default_port=5432, default_user="postgres",
                       password_env="PGPASSWORD")  # noqa: S106 - a variable name


def _pgpass_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def _tool_env(settings: DbSettings, folder: Path) -> dict[str, str]:
    """Environment for pg_dump/pg_restore/psql: the password only via a 0600 PGPASSFILE."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("PGPASSWORD",)}
    env["PGCONNECT_TIMEOUT"] = env.get("PGCONNECT_TIMEOUT", "10")
    if settings.password:
        line = ":".join(_pgpass_escape(x) for x in
                        (settings.host, str(settings.port), "*", settings.user,
                         settings.password))
        env["PGPASSFILE"] = str(write_private(folder / "pgpass", line + "\n"))
    return env


def connect(settings: DbSettings, database: str) -> Any:
    """A psycopg connection (autocommit off); InputError with one clear line otherwise."""
    import psycopg

    try:
        return psycopg.connect(host=settings.host, port=settings.port, user=settings.user,
                               dbname=database, password=settings.password or None,
                               connect_timeout=10, application_name="drkit")
    except psycopg.OperationalError as exc:
        first = (str(exc).strip().splitlines() or ["connection failed"])[-1]
        if settings.password:
            first = first.replace(settings.password, "***")
        raise InputError(f"{settings.where}: cannot connect to database {database!r}: "
                         f"{first}") from None


def _table_totals(conn: Any) -> dict[str, dict[str, Any]]:
    from psycopg import sql

    tables: dict[str, dict[str, Any]] = {}
    cur = conn.cursor()
    for schema, table in cur.execute(_TABLES_SQL).fetchall():
        query = sql.SQL("SELECT count(*), " + _SUMS.format(1) + ", " + _SUMS.format(16)
                        + " FROM ONLY {}.{} AS t").format(sql.Identifier(schema),
                                                          sql.Identifier(table))
        rows, low, high = cur.execute(query).fetchone()
        tables[f"{schema}.{table}"] = {"rows": int(rows),
                                       "hash": f"{int(low):x}.{int(high):x}"}
    return tables


def _begin_snapshot(conn: Any) -> None:
    from psycopg import IsolationLevel

    conn.isolation_level = IsolationLevel.REPEATABLE_READ
    conn.read_only = True


def control_totals(source: SourceConfig, database: str) -> dict[str, Any]:
    """Row count and content hash per table of ``database`` on the source's server, read
    in one REPEATABLE READ snapshot (the drill calls this on a scratch database)."""
    settings = settings_for(source)
    conn = connect(settings, database)
    try:
        _begin_snapshot(conn)
        return {"algorithm": TOTALS_ALGORITHM, "tables": _table_totals(conn)}
    finally:
        conn.rollback()
        conn.close()


def tool_major(tool: str) -> int:
    try:
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=30,
                             check=False).stdout
    except OSError as exc:
        raise InputError(f"{tool}: cannot run: {exc.strerror}") from None
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", out) or re.search(r"\s(\d+)\.\d+", out)
    if not match:
        raise InputError(f"{tool}: cannot tell its version from {out.strip()[:80]!r}")
    return int(match.group(1))


class PostgresSource(DatabaseSource):
    type = "postgres"
    totals_algorithm = TOTALS_ALGORITHM

    @property
    def settings(self) -> DbSettings:
        return settings_for(self.config)

    def _pg_dump(self) -> str:
        return find_tool(self.settings.dump_tool, ("pg_dump",), f"source {self.name!r}")

    def check(self) -> None:
        settings = self.settings
        tool = self._pg_dump()
        major = tool_major(tool)
        if major < MIN_PG_DUMP:
            raise InputError(f"source {self.name!r}: {tool} is version {major}; drkit needs "
                             f"pg_dump {MIN_PG_DUMP} or newer")
        for database in settings.databases:
            conn = connect(settings, database)
            try:
                server = int(conn.info.server_version) // 10000
            finally:
                conn.close()
            if server > major:
                raise InputError(f"source {self.name!r}: {tool} is version {major} but the "
                                 f"server runs PostgreSQL {server}; pg_dump must be at least "
                                 "the server's version (set dump_tool)")

    def dump_database(self, database: str, sink: ChunkSink) -> tuple[dict[str, Any],
                                                                     dict[str, Any]]:
        """Dump one database into ``sink``; return its tree entry and its control totals."""
        settings = self.settings
        tool = self._pg_dump()
        with private_dir() as folder:
            env = _tool_env(settings, folder)
            conn = connect(settings, database)
            try:
                _begin_snapshot(conn)
                cur = conn.cursor()
                snap_row = cur.execute("SELECT pg_export_snapshot(), "
                                       "extract(epoch FROM transaction_timestamp())").fetchone()
                snapshot_id, started = str(snap_row[0]), float(snap_row[1])
                tables = _table_totals(conn)
                base = [tool, "--format=plain", f"--snapshot={snapshot_id}", "--no-password",
                        "--host", settings.host, "--port", str(settings.port),
                        "--username", settings.user, "--dbname", database]

                def pieces() -> Iterator[bytes]:
                    what = f"{settings.where}: pg_dump of {database!r}"
                    yield from _tool_output([*base, "--section=pre-data"], env, what,
                                            settings.password)
                    # Large objects (the data section without table or sequence data).
                    yield from _tool_output([*base, "--section=data",
                                             "--exclude-table-data=*.*"], env, what,
                                            settings.password)
                    yield from _table_data(conn)
                    yield from _sequence_values(conn)
                    yield from _tool_output([*base, "--section=post-data"], env, what,
                                            settings.password)

                content = sink.store_stream(IterReader(pieces()))  # type: ignore[arg-type]
            finally:
                with contextlib.suppress(Exception):
                    conn.rollback()
                conn.close()
        entry = {"path": f"{database}.sql", "type": "file", "mode": 0o600,
                 "mtime_ns": int(started * 1e9), "size": content.size,
                 "sha256": content.sha256, "chunks": [c.hex() for c in content.chunks],
                 "database": database, "format": DUMP_FORMAT}
        db_totals = {"algorithm": TOTALS_ALGORITHM, "tables": tables,
                     "same_snapshot": True}
        return entry, db_totals


class IterReader:
    """A binary reader over an iterator of byte blocks (for the chunker)."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self._buf = bytearray()
        self._done = False

    def read(self, n: int = -1) -> bytes:
        while not self._done and (n < 0 or len(self._buf) < n):
            try:
                self._buf += next(self._blocks)
            except StopIteration:
                self._done = True
        if n < 0 or n >= len(self._buf):
            out = bytes(self._buf)
            self._buf.clear()
            return out
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[:len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True


def _tool_output(args: list[str], env: dict[str, str], what: str, password: str | None
                 ) -> Iterator[bytes]:
    """Stream a tool's stdout in blocks; InputError (with its stderr) if it fails."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, env=env)
        try:
            assert proc.stdout is not None
            while block := proc.stdout.read(1 << 20):
                yield block
            rc = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if rc != 0:
            raise InputError(f"{what} failed (exit {rc}): {stderr_summary(err, (password,))}")


_COLUMNS_SQL = """
SELECT a.attname FROM pg_catalog.pg_attribute a
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
  AND a.attgenerated = ''
ORDER BY a.attnum
"""
_PK_SQL = """
SELECT a.attname FROM pg_catalog.pg_index i
JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos) ON true
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = %s::regclass AND i.indisprimary
ORDER BY k.pos
"""


_SEQUENCES_SQL = """
SELECT n.nspname, c.relname FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1, 2
"""


def _sequence_values(conn: Any) -> Iterator[bytes]:
    """``setval`` for every sequence, read in drkit's transaction (as pg_dump would)."""
    from psycopg import sql

    cur = conn.cursor()
    lines = []
    for schema, name in cur.execute(_SEQUENCES_SQL).fetchall():
        ident = sql.Identifier(schema, name)
        last, called = cur.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(
            ident)).fetchone()
        qualified = sql.Literal(ident.as_string(conn)).as_string(conn)
        lines.append(f"SELECT pg_catalog.setval({qualified}, {int(last)}, "
                     f"{'true' if called else 'false'});\n")
    if lines:
        yield ("".join(lines) + "\n").encode("utf-8")


def _table_data(conn: Any) -> Iterator[bytes]:
    """Every table's rows as psql ``COPY ... FROM stdin`` blocks, in primary-key order,
    read in drkit's transaction (the exported snapshot)."""
    from psycopg import sql

    cur = conn.cursor()
    for schema, table in cur.execute(_TABLES_SQL).fetchall():
        ident = sql.Identifier(schema, table)
        regclass = ident.as_string(conn)
        cols = [r[0] for r in cur.execute(_COLUMNS_SQL, (regclass,)).fetchall()]
        if not cols:
            continue
        pk = [r[0] for r in cur.execute(_PK_SQL, (regclass,)).fetchall()]
        col_list = sql.SQL(", ").join(sql.Identifier(c) for c in cols)
        order = (sql.SQL(" ORDER BY ") + sql.SQL(", ").join(sql.Identifier(c) for c in pk)
                 if pk else sql.SQL(""))
        head = sql.SQL("COPY {} ({}) FROM stdin;\n").format(ident, col_list)
        yield head.as_string(conn).encode("utf-8")
        query = sql.SQL("COPY (SELECT {} FROM ONLY {}{}) TO STDOUT").format(col_list, ident,
                                                                          order)
        with cur.copy(query) as copy:
            for block in copy:
                yield bytes(block)
        yield b"\\.\n\n"


def _admin(settings: DbSettings) -> Any:
    conn = connect(settings, "postgres")
    conn.autocommit = True
    return conn


def load_dump(source: SourceConfig, dump_stream: BinaryIO, scratch_db_name: str, *,
              config: Config | None = None) -> None:
    """Create ``scratch_db_name`` (it must not exist) and load a dump made by this source
    into it with psql. Refuses names that are not ``drkit_scratch_*``, the source's
    own databases and any database a production source names (pass ``config``)."""
    from psycopg import errors, sql

    settings = settings_for(source)
    check_scratch_name(scratch_db_name, settings, config)
    tool = sibling_tool(find_tool(settings.dump_tool, ("pg_dump",), source.name),
                        ("psql",), f"source {source.name!r}")
    admin = _admin(settings)
    try:
        try:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch_db_name)))
        except errors.DuplicateDatabase:
            raise InputError(f"{settings.where}: scratch database {scratch_db_name!r} already "
                             "exists (drop it with drop_scratch first)") from None
    finally:
        admin.close()
    with private_dir() as folder:
        env = _tool_env(settings, folder)
        run_tool([tool, "--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1", "--no-password",
                  "--host", settings.host, "--port", str(settings.port),
                  "--username", settings.user, "--dbname", scratch_db_name],
                 env, dump_stream, f"{settings.where}: loading into {scratch_db_name!r}",
                 (settings.password,))


def drop_scratch(source: SourceConfig, scratch_db_name: str, *,
                 config: Config | None = None) -> None:
    """Drop a scratch database (only ``drkit_scratch_*``; never a production one)."""
    from psycopg import sql

    settings = settings_for(source)
    check_scratch_name(scratch_db_name, settings, config)
    admin = _admin(settings)
    try:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(scratch_db_name)))
    finally:
        admin.close()


def check_restored(source: SourceConfig, scratch_db_name: str, expected: dict[str, Any]
                   ) -> dict[str, Any]:
    """Recompute the totals on a loaded scratch database; IntegrityError if they differ."""
    actual = control_totals(source, scratch_db_name)
    verify_totals(expected, actual, where=f"source {source.name!r}: {scratch_db_name}")
    return actual


SOURCE = PostgresSource
