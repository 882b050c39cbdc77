"""Fixtures for the database-source tests: fresh databases on the PostgreSQL and MariaDB
servers of this machine (127.0.0.1), skipped with a clear reason where a server is absent,
and a drkit project (config + keys) in tmp_path."""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PG_PORT = int(os.environ.get("DRKIT_TEST_PG", "5432") or 5432)
MY_PORT = int(os.environ.get("DRKIT_TEST_MYSQL", "3306") or 3306)
PASSPHRASE = "correct horse battery staple"
_ids = itertools.count(1)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def unique_name(stem: str) -> str:
    return f"{stem}_{os.getpid()}_{next(_ids)}"


@pytest.fixture
def pg_db() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (trust auth as user postgres); dropped after."""
    if not port_open(PG_PORT):
        pytest.skip(f"no PostgreSQL server on 127.0.0.1:{PG_PORT}")
    import psycopg

    name = unique_name("drkit_t")
    with psycopg.connect(host="127.0.0.1", port=PG_PORT, user="postgres", dbname="postgres",
                         autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(host="127.0.0.1", port=PG_PORT, user="postgres", dbname="postgres",
                         autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for (left,) in admin.execute("SELECT datname FROM pg_database WHERE datname LIKE "
                                     f"'drkit_scratch_{name}%'").fetchall():
            admin.execute(f'DROP DATABASE IF EXISTS "{left}" WITH (FORCE)')


@pytest.fixture
def my_db() -> Iterator[str]:
    """A fresh, empty MariaDB/MySQL database (root, empty password); dropped after."""
    if not port_open(MY_PORT):
        pytest.skip(f"no MySQL/MariaDB server on 127.0.0.1:{MY_PORT}")
    import pymysql

    name = unique_name("drkit_t")
    conn = pymysql.connect(host="127.0.0.1", port=MY_PORT, user="root", password="",
                           autocommit=True)
    conn.cursor().execute(f"CREATE DATABASE `{name}`")
    conn.close()
    yield name
    conn = pymysql.connect(host="127.0.0.1", port=MY_PORT, user="root", password="",
                           autocommit=True)
    cur = conn.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    cur.execute(f"SHOW DATABASES LIKE 'drkit\\_scratch\\_{name}%'")
    for (left,) in cur.fetchall():
        cur.execute(f"DROP DATABASE IF EXISTS `{left}`")
    conn.close()


@dataclass
class Project:
    root: Path
    drkit: Any

    def snapshot(self) -> dict[str, Any]:
        import json

        res = self.drkit("--json", "snapshot")
        assert res.exit_code == 0, res.stderr
        return dict(json.loads(res.stdout))

    def restore(self, target: str = "out") -> tuple[Path, dict[str, Any]]:
        import json

        res = self.drkit("--json", "restore", "latest", "--to", target)
        assert res.exit_code == 0, res.stderr
        return self.root / target, dict(json.loads(res.stdout))


def write_project(tmp_path: Path, sources: str) -> None:
    (tmp_path / "drkit.toml").write_text(f"""
[repository]
primary = "beijing"
keys = "keys"
cache = ".drkit/cache"
pack_size_mib = 4

[regions.beijing]
url = "file:regions/beijing"

{sources}
""", encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path, drkit: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``make(sources_toml) -> Project``: config with one local region, keys initialised."""
    monkeypatch.setenv("DRKIT_RECOVERY_PASSPHRASE", PASSPHRASE)

    def make(sources: str) -> Project:
        write_project(tmp_path, sources)
        if not (tmp_path / "keys").exists():
            res = drkit("keys", "init")
            assert res.exit_code == 0, res.stderr
        return Project(tmp_path, drkit)

    return make
