"""``mysql`` source (MySQL and MariaDB): a consistent ``mysqldump``/``mariadb-dump`` of each
database, streamed into the chunker, with control totals from the same consistent read.

Dump: ``--single-transaction`` (one InnoDB consistent snapshot, no table locks),
``--routines --triggers --events``, ``--hex-blob``, ``--skip-extended-insert``,
``--no-autocommit`` and ``--order-by-primary``. One INSERT per row in primary-key order
makes the dump text stable from day to day, so FastCDC re-finds the unchanged chunks (with
multi-row INSERTs every statement boundary after a changed row would move). The price is a
larger dump and a slower load; ``--no-autocommit`` commits once per table instead of once
per row, which keeps the load from waiting on a log flush for every row.

Same consistent read, and its limit: mysqldump opens its own connection, so drkit cannot
hand it a snapshot the way PostgreSQL can. drkit does what ``mysqldump --master-data``
does internally: it takes ``FLUSH TABLES WITH READ LOCK`` on its own connection, starts its
own ``START TRANSACTION WITH CONSISTENT SNAPSHOT``, starts mysqldump and waits until the
dump output shows that mysqldump is past its own ``START TRANSACTION`` (the first table,
event or routine section appears in the stream, or the tool has exited), then
``UNLOCK TABLES``. No transaction can commit while the lock is held, so both snapshots see
the same data; the lock is held for the time mysqldump needs to connect (milliseconds),
and it waits for running statements to finish before it is granted (bounded by
``lock_wait_timeout`` of 10 s). Where the account may not take the lock (managed
databases such as RDS refuse ``FLUSH TABLES WITH READ LOCK``; it needs the RELOAD
privilege), drkit falls back to taking its snapshot immediately before starting
mysqldump, records ``"same_snapshot": false`` in the control totals and logs a warning:
a transaction committing in that gap makes the drill report a difference.

Binlog position (``--master-data``/``--source-data`` semantics, for point-in-time recovery):
when the server writes a binlog, the dump's tree entry records ``binlog``: the file,
position and GTID state (``SHOW MASTER STATUS`` and ``@@gtid_binlog_pos`` on MariaDB,
``gtid_executed`` on MySQL) read while the global read lock is held, i.e. exactly where
the dump's snapshot stands in the log (``"exact": true``). Without the lock MariaDB still
tells where drkit's own snapshot stands (``binlog_snapshot_file``/``_position``); that is
recorded with ``"exact": false`` and a point-in-time restore refuses to start from it.

Control totals ("drkit-mysql-rowsum-v1"): per base table ``COUNT(*)`` and two sums over all
rows of 60-bit slices of ``MD5(CONCAT_WS(0x1f, QUOTE(col1), QUOTE(col2), ...))``. Limit:
FLOAT (single precision) columns are dumped with limited digits by mysqldump and may not
round-trip exactly, which the totals would then report.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import select
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO

from drkit.config import Config, SourceConfig
from drkit.errors import InputError
from drkit.sources.base import ChunkSink
from drkit.sources.dbcommon import (
    DatabaseSource,
    DbSettings,
    PrefixedReader,
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

TOTALS_ALGORITHM = "drkit-mysql-rowsum-v1"
DUMP_FORMAT = "mysqldump-sql-v1"
DUMP_TOOLS = ("mariadb-dump", "mysqldump")
CLIENT_TOOLS = ("mariadb", "mysql")
START_TIMEOUT_S = 60.0
LOCK_WAIT_TIMEOUT_S = 10
# Text mysqldump writes only after its START TRANSACTION (the header comes before).
_STARTED = re.compile(rb"(^|\n)(-- Table structure|-- Dumping|CREATE |DROP |INSERT |"
                      rb"/\*!50003 |/\*!50106 |DELIMITER |LOCK TABLES )")
_ACCESS_DENIED = (1044, 1045, 1142, 1227, 1226)


def settings_for(source: SourceConfig) -> DbSettings:
    return db_settings(source, default_port=3306, default_user="root",
                       password_env="MYSQL_PWD")  # noqa: S106 - a variable name


def _quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def connect(settings: DbSettings, database: str | None) -> Any:
    """A pymysql connection (autocommit on); InputError with one clear line otherwise."""
    import pymysql

    kwargs: dict[str, Any] = {"host": settings.host, "port": settings.port,
                              "user": settings.user, "password": settings.password or "",
                              "connect_timeout": 10, "autocommit": True,
                              "charset": "utf8mb4"}
    if database:
        kwargs["database"] = database
    try:
        return pymysql.connect(**kwargs)
    except pymysql.err.MySQLError as exc:
        code = exc.args[0] if exc.args else 0
        text = str(exc.args[1]) if len(exc.args) > 1 else type(exc).__name__
        if settings.password:
            text = text.replace(settings.password, "***")
        if code in (1045, 1698):
            text = "access denied (wrong user or password)"
        raise InputError(f"{settings.where}: cannot connect to database {database!r}: "
                         f"{text}") from None


def _defaults_file(settings: DbSettings, folder: Path) -> Path:
    """The option file a client tool reads first: the user's own, or a 0600 one of drkit's."""
    if settings.option_file is not None:
        return settings.option_file
    lines = ["[client]", f"user={settings.user}"]
    if settings.password:
        escaped = settings.password.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'password="{escaped}"')
    return write_private(folder / "client.cnf", "\n".join(lines) + "\n")


def _tool_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "MYSQL_PWD"}


def _connection_args(settings: DbSettings, folder: Path) -> list[str]:
    # --defaults-extra-file must come first on the command line.
    return [f"--defaults-extra-file={_defaults_file(settings, folder)}", "--protocol=TCP",
            f"--host={settings.host}", f"--port={settings.port}", f"--user={settings.user}"]


def _table_totals(cur: Any, database: str) -> dict[str, dict[str, Any]]:
    cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                "AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME", (database,))
    tables: dict[str, dict[str, Any]] = {}
    for (table,) in cur.fetchall():
        cur.execute("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                    "AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION", (database, table))
        cols = ", ".join(f"QUOTE({_quote_ident(c)})" for (c,) in cur.fetchall())
        sums = ", ".join(f"COALESCE(SUM(CAST(CONV(SUBSTRING(h, {start}, 15), 16, 10) "
                         "AS UNSIGNED)), 0)" for start in (1, 16))
        cur.execute(f"SELECT COUNT(*), {sums} FROM (SELECT MD5(CONCAT_WS(0x1f, {cols})) AS h "
                    f"FROM {_quote_ident(database)}.{_quote_ident(table)}) AS x")
        rows, low, high = cur.fetchone()
        tables[str(table)] = {"rows": int(rows), "hash": f"{int(low):x}.{int(high):x}"}
    return tables


def control_totals(source: SourceConfig, database: str) -> dict[str, Any]:
    """Row count and content hash per table of ``database`` on the source's server, read in
    one consistent snapshot (the drill calls this on a scratch database)."""
    settings = settings_for(source)
    conn = connect(settings, database)
    try:
        cur = conn.cursor()
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        try:
            return {"algorithm": TOTALS_ALGORITHM, "tables": _table_totals(cur, database)}
        finally:
            cur.execute("ROLLBACK")
    finally:
        conn.close()


def tool_version(tool: str) -> tuple[str, int]:
    """('mariadb'|'mysql', major version) of a dump tool."""
    try:
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=30,
                             check=False).stdout
    except OSError as exc:
        raise InputError(f"{tool}: cannot run: {exc.strerror}") from None
    match = re.search(r"Distrib (\d+)\.(\d+)", out) or re.search(r"Ver (\d+)\.(\d+)", out)
    if not match:
        raise InputError(f"{tool}: cannot tell its version from {out.strip()[:80]!r}")
    return ("mariadb" if "MariaDB" in out or "mariadb" in Path(tool).name else "mysql",
            int(match.group(1)))


def binlog_position(cur: Any, *, locked: bool) -> dict[str, Any] | None:
    """Where the dump stands in the binlog (see the module docstring); None when the server
    writes no binlog or the account may not ask."""
    import pymysql

    try:
        cur.execute("SELECT @@GLOBAL.log_bin")
        if not int(cur.fetchone()[0] or 0):
            return None
        cur.execute("SELECT VERSION()")
        mariadb = "MariaDB" in str(cur.fetchone()[0])
        if locked:
            row = None
            for statement in ("SHOW MASTER STATUS", "SHOW BINARY LOG STATUS"):
                try:
                    cur.execute(statement)
                    row = cur.fetchone()
                    break
                except pymysql.err.ProgrammingError:
                    continue  # MySQL 8.4 renamed the statement
            if not row:
                return None
            file, position = str(row[0]), int(row[1])
        else:
            if not mariadb:
                return None
            cur.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
            status = {str(k).lower(): str(v) for k, v in cur.fetchall()}
            if "binlog_snapshot_file" not in status:
                return None
            file = status["binlog_snapshot_file"]
            position = int(status["binlog_snapshot_position"])
        cur.execute("SELECT @@GLOBAL.gtid_binlog_pos" if mariadb
                    else "SELECT @@GLOBAL.gtid_executed")
        gtid = str(cur.fetchone()[0] or "")
    except pymysql.err.MySQLError as exc:
        log.warning("binlog position not recorded (%s)", exc.args[1] if len(exc.args) > 1
                    else exc)
        return None
    return {"file": file, "position": position, "gtid": gtid, "exact": locked,
            "flavour": "mariadb" if mariadb else "mysql"}


def _wait_for_start(stdout: Any, timeout: float) -> bytes:
    """Read the dump until it shows mysqldump is past its START TRANSACTION (or EOF)."""
    fd = stdout.fileno()
    buf = bytearray()
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise InputError(f"the dump tool did not start dumping within {timeout:g} s")
        ready, _, _ = select.select([fd], [], [], min(remaining, 1.0))
        if not ready:
            continue
        block = stdout.read(65536)
        if not block:
            return bytes(buf)
        buf += block
        if _STARTED.search(buf):
            return bytes(buf)


class MySQLSource(DatabaseSource):
    type = "mysql"
    totals_algorithm = TOTALS_ALGORITHM

    @property
    def settings(self) -> DbSettings:
        return settings_for(self.config)

    def _dump_tool(self) -> str:
        return find_tool(self.settings.dump_tool, DUMP_TOOLS, f"source {self.name!r}")

    def check(self) -> None:
        settings = self.settings
        tool = self._dump_tool()
        flavour, major = tool_version(tool)
        for database in settings.databases:
            conn = connect(settings, database)
            try:
                cur = conn.cursor()
                cur.execute("SELECT VERSION()")
                server = str(cur.fetchone()[0])
            finally:
                conn.close()
            server_major = int(server.split(".")[0])
            if "MariaDB" not in server and flavour == "mysql" and major < server_major:
                raise InputError(f"source {self.name!r}: {tool} is version {major} but the "
                                 f"server runs MySQL {server}; use a dump tool at least as "
                                 "new as the server (set dump_tool)")


    def _lock(self, cur: Any) -> bool:
        import pymysql

        cur.execute(f"SET SESSION lock_wait_timeout = {LOCK_WAIT_TIMEOUT_S}")
        try:
            cur.execute("FLUSH TABLES WITH READ LOCK")
        except pymysql.err.MySQLError as exc:
            code = exc.args[0] if exc.args else 0
            if code in _ACCESS_DENIED:
                log.warning("source %r: FLUSH TABLES WITH READ LOCK not permitted; control "
                            "totals come from a snapshot taken just before the dump's",
                            self.name)
                return False
            raise InputError(f"{self.settings.where}: cannot take the brief global read "
                             f"lock: {exc.args[1] if len(exc.args) > 1 else exc}") from None
        return True

    def dump_database(self, database: str, sink: ChunkSink) -> tuple[dict[str, Any],
                                                                     dict[str, Any]]:
        """Dump one database into ``sink``; return its tree entry and its control totals."""
        settings = self.settings
        tool = self._dump_tool()
        with private_dir() as folder:
            args = [tool, *_connection_args(settings, folder), "--single-transaction",
                    "--routines", "--triggers", "--events", "--hex-blob",
                    "--skip-extended-insert", "--no-autocommit", "--order-by-primary",
                    "--skip-dump-date",
                    "--no-tablespaces", "--default-character-set=utf8mb4", "--", database]
            conn = connect(settings, database)
            locked = same_snapshot = False
            try:
                cur = conn.cursor()
                same_snapshot = locked = self._lock(cur)
                cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                cur.execute("SELECT UNIX_TIMESTAMP(NOW(6))")
                started = float(cur.fetchone()[0])
                binlog = binlog_position(cur, locked=locked)
                with tempfile.TemporaryFile() as err:
                    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err,
                                            env=_tool_env(), bufsize=0)
                    try:
                        assert proc.stdout is not None
                        try:
                            prefix = _wait_for_start(proc.stdout, START_TIMEOUT_S)
                        finally:
                            if locked:
                                cur.execute("UNLOCK TABLES")
                                locked = False
                        tables = _table_totals(cur, database)
                        reader = PrefixedReader(prefix, io.BufferedReader(proc.stdout))  # type: ignore[type-var]
                        content = sink.store_stream(reader)  # type: ignore[arg-type]
                        rc = proc.wait()
                    except BaseException:
                        proc.kill()
                        proc.wait()
                        raise
                    if rc != 0:
                        raise InputError(f"{settings.where}: {Path(tool).name} of {database!r} "
                                         f"failed (exit {rc}): "
                                         f"{stderr_summary(err, (settings.password,))}")
                cur.execute("ROLLBACK")
            finally:
                if locked:
                    with contextlib.suppress(Exception):
                        conn.cursor().execute("UNLOCK TABLES")
                conn.close()
        entry = {"path": f"{database}.sql", "type": "file", "mode": 0o600,
                 "mtime_ns": int(started * 1e9), "size": content.size,
                 "sha256": content.sha256, "chunks": [c.hex() for c in content.chunks],
                 "database": database, "format": DUMP_FORMAT}
        if binlog is not None:
            entry["binlog"] = binlog
        db_totals = {"algorithm": TOTALS_ALGORITHM, "tables": tables,
                     "same_snapshot": same_snapshot}
        return entry, db_totals


def load_dump(source: SourceConfig, dump_stream: BinaryIO, scratch_db_name: str, *,
              config: Config | None = None) -> None:
    """Create ``scratch_db_name`` (it must not exist) and load a dump made by this source
    into it with the mariadb/mysql client. Refuses names that are not ``drkit_scratch_*``,
    the source's own databases and any database a production source names."""
    import pymysql

    settings = settings_for(source)
    check_scratch_name(scratch_db_name, settings, config)
    client = sibling_tool(find_tool(settings.dump_tool, DUMP_TOOLS, source.name), CLIENT_TOOLS,
                          f"source {source.name!r}")
    conn = connect(settings, None)
    try:
        try:
            conn.cursor().execute(f"CREATE DATABASE {_quote_ident(scratch_db_name)}")
        except pymysql.err.MySQLError as exc:
            if exc.args and exc.args[0] == 1007:
                raise InputError(f"{settings.where}: scratch database {scratch_db_name!r} "
                                 "already exists (drop it with drop_scratch first)") from None
            raise
    finally:
        conn.close()
    with private_dir() as folder:
        run_tool([client, *_connection_args(settings, folder), "--batch",
                  "--default-character-set=utf8mb4", scratch_db_name], _tool_env(),
                 dump_stream, f"{settings.where}: loading into {scratch_db_name!r}",
                 (settings.password,))


def drop_scratch(source: SourceConfig, scratch_db_name: str, *,
                 config: Config | None = None) -> None:
    """Drop a scratch database (only ``drkit_scratch_*``; never a production one)."""
    settings = settings_for(source)
    check_scratch_name(scratch_db_name, settings, config)
    conn = connect(settings, None)
    try:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS {_quote_ident(scratch_db_name)}")
    finally:
        conn.close()


def check_restored(source: SourceConfig, scratch_db_name: str, expected: dict[str, Any]
                   ) -> dict[str, Any]:
    """Recompute the totals on a loaded scratch database; IntegrityError if they differ."""
    actual = control_totals(source, scratch_db_name)
    verify_totals(expected, actual, where=f"source {source.name!r}: {scratch_db_name}")
    return actual


SOURCE = MySQLSource
