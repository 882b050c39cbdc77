"""Shared fixtures for the ledger tests: small real SQLite databases in the sample schema."""

from __future__ import annotations

import sqlite3
import tomllib
from collections.abc import Callable, Sequence
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
