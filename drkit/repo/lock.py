"""The writer lock: one local lock file per repository in the cache folder.

Objects in the store are create-only and may be under retention, so a lock object there
could never be removed; the lock lives next to the cache instead (one writer host per
repository is the deployment model). The file names owner, host, pid and start time; a
lock whose process no longer exists on this host is stale and is taken over.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import socket
from datetime import datetime
from pathlib import Path
from types import TracebackType

from drkit.clock import parse_iso, utc_iso
from drkit.errors import LockedError

log = logging.getLogger(__name__)


def _pid_alive(pid: int) -> bool:
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
        self.now = now
        self.held = False

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        info = {"owner": getpass.getuser(), "host": socket.gethostname(), "pid": os.getpid(),
                "created": utc_iso(self.now)}
        for _attempt in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                if self._remove_if_stale():
                    continue
                raise LockedError(self._describe()) from None
            with os.fdopen(fd, "w") as fh:
                json.dump(info, fh)
            self.held = True
            return
        raise LockedError(self._describe())

    def _read(self) -> dict[str, object]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _remove_if_stale(self) -> bool:
        info = self._read()
        pid = info.get("pid")
        if info.get("host") == socket.gethostname() and isinstance(pid, int) \
                and not _pid_alive(pid):
            log.warning("removing stale lock %s (pid %s is gone)", self.path, pid)
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return True
        return False

    def _describe(self) -> str:
        info = self._read()
        age = ""
        created = info.get("created")
        if isinstance(created, str):
            with contextlib.suppress(ValueError):
                minutes = int((self.now - parse_iso(created)).total_seconds() // 60)
                age = f", {minutes} min old"
        return (f"repository is locked by {info.get('owner', '?')}@{info.get('host', '?')} "
                f"pid {info.get('pid', '?')} since {created or '?'}{age} ({self.path}); "
                "if that process is gone on another host, remove the file")

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
