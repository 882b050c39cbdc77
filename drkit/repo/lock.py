"""The writer lock: one local lock file per repository in the cache folder.

Objects in the store are create-only and may be under retention, so a lock object there
could never be removed; the lock lives next to the cache instead (one writer host per
repository is the deployment model).

The lock file is written whole or not at all: its content goes to a temporary file that is
fsynced and then hard-linked to the lock name (the link fails if the lock exists), and the
folder is fsynced. It names owner, host, boot id (``/proc/sys/kernel/random/boot_id``),
pid, the process start time (``/proc/<pid>/stat`` field 22) and the creation time. On this
host a lock is stale, and is taken over with a log line, when its file is empty or
unreadable (left by a crash or power loss of an older drkit, never by a live writer), when
it was taken before the last boot, when its pid is gone, or when the pid now belongs to a
process that started at another time (a reused pid). A lock from another host needs a
person: drkit cannot see that host's processes. The check-and-take-over runs under an
``flock`` on a guard file, so two processes never both take over one stale lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import TracebackType

from drkit.clock import parse_iso, utc_iso
from drkit.errors import LockedError
from drkit.storage.local import fsync_dir

log = logging.getLogger(__name__)
BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str | None:
    """This boot's id (Linux), or None where the system does not give one."""
    try:
        return BOOT_ID_PATH.read_text().strip() or None
    except OSError:
        return None


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (``/proc/<pid>/stat`` field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    try:
        fields = stat[stat.rindex(")") + 2:].split()
        return int(fields[19])  # field 22 overall; fields[0] is field 3
    except (ValueError, IndexError):
        return None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RepositoryLock:
    def __init__(self, cache_dir: Path, repository_id: str, *, now: datetime) -> None:
        self.path = cache_dir / f"lock-{repository_id}.json"
        self.guard = cache_dir / f"lock-{repository_id}.guard"
        self.now = now
        self.held = False

    def _info(self) -> dict[str, object]:
        pid = os.getpid()
        return {"owner": getpass.getuser(), "host": socket.gethostname(),
                "boot_id": boot_id(), "pid": pid, "start_time": process_start_time(pid),
                "created": utc_iso(self.now)}

    @contextlib.contextmanager
    def _guarded(self) -> Iterator[None]:
        fd = os.open(self.guard, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def acquire(self, wait: float = 0.0) -> None:
        """Take the lock; while another live process holds it, retry for ``wait`` seconds
        (a WAL push holds it for a moment; a daily snapshot should wait, not fail)."""
        deadline = time.monotonic() + wait
        while True:
            try:
                self._acquire_once()
                return
            except LockedError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))

    def _acquire_once(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._guarded():
            if self._create():
                return
            reason = self._stale_reason()
            if reason is None:
                raise LockedError(self._describe())
            log.warning("taking over the lock %s: %s", self.path, reason)
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            if not self._create():
                raise LockedError(self._describe())

    def _create(self) -> bool:
        """Write the lock atomically and durably; False if a lock file exists."""
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        data = json.dumps(self._info()).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, self.path)
        except FileExistsError:
            return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        fsync_dir(self.path.parent)
        self.held = True
        return True

    def _read(self) -> dict[str, object] | None:
        """The lock's content; None if it cannot be parsed (empty, cut short, garbage)."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _stale_reason(self) -> str | None:
        """Why the existing lock is stale, or None if its owner may be alive."""
        info = self._read()
        if info is None:
            return "the lock file is empty or unreadable (a crash while it was written)"
        if not info:
            return "the lock file vanished"
        if info.get("host") != socket.gethostname():
            return None
        pid = info.get("pid")
        if not isinstance(pid, int) or isinstance(pid, bool):
            return "the lock file names no process"
        recorded_boot = info.get("boot_id")
        current_boot = boot_id()
        if isinstance(recorded_boot, str) and current_boot and recorded_boot != current_boot:
            return f"it was taken before this host rebooted (pid {pid})"
        if not _pid_alive(pid):
            return f"pid {pid} is gone"
        recorded_start = info.get("start_time")
        current_start = process_start_time(pid)
        if isinstance(recorded_start, int) and current_start is not None \
                and recorded_start != current_start:
            return f"pid {pid} now belongs to another process (reused pid)"
        return None

    def _describe(self) -> str:
        info = self._read() or {}
        age = ""
        created = info.get("created")
        if isinstance(created, str):
            with contextlib.suppress(ValueError):
                minutes = int((self.now - parse_iso(created)).total_seconds() // 60)
                age = f", {minutes} min old"
        host = info.get("host", "?")
        where = (f"repository is locked by {info.get('owner', '?')}@{host} "
                 f"pid {info.get('pid', '?')} since {created or '?'}{age} ({self.path})")
        if host == socket.gethostname():
            return f"{where}; that process is still running on this host: wait for it"
        return (f"{where}; the lock was taken on another host: if that process is gone "
                f"on {host}, remove the file")

    def release(self) -> None:
        if self.held:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.held = False

    def __enter__(self) -> RepositoryLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
