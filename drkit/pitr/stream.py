"""``drkit wal stream``: PostgreSQL WAL streamed with ``pg_receivewal`` into a local spool
and archived from there, for a sub-minute RPO where ``archive_command`` cannot be set.

How it works (docs/pitr.md, "Streaming"):

- A physical replication slot (``drkit_<source>`` unless named) is created if absent, so
  the server keeps every WAL byte the stream has not yet received, across restarts of
  drkit, of pg_receivewal and of the network.
- ``pg_receivewal --synchronous`` writes the WAL into the spool folder: the segment being
  received as ``NAME.partial``, renamed to ``NAME`` when it is complete.
- Every completed segment (and timeline ``.history`` file) is archived through the same
  path as ``drkit wal push`` and then removed from the spool; the growing ``.partial``
  segment is archived as an in-progress version every ``interval`` seconds when it has
  grown (the version reaching furthest counts; the complete file supersedes it).
- Resuming. pg_receivewal restarts from the newest segment in the spool (from the start
  of a ``.partial`` one). When the spool holds no segment (a new host, a deleted cache),
  drkit puts an empty placeholder ``.partial`` there for the segment where the
  repository's archive ends, so streaming restarts exactly there: no gap, and the
  already archived part is only superseded, never archived twice under the same bytes.
- SIGTERM or SIGINT: pg_receivewal is stopped (SIGINT), what it wrote is archived, exit 0.
  pg_receivewal is given a parent-death signal, so a ``kill -9`` of drkit does not leave it
  holding the slot.

After each archived version the stream's state (last archived LSN, when, the newest
commit it contained) is written to ``<schedule state_dir>/streams/<source>.json`` and the
Prometheus textfile is rewritten (``drkit.schedule.runner.metric_families`` reads it).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drkit.clock import Clock, parse_iso, utc_iso
from drkit.config import Config
from drkit.errors import CheckFailed, DrkitError, InputError
from drkit.pitr.wal import (
    PushResult,
    _written_bytes,
    format_lsn,
    push,
    segment_name,
    segment_start,
)

log = logging.getLogger(__name__)

_COMPLETE = re.compile(r"^[0-9A-F]{24}$")
_PARTIAL = re.compile(r"^([0-9A-F]{24})\.partial$")
_HISTORY = re.compile(r"^[0-9A-F]{8}\.history$")
_SLOT = re.compile(r"^[a-z0-9_]{1,63}$")
_PR_SET_PDEATHSIG = 1
STREAMS_DIR = "streams"
RESTARTS_ENV = "DRKIT_STREAM_RESTARTS"


def default_slot(archive: str) -> str:
    return "drkit_" + re.sub(r"[^a-z0-9_]", "_", archive.lower())[:57]


@dataclass
class StreamState:
    """What the stream has archived so far (written for metrics and ``wal stream``'s
    report)."""

    archive: str
    slot: str
    started: str
    last_lsn: int | None = None
    last_segment: str | None = None
    last_archived: str | None = None
    last_commit: str | None = None
    lag_seconds: float | None = None
    segments: int = 0  # complete segments archived
    partial_versions: int = 0
    already_held: int = 0
    restarts: int = 0  # by the scheduler's supervisor (it passes RESTARTS_ENV)
    push_seconds: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        pushes = self.push_seconds
        return {"archive": self.archive, "slot": self.slot, "started": self.started,
                "last_lsn": format_lsn(self.last_lsn) if self.last_lsn is not None else None,
                "last_lsn_bytes": self.last_lsn, "last_segment": self.last_segment,
                "last_archived": self.last_archived, "last_commit": self.last_commit,
                "lag_seconds": self.lag_seconds, "segments": self.segments,
                "partial_versions": self.partial_versions,
                "already_held": self.already_held, "restarts": self.restarts,
                "pushes": len(pushes),
                "push_seconds_mean": round(sum(pushes) / len(pushes), 3) if pushes else None}


def stream_state_dir(config: Config) -> Path:
    """``<schedule state_dir>/streams`` (the schedule's default when [schedule] is bad)."""
    try:
        from drkit.schedule.spec import load_schedule

        return load_schedule(config).state_dir / STREAMS_DIR
    except DrkitError:
        return config.cache_dir / "schedule" / STREAMS_DIR


class StreamStateFile:
    """Where a running stream (WAL or binlog) leaves its state for ``status`` and the
    metrics file: ``<stream_state_dir>/<archive>.json``."""

    def __init__(self, config: Config, archive: str, clock: Clock) -> None:
        self.config = config
        self.archive = archive
        self.clock = clock
        self.folder = stream_state_dir(config)
        self._metrics_written = 0.0

    def save(self, state: dict[str, Any], *, force: bool = False) -> None:
        """The state file every time; the metrics file at most every 10 s (and with
        ``force``). Neither ever stops the stream."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{self.archive}.json"
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(state) + "\n", encoding="utf-8")
            tmp.replace(path)
        except OSError as exc:
            log.warning("%s: cannot write stream state: %s", self.archive, exc.strerror)
            return
        if not force and time.monotonic() - self._metrics_written < 10.0:
            return
        self._metrics_written = time.monotonic()
        try:
            from drkit.schedule.runner import write_metrics
            from drkit.schedule.spec import load_schedule
            from drkit.schedule.state import RunStore

            settings = load_schedule(self.config)
            write_metrics(settings, RunStore(settings.state_dir), self.clock)
        except Exception as exc:  # metrics never stop the stream
            log.warning("%s: cannot write metrics: %s", self.archive, exc)


def read_stream_states(folder: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            out.append(data)
    return out


def receivewal_tool(config: Config, archive: str) -> Path:
    explicit = config.source(archive).options.get("pg_bin")
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(str(explicit)) / "pg_receivewal")
    found = shutil.which("pg_receivewal")
    if found:
        candidates.append(Path(found))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_receivewal"), reverse=True)
    for path in candidates:
        if path.exists():
            return path
    raise InputError(f"source {archive!r}: pg_receivewal not found (install the PostgreSQL "
                     "client programs or set pg_bin)")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class WalStream:
    """One stream: ``run()`` until ``stop`` is set or pg_receivewal ends."""

    def __init__(self, config: Config, archive: str, *, clock: Clock,
                 spool: Path | None = None, slot: str | None = None,
                 interval: float = 2.0, once: bool = False,
                 stop: threading.Event | None = None,
                 on_archived: Callable[[PushResult, StreamState], None] | None = None
                 ) -> None:
        from drkit.sources.postgres import settings_for

        self.config = config
        self.archive = archive
        self.clock = clock
        self.spool = spool or config.cache_dir / "wal-stream" / archive
        self.slot = slot or default_slot(archive)
        if not _SLOT.match(self.slot):
            raise InputError(f"replication slot name {self.slot!r}: use 1-63 lowercase "
                             "letters, digits and _")
        self.interval = interval
        self.once = once
        self.stop = stop or threading.Event()
        self.on_archived = on_archived
        self.settings = settings_for(config.source(archive))
        self.state = StreamState(archive, self.slot, utc_iso(clock.now()))
        restarts = os.environ.get(RESTARTS_ENV, "")
        self.state.restarts = int(restarts) if restarts.isdigit() else 0
        self.tool = receivewal_tool(config, archive)
        self._pushed_end: dict[str, int] = {}
        self._last_partial_push = 0.0
        self._state_file = StreamStateFile(config, archive, clock)

    # -- the pieces ----------------------------------------------------------------------
    def _conn_args(self) -> list[str]:
        s = self.settings
        return ["-h", s.host, "-p", str(s.port), "-U", s.user, "-w"]

    def _env(self, folder: Path) -> dict[str, str]:
        from drkit.sources.postgres import _tool_env

        return _tool_env(self.settings, folder)

    def create_slot(self, folder: Path) -> None:
        proc = subprocess.run([str(self.tool), *self._conn_args(), "--create-slot",
                               "--if-not-exists", "-S", self.slot],
                              env=self._env(folder), capture_output=True, text=True,
                              timeout=60, check=False)
        if proc.returncode != 0:
            raise InputError(f"source {self.archive!r}: cannot create replication slot "
                             f"{self.slot}: {_last_line(proc.stderr)}")

    def _spool_files(self) -> tuple[list[Path], list[Path], list[Path]]:
        """(history files, complete segments, partial segments) in the spool, sorted."""
        history, complete, partial = [], [], []
        for path in sorted(self.spool.iterdir()):
            if _HISTORY.match(path.name):
                history.append(path)
            elif _COMPLETE.match(path.name):
                complete.append(path)
            elif _PARTIAL.match(path.name):
                partial.append(path)
        return history, complete, partial

    def prepare_resume(self) -> str | None:
        """With no segment in the spool, a placeholder ``.partial`` for the segment where
        the repository's archive ends (see the module docstring). Returns its name."""
        _history, complete, partial = self._spool_files()
        if complete or partial:
            return None
        from drkit.repo.keys import load_trusted_writer_keys
        from drkit.repo.logarchive import LogCatalog
        from drkit.repo.repository import Repository
        from drkit.storage.url import open_store

        region = self.config.primary_region
        store = open_store(region.url, base_dir=self.config.base_dir)
        try:
            repo = Repository.open(store, load_trusted_writer_keys(self.config),
                                   region=region.name)
            newest = LogCatalog.from_entries(repo.visible.values()).newest(self.archive)
        finally:
            store.close()
        if newest is None:
            return None  # nothing archived yet: pg_receivewal starts at the slot
        info = newest.info
        segsize = newest.size
        start = segment_start(info.name, segsize)
        timeline = int(info.lineage, 16)
        name = info.name if info.partial else segment_name(timeline, start + segsize, segsize)
        path = self.spool / f"{name}.partial"
        with path.open("wb") as fh:
            fh.truncate(segsize)
        log.info("%s: the spool is empty; resuming at %s, where the archive ends (%s)",
                 self.archive, name, format_lsn(info.end[0]))
        return name

    def current_lsn(self) -> int:
        """The server's current WAL write position (``--once`` streams up to it)."""
        from drkit.sources.postgres import connect

        conn = connect(self.settings, self.settings.databases[0] if self.settings.databases
                       else "postgres")
        try:
            (lsn,) = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        finally:
            conn.rollback()
            conn.close()
        from drkit.pitr.wal import parse_lsn

        return parse_lsn(str(lsn))

    def archive_spool(self, *, final: bool = False) -> int:
        """Archive what the spool holds: completed files (then removed) and, every
        ``interval`` seconds or when ``final``, the grown ``.partial`` segment."""
        done = 0
        history, complete, partial = self._spool_files()
        for path in history + complete:
            self._push(path, path.name, in_progress=False)
            path.unlink()
            self._pushed_end.pop(path.name, None)
            done += 1
        due = final or time.monotonic() - self._last_partial_push >= self.interval
        if partial and due:
            self._last_partial_push = time.monotonic()
            path = partial[-1]
            name = path.name.removesuffix(".partial")
            try:
                data = path.read_bytes()
            except FileNotFoundError:  # renamed to the complete name meanwhile
                return done
            written = _written_bytes(data)
            if written and written > self._pushed_end.get(name, 0):
                # pg_waldump reads a file by its segment name: archive a copy so named.
                with tempfile.TemporaryDirectory(prefix="drkit-partial-") as tmp:
                    copy = Path(tmp) / name
                    copy.write_bytes(data)
                    self._push(copy, name, in_progress=True)
                self._pushed_end[name] = written
                done += 1
        return done

    def _push(self, path: Path, name: str, *, in_progress: bool) -> None:
        result = push(self.config, self.archive, path, now=self.clock.now(), wait=60.0,
                      in_progress=in_progress, name=name)
        st = self.state
        st.push_seconds.append(result.seconds)
        if not result.written:
            st.already_held += 1
        elif in_progress:
            st.partial_versions += 1
        elif _COMPLETE.match(name):
            st.segments += 1
        if result.end is not None and (st.last_lsn is None or result.end >= st.last_lsn):
            st.last_lsn = result.end
            st.last_segment = name
            st.last_archived = utc_iso(self.clock.now())
            if result.last_commit:
                st.last_commit = result.last_commit
                st.lag_seconds = round((parse_iso(st.last_archived)
                                        - parse_iso(result.last_commit)).total_seconds(), 3)
        self._save_state()
        if self.on_archived is not None:
            self.on_archived(result, st)

    def _save_state(self, *, force: bool = False) -> None:
        """The state file at every push; the metrics file at most every 10 s."""
        self._state_file.save(self.state.to_dict(), force=force)

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> StreamState:
        self.spool.mkdir(parents=True, exist_ok=True)
        lock_path = self.spool / ".lock"
        with lock_path.open("a+") as lock:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise InputError(f"{self.spool}: another 'wal stream' of {self.archive} is "
                                 "running") from None
            from drkit.sources.dbcommon import private_dir

            with private_dir() as folder:
                self.create_slot(folder)
                # Files a killed run left: archived before streaming goes on.
                self.archive_spool(final=True)
                self.prepare_resume()
                self._stream(folder)
        self._save_state(force=True)
        return self.state

    def _stream(self, folder: Path) -> None:
        argv = [str(self.tool), *self._conn_args(), "-D", str(self.spool), "-S", self.slot,
                "--synchronous", "--no-loop", "-v"]
        if self.once:
            argv += ["-E", format_lsn(self.current_lsn())]
        errors = self.spool.parent / f".{self.spool.name}.receivewal.log"
        with errors.open("wb") as err:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                    env=self._env(folder),
                                    preexec_fn=_die_with_parent)  # noqa: PLW1509
        log.info("%s: streaming WAL into %s (slot %s)", self.archive, self.spool, self.slot)
        failed: str | None = None
        try:
            while not self.stop.is_set() and proc.poll() is None:
                try:
                    self.archive_spool()
                except DrkitError as exc:  # storage down, lock busy: kept, retried
                    log.warning("%s: archiving failed, will retry: %s", self.archive, exc)
                self.stop.wait(min(1.0, self.interval))
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            elif not self.stop.is_set() and not (self.once and proc.returncode == 0):
                failed = _last_line(errors.read_text(encoding="utf-8", errors="replace"))
        self.archive_spool(final=True)
        if failed is not None:
            raise CheckFailed(f"{self.archive}: pg_receivewal stopped (exit "
                              f"{proc.returncode}): {failed}")


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"
