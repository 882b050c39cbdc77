"""A private MariaDB server writing a ROW binlog (``mariadb-install-db`` + ``mariadbd
--log-bin`` on a free port of 127.0.0.1, a socket and data directory in a temporary
folder) and a drkit project whose ``[sources.shop]`` points at it. Never the machine's
shared server. Skipped when the MariaDB programs are absent."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from drkit.errors import InputError
from drkit.pitr.mariadb_server import INSTALL_NAMES, SERVER_NAMES, PrivateMySQL, find_program
from drkit.pitr.server import free_port

PASSPHRASE = "correct horse battery staple"


@dataclass
class BinlogProject:
    root: Path
    server: PrivateMySQL

    def sql(self, *statements: str, database: str | None = "shop") -> list[Any]:
        conn = self.server.connect(database)
        try:
            cur = conn.cursor()
            out: list[Any] = []
            for statement in statements:
                cur.execute(statement)
                out.append(cur.fetchall())
            return out
        finally:
            conn.close()


@pytest.fixture
def binlog_project(tmp_path: Path, drkit: Any, monkeypatch: pytest.MonkeyPatch
                   ) -> Iterator[BinlogProject]:
    for names in (SERVER_NAMES, INSTALL_NAMES, ("mariadb-binlog", "mysqlbinlog"),
                  ("mariadb-dump", "mysqldump")):
        if find_program(names) is None:
            pytest.skip(f"MariaDB programs not installed ({' or '.join(names)} not found)")
    monkeypatch.setenv("DRKIT_RECOVERY_PASSPHRASE", PASSPHRASE)
    folder = Path(tempfile.mkdtemp(prefix="drkit-my-"))
    server = PrivateMySQL(folder, port=free_port(), binlog=True)
    if not server.mariadb:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"{server.server} is not MariaDB (these tests start a MariaDB server)")
    try:
        server.init()
    except InputError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"cannot create a private MariaDB server: {exc}")
    server.start({"innodb_flush_log_at_trx_commit": "2", "sync_binlog": "0"})
    try:
        server.connect().cursor().execute("CREATE DATABASE shop")
        (tmp_path / "drkit.toml").write_text(f"""
[repository]
primary = "beijing"
keys = "keys"
cache = ".drkit/cache"
pack_size_mib = 4

[regions.beijing]
url = "file:regions/beijing"

[sources.shop]
type = "mysql"
host = "127.0.0.1"
port = {server.port}
user = "root"
database = "shop"
""")
        assert drkit("keys", "init").exit_code == 0
        yield BinlogProject(tmp_path, server)
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
