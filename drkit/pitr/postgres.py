"""PostgreSQL point-in-time recovery: base backups, restore to a time or LSN into a
private scratch server, and destructive events found in the archived WAL.

Base backup. ``pg_basebackup -D - -Ft -X fetch`` streams one tar (the data directory plus
the WAL needed to make it consistent) through the chunker into an ordinary snapshot whose
source has type ``postgres-base``; the tree entry records the WAL start and end LSN and
timeline (from ``pg_basebackup -v``) and, for ``incident find``, a map of every table's
relation file (``relfilenode``) to its name, read from the server right after the backup.

Restore. The newest base backup taken before the target is restored into a scratch data
directory; ``restore_command`` is ``drkit wal fetch``, the recovery target is the time
(exclusive: commits at or after it are not replayed) or LSN given, and
``recovery_target_action = promote``. A private server (Unix socket in the scratch
folder, no TCP, archiving off) replays the log; drkit waits for the promotion, reads row
counts and control totals of each configured database, and stops it (or leaves it
running).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drkit.clock import parse_iso, utc_iso
from drkit.config import Config, SourceConfig
from drkit.errors import CheckFailed, InputError
from drkit.pitr.server import ScratchServer, bin_dir
from drkit.pitr.wal import format_lsn, parse_lsn, segment_name
from drkit.progress import ProgressTask
from drkit.sources.base import ChunkSink, Source, SourceResult

log = logging.getLogger(__name__)

BASE_TYPE = "postgres-base"
BASE_FILE = "base.tar"
_START = re.compile(r"write-ahead log start point: ([0-9A-F]+/[0-9A-F]+) on timeline (\d+)")
_END = re.compile(r"write-ahead log end point: ([0-9A-F]+/[0-9A-F]+)")
_RELMAP_SQL = """
SELECT (SELECT oid FROM pg_database WHERE datname = current_database()),
       pg_relation_filenode(c.oid), n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm') AND pg_relation_filenode(c.oid) IS NOT NULL
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%'
"""


# -- base backups ---------------------------------------------------------------------------
class BaseBackupSource(Source):
    """``pg_basebackup`` of a postgres source's server as one streamed tar."""

    type = BASE_TYPE

    def __init__(self, config: SourceConfig, cache_dir: Path, repository_id: str) -> None:
        super().__init__(config, cache_dir, repository_id)
        from drkit.sources.postgres import settings_for

        self.settings = settings_for(config)

    def check(self) -> None:
        self._tool()

    def _tool(self) -> str:
        explicit = self.config.options.get("pg_bin")
        if explicit:
            path = Path(str(explicit)) / "pg_basebackup"
            if path.exists():
                return str(path)
        found = shutil.which("pg_basebackup") or next(
            (str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_basebackup"),
                                    reverse=True)), None)
        if found is None:
            raise InputError(f"source {self.name!r}: pg_basebackup not found (install the "
                             "PostgreSQL client programs or set pg_bin)")
        return found

    def snapshot(self, sink: ChunkSink, pool: Executor, task: ProgressTask) -> SourceResult:
        from drkit.sources.dbcommon import private_dir
        from drkit.sources.postgres import _tool_env

        s = self.settings
        started = datetime.now().astimezone()
        with private_dir() as folder, tempfile.TemporaryFile() as err:
            env = _tool_env(s, folder)
            proc = subprocess.Popen(
                [self._tool(), "-h", s.host, "-p", str(s.port), "-U", s.user, "-D", "-",
                 "-Ft", "-X", "fetch", "-c", "fast", "-v", "--no-password"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=env)
            try:
                assert proc.stdout is not None
                stored = sink.store_stream(proc.stdout)  # type: ignore[arg-type]
                rc = proc.wait()
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            err.seek(0)
            text = err.read().decode("utf-8", "replace")
        if rc != 0:
            lines = [ln for ln in text.splitlines() if ln.strip()]
            raise InputError(f"source {self.name!r}: pg_basebackup failed (exit {rc}): "
                             f"{' / '.join(lines[-3:]) or 'no message'}")
        start, end = _START.search(text), _END.search(text)
        if start is None or end is None:
            raise InputError(f"source {self.name!r}: pg_basebackup did not report its WAL "
                             "start and end points")
        entry = {"path": BASE_FILE, "type": "file", "mode": 0o600,
                 "mtime_ns": int(started.timestamp() * 1e9), "size": stored.size,
                 "sha256": stored.sha256, "chunks": [c.hex() for c in stored.chunks],
                 "format": "pg_basebackup-tar", "wal_start": start.group(1),
                 "timeline": int(start.group(2)), "wal_end": end.group(1),
                 "started": utc_iso(started), "relations": self._relations()}
        result = SourceResult(self.name, self.type,
                              f"postgres://{s.user}@{s.host}:{s.port}", files=1,
                              bytes_total=stored.size, bytes_read=stored.size)
        result.entries.append(entry)
        return result

    def _relations(self) -> dict[str, str]:
        """``"<database oid>/<relfilenode>" -> "db.schema.table"`` for every table."""
        from drkit.sources.postgres import connect

        out: dict[str, str] = {}
        for database in self.settings.databases:
            conn = connect(self.settings, database)
            try:
                for db_oid, node, schema, table in conn.execute(_RELMAP_SQL).fetchall():
                    out[f"{db_oid}/{node}"] = f"{database}.{schema}.{table}"
            finally:
                conn.rollback()
                conn.close()
        return out


def take_base_backup(config: Config, archive: str, *, clock: Any, progress: Any) -> Any:
    from drkit.repo.snapshot import take_snapshot

    source = config.source(archive)
    return take_snapshot(config, clock=clock, progress=progress, make_sources=lambda rid: [
        BaseBackupSource(source, config.cache_dir, rid)])


@dataclass(frozen=True)
class BaseBackup:
    snapshot: Any  # SnapshotInfo
    entry: dict[str, Any]

    @property
    def started(self) -> datetime:
        return parse_iso(str(self.entry["started"]))


def base_backups(repo: Any, archive: str, recovery: Any) -> list[BaseBackup]:
    """Every base backup of ``archive``, oldest first (reads each one's encrypted tree)."""
    out: list[BaseBackup] = []
    index = None
    for snap in repo.snapshots():
        if not any(s.name == archive and s.type == BASE_TYPE for s in snap.manifest.sources):
            continue
        index = index if index is not None else repo.load_index()
        tree = repo.read_tree(snap, recovery, index)
        for src in tree["sources"]:
            if src["name"] == archive and src["type"] == BASE_TYPE:
                out.extend(BaseBackup(snap, e) for e in src["entries"]
                           if e.get("path") == BASE_FILE)
    return out


# hot_standby is off: a hot standby refuses to start with a smaller max_connections (and
# other limits) than the source had; connections are refused until the promotion instead,
# and drkit's connect waits for it.

# -- restore to a point in time ---------------------------------------------------------
@dataclass
class PitrResult:
    archive: str
    base_backup: str
    target: dict[str, str]
    data_dir: str
    port: int
    socket_dir: str
    stopped_at: str | None
    databases: dict[str, Any] = field(default_factory=dict)
    running: bool = False
    segments_fetched: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"archive": self.archive, "base_backup": self.base_backup,
                "target": self.target, "data_dir": self.data_dir, "port": self.port,
                "socket_dir": self.socket_dir, "recovery_stopped": self.stopped_at,
                "databases": self.databases, "running": self.running,
                "segments_fetched": self.segments_fetched}


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def drkit_command(config: Config) -> str:
    """How the scratch server calls this drkit (``restore_command``)."""
    import sys

    return (f"{_shell(sys.executable)} -m drkit --config {_shell(str(config.path.resolve()))}")


def _shell(text: str) -> str:
    import shlex

    return shlex.quote(text)


def restore_to_point(config: Config, archive: str, *, target_time: datetime | None,
                     target_lsn: int | None, scratch: Path, recovery: Any, repo: Any,
                     keep_running: bool = False, timeout: float = 600.0,
                     region: str | None = None) -> PitrResult:
    """Restore ``archive`` as of ``target_time`` (exclusive) or ``target_lsn`` into a
    scratch server under ``scratch`` (see the module docstring). ``region``: the region
    ``repo`` reads (the scratch server's ``restore_command`` then reads it too, never the
    primary)."""
    from drkit.repo.restore import restore_snapshot
    from drkit.sources.postgres import _table_totals, settings_for

    if (target_time is None) == (target_lsn is None):
        raise InputError("give exactly one of --to-time and --to-lsn")
    backups = base_backups(repo, archive, recovery)
    if target_time is not None:
        usable = [b for b in backups if b.started < target_time]
    else:
        assert target_lsn is not None
        usable = [b for b in backups if parse_lsn(str(b.entry["wal_end"])) <= target_lsn]
    if not usable:
        raise InputError(f"{archive}: no base backup taken before the target "
                         f"({len(backups)} base backups; take one with 'drkit wal basebackup')")
    base = usable[-1]
    scratch.mkdir(parents=True, exist_ok=True)
    if any(scratch.iterdir()):
        raise InputError(f"{scratch}: is not empty")
    unpack = scratch / "base"
    restore_snapshot(repo, base.snapshot, unpack, recovery, paths=[f"{archive}/{BASE_FILE}"])
    data = scratch / "data"
    data.mkdir(mode=0o700)
    with tarfile.open(unpack / archive / BASE_FILE) as tar:
        # Every member passes tarfile's own "tar" filter first (no absolute paths, no
        # escapes through links): the backup is our own, read back authenticated.
        tar.extractall(data, filter=_own_files)  # noqa: S202
    shutil.rmtree(unpack)
    data.chmod(0o700)
    version = (data / "PG_VERSION").read_text().strip()
    spool = scratch / "wal"
    spool.mkdir()
    fetched = _prefetch(repo, archive, base, spool, recovery, target_time)
    target: dict[str, str] = {}
    where = f" --region {_shell(region)}" if region else ""
    settings = {"restore_command": f"{drkit_command(config)} wal fetch --database "
                                   f"{_shell(archive)}{where} --spool {_shell(str(spool))} "
                                   "%f %p",
                "recovery_target_action": "promote", "recovery_target_inclusive": "off",
                "archive_mode": "off", "hot_standby": "off", "fsync": "off",
                "logging_collector": "off",
                "log_destination": "stderr", "hba_file": str(scratch / "pg_hba.conf"),
                "ident_file": str(scratch / "pg_ident.conf")}
    if target_time is not None:
        settings["recovery_target_time"] = target_time.astimezone(UTC).strftime(
            "%Y-%m-%d %H:%M:%S.%f+00")
        target["time"] = target_time.astimezone(UTC).isoformat().replace("+00:00", "Z")
    else:
        assert target_lsn is not None
        settings["recovery_target_lsn"] = format_lsn(target_lsn)
        target["lsn"] = format_lsn(target_lsn)
    (scratch / "pg_hba.conf").write_text("local all all trust\nlocal replication all trust\n")
    (scratch / "pg_ident.conf").write_text("")
    (data / "postgresql.conf").write_text("# written by drkit restore\n")
    (data / "postgresql.auto.conf").write_text(
        "".join(f"{k} = {_quote(v)}\n" for k, v in settings.items()))
    (data / "recovery.signal").write_text("")
    for stale in ("postmaster.pid", "standby.signal"):
        (data / stale).unlink(missing_ok=True)
    pg = settings_for(config.source(archive))
    server = ScratchServer(data, bin_dir(version, config.source(archive).options.get("pg_bin")),
                           socket_dir=scratch)
    result = PitrResult(archive, base.snapshot.id, target, str(data), server.port,
                        str(scratch), None, segments_fetched=fetched)
    server.start()
    try:
        conn = server.connect("postgres", pg.user, timeout=timeout)
        _wait_promoted(conn, server, timeout)
        conn.close()
        result.stopped_at = _stop_line(server)
        for database in pg.databases:
            db = server.connect(database, pg.user)
            try:
                totals = _table_totals(db)
            finally:
                db.close()
            result.databases[database] = {"tables": totals,
                                          "rows": sum(t["rows"] for t in totals.values())}
        result.running = keep_running
    finally:
        if not keep_running:
            server.stop()
    return result


def _own_files(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """Extract as ours: the server runs as this user (PostgreSQL insists on owning its
    data directory), not as the uid the source server's files had."""
    checked = tarfile.tar_filter(member, dest)
    return checked.replace(uid=os.getuid(), gid=os.getgid(), uname="", gname="",
                           deep=False)


def _prefetch(repo: Any, archive: str, base: BaseBackup, spool: Path, recovery: Any,
              target_time: datetime | None) -> int:
    """Decrypt the segments recovery will ask for into ``spool`` once (the recovery key is
    already unlocked here); ``wal fetch`` reads them from there."""
    from drkit.pitr.wal import fetch
    from drkit.repo.logarchive import LogCatalog

    catalog = LogCatalog.from_entries(repo.visible.values())
    start = parse_lsn(str(base.entry["wal_start"]))
    count = 0
    for seg in catalog.of(archive):
        info = seg.info
        if not info.start:
            if info.name.endswith(".history") and fetch(repo, archive, info.name,
                                                        spool / info.name, recovery):
                count += 1
            continue
        if info.end[0] <= start:
            continue
        if target_time is not None and info.first_time and \
                parse_iso(info.first_time) > target_time:
            continue
        current = catalog.current(archive, info.name)
        if current is None or current.key != seg.key:
            continue
        if fetch(repo, archive, info.name, spool / info.name, recovery):
            count += 1
    return count


def _wait_promoted(conn: Any, server: ScratchServer, timeout: float) -> None:
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            (in_recovery,) = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        except Exception as exc:  # the server may stop on a recovery error
            raise CheckFailed(f"scratch server failed during recovery: {server.log_tail()}"
                              ) from exc
        if not in_recovery:
            return
        if time.monotonic() > deadline:
            raise CheckFailed(f"recovery not finished after {timeout:g} s: "
                              f"{server.log_tail()}")
        time.sleep(0.2)


def _stop_line(server: ScratchServer) -> str | None:
    try:
        text = server.log_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if "recovery stopping" in line or "consistent recovery state reached" in line \
                and "stopping" not in text:
            return line.split("LOG:", 1)[-1].strip()
    return None


# -- finding destructive events ---------------------------------------------------------
_RECORD = re.compile(r"^rmgr: (\w+)\s+len .*?tx:\s+(\d+), lsn: ([0-9A-F]+/[0-9A-F]+), "
                     r"prev [0-9A-F]+/[0-9A-F]+, desc: (\w+)(.*)$")
_REL = re.compile(r"rel \d+/(\d+)/(\d+)")
_RELS = re.compile(r"rels: ((?:\S+/\d+/\d+ ?)+)")
_XACT_TIME = re.compile(r"^ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC")


@dataclass
class Incident:
    time: str
    xid: int
    lsn: str
    kind: str  # DROP, TRUNCATE, DELETE, UPDATE
    relation: str
    rows: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"time": self.time, "xid": self.xid, "lsn": self.lsn, "kind": self.kind,
                "relation": self.relation, "rows": self.rows, "user": None, "host": None,
                "statement": None}


@dataclass
class _Txn:
    deletes: dict[tuple[str, str], int] = field(default_factory=dict)
    updates: dict[tuple[str, str], int] = field(default_factory=dict)
    created: set[tuple[str, str]] = field(default_factory=set)
    written: dict[tuple[str, str], int] = field(default_factory=dict)


def scan_waldump(lines: Any, relations: dict[str, str], *, min_rows: int
                 ) -> list[Incident]:
    """Destructive transactions in ``pg_waldump`` output (committed ones only)."""
    txns: dict[int, _Txn] = {}
    found: list[Incident] = []

    def name(db: str, node: str) -> str:
        return relations.get(f"{db}/{node}") or f"relation file {db}/{node} (not in the " \
                                                 "base backup's catalogue)"

    for line in lines:
        m = _RECORD.match(line)
        if m is None:
            continue
        rmgr, xid, lsn, desc, rest = m.group(1), int(m.group(2)), m.group(3), m.group(4), \
            m.group(5)
        if rmgr == "Transaction" and desc in ("COMMIT", "ABORT"):
            txn = txns.pop(xid, _Txn())
            if desc == "ABORT":
                continue
            tm = _XACT_TIME.match(rest)
            when = tm.group(1).replace(" ", "T") + "Z" if tm else ""
            rels = _RELS.search(rest)
            dropped = [tuple(r.split("/")[-2:]) for r in rels.group(1).split()] \
                if rels else []
            for db, node in dropped:
                if f"{db}/{node}" not in relations and (db, node) not in txn.written:
                    continue  # an index or TOAST file of a table reported here, or a temp
                rewritten = any(c[0] == db and txn.written.get(c, 0) > 0
                                for c in txn.created)
                truncated = bool(txn.created) and not rewritten
                found.append(Incident(when, xid, lsn, "TRUNCATE" if truncated else "DROP",
                                      name(db, node)))
            for kind, counts in (("DELETE", txn.deletes), ("UPDATE", txn.updates)):
                for (db, node), n in counts.items():
                    if n >= min_rows:
                        found.append(Incident(when, xid, lsn, kind, name(db, node), n))
            continue
        if xid == 0:
            continue
        txn = txns.setdefault(xid, _Txn())
        rel = _REL.search(rest)
        key = (rel.group(1), rel.group(2)) if rel else None
        if rmgr == "Storage" and desc == "CREATE":
            parts = rest.strip().split("/")
            if len(parts) >= 3:
                txn.created.add((parts[-2], parts[-1].split()[0]))
        elif rmgr == "Heap" and key is not None:
            if desc == "DELETE":
                txn.deletes[key] = txn.deletes.get(key, 0) + 1
            elif desc in ("UPDATE", "HOT_UPDATE"):
                txn.updates[key] = txn.updates.get(key, 0) + 1
            txn.written[key] = txn.written.get(key, 0) + 1
        elif key is not None:
            txn.written[key] = txn.written.get(key, 0) + 1
    return found


def find_incidents(config: Config, archive: str, *, repo: Any, recovery: Any,
                   since: datetime | None, min_rows: int) -> dict[str, Any]:
    """Read the archived WAL since the newest base backup before ``since`` (else the
    first) with pg_waldump; list destructive events and propose a recovery target."""
    backups = base_backups(repo, archive, recovery)
    if not backups:
        raise InputError(f"{archive}: no base backup (its catalogue names the tables)")
    chosen = [b for b in backups if since is None or b.started <= since]
    base = chosen[-1] if chosen else backups[0]
    relations: dict[str, str] = dict(base.entry.get("relations") or {})
    for b in backups:  # names from later backups too (tables created since)
        relations.update(b.entry.get("relations") or {})
    start = parse_lsn(str(base.entry["wal_start"]))
    timeline = int(base.entry["timeline"])
    version = None
    with tempfile.TemporaryDirectory(prefix="drkit-wal-") as tmp:
        spool = Path(tmp)
        count = _prefetch(repo, archive, base, spool, recovery, None)
        segments = sorted(p.name for p in spool.iterdir() if not p.name.endswith(".history"))
        if not segments:
            raise InputError(f"{archive}: no archived WAL after the base backup")
        segsize = (spool / segments[0]).stat().st_size
        start_name = segment_name(timeline, start, segsize)
        waldump = bin_dir(version, config.source(archive).options.get("pg_bin")) / "pg_waldump"
        env = {**os.environ, "TZ": "UTC", "PGTZ": "UTC"}
        proc = subprocess.Popen([str(waldump), "--path", str(spool), "--timeline",
                                 str(timeline), "--start", format_lsn(start)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)
        assert proc.stdout is not None
        incidents = scan_waldump(proc.stdout, relations, min_rows=min_rows)
        _out, err = proc.communicate()
    if since is not None:
        incidents = [i for i in incidents if i.time and parse_iso(i.time) >= since]
    incidents.sort(key=lambda i: parse_lsn(i.lsn))
    proposal = None
    if incidents:
        first = incidents[0]
        proposal = {"to_time": first.time, "to_lsn": first.lsn,
                    "command": f"drkit restore --database {archive} --to-lsn {first.lsn}",
                    "why": f"just before the commit of transaction {first.xid} "
                           f"({first.kind} {first.relation})"}
    return {"archive": archive, "base_backup": base.snapshot.id, "from_segment": start_name,
            "segments_read": count, "incidents": [i.to_dict() for i in incidents],
            "proposal": proposal, "waldump_end": (err.strip().splitlines() or [""])[-1],
            "note": "PostgreSQL's WAL holds no user, host or SQL text; see the server's "
                    "log (log_statement = 'ddl') for who ran it"}


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2)
