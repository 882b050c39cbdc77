"""The default spec's SQL on PostgreSQL gives the same ledger as on SQLite.

PostgreSQL returns timestamptz values (aware datetimes) for paid_at and numeric (Decimal)
for SUM over bigint: the formula must treat both exactly as SQLite's text and integers.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from drkit.demo_data import generate_shop_db
from drkit.ledger import compute_ledger, default_spec, reconcile

psycopg = pytest.importorskip("psycopg")

PG_SCHEMA = """
CREATE TABLE merchants (id bigint PRIMARY KEY, name text, industry text, plan text);
CREATE TABLE members (id bigint PRIMARY KEY, merchant_id bigint, phone text,
                      points bigint, balance_fen bigint, created_at timestamptz);
CREATE TABLE orders (id bigint PRIMARY KEY, merchant_id bigint, member_id bigint,
                     amount_fen bigint, tax_fen bigint, status text, paid_at timestamptz);
"""


def test_postgres_and_sqlite_ledgers_reconcile(postgres_conninfo: str,
                                               tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    generate_shop_db(db, seed=11)
    spec = default_spec()
    with closing(sqlite3.connect(db)) as lite:
        from_sqlite = compute_ledger(lite, spec)
        with psycopg.connect(postgres_conninfo) as pg:
            pg.execute("DROP SCHEMA IF EXISTS drkit_ledger_test CASCADE")
            pg.execute("CREATE SCHEMA drkit_ledger_test")
            pg.execute("SET search_path TO drkit_ledger_test")
            pg.execute(PG_SCHEMA)
            with pg.cursor() as cur:
                for table in ("merchants", "members", "orders"):
                    with cur.copy(f"COPY {table} FROM STDIN") as copy:
                        for row in lite.execute(f"SELECT * FROM {table}"):
                            copy.write_row(row)
            # Show the session in another zone: instants must not care.
            pg.execute("SET TIME ZONE 'America/Los_Angeles'")
            from_postgres = compute_ledger(pg, spec)
            pg.rollback()
    result = reconcile(from_sqlite, from_postgres)
    assert result.passed, result.to_dict(limit=3)
    assert from_postgres.to_json() == from_sqlite.to_json()
    assert from_postgres.totals.merchants == 3_000
