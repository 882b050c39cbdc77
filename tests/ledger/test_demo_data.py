"""The demo merchant database: deterministic, the right shape, clean under the ledger."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from drkit.demo_data import (
    adjust_balance,
    delete_merchant,
    delete_orders,
    generate_shop_db,
)
from drkit.errors import InputError
from drkit.ledger import compute_ledger, default_spec


def table_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with closing(sqlite3.connect(path)) as conn:
        for table in ("merchants", "members", "orders"):
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY id"):
                digest.update(repr(row).encode())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("demo") / "shop.db"
    return generate_shop_db(path)


def test_same_seed_same_rows_other_seed_other_rows(demo, tmp_path: Path) -> None:
    again = generate_shop_db(tmp_path / "again.db")
    assert again.to_dict() | {"path": ""} == demo.to_dict() | {"path": ""}
    assert table_digest(tmp_path / "again.db") == table_digest(demo.path)
    other = generate_shop_db(tmp_path / "other.db", seed=7)
    assert table_digest(tmp_path / "other.db") != table_digest(demo.path)
    assert other.merchants == demo.merchants


def test_shape_at_scale_one(demo) -> None:
    spec = default_spec()
    assert demo.merchants == 3_000
    assert 20_000 <= demo.members <= 60_000
    assert 100_000 <= demo.orders <= 200_000
    assert set(demo.merchants_by_industry) == set(spec.industries)
    assert set(demo.merchants_by_plan) == {"cash", "traffic"}
    assert min(demo.merchants_by_plan.values()) > 300
    assert set(demo.orders_by_status) == {"paid", "refunded", "cancelled"}
    assert demo.orders_before_baseline > demo.orders_in_baseline > demo.orders_in_outage > 0

    with closing(sqlite3.connect(demo.path)) as conn:
        (count, bad_time, bad_tax, cancelled_with_time) = conn.execute("""
            SELECT COUNT(*),
                   SUM(paid_at IS NOT NULL AND paid_at NOT LIKE '2020-02-__T__:__:__+08:00'),
                   SUM(tax_fen < 0 OR tax_fen >= amount_fen),
                   SUM(status = 'cancelled' AND paid_at IS NOT NULL)
            FROM orders""").fetchone()
        assert (count, bad_time, bad_tax, cancelled_with_time) == (demo.orders, 0, 0, 0)
        foreign = conn.execute("""
            SELECT COUNT(*) FROM orders o LEFT JOIN members m ON m.id = o.member_id
            WHERE o.member_id IS NOT NULL AND (m.id IS NULL OR m.merchant_id != o.merchant_id)
        """).fetchone()[0]
        assert foreign == 0
        points, balance, with_balance = conn.execute(
            "SELECT SUM(points), SUM(balance_fen), SUM(balance_fen > 0) FROM members"
        ).fetchone()
        assert points > 0 and balance > 0 and 0 < with_balance < demo.members
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_demo_ledger_is_clean_and_under_the_provision(demo) -> None:
    with closing(sqlite3.connect(f"{demo.path.as_uri()}?mode=ro", uri=True)) as conn:
        ledger = compute_ledger(conn, default_spec())
    totals = ledger.totals
    assert ledger.findings == ()
    assert totals.merchants == demo.merchants
    assert totals.traffic_merchants == demo.merchants_by_plan["traffic"]
    assert totals.member_count == demo.members
    assert 0 < totals.baseline_orders <= demo.orders_in_baseline
    assert 0 < totals.cash_fen < default_spec().cap_fen
    assert sum(1 for e in ledger.entries if e.cash_fen > 0) > 1_000


def test_refuses_to_overwrite_and_bad_scale(demo, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="already exists"):
        generate_shop_db(demo.path)
    with pytest.raises(InputError, match="scale must be at least 1"):
        generate_shop_db(tmp_path / "x.db", scale=0)
    assert not (tmp_path / "x.db").exists()


def test_damage_helpers(tmp_path: Path, write_db) -> None:
    db = write_db(tmp_path / "d.db", [(1, "retail", "cash")],
                  [(1, 100, 0, "paid", "2020-02-17T19:00:00+08:00"),
                   (1, 100, 0, "paid", "2020-02-17T10:59:59Z"),
                   (1, 100, 0, "cancelled", None)],
                  [(1, 300)])
    start = datetime.fromisoformat("2020-02-17T19:00:00+08:00")
    assert delete_orders(db, 1, (start, start + timedelta(days=1))) == 1
    assert delete_orders(db, 1) == 2
    with pytest.raises(InputError, match="timezone-aware"):
        delete_orders(db, 1, (start.replace(tzinfo=None), start.replace(tzinfo=None)))
    member = adjust_balance(db, 1, 50)
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT balance_fen FROM members WHERE id = ?",
                            (member,)).fetchone() == (350,)
    assert delete_merchant(db, 1) == 2
    with pytest.raises(InputError, match="no merchant 1"):
        delete_merchant(db, 1)
    with pytest.raises(InputError, match="no such database"):
        delete_orders(tmp_path / "none.db", 1)
