"""Benchmark: how much of a daily database dump drkit stores again when 1% of the data changes.

    .venv/bin/python bench/dbdump.py [--rows 400000] [--engines postgres,mysql]
                                     [--dir /tmp/drkit-dbbench]

For each engine (PostgreSQL and MariaDB/MySQL on 127.0.0.1, the servers of this machine)
and each change pattern, it creates a fresh database with an ``orders`` table of ROWS rows
(about 120 bytes each) and a small ``merchants`` table, takes a first snapshot with the
real ``drkit snapshot`` (a child process, local repository), changes 1% of the rows, takes
a second snapshot and reports, from drkit's own JSON output:

- dump size (``bytes_total``),
- new chunk bytes of the second run (``bytes_new``: dump bytes not already in the
  repository), as a share of the dump,
- bytes written to storage by the second run (``bytes_stored``: compressed, encrypted
  packs plus index and manifest) as a share of the dump.

Change patterns (each 1% of ROWS):

- ``append+recent``: 0.5% new orders appended and 0.5% updates of orders among the
  newest 5% (status changes of recent orders; the usual shape of an order table);
- ``uniform``: 1% updates of rows picked uniformly at random (worst case for any
  chunk-level deduplication: with ~1 MiB chunks nearly every chunk holds a changed row).

Databases are dropped afterwards. Wall times are indicative only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PASSPHRASE = "bench-passphrase"
ROOT = Path(__file__).resolve().parent.parent


def drkit(project: Path, *args: str) -> dict[str, Any]:
    env = dict(os.environ, DRKIT_RECOVERY_PASSPHRASE=PASSPHRASE)
    out = subprocess.run([sys.executable, "-m", "drkit", "--json", *args], cwd=project,
                         env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"drkit {' '.join(args)} failed: {out.stderr.strip()}")
    return dict(json.loads(out.stdout)) if out.stdout.strip() else {}


def write_project(project: Path, engine: str, database: str) -> None:
    port = 5432 if engine == "postgres" else 3306
    user = "postgres" if engine == "postgres" else "root"
    project.mkdir(parents=True)
    (project / "drkit.toml").write_text(f"""
[repository]
primary = "local"
keys = "keys"
cache = ".drkit/cache"

[regions.local]
url = "file:repo"

[sources.db]
type = "{engine}"
host = "127.0.0.1"
port = {port}
user = "{user}"
database = "{database}"
""", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "drkit", "keys", "init"], cwd=project, check=True,
                   env=dict(os.environ, DRKIT_RECOVERY_PASSPHRASE=PASSPHRASE),
                   capture_output=True)


class Postgres:
    name = "postgres"

    def __init__(self) -> None:
        import psycopg

        self.psycopg = psycopg

    def conn(self, db: str) -> Any:
        return self.psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname=db,
                                    autocommit=True)

    def create(self, db: str, rows: int) -> None:
        with self.conn("postgres") as c:
            c.execute(f'DROP DATABASE IF EXISTS "{db}"')
            c.execute(f'CREATE DATABASE "{db}"')
        with self.conn(db) as c:
            c.execute("CREATE TABLE merchants (code text PRIMARY KEY, name text)")
            c.execute("INSERT INTO merchants SELECT 'm' || i, 'Merchant ' || i "
                      "FROM generate_series(0, 999) i")
            c.execute("CREATE TABLE orders (id bigint PRIMARY KEY, merchant text, "
                      "amount numeric(12,2), status text, note text, at timestamptz)")
            c.execute("INSERT INTO orders SELECT i, 'm' || (i % 1000), (i % 100000) / 7.0, "
                      "'paid', md5(i::text) || md5((i * 7)::text), "
                      "'2026-01-01'::timestamptz + i * interval '1 second' "
                      f"FROM generate_series(1, {rows}) i")
            c.execute("VACUUM ANALYZE orders")

    def change(self, db: str, rows: int, pattern: str) -> None:
        n = rows // 100
        with self.conn(db) as c:
            if pattern == "uniform":
                c.execute("UPDATE orders SET status = 'refunded' WHERE id IN (SELECT "
                          f"(random() * {rows - 1})::bigint + 1 FROM generate_series(1, {n}))")
            else:
                c.execute("INSERT INTO orders SELECT i, 'm' || (i % 1000), 1.5, 'new', "
                          "md5(i::text), now() "
                          f"FROM generate_series({rows + 1}, {rows + n // 2}) i")
                c.execute("UPDATE orders SET status = 'shipped' WHERE id IN (SELECT "
                          f"{rows} - (random() * {rows // 20})::bigint "
                          f"FROM generate_series(1, {n // 2}))")

    def drop(self, db: str) -> None:
        with self.conn("postgres") as c:
            c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


class MySQL:
    name = "mysql"

    def __init__(self) -> None:
        import pymysql

        self.pymysql = pymysql

    def run(self, db: str | None, *sql: str) -> None:
        c = self.pymysql.connect(host="127.0.0.1", port=3306, user="root", password="",
                                 database=db, autocommit=True)
        try:
            cur = c.cursor()
            for stmt in sql:
                cur.execute(stmt)
        finally:
            c.close()

    def create(self, db: str, rows: int) -> None:
        self.run(None, f"DROP DATABASE IF EXISTS `{db}`", f"CREATE DATABASE `{db}`")
        self.run(db,
                 "CREATE TABLE merchants (code VARCHAR(16) PRIMARY KEY, name TEXT)",
                 "INSERT INTO merchants SELECT CONCAT('m', seq), CONCAT('Merchant ', seq) "
                 "FROM seq_0_to_999",
                 "CREATE TABLE orders (id BIGINT PRIMARY KEY, merchant VARCHAR(16), "
                 "amount DECIMAL(12,2), status VARCHAR(16), note TEXT, at DATETIME)",
                 "INSERT INTO orders SELECT seq, CONCAT('m', seq % 1000), (seq % 100000) / 7, "
                 "'paid', CONCAT(MD5(seq), MD5(seq * 7)), "
                 "'2026-01-01' + INTERVAL seq SECOND "
                 f"FROM seq_1_to_{rows}")

    def change(self, db: str, rows: int, pattern: str) -> None:
        n = rows // 100
        if pattern == "uniform":
            self.run(db, "UPDATE orders SET status = 'refunded' ORDER BY RAND() "
                         f"LIMIT {n}")
        else:
            self.run(db,
                     "INSERT INTO orders SELECT seq, CONCAT('m', seq % 1000), 1.5, 'new', "
                     f"MD5(seq), NOW() FROM seq_{rows + 1}_to_{rows + n // 2}",
                     f"UPDATE orders SET status = 'shipped' WHERE id > {rows - rows // 20} "
                     f"ORDER BY RAND() LIMIT {n // 2}")

    def drop(self, db: str) -> None:
        self.run(None, f"DROP DATABASE IF EXISTS `{db}`")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--engines", default="postgres,mysql")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/drkit-dbbench"))
    args = parser.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    engines = {"postgres": Postgres, "mysql": MySQL}
    results = []
    for name in args.engines.split(","):
        engine = engines[name]()
        for pattern in ("append+recent", "uniform"):
            db = f"drkit_bench_{name}_{pattern.replace('+', '_')}"
            project = args.dir / db
            engine.create(db, args.rows)
            try:
                write_project(project, name, db)
                t0 = time.monotonic()
                first = drkit(project, "snapshot")
                t1 = time.monotonic()
                engine.change(db, args.rows, pattern)
                t2 = time.monotonic()
                second = drkit(project, "snapshot")
                t3 = time.monotonic()
            finally:
                engine.drop(db)
            total = second["bytes_total"]
            results.append({
                "engine": name, "pattern": pattern, "rows": args.rows,
                "dump_bytes": total, "first_stored": first["bytes_stored"],
                "second_new": second["bytes_new"], "second_stored": second["bytes_stored"],
                "new_share": second["bytes_new"] / total,
                "stored_share": second["bytes_stored"] / total,
                "first_s": round(t1 - t0, 1), "second_s": round(t3 - t2, 1)})
    print(f"{'engine':9} {'change (1%)':14} {'dump MiB':>9} {'1st stored':>10} "
          f"{'2nd new':>9} {'2nd stored':>10} {'new %':>6} {'stored %':>8} {'1st s':>6} "
          f"{'2nd s':>6}")
    for r in results:
        mib = 1 << 20
        print(f"{r['engine']:9} {r['pattern']:14} {r['dump_bytes'] / mib:9.1f} "
              f"{r['first_stored'] / mib:10.1f} {r['second_new'] / mib:9.1f} "
              f"{r['second_stored'] / mib:10.1f} {100 * r['new_share']:6.1f} "
              f"{100 * r['stored_share']:8.1f} {r['first_s']:6.1f} {r['second_s']:6.1f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
