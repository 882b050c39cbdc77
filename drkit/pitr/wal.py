"""PostgreSQL WAL in the log archive: file names to positions, ``wal push`` and ``wal fetch``.

Kept light on imports: ``drkit wal push`` runs as ``archive_command``, once per segment.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from drkit.config import Config
from drkit.errors import InputError
from drkit.repo.logarchive import SegmentInfo

log = logging.getLogger(__name__)

KIND = "postgres-wal"
PAGE = 8192
_SEGMENT = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.partial)?$")
_HISTORY = re.compile(r"^([0-9A-F]{8})\.history$")
_BACKUP = re.compile(r"^([0-9A-F]{8})[0-9A-F]{16}\.[0-9A-F]{8}\.backup$")
_COMMIT = re.compile(r"desc: (?:COMMIT|ABORT) (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC")


def parse_lsn(text: str) -> int:
    hi, sep, lo = text.strip().partition("/")
    if not sep:
        raise InputError(f"not an LSN: {text!r} (expected e.g. 0/3000060)")
    try:
        return (int(hi, 16) << 32) | int(lo, 16)
    except ValueError:
        raise InputError(f"not an LSN: {text!r} (expected e.g. 0/3000060)") from None


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def segment_name(timeline: int, lsn: int, segsize: int) -> str:
    segno = lsn // segsize
    per_log = 0x100000000 // segsize
    return f"{timeline:08X}{segno // per_log:08X}{segno % per_log:08X}"


def segment_start(name: str, segsize: int) -> int:
    m = _SEGMENT.match(name)
    if m is None:
        raise InputError(f"not a WAL segment name: {name!r}")
    per_log = 0x100000000 // segsize
    return (int(m.group(2), 16) * per_log + int(m.group(3), 16)) * segsize


def _written_bytes(data: bytes) -> int:
    """How far a zero-padded in-progress segment is written (whole pages)."""
    end = len(data)
    while end >= PAGE and not any(data[end - PAGE:end]):
        end -= PAGE
    return end


def describe_file(archive: str, name: str, data: bytes, *, in_progress: bool = False,
                  times: tuple[str | None, str | None] = (None, None)) -> SegmentInfo:
    """The catalogue fields of a file PostgreSQL archives (``%f``): a segment (its
    timeline and LSN range), a timeline ``.history`` file or a ``.backup`` label.
    ``in_progress``: a segment being streamed (``pg_receivewal``'s ``.partial``)."""
    m = _SEGMENT.match(name)
    if m is not None:
        segsize = len(data)
        if segsize < (1 << 20) or segsize > (1 << 30) or segsize & (segsize - 1):
            raise InputError(f"{name}: {segsize} bytes is not a WAL segment size")
        start = segment_start(name, segsize)
        if in_progress:
            return SegmentInfo(archive, KIND, name.removesuffix(".partial"), m.group(1),
                               (start,), (start + _written_bytes(data),), partial=True,
                               first_time=times[0], last_time=times[1])
        return SegmentInfo(archive, KIND, name, m.group(1), (start,), (start + segsize,),
                           first_time=times[0], last_time=times[1])
    for pattern in (_HISTORY, _BACKUP):
        m = pattern.match(name)
        if m is not None:
            return SegmentInfo(archive, KIND, name, m.group(1))
    raise InputError(f"{name}: not a file PostgreSQL archives (segment, .history, .backup)")


def commit_times(path: Path, waldump: Path | None) -> tuple[str | None, str | None]:
    """First and last commit time in a segment, read with pg_waldump (None if unknown)."""
    if waldump is None or not _SEGMENT.match(path.name):
        return None, None
    env = {**os.environ, "TZ": "UTC", "PGTZ": "UTC"}
    try:
        proc = subprocess.run([str(waldump), "--rmgr=Transaction", str(path)], env=env,
                              capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    found = _COMMIT.findall(proc.stdout)
    if not found:
        return None, None

    def iso(text: str) -> str:
        return text.replace(" ", "T").split(".")[0] + "Z"
    return iso(found[0]), iso(found[-1])


def find_waldump(config: Config, archive: str) -> Path | None:
    explicit = config.source(archive).options.get("pg_bin")
    if explicit:
        candidate = Path(str(explicit)) / "pg_waldump"
        return candidate if candidate.exists() else None
    found = shutil.which("pg_waldump")
    if found:
        return Path(found)
    for path in sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_waldump"), reverse=True):
        return path
    return None


def wal_source(config: Config, name: str | None) -> str:
    """The postgres source a WAL command is about: ``name``, or the only one configured."""
    return config.source_of_type(name, "postgres", "PostgreSQL", "--database")


@dataclass
class PushResult:
    name: str
    key: str
    written: bool
    size: int
    seconds: float
    end: int | None = None  # LSN just past the archived bytes (None: not a segment)
    partial: bool = False
    last_commit: str | None = None  # newest commit time inside, when pg_waldump read it

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "key": self.key, "written": self.written,
                "size": self.size, "seconds": round(self.seconds, 3),
                "end_lsn": format_lsn(self.end) if self.end is not None else None,
                "partial": self.partial, "last_commit": self.last_commit}


def push(config: Config, archive: str, path: Path, *, now: datetime, wait: float = 60.0,
         in_progress: bool = False, name: str | None = None) -> PushResult:
    """Archive one file PostgreSQL hands to ``archive_command`` (``%p``). Waits up to
    ``wait`` seconds for the repository lock (a snapshot or another push)."""
    from drkit.repo.logarchive import archive_waiting

    started = time.monotonic()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    times = commit_times(path, find_waldump(config, archive))
    info = describe_file(archive, name or path.name, data, in_progress=in_progress,
                         times=times)
    segment, written = archive_waiting(config, info, data, now=now, wait=wait)
    log.info("%s: %s %s (%d bytes)", archive, "archived" if written else "already held",
             info.name, len(data))
    return PushResult(info.name, segment.key, written, len(data), time.monotonic() - started,
                      end=info.end[0] if info.end else None, partial=info.partial,
                      last_commit=info.last_time)


def fetch(repo: Any, archive: str, name: str, dest: Path, recovery: Any) -> bool:
    """Write the archived file ``name`` (the version that counts) to ``dest``; False when
    the archive does not hold it (PostgreSQL then knows the log ends here)."""
    from drkit.repo.logarchive import LogCatalog, read_segment

    segment = LogCatalog.from_entries(repo.visible.values()).current(archive, name)
    if segment is None:
        return False
    data = read_segment(repo, segment.key, recovery)
    tmp = dest.with_name(dest.name + ".drkit-tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(dest)
    return True
