"""MySQL/MariaDB point-in-time recovery: the daily dump as base, the archived binlog
replayed on top of it in a private scratch server, and destructive events found in the
archived binlog.

Base. A ``mysql`` source's dump records where it stands in the binlog (``binlog`` in its
tree entry: file, position, GTID state, read under the dump's global read lock; see
``drkit.sources.mysql``). A restore starts from the newest snapshot of the source whose
every database has such an exact position at or before the target.

Restore. The dumps are restored from that snapshot and loaded into a private server
(``drkit.pitr.mariadb_server``: its own data directory, Unix socket only, no binlog), and
their control totals are checked against the snapshot's. The archived binlog files from
the base position on are decrypted into the scratch folder and replayed with
``mariadb-binlog --start-position=P [--stop-datetime=T | --stop-position=N] FILES | mariadb
--binary-mode``. Targets are exclusive: ``--to-time T`` replays events whose timestamp
(whole seconds, the statement's start) is before T's second; ``--to-position FILE:N`` replays
every event that starts before offset N of FILE; ``--to-gtid G`` replays everything before
the transaction G (drkit finds G's event position in the archived files). The row counts
and control totals of every database are reported.

Incidents. ``mariadb-binlog --base64-output=decode-rows -vv`` decodes the archived files
from the base position on; ``scan_decoded`` reads that text: DROP DATABASE/TABLE and
TRUNCATE statements (with thread id and server id), and per committed transaction the rows
each DELETE/UPDATE touched per table, flagged when the statement has no WHERE (MariaDB
logs the statement with its row events: ``binlog_annotate_row_events``), when it touched
at least ``min_rows`` rows, or at least ``min_share`` of the table's rows (counted from
the base dump's control totals plus the rows inserted and deleted since).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drkit.clock import parse_iso
from drkit.config import Config
from drkit.errors import CheckFailed, InputError
from drkit.pitr.binlog import binlog_tool, parse_name, scan
from drkit.pitr.mariadb_server import PrivateMySQL

log = logging.getLogger(__name__)

#: A share-of-the-table finding needs at least this many rows (deleting 1 of 2 rows is
#: half a table, but not what an insider does).
MIN_SHARE_ROWS = 10


# -- bases ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class BaseDump:
    snapshot: Any  # SnapshotInfo
    database: str
    entry: dict[str, Any]
    totals: dict[str, Any] | None  # the database's control totals

    @property
    def started(self) -> datetime:
        return datetime.fromtimestamp(int(self.entry["mtime_ns"]) / 1e9, UTC)

    @property
    def position(self) -> tuple[int, int]:
        binlog = self.entry["binlog"]
        return parse_name(str(binlog["file"]))[1], int(binlog["position"])

    @property
    def file(self) -> str:
        return str(self.entry["binlog"]["file"])


def base_snapshots(repo: Any, archive: str, recovery: Any) -> list[list[BaseDump]]:
    """Each snapshot of ``archive`` whose every database dump records an exact binlog
    position, oldest first, as its list of dumps."""
    out: list[list[BaseDump]] = []
    index = None
    for snap in repo.snapshots():
        if not any(s.name == archive and s.type == "mysql" for s in snap.manifest.sources):
            continue
        index = index if index is not None else repo.load_index()
        tree = repo.read_tree(snap, recovery, index)
        for src in tree["sources"]:
            if src["name"] != archive or src["type"] != "mysql":
                continue
            totals = (src.get("control_totals") or {}).get("databases", {})
            dumps = [BaseDump(snap, str(e["database"]), e, totals.get(e["database"]))
                     for e in src["entries"] if e.get("database")]
            if dumps and all((d.entry.get("binlog") or {}).get("exact") for d in dumps):
                out.append(dumps)
    return out


# -- the archived files ---------------------------------------------------------------------
def _current_segments(repo: Any, archive: str) -> list[Any]:
    from drkit.repo.logarchive import LogCatalog

    catalog = LogCatalog.from_entries(repo.visible.values())
    seen: dict[str, Any] = {}
    for seg in catalog.of(archive):
        if seg.in_sequence and seg.info.name not in seen:
            current = catalog.current(archive, seg.info.name)
            if current is not None:
                seen[seg.info.name] = current
    return sorted(seen.values(), key=lambda s: s.info.start)


def fetch_files(repo: Any, archive: str, recovery: Any, folder: Path, *,
                from_file: int, to_file: int | None = None,
                before: datetime | None = None) -> list[Path]:
    """Decrypt the archived binlog files numbered ``from_file`` (to ``to_file``) into
    ``folder``, in order; InputError when the archive does not hold a contiguous run
    from ``from_file`` on."""
    from drkit.repo.logarchive import find_gaps, read_segment

    segments = [s for s in _current_segments(repo, archive) if s.info.start[0] >= from_file
                and (to_file is None or s.info.start[0] <= to_file)]
    if before is not None:
        segments = [s for s in segments if s.info.start[0] == from_file
                    or not s.info.first_time or parse_iso(s.info.first_time) < before]
    if not segments or segments[0].info.start[0] != from_file:
        raise InputError(f"{archive}: the archive does not hold binlog file number "
                         f"{from_file} (where the base starts); stream the binlog with "
                         "'drkit binlog stream'")
    gaps = find_gaps(segments)
    if gaps:
        raise InputError(f"{gaps[0].describe()}: recovery cannot cross it")
    paths = []
    for seg in segments:
        path = folder / seg.info.name
        path.write_bytes(read_segment(repo, seg.key, recovery))
        paths.append(path)
    return paths


def gtid_position(files: Iterable[Path], gtid: str) -> tuple[str, int] | None:
    """(file name, offset) of the GTID event of transaction ``gtid`` in ``files``."""
    want = gtid.strip().lower()
    for path in files:
        for event in scan(path.read_bytes()).events:
            if event.gtid is not None and event.gtid.lower() == want:
                return path.name, event.offset
    return None


# -- restore to a point in time -------------------------------------------------------------
@dataclass
class BinlogPitrResult:
    archive: str
    base_snapshot: str
    base_position: dict[str, str]
    target: dict[str, str]
    data_dir: str
    socket: str
    files_replayed: list[str]
    databases: dict[str, Any] = field(default_factory=dict)
    running: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"archive": self.archive, "base_snapshot": self.base_snapshot,
                "base_position": self.base_position, "target": self.target,
                "data_dir": self.data_dir, "socket": self.socket,
                "files_replayed": self.files_replayed, "databases": self.databases,
                "running": self.running}


def _totals(conn: Any, database: str) -> dict[str, Any]:
    from drkit.sources.mysql import TOTALS_ALGORITHM, _table_totals

    cur = conn.cursor()
    return {"algorithm": TOTALS_ALGORITHM, "tables": _table_totals(cur, database)}


def _run_pipe(producer: list[str], consumer: list[str], *, env: dict[str, str],
              stdin_path: Path | None = None, what: str) -> None:
    """``producer | consumer`` (or ``consumer < stdin_path``); CheckFailed naming the
    failing side's last stderr lines."""
    with tempfile.TemporaryFile() as perr, tempfile.TemporaryFile() as cerr:
        if stdin_path is not None:
            with stdin_path.open("rb") as fh:
                rc = subprocess.run(consumer, stdin=fh, stdout=subprocess.DEVNULL,
                                    stderr=cerr, env=env, check=False).returncode
            prc = 0
        else:
            prod = subprocess.Popen(producer, stdout=subprocess.PIPE, stderr=perr, env=env,
                                    stdin=subprocess.DEVNULL)
            rc = subprocess.run(consumer, stdin=prod.stdout, stdout=subprocess.DEVNULL,
                                stderr=cerr, env=env, check=False).returncode
            assert prod.stdout is not None
            prod.stdout.close()
            prc = prod.wait()
        for code, err, name in ((prc, perr, producer[:1]), (rc, cerr, consumer[:1])):
            if code:
                err.seek(0)
                lines = [ln for ln in err.read().decode("utf-8", "replace").splitlines()
                         if ln.strip()]
                tool = Path(name[0]).name if name else "?"
                raise CheckFailed(f"{what}: {tool} failed (exit {code}): "
                                  f"{' / '.join(lines[-3:]) or 'no message'}")


def restore_to_point(config: Config, archive: str, *, target_time: datetime | None,
                     target_position: tuple[str, int] | None, target_gtid: str | None,
                     scratch: Path, recovery: Any, repo: Any, keep_running: bool = False
                     ) -> BinlogPitrResult:
    """Restore ``archive`` to just before the target into a private server under
    ``scratch`` (see the module docstring)."""
    from drkit.repo.restore import restore_snapshot
    from drkit.sources.dbcommon import find_tool, sibling_tool, verify_totals
    from drkit.sources.mysql import CLIENT_TOOLS, DUMP_TOOLS, settings_for

    given = [t for t in (target_time, target_position, target_gtid) if t is not None]
    if len(given) != 1:
        raise InputError("give exactly one of --to-time, --to-position and --to-gtid")
    bases = base_snapshots(repo, archive, recovery)
    if not bases:
        raise InputError(f"{archive}: no snapshot records its binlog position (take a "
                         "snapshot with the binlog on and the global read lock permitted)")
    scratch.mkdir(parents=True, exist_ok=True)
    if any(scratch.iterdir()):
        raise InputError(f"{scratch}: is not empty")
    binlogs = scratch / "binlog"
    binlogs.mkdir()
    target: dict[str, str] = {}
    if target_gtid is not None:
        first = bases[0]
        start_file = min(d.position for d in first)[0]
        files = fetch_files(repo, archive, recovery, binlogs, from_file=start_file)
        found = gtid_position(files, target_gtid)
        if found is None:
            raise InputError(f"{archive}: transaction {target_gtid} is not in the archived "
                             "binlog")
        target_position = found
        target["gtid"] = target_gtid
        for path in binlogs.iterdir():
            path.unlink()
    if target_time is not None:
        usable = [b for b in bases if max(d.started for d in b) < target_time]
        target["time"] = target_time.astimezone(UTC).isoformat().replace("+00:00", "Z")
    else:
        assert target_position is not None
        want = (parse_name(target_position[0])[1], target_position[1])
        usable = [b for b in bases if max(d.position for d in b) <= want]
        target["position"] = f"{target_position[0]}:{target_position[1]}"
    if not usable:
        raise InputError(f"{archive}: no snapshot with a binlog position before the target "
                         f"({len(bases)} usable snapshots)")
    base = usable[-1]
    start_file = min(d.position for d in base)[0]
    files = fetch_files(repo, archive, recovery, binlogs, from_file=start_file,
                        to_file=parse_name(target_position[0])[1] if target_position
                        else None, before=target_time)
    if target_position is not None and files[-1].name != target_position[0]:
        raise InputError(f"{archive}: the archive does not hold {target_position[0]}")

    source = config.source(archive)
    settings = settings_for(source)
    dump_tool = find_tool(settings.dump_tool, DUMP_TOOLS, f"source {archive!r}")
    client = sibling_tool(dump_tool, CLIENT_TOOLS, f"source {archive!r}")
    reader = binlog_tool(config, archive)
    dumps = scratch / "dump"
    restore_snapshot(repo, base[0].snapshot, dumps, recovery,
                     paths=[f"{archive}/{d.database}.sql" for d in base])
    server = PrivateMySQL(scratch / "server")
    server.init()
    result = BinlogPitrResult(archive, base[0].snapshot.id,
                              {d.database: f"{d.file}:{d.entry['binlog']['position']}"
                               for d in base}, target, str(server.data), str(server.socket),
                              [p.name for p in files])
    env = {**{k: v for k, v in os.environ.items() if k != "MYSQL_PWD"}, "TZ": "UTC"}
    server.start()
    try:
        conn = server.connect()
        for dump in base:
            conn.cursor().execute(f"CREATE DATABASE `{dump.database.replace('`', '``')}`")
            _run_pipe([], [client, *server.client_args(), "--batch", "--binary-mode",
                           "--default-character-set=utf8mb4", dump.database], env=env,
                      stdin_path=dumps / archive / f"{dump.database}.sql",
                      what=f"loading the dump of {dump.database}")
            if dump.totals is not None:
                verify_totals(dump.totals, _totals(conn, dump.database),
                              where=f"{archive}: base dump of {dump.database} in the scratch "
                                    "server")
        # One replay per database when they start at different positions (each dump holds
        # its own lock), filtered to that database; one unfiltered replay otherwise.
        groups: dict[tuple[int, int], list[BaseDump]] = {}
        for dump in base:
            groups.setdefault(dump.position, []).append(dump)
        for position, members in sorted(groups.items()):
            args = [reader, "--no-defaults", f"--start-position={position[1]}"]
            if len(groups) > 1:
                args += [f"--database={d.database}" for d in members]
            if target_time is not None:
                args.append("--stop-datetime="
                            + target_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"))
            elif target_position is not None:
                args.append(f"--stop-position={target_position[1]}")
            replay = [p for p in files if parse_name(p.name)[1] >= position[0]]
            _run_pipe([*args, *map(str, replay)],
                      [client, *server.client_args(), "--batch", "--binary-mode"], env=env,
                      what=f"replaying the binlog from {members[0].file}:{position[1]}")
        for dump in base:
            totals = _totals(conn, dump.database)
            result.databases[dump.database] = {
                "tables": totals["tables"],
                "rows": sum(t["rows"] for t in totals["tables"].values()),
                "base_totals_checked": dump.totals is not None}
        conn.close()
        result.running = keep_running
    finally:
        if not keep_running:
            server.stop()
    return result


# -- finding destructive events -------------------------------------------------------------
_AT = re.compile(r"^# at (\d+)\s*$")
_HEADER = re.compile(r"^#(\d{6})\s+(\d{1,2}):(\d\d):(\d\d) server id (\d+)\s+end_log_pos "
                     r"(\d+)(?:\s+CRC32 0x[0-9a-fA-F]+)?\s+(.*)$")
_GTID = re.compile(r"^(?:GTID|Gtid)\s+(\d+-\d+-\d+)")
_GTID_NEXT = re.compile(r"GTID_NEXT\s*=\s*'([^']+)'")
_THREAD = re.compile(r"thread_id=(\d+)")
_ROW = re.compile(r"^### (INSERT INTO|DELETE FROM|UPDATE) (`(?:[^`]|``)+`\.`(?:[^`]|``)+`)")
_USE = re.compile(r"^use\s+`((?:[^`]|``)+)`", re.I)
_DROP_DB = re.compile(r"^DROP\s+(?:DATABASE|SCHEMA)\s+(?:IF\s+EXISTS\s+)?(.+)$", re.I | re.S)
_DROP_TABLE = re.compile(r"^DROP\s+(TEMPORARY\s+)?TABLES?\s+(?:IF\s+EXISTS\s+)?(.+)$",
                         re.I | re.S)
_TRUNCATE = re.compile(r"^TRUNCATE\s+(?:TABLE\s+)?(.+)$", re.I | re.S)
_DML = re.compile(r"^(DELETE|UPDATE)\b", re.I)
_WHERE = re.compile(r"\bWHERE\b", re.I)
_COMMENT = re.compile(r"/\*.*?\*/", re.S)


def _idents(text: str, default_db: str | None) -> list[str]:
    """``db.table`` names from a DROP/TRUNCATE table list."""
    text = _COMMENT.sub(" ", text)
    text = re.sub(r"\s+(RESTRICT|CASCADE|NOWAIT|WAIT\s+\d+)\s*$", "", text.strip(), flags=re.I)
    out = []
    for part in re.findall(r"(?:`(?:[^`]|``)+`|[^,`\s.]+)(?:\.(?:`(?:[^`]|``)+`|[^,`\s.]+))?",
                           text):
        names = [n.strip("`").replace("``", "`") for n in
                 re.findall(r"`(?:[^`]|``)+`|[^.`]+", part)]
        if len(names) == 1:
            names = [default_db or "?", names[0]]
        out.append(".".join(names[:2]))
    return out


@dataclass
class BinlogIncident:
    time: str
    kind: str  # DROP DATABASE, DROP, TRUNCATE, DELETE, UPDATE
    relation: str
    file: str
    position: int  # where the transaction starts (its GTID event)
    gtid: str | None
    server_id: int
    thread_id: int | None
    statement: str | None
    rows: int | None = None
    share: float | None = None
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"time": self.time, "kind": self.kind, "relation": self.relation,
                "position": f"{self.file}:{self.position}", "gtid": self.gtid,
                "server_id": self.server_id, "thread_id": self.thread_id, "user": None,
                "host": None, "statement": self.statement, "rows": self.rows,
                "share": None if self.share is None else round(self.share, 4),
                "reasons": self.reasons}


@dataclass
class _Txn:
    file: str
    position: int
    gtid: str | None
    time: str
    server_id: int
    changes: dict[str, dict[str, int]] = field(default_factory=dict)
    statements: dict[str, str] = field(default_factory=dict)


class DecodedScanner:
    """Reads ``mariadb-binlog --base64-output=decode-rows -vv`` output (TZ=UTC) of the
    files ``names``, in order (see the module docstring)."""

    def __init__(self, names: list[str], table_rows: dict[str, int], *, min_rows: int,
                 min_share: float) -> None:
        self.names = names
        self.table_rows = dict(table_rows)
        self.min_rows = min_rows
        self.min_share = min_share
        self.found: list[BinlogIncident] = []
        self.file_index = 0
        self.seen_event = False
        self.at = 0
        self.db: str | None = None
        self.txn: _Txn | None = None
        self.header: tuple[str, int, int, str] | None = None  # time, server id, at, desc
        self.body: list[str] = []
        self.annotate: list[str] = []
        self.statement: str | None = None

    @property
    def file(self) -> str:
        return self.names[self.file_index] if self.file_index < len(self.names) else "?"

    def feed(self, lines: Iterable[str]) -> list[BinlogIncident]:
        for raw in lines:
            line = raw.rstrip("\n")
            m = _AT.match(line)
            if m is not None:
                self._end_event()
                self.at = int(m.group(1))
                continue
            h = _HEADER.match(line)
            if h is not None:
                self._end_event()
                d = h.group(1)
                when = (f"20{d[0:2]}-{d[2:4]}-{d[4:6]}T{int(h.group(2)):02d}:{h.group(3)}:"
                        f"{h.group(4)}Z")
                self.header = (when, int(h.group(5)), self.at, h.group(7))
                self._start_event()
                continue
            if line.startswith("#Q> "):
                self.annotate.append(line[4:])
            elif self.header is not None and self.header[3].startswith("Rows_query") \
                    and line.startswith("# "):
                self.annotate.append(line[2:])
            elif line.startswith("### "):
                self._row(line)
            elif not line.startswith("#"):
                g = _GTID_NEXT.search(line)
                if g is not None and self.txn is not None and self.txn.gtid is None:
                    self.txn.gtid = g.group(1)
                self.body.append(line)
        self._end_event()
        return self.found

    def _start_event(self) -> None:
        assert self.header is not None
        when, server_id, at, desc = self.header
        if desc.startswith(("Start:", "Format_desc")):
            # Each file begins with one; with --start-position the first file's may be
            # left out, so only a Start event after other events moves to the next file.
            if self.seen_event:
                self.file_index += 1
            self.txn = None
            self.seen_event = True
            return
        self.seen_event = True
        if desc.startswith(("GTID", "Gtid", "Anonymous_GTID")):
            g = _GTID.match(desc)
            self.txn = _Txn(self.file, at, g.group(1) if g else None, when, server_id)
        elif desc.startswith(("Annotate_rows", "Rows_query")):
            self.annotate = []
        elif desc.startswith("Xid"):
            self._commit()

    def _row(self, line: str) -> None:
        m = _ROW.match(line)
        if m is None or self.txn is None:
            return
        kind = {"INSERT INTO": "INSERT", "DELETE FROM": "DELETE", "UPDATE": "UPDATE"}[
            m.group(1)]
        names = [n.strip("`").replace("``", "`") for n in
                 re.findall(r"`(?:[^`]|``)+`", m.group(2))]
        table = ".".join(names)
        counts = self.txn.changes.setdefault(table, {})
        counts[kind] = counts.get(kind, 0) + 1
        if self.annotate and kind != "INSERT":
            self.txn.statements.setdefault(f"{table}/{kind}", " ".join(self.annotate).strip())

    def _end_event(self) -> None:
        """A Query event's text is complete when the next event begins."""
        header, body = self.header, self.body
        self.body = []
        if header is None or not header[3].startswith("Query"):
            return
        self.header = None
        when, server_id, at, desc = header
        tm = _THREAD.search(desc)
        thread = int(tm.group(1)) if tm else None
        for chunk in "\n".join(body).split("/*!*/;"):
            text = chunk.strip()
            if not text or text.startswith(("SET ", "/*", "DELIMITER")):
                continue
            use = _USE.match(text)
            if use is not None:
                self.db = use.group(1).replace("``", "`")
                continue
            upper = text.upper()
            if upper in ("BEGIN", "START TRANSACTION", "XA START"):
                if self.txn is None:
                    self.txn = _Txn(self.file, at, None, when, server_id)
                continue
            if upper in ("COMMIT", "ROLLBACK"):
                self._commit() if upper == "COMMIT" else setattr(self, "txn", None)
                continue
            self._statement(text, when, server_id, at, thread)

    def _incident(self, kind: str, relation: str, when: str, server_id: int, at: int,
                  thread: int | None, statement: str | None, **extra: Any) -> None:
        txn = self.txn
        self.found.append(BinlogIncident(
            time=when, kind=kind, relation=relation, file=txn.file if txn else self.file,
            position=txn.position if txn else at, gtid=txn.gtid if txn else None,
            server_id=server_id, thread_id=thread, statement=statement, **extra))

    def _statement(self, text: str, when: str, server_id: int, at: int,
                   thread: int | None) -> None:
        m = _DROP_DB.match(text)
        if m is not None:
            name = _idents(m.group(1), None)
            self._incident("DROP DATABASE", name[0].split(".")[-1] if name else "?", when,
                           server_id, at, thread, text)
            prefix = (name[0].split(".")[-1] + ".") if name else "\0"
            self.table_rows = {k: v for k, v in self.table_rows.items()
                               if not k.startswith(prefix)}
        elif (m := _DROP_TABLE.match(text)) is not None:
            if m.group(1):  # a temporary table
                return
            for rel in _idents(m.group(2), self.db):
                self._incident("DROP", rel, when, server_id, at, thread, text)
                self.table_rows.pop(rel, None)
        elif (m := _TRUNCATE.match(text)) is not None:
            for rel in _idents(m.group(1), self.db):
                self._incident("TRUNCATE", rel, when, server_id, at, thread, text,
                               rows=self.table_rows.get(rel))
                self.table_rows[rel] = 0
        elif (m := _DML.match(text)) is not None and not _WHERE.search(text):
            # Statement-based logging: the statement itself, rows unknown.
            self._incident(m.group(1).upper(), self.db or "?", when, server_id, at, thread,
                           text, reasons=["no WHERE"])
        if self.txn is not None and not self.txn.changes:
            self.txn = None  # DDL commits on its own

    def _commit(self) -> None:
        txn, self.txn = self.txn, None
        if txn is None:
            return
        for table, counts in txn.changes.items():
            before = self.table_rows.get(table)
            for kind in ("DELETE", "UPDATE"):
                n = counts.get(kind, 0)
                if not n:
                    continue
                statement = txn.statements.get(f"{table}/{kind}")
                share = n / before if before else None
                reasons = []
                if statement and _DML.match(statement) and not _WHERE.search(statement):
                    reasons.append("no WHERE")
                if n >= self.min_rows:
                    reasons.append(f"{n} rows >= {self.min_rows}")
                if share is not None and share >= self.min_share and n >= MIN_SHARE_ROWS:
                    reasons.append(f"{share:.0%} of the table")
                if reasons:
                    self.found.append(BinlogIncident(
                        time=txn.time, kind=kind, relation=table, file=txn.file,
                        position=txn.position, gtid=txn.gtid, server_id=txn.server_id,
                        thread_id=None, statement=statement, rows=n, share=share,
                        reasons=reasons))
            if before is not None:
                self.table_rows[table] = max(0, before + counts.get("INSERT", 0)
                                             - counts.get("DELETE", 0))
            elif counts.get("INSERT"):
                self.table_rows.setdefault(table, 0)


def find_incidents(config: Config, archive: str, *, repo: Any, recovery: Any,
                   since: datetime | None, min_rows: int, min_share: float
                   ) -> dict[str, Any]:
    """Decode the archived binlog from the newest base before ``since`` (else the oldest
    base; without any base, from the first archived file) and list destructive events."""
    bases = base_snapshots(repo, archive, recovery)
    chosen = [b for b in bases if since is None or max(d.started for d in b) <= since]
    base = chosen[-1] if chosen else (bases[0] if bases else None)
    table_rows: dict[str, int] = {}
    if base is not None:
        start = min(d.position for d in base)
        for dump in base:
            for table, info in ((dump.totals or {}).get("tables") or {}).items():
                table_rows[f"{dump.database}.{table}"] = int(info["rows"])
    else:
        segments = _current_segments(repo, archive)
        if not segments:
            raise InputError(f"{archive}: no archived binlog")
        start = (segments[0].info.start[0], 4)
    reader = binlog_tool(config, archive)
    with tempfile.TemporaryDirectory(prefix="drkit-binlog-") as tmp:
        files = fetch_files(repo, archive, recovery, Path(tmp), from_file=start[0])
        env = {**os.environ, "TZ": "UTC"}
        proc = subprocess.Popen([reader, "--no-defaults", "--base64-output=decode-rows", "-vv",
                                 f"--start-position={max(start[1], 4)}", *map(str, files)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env, errors="replace")
        assert proc.stdout is not None
        scanner = DecodedScanner([p.name for p in files], table_rows, min_rows=min_rows,
                                 min_share=min_share)
        # With --start-position the first file's Start event is still printed first.
        incidents = scanner.feed(proc.stdout)
        _out, err = proc.communicate()
        if proc.returncode:
            raise CheckFailed(f"{archive}: {Path(reader).name} could not decode the archived "
                              f"binlog: {(err.strip().splitlines() or ['no message'])[-1]}")
    if since is not None:
        incidents = [i for i in incidents if parse_iso(i.time) >= since]
    proposal = None
    if incidents:
        first = incidents[0]
        position = f"{first.file}:{first.position}"
        proposal = {"to_position": position, "to_gtid": first.gtid, "to_time": first.time,
                    "command": f"drkit restore --database {archive} --to-position {position}",
                    "why": f"just before transaction {first.gtid or position} "
                           f"({first.kind} {first.relation})"}
    return {"archive": archive, "kind": "mysql-binlog",
            "base_snapshot": base[0].snapshot.id if base else None,
            "from_position": f"{files[0].name}:{max(start[1], 4)}",
            "files_read": len(files), "incidents": [i.to_dict() for i in incidents],
            "proposal": proposal,
            "note": "binlogs record the thread id and server id of a statement, not the "
                    "user or host: map the thread id with the server's general or audit log"}
