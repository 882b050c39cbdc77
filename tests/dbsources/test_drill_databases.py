"""``drkit drill`` on database sources: each restored dump is loaded into a scratch
database on the source's server, its control totals are checked there, and the scratch
database is dropped afterwards (kept with --keep)."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pymysql

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def pg_databases() -> set[str]:
    with psycopg.connect(dbname="postgres", autocommit=True,
                         **PG) as conn:  # type: ignore[arg-type]
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


def test_drill_loads_postgres_dump_checks_totals_and_drops(project: Any, pg_db: str) -> None:
    with psycopg.connect(dbname=pg_db, autocommit=True, **PG) as conn:  # type: ignore[arg-type]
        conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, merchant int, fen bigint)")
        conn.execute("INSERT INTO orders (merchant, fen) SELECT i % 50, i * 7 "
                     "FROM generate_series(1, 5000) i")
    proj = project(f"""
[sources.shopdb]
type = "postgres"
host = "127.0.0.1"
port = 5432
user = "postgres"
database = "{pg_db}"
production = true
""")
    proj.snapshot()
    res = proj.drkit("--json", "drill", "--region", "beijing")
    assert res.exit_code == 0, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    step = next(s for s in doc["steps"] if s["name"] == "load databases")
    assert step["ok"] is True and step["data"]["databases"] == 1
    [scratch] = step["data"]["scratch"]
    assert scratch.startswith("drkit_scratch_") and scratch != pg_db
    assert scratch not in pg_databases()  # dropped after the drill

    res = proj.drkit("--json", "drill", "--region", "beijing", "--keep",
                     "--scratch", str(proj.root / "scratch"))
    assert res.exit_code == 0, res.stdout + res.stderr
    assert scratch in pg_databases()  # kept for inspection
    with psycopg.connect(dbname=scratch, autocommit=True,
                         **PG) as conn:  # type: ignore[arg-type]
        assert conn.execute("SELECT count(*), sum(fen) FROM orders").fetchone() == (
            5000, sum(i * 7 for i in range(1, 5001)))
    # The next drill replaces a scratch database left behind.
    res = proj.drkit("--json", "drill", "--region", "beijing")
    assert res.exit_code == 0, res.stdout + res.stderr
    assert scratch not in pg_databases()


def test_drill_loads_mysql_dump(project: Any, my_db: str) -> None:
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="",
                           database=my_db, autocommit=True)
    cur = conn.cursor()
    cur.execute("CREATE TABLE members (id int PRIMARY KEY, points int)")
    cur.executemany("INSERT INTO members VALUES (%s, %s)", [(i, i % 13) for i in range(2000)])
    conn.close()
    proj = project(f"""
[sources.crm]
type = "mysql"
host = "127.0.0.1"
port = 3306
user = "root"
database = "{my_db}"
""")
    proj.snapshot()
    res = proj.drkit("--json", "drill", "--region", "beijing")
    assert res.exit_code == 0, res.stdout + res.stderr
    step = next(s for s in json.loads(res.stdout)["steps"] if s["name"] == "load databases")
    assert step["ok"] is True and step["data"]["databases"] == 1


def test_restore_into_database_loads_and_refuses_production(project: Any, pg_db: str) -> None:
    with psycopg.connect(dbname=pg_db, autocommit=True,
                         **PG) as conn:  # type: ignore[arg-type]
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        conn.execute("INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 300) i")
    proj = project(f"""
[sources.shopdb]
type = "postgres"
host = "127.0.0.1"
port = 5432
user = "postgres"
database = "{pg_db}"
production = true
""")
    proj.snapshot()
    scratch = f"drkit_scratch_{pg_db}_restore"
    res = proj.drkit("--json", "restore", "latest", "--to", "out", "--into-database", scratch)
    assert res.exit_code == 0, res.stdout + res.stderr
    assert json.loads(res.stdout)["databases_loaded"] == [
        {"source": "shopdb", "database": pg_db, "into": scratch}]
    with psycopg.connect(dbname=scratch, autocommit=True,
                         **PG) as conn:  # type: ignore[arg-type]
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (300,)
    # The production database itself is never a load target.
    res = proj.drkit("restore", "latest", "--to", "out2", "--into-database", pg_db)
    assert res.exit_code == 2
    assert "refusing" in res.stderr and "Traceback" not in res.stderr
