"""``postgres`` source: a consistent ``pg_dump`` of each database, streamed into the chunker,
with control totals computed in the very same MVCC snapshot.

How consistency is guaranteed: drkit opens a ``REPEATABLE READ, READ ONLY`` transaction,
exports its snapshot with ``pg_export_snapshot()`` and starts ``pg_dump --snapshot=<id>``,
which imports that snapshot. The control totals (row count and a content hash per table)
are then computed inside drkit's transaction, which stays open until pg_dump has finished;
dump and totals therefore see exactly the same committed data, whatever other connections
write meanwhile.

Format: pg_dump's custom format with ``--compress=0``. Uncompressed, each row is a
length-prefixed line in the data blocks, so FastCDC finds the same chunks day after day
and only the changed neighbourhoods are stored again (the repository compresses chunks
with zstd itself). The dump goes from pg_dump's stdout straight into the chunk sink;
nothing is written to disk. It restores with ``pg_restore`` (see ``load_dump``).

Control totals ("drkit-pg-rowsum-v1"): for every ordinary table outside the system
schemas, ``count(*)`` and two sums over all rows of 60-bit slices of ``md5(row::text)``.
The sums do not depend on row order, so the totals of a restored copy equal the
original's exactly when it holds the same multiset of rows, and computing them is one
server-side aggregate per table.
"""

from __future__ import annotations

import contextlib
import logging
import re
import subprocess
import tempfile
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, BinaryIO

from drkit.config import Config, SourceConfig
from drkit.errors import InputError
from drkit.progress import ProgressTask
from drkit.sources.base import ChunkSink, Source, SourceResult
from drkit.sources.dbcommon import (
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
DUMP_FORMAT = "pg_dump-custom-v1"
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


class PostgresSource(Source):
    type = "postgres"

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

    def snapshot(self, sink: ChunkSink, pool: Executor, task: ProgressTask) -> SourceResult:
        settings = self.settings
        result = SourceResult(self.name, self.type,
                              f"postgres://{settings.user}@{settings.host}:{settings.port}",
                              files=len(settings.databases))
        totals: dict[str, Any] = {"algorithm": TOTALS_ALGORITHM, "databases": {}}
        for database in settings.databases:
            entry, db_totals = self.dump_database(database, sink)
            result.entries.append(entry)
            totals["databases"][database] = db_totals
            result.bytes_total += int(entry["size"])
        result.bytes_read = result.bytes_total
        result.control_totals = totals
        return result

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
                args = [tool, "--format=custom", "--compress=0", f"--snapshot={snapshot_id}",
                        "--no-password", "--host", settings.host, "--port",
                        str(settings.port), "--username", settings.user, "--dbname", database]
                with tempfile.TemporaryFile() as err:
                    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, env=env)
                    try:
                        tables = _table_totals(conn)
                        assert proc.stdout is not None
                        content = sink.store_stream(proc.stdout)  # type: ignore[arg-type]
                        rc = proc.wait()
                    except BaseException:
                        proc.kill()
                        proc.wait()
                        raise
                    if rc != 0:
                        raise InputError(f"{settings.where}: pg_dump of {database!r} failed "
                                         f"(exit {rc}): "
                                         f"{stderr_summary(err, (settings.password,))}")
            finally:
                with contextlib.suppress(Exception):
                    conn.rollback()
                conn.close()
        entry = {"path": f"{database}.pgdump", "type": "file", "mode": 0o600,
                 "mtime_ns": int(started * 1e9), "size": content.size,
                 "sha256": content.sha256, "chunks": [c.hex() for c in content.chunks],
                 "database": database, "format": DUMP_FORMAT}
        db_totals = {"algorithm": TOTALS_ALGORITHM, "tables": tables,
                     "same_snapshot": True}
        return entry, db_totals


def _admin(settings: DbSettings) -> Any:
    conn = connect(settings, "postgres")
    conn.autocommit = True
    return conn


def load_dump(source: SourceConfig, dump_stream: BinaryIO, scratch_db_name: str, *,
              config: Config | None = None) -> None:
    """Create ``scratch_db_name`` (it must not exist) and load a dump made by this source
    into it with pg_restore. Refuses names that are not ``drkit_scratch_*``, the source's
    own databases and any database a production source names (pass ``config``)."""
    from psycopg import errors, sql

    settings = settings_for(source)
    check_scratch_name(scratch_db_name, settings, config)
    tool = sibling_tool(find_tool(settings.dump_tool, ("pg_dump",), source.name),
                        ("pg_restore",), f"source {source.name!r}")
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
        run_tool([tool, "--no-owner", "--no-privileges", "--exit-on-error", "--no-password",
                  "--host", settings.host, "--port", str(settings.port),
                  "--username", settings.user, "--dbname", scratch_db_name],
                 env, dump_stream, f"{settings.where}: pg_restore into {scratch_db_name!r}",
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
