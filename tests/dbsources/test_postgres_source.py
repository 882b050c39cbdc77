"""PostgreSQL source against the real server on 127.0.0.1: snapshot through the CLI,
restore, load into a scratch database, control totals; consistency under concurrent writes.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from drkit.config import load_config
from drkit.errors import InputError, IntegrityError
from drkit.sources import postgres
from drkit.sources.dbcommon import scratch_name

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def pg(db: str) -> psycopg.Connection[Any]:
    return psycopg.connect(dbname=db, autocommit=True, **PG)  # type: ignore[arg-type]


def fill(db: str, rows: int = 3000) -> None:
    with pg(db) as conn:
        conn.execute("CREATE TABLE merchants (code text PRIMARY KEY, name text)")
        conn.execute("CREATE SCHEMA ledger")
        conn.execute("CREATE TABLE ledger.orders (id serial PRIMARY KEY, merchant text "
                     "REFERENCES merchants, amount numeric(12,2), note bytea, at timestamptz)")
        conn.execute("CREATE VIEW big AS SELECT * FROM ledger.orders WHERE amount > 100")
        conn.execute("INSERT INTO merchants SELECT 'm' || i, 'Merchant ' || i "
                     "FROM generate_series(0, 96) i")
        conn.execute("INSERT INTO ledger.orders (merchant, amount, note, at) "
                     "SELECT 'm' || (i % 97), i * 1.25, sha256(i::text::bytea), "
                     "'2026-11-01'::timestamptz + i * interval '1 minute' "
                     f"FROM generate_series(1, {rows}) i")


def source_toml(db: str, *, production: bool = True, extra: str = "") -> str:
    return f"""
[sources.shopdb]
type = "postgres"
host = "127.0.0.1"
port = 5432
user = "postgres"
database = "{db}"
production = {str(production).lower()}
{extra}
"""


def rows_of(db: str, table: str) -> list[tuple[Any, ...]]:
    with pg(db) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()


def test_snapshot_restore_load_reproduces_every_row(project: Any, pg_db: str) -> None:
    fill(pg_db)
    proj = project(source_toml(pg_db))
    snap = proj.snapshot()
    assert snap["sources"] == ["shopdb"] and snap["bytes_total"] > 0
    target, restored = proj.restore()
    dump = target / "shopdb" / f"{pg_db}.sql"
    text = dump.read_text()
    assert "CREATE TABLE ledger.orders" in text and "CREATE VIEW public.big" in text
    assert ('COPY "ledger"."orders" ("id", "merchant", "amount", "note", "at") FROM stdin;'
            "\n1\tm1\t") in text
    assert """SELECT pg_catalog.setval('"ledger"."orders_id_seq"', 3000, true);""" in text
    expected = restored["control_totals"]["shopdb"]["databases"][pg_db]
    assert expected["same_snapshot"] is True
    assert expected["tables"]["ledger.orders"]["rows"] == 3000
    assert set(expected["tables"]) == {"public.merchants", "ledger.orders"}

    config = load_config(proj.root / "drkit.toml")
    source = config.source("shopdb")
    scratch = scratch_name(f"{pg_db}_restore")
    with dump.open("rb") as fh:
        postgres.load_dump(source, fh, scratch, config=config)
    try:
        postgres.check_restored(source, scratch, expected)
        for table in ("merchants", "ledger.orders"):
            assert rows_of(scratch, table) == rows_of(pg_db, table)
        # Control totals catch a missing row.
        with pg(scratch) as conn:
            conn.execute("DELETE FROM ledger.orders WHERE id = 1234")
        with pytest.raises(IntegrityError) as err:
            postgres.check_restored(source, scratch, expected)
        assert "ledger.orders: 2999 rows, expected 3000" in str(err.value)
        # ... and a changed value with the same row count.
        with pg(scratch) as conn:
            conn.execute("INSERT INTO ledger.orders (id, merchant, amount, note, at) "
                         "SELECT 1234, merchant, amount + 0.01, note, at FROM ledger.orders "
                         "WHERE id = 1235")
        with pytest.raises(IntegrityError, match="ledger.orders: content differs"):
            postgres.check_restored(source, scratch, expected)
    finally:
        postgres.drop_scratch(source, scratch, config=config)
    with pg("postgres") as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (scratch,)).fetchone() is None


def test_snapshot_while_another_connection_writes_is_consistent(project: Any,
                                                                pg_db: str) -> None:
    with pg(pg_db) as conn:
        conn.execute("CREATE TABLE debit (id bigint PRIMARY KEY, amount int)")
        conn.execute("CREATE TABLE credit (id bigint PRIMARY KEY, amount int)")
        conn.execute("INSERT INTO debit SELECT i, i % 100 FROM generate_series(1, 5000) i")
        conn.execute("INSERT INTO credit SELECT i, i % 100 FROM generate_series(1, 5000) i")
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        # Each transaction writes one row to both tables: a consistent copy has equal counts.
        with psycopg.connect(dbname=pg_db, **PG) as conn:  # type: ignore[arg-type]
            i = 100_000
            while not stop.is_set():
                with conn.transaction():
                    conn.execute("INSERT INTO debit VALUES (%s, 1)", (i,))
                    conn.execute("INSERT INTO credit VALUES (%s, 1)", (i,))
                i += 1
                written[0] += 1

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        proj = project(source_toml(pg_db))
        proj.snapshot()
    finally:
        stop.set()
        thread.join()
    assert written[0] > 0
    target, restored = proj.restore()
    expected = restored["control_totals"]["shopdb"]["databases"][pg_db]
    assert expected["tables"]["public.debit"]["rows"] == expected["tables"]["public.credit"][
        "rows"]
    config = load_config(proj.root / "drkit.toml")
    source = config.source("shopdb")
    scratch = scratch_name(f"{pg_db}_c")
    with (target / "shopdb" / f"{pg_db}.sql").open("rb") as fh:
        postgres.load_dump(source, fh, scratch, config=config)
    try:
        # The dump and the totals come from one snapshot even though rows kept arriving.
        postgres.check_restored(source, scratch, expected)
    finally:
        postgres.drop_scratch(source, scratch, config=config)


def test_scratch_database_safety(project: Any, pg_db: str, tmp_path: Path) -> None:
    fill(pg_db, rows=10)
    other = scratch_name("prod_mirror")
    proj = project(source_toml(pg_db) + f"""
[sources.mirror]
type = "postgres"
database = "{other}"
production = true
""")
    config = load_config(proj.root / "drkit.toml")
    source = config.source("shopdb")
    dump = tmp_path / "empty.dump"
    dump.write_bytes(b"")
    for name, reason in [(pg_db, "drkit only creates"), ("postgres", "drkit only creates"),
                         (other, "marks it as a production database")]:
        with pytest.raises(InputError, match=reason), dump.open("rb") as fh:
            postgres.load_dump(source, fh, name, config=config)
    with pytest.raises(InputError, match="drkit only creates"):
        postgres.drop_scratch(source, pg_db, config=config)
    assert rows_of(pg_db, "merchants")  # untouched


def test_bad_input_one_clear_line(project: Any, pg_db: str, tmp_path: Path) -> None:
    from moto_server import free_port

    proj = project(source_toml(pg_db, extra=f"dump_tool = \"{tmp_path}/no/pg_dump\""))
    res = proj.drkit("snapshot")
    assert res.exit_code == 2
    assert res.stderr.strip().endswith("pg_dump not found on PATH (install the database "
                                       "client tools or set dump_tool)")
    assert len(res.stderr.strip().splitlines()) == 1

    proj = project(source_toml(pg_db).replace("port = 5432", f"port = {free_port()}"))
    res = proj.drkit("snapshot")
    assert res.exit_code == 2
    assert "cannot connect to database" in res.stderr and "Traceback" not in res.stderr

    proj = project(source_toml("no_such_db_drkit"))
    res = proj.drkit("snapshot")
    assert res.exit_code == 2
    assert "database \"no_such_db_drkit\" does not exist" in res.stderr

    # Nothing became visible: no snapshot was committed by the failed runs.
    assert proj.drkit("--json", "snapshots").stdout.count("snapshot_id") == 0


def test_secrets_file_checked_and_never_on_command_line(project: Any, pg_db: str,
                                                         tmp_path: Path) -> None:
    fill(pg_db, rows=10)
    secret = "s3cret-Pa55:word"
    secrets = tmp_path / "pg.secret"
    secrets.write_text(f"# drkit database password\n{secret}\n")
    secrets.chmod(0o644)
    # A wrapper records what pg_dump was given, then runs the real one.
    log = tmp_path / "argv.log"
    wrapper = tmp_path / "bin" / "pg_dump"
    wrapper.parent.mkdir()
    wrapper.write_text(f"""#!/bin/sh
printf '%s\\n' "$@" > {log}
printf 'PGPASSWORD=%s\\n' "${{PGPASSWORD:-unset}}" >> {log}
stat -c 'mode=%a' "$PGPASSFILE" >> {log}
grep -c 's3cret-Pa55' "$PGPASSFILE" >> {log}
exec /usr/bin/pg_dump "$@"
""")
    wrapper.chmod(0o755)
    proj = project(source_toml(pg_db, extra=f'secrets_file = "{secrets}"\n'
                                             f'dump_tool = "{wrapper}"'))
    res = proj.drkit("snapshot")
    assert res.exit_code == 2
    assert "readable by group or others (mode 0644)" in res.stderr
    secrets.chmod(0o600)
    res = proj.drkit("-vv", "snapshot", env={"PGPASSWORD": "from-env-ignored"})
    assert res.exit_code == 0, res.stderr
    recorded = log.read_text()
    assert secret not in recorded.split("PGPASSWORD=")[0]  # not in argv
    assert "PGPASSWORD=unset" in recorded
    assert "mode=600" in recorded and recorded.strip().endswith("1")
    assert secret not in res.stderr and secret not in res.stdout
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert not any(p.name.startswith("drkit-secret-")
                   for p in Path(os.environ.get("TMPDIR", "/tmp")).iterdir()
                   if p.stat().st_uid == os.getuid() and (p / "pgpass").exists())
