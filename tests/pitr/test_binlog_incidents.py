"""``drkit incident find`` over an archived MariaDB binlog: each kind of destructive event
(TRUNCATE, DROP DATABASE, an UPDATE touching most of a table although it has a WHERE),
and what is not one (a small DELETE or UPDATE, a temporary table)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest


def test_incident_kinds_and_what_is_not_an_incident(binlog_project: Any, drkit: Any) -> None:
    p = binlog_project
    p.sql("CREATE TABLE orders (id INT PRIMARY KEY, amount INT)",
          "CREATE TABLE payments (id INT PRIMARY KEY, amount INT)",
          "INSERT INTO orders SELECT seq, seq FROM seq_1_to_100",
          "INSERT INTO payments SELECT seq, seq FROM seq_1_to_30",
          "CREATE DATABASE archive")
    assert drkit("--json", "snapshot").exit_code == 0
    p.sql("INSERT INTO orders SELECT seq, seq FROM seq_101_to_200",  # now 200 rows
          "DELETE FROM orders WHERE id = 7",
          "UPDATE orders SET amount = 0 WHERE id > 40",  # 160 of 199 rows: 80 %
          "UPDATE orders SET amount = 1 WHERE id < 20",  # 17 rows changed: not flagged
          "CREATE TEMPORARY TABLE scratch (x INT)",
          "DROP TEMPORARY TABLE scratch",
          "TRUNCATE TABLE payments",
          "DROP DATABASE archive")
    res = drkit("--json", "binlog", "stream", "--source", "shop", "--once")
    assert res.exit_code == 0, res.stderr

    res = drkit("--json", "incident", "find", "--database", "shop")
    assert res.exit_code == 1, res.stderr
    report = json.loads(res.stdout)
    found = [(i["kind"], i["relation"], i["rows"]) for i in report["incidents"]]
    assert found == [("UPDATE", "shop.orders", 160), ("TRUNCATE", "shop.payments", 30),
                     ("DROP DATABASE", "archive", None)]
    update = report["incidents"][0]
    assert update["reasons"] == ["80% of the table"] and update["share"] == 0.804
    assert update["statement"] == "UPDATE orders SET amount = 0 WHERE id > 40"
    assert report["proposal"]["to_position"] == update["position"]
    assert report["proposal"]["command"].endswith(f"--to-position {update['position']}")

    # --min-rows catches the small UPDATE too; --since after everything finds nothing.
    res = drkit("--json", "incident", "find", "--database", "shop", "--min-rows", "15")
    kinds = [(i["kind"], i["rows"]) for i in json.loads(res.stdout)["incidents"]]
    assert ("UPDATE", 17) in kinds  # id 1 already had amount 1: not a changed row
    later = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    res = drkit("--json", "incident", "find", "--database", "shop", "--since", later)
    assert res.exit_code == 0 and json.loads(res.stdout)["incidents"] == []


def test_bad_input_is_one_clear_line(tmp_path: Any, drkit: Any,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRKIT_RECOVERY_PASSPHRASE", "correct horse battery staple")
    (tmp_path / "drkit.toml").write_text("""
[repository]
primary = "beijing"
keys = "keys"

[regions.beijing]
url = "file:regions/beijing"

[sources.shop]
type = "mysql"
database = "shop"

[sources.files]
type = "files"
path = "."
""")
    assert drkit("keys", "init").exit_code == 0
    cases = [(["binlog", "stream", "--source", "files", "--once"], "not a MySQL/MariaDB"),
             (["binlog", "stream", "--source", "shop", "--once", "--from", "nope"],
              "not a binlog file name"),
             (["restore", "--database", "shop", "--to-position", "mysql-bin.000001"],
              "not a binlog position"),
             (["restore", "--database", "shop", "--to-lsn", "0/1"], "--to-lsn is for"),
             (["restore", "--database", "shop", "--to-time", "2026-11-23T19:00:00Z",
               "--to-gtid", "0-1-5"], "exactly one of")]
    for args, message in cases:
        res = drkit(*args)
        assert res.exit_code == 2, (args, res.stderr)
        assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
