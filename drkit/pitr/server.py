"""A private PostgreSQL server on a scratch data directory: a free port on 127.0.0.1
only if asked (by default no TCP at all), a Unix socket in the scratch folder, trust
authentication for local connections only.

PostgreSQL refuses to run as root. When drkit runs as root, the server is started in a
new user namespace (``unshare --user``) that maps root to an unprivileged id: the server
sees an ordinary owner of its files, and its ``restore_command`` (drkit itself) can still
read drkit's configuration and keys.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from drkit.errors import InputError

log = logging.getLogger(__name__)
_UNPRIVILEGED = 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bin_dir(version: str | None = None, explicit: str | None = None) -> Path:
    """The folder of the PostgreSQL server programs (``initdb``, ``postgres``,
    ``pg_waldump``) for ``version`` (a major version such as ``15``)."""
    if explicit:
        path = Path(explicit)
        if not (path / "postgres").exists():
            raise InputError(f"{path}: no PostgreSQL server programs here (pg_bin)")
        return path
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
                        reverse=True)
    if version:
        candidates = [p for p in candidates if p.parent.name == version] or candidates
    for path in candidates:
        if (path / "postgres").exists():
            return path
    found = shutil.which("postgres")
    if found:
        return Path(found).parent
    raise InputError("PostgreSQL server programs not found (install them or set pg_bin "
                     "on the source)")


def user_prefix() -> list[str]:
    """How to run a PostgreSQL program from this process (see the module docstring)."""
    if os.geteuid() != 0:
        return []
    unshare = shutil.which("unshare")
    if unshare is None:
        raise InputError("PostgreSQL cannot run as root and 'unshare' is not available; run "
                         "drkit as an unprivileged user")
    return [unshare, "--user", f"--map-user={_UNPRIVILEGED}",
            f"--map-group={_UNPRIVILEGED}"]


def log_tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a server's log on one line ("" when unreadable)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return " / ".join(ln.strip() for ln in text.strip().splitlines()[-lines:])


def stop_process(proc: subprocess.Popen[bytes] | None,
                 steps: tuple[tuple[signal.Signals, float], ...]) -> None:
    """Send each signal in turn, waiting its seconds, until the process has ended."""
    if proc is None:
        return
    for sig, wait in steps:
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)


class ScratchServer:
    """One private server. ``start()``, then ``connect(db)``; ``stop()`` always."""

    def __init__(self, data: Path, bindir: Path, *, socket_dir: Path,
                 port: int | None = None) -> None:
        self.data = data
        self.bindir = bindir
        self.socket_dir = socket_dir
        self.port = port or free_port()
        self.log_file = data.parent / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, settings: dict[str, str] | None = None) -> None:
        args = [*user_prefix(), str(self.bindir / "postgres"), "-D", str(self.data),
                "-c", f"port={self.port}", "-c", "listen_addresses=",
                "-c", f"unix_socket_directories={self.socket_dir}"]
        for key, value in (settings or {}).items():
            args += ["-c", f"{key}={value}"]
        with self.log_file.open("ab") as out:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 8) -> str:
        return log_tail(self.log_file, lines)

    def connect(self, database: str, user: str, *, timeout: float = 60.0) -> Any:
        """A connection once the server accepts one (hot standby during recovery)."""
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                return psycopg.connect(host=str(self.socket_dir), port=self.port, user=user,
                                       dbname=database, connect_timeout=5, autocommit=True)
            except psycopg.OperationalError as exc:
                if not self.running():
                    raise InputError(f"scratch server stopped: {self.log_tail()}") from None
                if time.monotonic() > deadline:
                    raise InputError(f"scratch server not ready after {timeout:g} s: "
                                     f"{str(exc).strip().splitlines()[-1]}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then immediate (SIGQUIT) if it lingers."""
        stop_process(self.proc, ((signal.SIGINT, 30.0), (signal.SIGQUIT, 10.0),
                                 (signal.SIGKILL, 10.0)))
        self.proc = None
