"""Shared fixtures for the ledger tests: small real SQLite databases in the sample schema."""

from __future__ import annotations

import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
import tomllib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from drkit.demo_data import SCHEMA
from drkit.ledger.spec import default_spec_text

MakeDB = Callable[..., Path]


def write_shop_db(path: Path, merchants: Sequence[tuple[Any, ...]],
                  orders: Sequence[tuple[Any, ...]] = (),
                  members: Sequence[tuple[Any, ...]] = ()) -> Path:
    """merchants: (id, industry, plan); orders: (merchant_id, amount, tax, status, paid_at);
    members: (merchant_id, balance_fen)."""
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    with conn:
        conn.executemany("INSERT INTO merchants VALUES (?, ?, ?, ?)",
                         [(m[0], f"shop {m[0]}", m[1], m[2]) for m in merchants])
        conn.executemany(
            "INSERT INTO members (merchant_id, phone, points, balance_fen, created_at) "
            "VALUES (?, '13800000000', 0, ?, '2019-05-01T10:00:00+08:00')", members)
        conn.executemany(
            "INSERT INTO orders (merchant_id, member_id, amount_fen, tax_fen, status, "
            "paid_at) VALUES (?, NULL, ?, ?, ?, ?)", orders)
    conn.close()
    return path


@pytest.fixture
def make_db(tmp_path: Path) -> MakeDB:
    counter = iter(range(1_000_000))

    def make(merchants: Sequence[tuple[Any, ...]], orders: Sequence[tuple[Any, ...]] = (),
             members: Sequence[tuple[Any, ...]] = (), name: str | None = None) -> Path:
        path = tmp_path / (name or f"shop{next(counter)}.db")
        return write_shop_db(path, merchants, orders, members)

    return make


@pytest.fixture
def write_db() -> Callable[..., Path]:
    return write_shop_db


@pytest.fixture
def spec_data() -> dict[str, Any]:
    """The default spec as a fresh, editable dictionary."""
    return tomllib.loads(default_spec_text())


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


@pytest.fixture
def ro_connect() -> Callable[[Path], sqlite3.Connection]:
    return connect


@pytest.fixture(scope="session")
def postgres_conninfo() -> Iterator[str]:
    """A PostgreSQL to read from: $DRKIT_TEST_PG, else a throwaway cluster on a Unix socket.

    The throwaway cluster listens on no TCP address at all; it runs as the ``postgres``
    user because PostgreSQL refuses to run as root. Skips when neither is possible.
    """
    env = os.environ.get("DRKIT_TEST_PG")
    if env:
        yield env
        return
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("no PostgreSQL (set DRKIT_TEST_PG or install initdb/pg_ctl)")
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run PostgreSQL")
        prefix = ["runuser", "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="drkit-pg-"))
    if prefix:
        shutil.chown(base, user="postgres")
    data = base / "data"
    try:
        subprocess.run([*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "drkit",
                        "--no-sync", "-E", "UTF8"], check=True, capture_output=True)
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-w", "-l", str(base / "log"),
                        "-o", f"-c listen_addresses='' -c unix_socket_directories={base} "
                              "-c fsync=off", "start"], check=True, capture_output=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"cannot start a throwaway PostgreSQL: {exc}")
    try:
        yield f"host={base} user=drkit dbname=postgres"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
