"""MySQL/MariaDB binlogs in the log archive: file names to positions, the events inside a
file (whole events only, commit times, GTIDs), and ``drkit binlog stream``.

Positions are ``[file number, offset]``: ``mysql-bin.000042`` starts at ``[42, 0]``; a
closed file ends at ``[43, 0]``, an in-progress one (archived as a partial segment) at
``[42, end of its last whole event]``. The lineage is the binlog base name
(``mysql-bin``).

Streaming. ``mariadb-binlog``/``mysqlbinlog --read-from-remote-server --raw --stop-never``
writes the server's binlog files, byte for byte, into a private spool folder under the
cache. drkit watches that folder: a file is closed when a later one has appeared or its
last event is a Rotate or Stop event; closed files are archived as complete segments and
removed from the spool, the newest one is archived as a partial segment whenever it has
grown by whole events and ``partial_every`` seconds have passed. A restart resumes from
the repository (never from the spool, which is cleared): after the newest complete file,
or from the start of the newest partial one, so nothing is skipped and nothing is stored
twice (a partial version reaching no further than one held is not written; the complete
file supersedes the partial versions).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import os
import re
import signal
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drkit.config import Config
from drkit.errors import InputError, LockedError
from drkit.repo.logarchive import SegmentInfo

log = logging.getLogger(__name__)

KIND = "mysql-binlog"
MAGIC = b"\xfebin"
HEADER = 19
_NAME = re.compile(r"^(?P<base>[A-Za-z0-9_.-]+?)\.(?P<num>\d{6,})$")
BINLOG_TOOLS = ("mariadb-binlog", "mysqlbinlog")

# Event types (the common header's type byte) drkit reads.
QUERY, STOP, ROTATE, XID, FORMAT_DESCRIPTION = 2, 3, 4, 16, 15
MYSQL_GTID, MARIADB_GTID, MARIADB_GTID_LIST = 33, 162, 163
_COMMIT_TYPES = {QUERY, XID}


def parse_name(name: str) -> tuple[str, int]:
    """(base name, file number) of a binlog file name such as ``mysql-bin.000042``."""
    m = _NAME.match(name)
    if m is None:
        raise InputError(f"not a binlog file name: {name!r} (expected e.g. mysql-bin.000042)")
    return m.group("base"), int(m.group("num"))


def file_name(base: str, number: int, width: int = 6) -> str:
    return f"{base}.{number:0{width}d}"


def parse_position(text: str) -> tuple[str, int]:
    """``FILE:OFFSET`` (``mysql-bin.000042:1234``) -> (file name, offset)."""
    name, sep, offset = text.strip().rpartition(":")
    if not sep or not offset.isdigit():
        raise InputError(f"not a binlog position: {text!r} (expected e.g. "
                         "mysql-bin.000042:1234)")
    parse_name(name)
    return name, int(offset)


@dataclass(frozen=True)
class Event:
    offset: int  # where the event starts in its file
    size: int
    type: int
    timestamp: int  # seconds since the epoch (the statement's start)
    server_id: int
    gtid: str | None = None  # the transaction's GTID, on a GTID event


@dataclass
class FileScan:
    """What walking a binlog file's events tells: how far whole events reach, whether it
    is closed, times and GTIDs."""

    whole: int  # bytes up to the end of the last whole event
    closed: bool  # ends with a Rotate or Stop event
    events: list[Event] = field(default_factory=list)
    gtid_list: str | None = None  # MariaDB: the GTID state at the file's start
    first_time: int | None = None
    last_time: int | None = None

    @property
    def last_gtid(self) -> str | None:
        return next((e.gtid for e in reversed(self.events) if e.gtid), None)


def _mariadb_gtid_list(body: bytes) -> str:
    (count,) = struct.unpack_from("<I", body, 0)
    count &= 0x0FFFFFFF
    out = []
    for i in range(count):
        domain, server, seq = struct.unpack_from("<IIQ", body, 4 + 16 * i)
        out.append(f"{domain}-{server}-{seq}")
    return ",".join(out)


def scan(data: bytes) -> FileScan:
    """Walk the events of (the start of) a binlog file. Raises InputError when the bytes
    are not a binlog (bad magic, an impossible event size)."""
    if len(data) < len(MAGIC) or data[:4] != MAGIC:
        raise InputError("not a binlog file (no binlog magic number)")
    pos = 4
    out = FileScan(whole=4, closed=False)
    last_type = None
    while pos + HEADER <= len(data):
        timestamp, etype, server_id, size = struct.unpack_from("<IBII", data, pos)
        if size < HEADER:
            raise InputError(f"not a binlog file (event at {pos} claims {size} bytes)")
        if pos + size > len(data):
            break  # the event being written: not whole yet
        body = data[pos + HEADER:pos + size]
        gtid = None
        try:
            if etype == MARIADB_GTID:
                seq, domain = struct.unpack_from("<QI", body, 0)
                gtid = f"{domain}-{server_id}-{seq}"
            elif etype == MYSQL_GTID:
                sid = body[1:17].hex()
                (gno,) = struct.unpack_from("<q", body, 17)
                gtid = (f"{sid[:8]}-{sid[8:12]}-{sid[12:16]}-{sid[16:20]}-{sid[20:]}:{gno}")
            elif etype == MARIADB_GTID_LIST and out.gtid_list is None:
                out.gtid_list = _mariadb_gtid_list(body)
        except struct.error:
            raise InputError(f"not a binlog file (truncated event body at {pos})") from None
        out.events.append(Event(pos, size, etype, timestamp, server_id, gtid))
        if etype in _COMMIT_TYPES and timestamp:
            out.first_time = timestamp if out.first_time is None else out.first_time
            out.last_time = timestamp
        pos += size
        last_type = etype
    out.whole = pos
    out.closed = last_type in (ROTATE, STOP)
    return out


def _iso(ts: int | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe_file(archive: str, name: str, data: bytes, *, closed: bool | None = None
                  ) -> tuple[SegmentInfo, bytes]:
    """The catalogue fields of a binlog file and the bytes to archive: all of a closed file,
    the whole events of an in-progress one. ``closed`` None: closed when its last event
    is a Rotate or Stop event."""
    base, number = parse_name(name)
    try:
        found = scan(data)
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from None
    is_closed = found.closed if closed is None else closed
    extra: dict[str, Any] = {"gtid_start": found.gtid_list, "gtid_last": found.last_gtid,
                             "server_ids": sorted({e.server_id for e in found.events
                                                   if e.type != ROTATE or e.timestamp})}
    if is_closed:
        return (SegmentInfo(archive, KIND, name, base, (number, 0), (number + 1, 0),
                            first_time=_iso(found.first_time),
                            last_time=_iso(found.last_time), extra=extra), data)
    return (SegmentInfo(archive, KIND, name, base, (number, 0), (number, found.whole),
                        partial=True, first_time=_iso(found.first_time),
                        last_time=_iso(found.last_time), extra=extra), data[:found.whole])


def binlog_source(config: Config, name: str | None) -> str:
    """The mysql source a binlog command is about: ``name``, or the only one configured."""
    return config.source_of_type(name, "mysql", "MySQL/MariaDB", "--source")


def binlog_tool(config: Config, archive: str) -> str:
    """mariadb-binlog/mysqlbinlog, next to the source's dump tool when that is set."""
    from drkit.sources.dbcommon import find_tool, sibling_tool
    from drkit.sources.mysql import settings_for

    settings = settings_for(config.source(archive))
    what = f"source {archive!r}"
    if settings.dump_tool:
        return sibling_tool(find_tool(settings.dump_tool, (), what), BINLOG_TOOLS, what)
    return find_tool(None, BINLOG_TOOLS, what)


# -- archiving ----------------------------------------------------------------------------
@dataclass
class Archived:
    name: str
    partial: bool
    written: bool
    size: int
    end: tuple[int, ...] = ()  # position just past the archived bytes
    last_time: str | None = None  # newest commit time inside (UTC ISO)
    last_gtid: str | None = None  # the last transaction's GTID inside

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "partial": self.partial, "written": self.written,
                "size": self.size}


def archive_file(config: Config, archive: str, name: str, data: bytes, *, closed: bool,
                 now: datetime, wait: float = 60.0) -> Archived:
    """One writer run for one binlog file (see ``logarchive.archive_segment``)."""
    from drkit.repo.logarchive import archive_waiting

    info, body = describe_file(archive, name, data, closed=True if closed else None)
    _segment, written = archive_waiting(config, info, body, now=now, wait=wait)
    if written:
        log.info("%s: archived %s%s (%d bytes)", archive, name,
                 " (in progress)" if info.partial else "", len(body))
    return Archived(name, info.partial, written, len(body), info.end, info.last_time,
                    info.extra.get("gtid_last"))


def resume_point(repo: Any, archive: str) -> str | None:
    """The file to stream from: after the newest complete file held, or the newest partial
    one again from its start; None when the archive holds nothing yet."""
    from drkit.repo.logarchive import LogCatalog

    newest = LogCatalog.from_entries(repo.visible.values()).newest(archive)
    if newest is None:
        return None
    base, number = parse_name(newest.info.name)
    width = len(newest.info.name) - len(base) - 1
    if newest.info.partial:
        return newest.info.name
    return file_name(base, number + 1, width)


def server_binlogs(config: Config, archive: str) -> list[str]:
    """The binlog files the server still has (``SHOW BINARY LOGS``), oldest first."""
    from drkit.sources.mysql import connect, settings_for

    settings = settings_for(config.source(archive))
    conn = connect(settings, None)
    try:
        cur = conn.cursor()
        try:
            cur.execute("SHOW BINARY LOGS")
        except Exception as exc:
            raise InputError(f"{settings.where}: cannot list the binlogs ({exc}); is log_bin "
                             "on and may the account see them (BINLOG MONITOR / REPLICATION "
                             "CLIENT)?") from None
        return [str(r[0]) for r in cur.fetchall()]
    finally:
        conn.close()


def _die_with_parent() -> None:
    """In the child: be killed when drkit dies (even by SIGKILL), so a restarted stream
    never shares its spool with a leftover reader."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class BinlogStreamState:
    """What the stream has archived so far: written to ``<schedule state_dir>/streams/
    <source>.json`` after each archived version, for the metrics
    (``drkit.schedule.runner.stream_families``) and the supervisor."""

    archive: str
    started: str
    kind: str = KIND
    last_file: str | None = None
    last_position: list[int] = field(default_factory=list)  # [file number, offset]
    last_gtid: str | None = None
    last_archived: str | None = None
    last_commit: str | None = None
    lag_seconds: float | None = None
    complete: int = 0
    partial_versions: int = 0
    restarts: int = 0  # by the supervisor (its environment) plus of the reader here

    def to_dict(self) -> dict[str, Any]:
        return {"archive": self.archive, "kind": self.kind, "started": self.started,
                "last_file": self.last_file, "last_position": self.last_position,
                "last_gtid": self.last_gtid, "last_archived": self.last_archived,
                "last_commit": self.last_commit, "lag_seconds": self.lag_seconds,
                "complete": self.complete, "partial_versions": self.partial_versions,
                "restarts": self.restarts}

    def record(self, done: Archived, now: datetime) -> None:
        """Account for one archived version (nothing when it was held already)."""
        from drkit.clock import parse_iso, utc_iso

        if not done.written:
            return
        if done.partial:
            self.partial_versions += 1
        else:
            self.complete += 1
        if done.end and list(done.end) >= self.last_position:
            self.last_file = done.name
            self.last_position = list(done.end)
            self.last_archived = utc_iso(now)
            self.last_gtid = done.last_gtid or self.last_gtid
            if done.last_time:
                self.last_commit = done.last_time
                self.lag_seconds = round((now - parse_iso(done.last_time)).total_seconds(), 3)


@dataclass
class StreamResult:
    archive: str
    started_from: str
    archived: list[Archived] = field(default_factory=list)
    restarts: int = 0

    def to_dict(self) -> dict[str, Any]:
        written = [a for a in self.archived if a.written]
        return {"archive": self.archive, "started_from": self.started_from,
                "files_archived": [a.to_dict() for a in written],
                "complete": sum(1 for a in written if not a.partial),
                "partial": sum(1 for a in written if a.partial), "restarts": self.restarts}


class BinlogStreamer:
    """Runs the binlog reader into a spool folder and archives what it writes (see the
    module docstring). One per source at a time (a lock file in the spool folder)."""

    def __init__(self, config: Config, archive: str, *, clock: Any,
                 open_repo: Callable[[], Any], partial_every: float = 5.0,
                 poll: float = 0.5) -> None:
        from drkit.sources.mysql import settings_for

        self.config = config
        self.archive = archive
        self.clock = clock
        self.open_repo = open_repo
        self.partial_every = partial_every
        self.poll = poll
        self.settings = settings_for(config.source(archive))
        self.spool = config.cache_dir / "binlog" / archive
        self.tool = binlog_tool(config, archive)
        self.proc: subprocess.Popen[bytes] | None = None
        self._partial_sent: dict[str, tuple[int, float]] = {}
        self._stop = False
        from drkit.clock import utc_iso
        from drkit.pitr.stream import RESTARTS_ENV, StreamStateFile

        restarts = os.environ.get(RESTARTS_ENV, "")
        self._restarts_before = int(restarts) if restarts.isdigit() else 0
        self.state = BinlogStreamState(archive, utc_iso(clock.now()),
                                       restarts=self._restarts_before)
        self._state_file = StreamStateFile(config, archive, clock)
        self._reader_restarts = 0

    # -- the reader process ---------------------------------------------------------------
    def _start_reader(self, first: str, *, follow: bool, folder: Path) -> None:
        from drkit.sources.mysql import _connection_args

        for old in self.spool.iterdir():
            if old.name != ".lock":
                old.unlink()
        args = [self.tool, *_connection_args(self.settings, folder),
                "--read-from-remote-server", "--raw", f"--result-file={self.spool}/"]
        args += ["--stop-never"] if follow else ["--to-last-log"]
        args.append(first)
        self._err = (self.spool.parent / f"{self.archive}.reader.log").open("ab")
        env = {k: v for k, v in os.environ.items() if k != "MYSQL_PWD"}
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self._err, env=env, preexec_fn=_die_with_parent)
        log.info("%s: streaming the binlog from %s", self.archive, first)

    def _stop_reader(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self._err.close()
        self.proc = None

    def _reader_error(self) -> str:
        try:
            text = (self.spool.parent / f"{self.archive}.reader.log").read_text(
                encoding="utf-8", errors="replace")
        except OSError:
            return "no message"
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return lines[-1] if lines else "no message"

    # -- archiving what the reader wrote ---------------------------------------------------
    def _spooled(self) -> list[Path]:
        files = []
        for path in self.spool.iterdir():
            with contextlib.suppress(InputError):
                parse_name(path.name)
                files.append(path)
        return sorted(files, key=lambda p: parse_name(p.name)[1])

    def sweep(self, result: StreamResult, *, final: bool) -> None:
        """Archive closed files (then drop them from the spool) and, when due or ``final``,
        the in-progress one."""
        files = self._spooled()
        for i, path in enumerate(files):
            data = path.read_bytes()
            later = i + 1 < len(files)
            try:
                closed = later or scan(data).closed
            except InputError:
                closed = False
            now = self.clock.now()
            if closed:
                self._archived(result, archive_file(self.config, self.archive, path.name,
                                                    data, closed=True, now=now), now)
                path.unlink()
                self._partial_sent.pop(path.name, None)
                continue
            whole = scan(data).whole if len(data) >= 4 else 0
            sent, when = self._partial_sent.get(path.name, (0, 0.0))
            due = final or time.monotonic() - when >= self.partial_every
            if whole > sent and whole > 4 and due:
                self._archived(result, archive_file(self.config, self.archive, path.name,
                                                    data, closed=False, now=now), now)
                self._partial_sent[path.name] = (whole, time.monotonic())

    def _archived(self, result: StreamResult, done: Archived, now: datetime) -> None:
        result.archived.append(done)
        self.state.record(done, now)
        if done.written:
            self.save_state()

    def save_state(self, *, force: bool = False) -> None:
        """The state file after every archived version; the metrics file at most every
        10 s (and with ``force``). Neither ever stops the stream."""
        self.state.restarts = self._restarts_before + self._reader_restarts
        self._state_file.save(self.state.to_dict(), force=force)

    @contextlib.contextmanager
    def _locked_spool(self) -> Iterator[None]:
        self.spool.mkdir(parents=True, exist_ok=True, mode=0o700)
        fh = (self.spool / ".lock").open("a")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise LockedError(f"{self.archive}: another 'drkit binlog stream' is running "
                              f"for this source ({self.spool})") from None
        try:
            yield
        finally:
            fh.close()

    def first_file(self, start: str | None) -> str:
        if start:
            parse_name(start)
            return start
        held = resume_point(self.open_repo(), self.archive)
        if held is not None:
            return held
        on_server = server_binlogs(self.config, self.archive)
        if not on_server:
            raise InputError(f"{self.settings.where}: the server lists no binlog (log_bin off?)")
        return on_server[0]

    def run(self, *, once: bool, start: str | None = None, max_restarts: int | None = None,
            should_stop: Callable[[], bool] | None = None) -> StreamResult:
        """Stream until stopped (SIGTERM/SIGINT or ``should_stop``), or with ``once`` archive
        everything up to the server's current position and return."""
        from drkit.sources.dbcommon import private_dir

        with self._locked_spool(), private_dir() as folder:
            first = self.first_file(start)
            result = StreamResult(self.archive, first)
            backoff = 1.0
            while True:
                self._start_reader(first, follow=not once, folder=folder)
                assert self.proc is not None
                try:
                    while self.proc.poll() is None:
                        if should_stop is not None and should_stop():
                            self._stop = True
                        if self._stop:
                            break
                        time.sleep(self.poll)
                        self.sweep(result, final=False)
                finally:
                    rc = self.proc.poll()
                    self._stop_reader()
                self.sweep(result, final=True)
                if once:
                    self.save_state(force=True)
                    if rc:
                        raise InputError(f"{self.settings.where}: {Path(self.tool).name} "
                                         f"failed: {self._reader_error()}")
                    return result
                if self._stop:
                    self.save_state(force=True)
                    return result
                result.restarts += 1
                self._reader_restarts = result.restarts
                self.save_state(force=True)
                if max_restarts is not None and result.restarts > max_restarts:
                    raise InputError(f"{self.settings.where}: binlog reader keeps failing: "
                                     f"{self._reader_error()}")
                log.warning("%s: binlog reader stopped (%s); restarting in %.0f s",
                            self.archive, self._reader_error(), backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
                first = self.first_file(None)

    def request_stop(self, *_args: Any) -> None:
        self._stop = True

