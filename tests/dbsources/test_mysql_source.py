"""MySQL/MariaDB source against the real server on 127.0.0.1: snapshot through the CLI,
restore, load into a scratch database, control totals; consistency under concurrent writes.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pymysql
import pytest

from drkit.config import load_config
from drkit.errors import InputError, IntegrityError
from drkit.sources import mysql
from drkit.sources.dbcommon import scratch_name


def my(db: str | None = None) -> Any:
    return pymysql.connect(host="127.0.0.1", port=3306, user="root", password="",
                           database=db, autocommit=True)


def execute(db: str, *statements: str) -> None:
    conn = my(db)
    try:
        cur = conn.cursor()
        for stmt in statements:
            cur.execute(stmt)
    finally:
        conn.close()


def fill(db: str, rows: int = 3000) -> None:
    execute(
        db,
        "CREATE TABLE merchants (code VARCHAR(16) PRIMARY KEY, name TEXT) ENGINE=InnoDB",
        "CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, merchant VARCHAR(16), "
        "amount DECIMAL(12,2), note BLOB, at DATETIME(3), ratio DOUBLE, "
        "FOREIGN KEY (merchant) REFERENCES merchants(code)) ENGINE=InnoDB",
        "CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, what TEXT) ENGINE=InnoDB",
        "CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW "
        "INSERT INTO audit (what) VALUES (CONCAT('order ', NEW.id))",
        "CREATE FUNCTION double_it(x INT) RETURNS INT DETERMINISTIC RETURN x * 2",
        "CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM audit",
        "INSERT INTO merchants SELECT CONCAT('m', seq), CONCAT('Merchant ', seq) "
        "FROM seq_0_to_96",
        "INSERT INTO orders (merchant, amount, note, at, ratio) SELECT CONCAT('m', seq % 97), "
        "seq * 1.25, UNHEX(SHA2(seq, 256)), '2026-11-01' + INTERVAL seq MINUTE, seq / 7 "
        f"FROM seq_1_to_{rows}",
    )


def source_toml(db: str, *, extra: str = "") -> str:
    return f"""
[sources.shopdb]
type = "mysql"
host = "127.0.0.1"
port = 3306
user = "root"
database = "{db}"
production = true
{extra}
"""


def rows_of(db: str, table: str) -> list[tuple[Any, ...]]:
    conn = my(db)
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT * FROM {table} ORDER BY 1")
        return list(cur.fetchall())
    finally:
        conn.close()


def test_snapshot_restore_load_reproduces_every_row(project: Any, my_db: str) -> None:
    fill(my_db)
    proj = project(source_toml(my_db))
    proj.snapshot()
    target, restored = proj.restore()
    dump = target / "shopdb" / f"{my_db}.sql"
    text = dump.read_text(errors="replace")
    assert "TRIGGER orders_audit" in text and "`nightly`" in text and "double_it" in text
    expected = restored["control_totals"]["shopdb"]["databases"][my_db]
    assert expected["same_snapshot"] is True
    assert expected["tables"]["orders"]["rows"] == 3000
    assert expected["tables"]["audit"]["rows"] == 3000

    config = load_config(proj.root / "drkit.toml")
    source = config.source("shopdb")
    scratch = scratch_name(f"{my_db}_restore")
    with dump.open("rb") as fh:
        mysql.load_dump(source, fh, scratch, config=config)
    try:
        mysql.check_restored(source, scratch, expected)
        for table in ("merchants", "orders", "audit"):
            assert rows_of(scratch, table) == rows_of(my_db, table)
        conn = my(scratch)
        cur = conn.cursor()
        cur.execute("SELECT double_it(21)")
        assert cur.fetchone() == (42,)
        cur.execute("DELETE FROM orders WHERE id = 1234")
        conn.close()
        with pytest.raises(IntegrityError) as err:
            mysql.check_restored(source, scratch, expected)
        assert "orders: 2999 rows, expected 3000" in str(err.value)
        execute(scratch, "INSERT INTO orders (id, merchant, amount, note, at, ratio) "
                         "SELECT 1234, merchant, amount + 0.01, note, at, ratio FROM orders "
                         "WHERE id = 1235")
        with pytest.raises(IntegrityError, match="orders: content differs"):
            mysql.check_restored(source, scratch, expected)
    finally:
        mysql.drop_scratch(source, scratch, config=config)
    conn = my()
    cur = conn.cursor()
    cur.execute("SHOW DATABASES LIKE %s", (scratch,))
    assert cur.fetchall() == ()
    conn.close()


def test_snapshot_while_another_connection_writes_is_consistent(project: Any,
                                                                my_db: str) -> None:
    execute(my_db,
            "CREATE TABLE debit (id BIGINT PRIMARY KEY, amount INT) ENGINE=InnoDB",
            "CREATE TABLE credit (id BIGINT PRIMARY KEY, amount INT) ENGINE=InnoDB",
            "INSERT INTO debit SELECT seq, seq % 100 FROM seq_1_to_5000",
            "INSERT INTO credit SELECT seq, seq % 100 FROM seq_1_to_5000")
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="",
                               database=my_db, autocommit=False)
        cur = conn.cursor()
        i = 100_000
        while not stop.is_set():
            cur.execute("INSERT INTO debit VALUES (%s, 1)", (i,))
            cur.execute("INSERT INTO credit VALUES (%s, 1)", (i,))
            conn.commit()
            i += 1
            written[0] += 1
        conn.close()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        proj = project(source_toml(my_db))
        proj.snapshot()
    finally:
        stop.set()
        thread.join()
    assert written[0] > 0
    target, restored = proj.restore()
    expected = restored["control_totals"]["shopdb"]["databases"][my_db]
    assert expected["same_snapshot"] is True
    assert expected["tables"]["debit"]["rows"] == expected["tables"]["credit"]["rows"]
    config = load_config(proj.root / "drkit.toml")
    source = config.source("shopdb")
    scratch = scratch_name(f"{my_db}_c")
    with (target / "shopdb" / f"{my_db}.sql").open("rb") as fh:
        mysql.load_dump(source, fh, scratch, config=config)
    try:
        mysql.check_restored(source, scratch, expected)
    finally:
        mysql.drop_scratch(source, scratch, config=config)


def test_option_file_permissions_and_no_secret_on_command_line(project: Any, my_db: str,
                                                               tmp_path: Path) -> None:
    fill(my_db, rows=5)
    option_file = tmp_path / "my.cnf"
    option_file.write_text("[client]\nuser=root\npassword=\n")
    option_file.chmod(0o640)
    log = tmp_path / "argv.log"
    wrapper = tmp_path / "bin" / "mariadb-dump"
    wrapper.parent.mkdir()
    wrapper.write_text(f"""#!/bin/sh
printf '%s\\n' "$@" > {log}
printf 'MYSQL_PWD=%s\\n' "${{MYSQL_PWD:-unset}}" >> {log}
exec /usr/bin/mariadb-dump "$@"
""")
    wrapper.chmod(0o755)
    proj = project(source_toml(my_db, extra=f'secrets_file = "{option_file}"\n'
                                             f'dump_tool = "{wrapper}"'))
    res = proj.drkit("snapshot")
    assert res.exit_code == 2
    assert "option file is readable by group or others (mode 0640)" in res.stderr
    option_file.chmod(0o600)
    res = proj.drkit("snapshot", env={"MYSQL_PWD": "env-secret-not-passed"})
    assert res.exit_code == 0, res.stderr
    argv = log.read_text()
    assert argv.splitlines()[0] == f"--defaults-extra-file={option_file}"
    assert "password" not in argv.lower().replace("mysql_pwd=unset", "")
    assert "MYSQL_PWD=unset" in argv


def test_bad_input_and_scratch_safety(project: Any, my_db: str, tmp_path: Path) -> None:
    from moto_server import free_port

    proj = project(source_toml(my_db).replace("port = 3306", f"port = {free_port()}"))
    res = proj.drkit("snapshot")
    assert res.exit_code == 2
    assert "cannot connect to database" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1

    proj = project(source_toml(my_db).replace('user = "root"', 'user = "nobody_drkit"'))
    res = proj.drkit("snapshot")
    assert res.exit_code == 2
    assert "access denied (wrong user or password)" in res.stderr

    proj = project(source_toml(my_db, extra='dump_tool = "/nonexistent/mysqldump"'))
    res = proj.drkit("snapshot")
    assert res.exit_code == 2 and "/nonexistent/mysqldump not found on PATH" in res.stderr

    config = load_config(proj.root / "drkit.toml")
    source = config.source("shopdb")
    dump = tmp_path / "empty.sql"
    dump.write_bytes(b"")
    for name in (my_db, "mysql", "drkit_scratch_Upper"):
        with pytest.raises(InputError, match="refusing"), dump.open("rb") as fh:
            mysql.load_dump(source, fh, name, config=config)
    with pytest.raises(InputError, match="refusing"):
        mysql.drop_scratch(source, "mysql", config=config)
