"""A private MariaDB (or MySQL) server on a scratch data directory: its own Unix socket in
the scratch folder, no TCP unless a port is asked for (then 127.0.0.1 only), root without
a password for local connections only, and no binlog unless asked for (a scratch server
never writes into the production archive).

MariaDB runs as root only when told to (``--user=root``); drkit passes that when it runs
as root, so the data files stay owned by the user running drkit.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from drkit.errors import InputError
from drkit.pitr.server import log_tail, stop_process

log = logging.getLogger(__name__)

SERVER_NAMES = ("mariadbd", "mysqld")
INSTALL_NAMES = ("mariadb-install-db", "mysql_install_db")


def find_program(names: tuple[str, ...], explicit: str | None = None) -> str | None:
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in names:
        found = shutil.which(name)
        if found:
            return found
        for folder in ("/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin"):
            candidate = Path(folder) / name
            if candidate.exists():
                return str(candidate)
    return None


def _is_mariadb(server: str) -> bool:
    try:
        out = subprocess.run([server, "--version"], capture_output=True, text=True,
                             timeout=30, check=False).stdout
    except OSError:
        return False
    return "MariaDB" in out


class PrivateMySQL:
    """One private server. ``init()`` once, ``start()``, ``connect()``; ``stop()`` always."""

    def __init__(self, folder: Path, *, port: int | None = None, binlog: bool = False,
                 server_id: int = 1, server: str | None = None) -> None:
        found = find_program(SERVER_NAMES, server)
        if found is None:
            raise InputError("MariaDB/MySQL server program (mariadbd, mysqld) not found")
        self.server = found
        self.mariadb = _is_mariadb(found)
        self.folder = folder
        self.data = folder / "data"
        self.socket = folder / "mysqld.sock"
        self.port = port
        self.binlog = binlog
        self.server_id = server_id
        self.log_file = folder / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def init(self) -> None:
        """Create the system tables in an empty data directory."""
        self.folder.mkdir(parents=True, exist_ok=True)
        user = ["--user=root"] if os.geteuid() == 0 else []
        if self.mariadb:
            install = find_program(INSTALL_NAMES)
            if install is None:
                raise InputError("mariadb-install-db not found")
            args = [install, "--no-defaults", f"--datadir={self.data}",
                    "--auth-root-authentication-method=normal", "--skip-test-db",
                    "--skip-name-resolve", *user]
        else:
            args = [self.server, "--no-defaults", "--initialize-insecure",
                    f"--datadir={self.data}", *user]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False,
                              stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
            raise InputError(f"creating a private server in {self.data} failed: "
                             f"{' / '.join(lines[-3:]) or 'no message'}")

    def start(self, settings: dict[str, str] | None = None) -> None:
        args = [self.server, "--no-defaults", f"--datadir={self.data}",
                f"--socket={self.socket}", f"--pid-file={self.folder / 'mysqld.pid'}",
                f"--log-error={self.log_file}", "--skip-name-resolve",
                "--innodb-buffer-pool-size=32M", f"--server-id={self.server_id}"]
        if os.geteuid() == 0:
            args.append("--user=root")
        if self.port is None:
            args.append("--skip-networking")
        else:
            args += [f"--port={self.port}", "--bind-address=127.0.0.1"]
        if self.binlog:
            args += [f"--log-bin={self.data / 'mysql-bin'}", "--binlog-format=ROW"]
        else:
            args.append("--skip-log-bin")
        args += [f"--{k.replace('_', '-')}={v}" for k, v in (settings or {}).items()]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 4) -> str:
        return log_tail(self.log_file, lines)

    def connect(self, database: str | None = None, *, timeout: float = 60.0) -> Any:
        """A pymysql connection over the socket (autocommit) once the server accepts one."""
        import pymysql

        deadline = time.monotonic() + timeout
        while True:
            try:
                return pymysql.connect(unix_socket=str(self.socket), user="root", password="",
                                       database=database, autocommit=True,
                                       charset="utf8mb4", connect_timeout=5)
            except pymysql.err.OperationalError as exc:
                if not self.running():
                    raise InputError(f"private server stopped: {self.log_tail()}") from None
                if time.monotonic() > deadline:
                    raise InputError(f"private server not ready after {timeout:g} s: "
                                     f"{exc.args[-1]}") from None
                time.sleep(0.2)

    def client_args(self) -> list[str]:
        """Arguments for the mariadb/mysql client to reach this server."""
        return ["--no-defaults", f"--socket={self.socket}", "--user=root"]

    def stop(self) -> None:
        """Clean shutdown (SIGTERM), then SIGKILL if it lingers."""
        stop_process(self.proc, ((signal.SIGTERM, 60.0), (signal.SIGKILL, 10.0)))
        self.proc = None
