"""``drkit drill --region R --to-time T`` for a MySQL/MariaDB source, on a private MariaDB
writing a ROW binlog: the daily dump (with its binlog position) and the archived binlog
are replicated, the primary region is moved away, and the drill restores the second
region's copy alone to just before an insider's DROP, checking the dump's control totals
in the scratch server."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _next_second() -> float:
    """Sleep into the next whole second (binlog times have one-second resolution)."""
    now = time.time()
    time.sleep(1.0 - (now % 1.0) + 0.05)
    return time.time()


def test_drill_to_a_time_from_one_region_alone(binlog_project: Any, drkit: Any) -> None:
    p = binlog_project
    toml = p.root / "drkit.toml"
    toml.write_text(toml.read_text() + '\n[regions.shanghai]\nurl = "file:regions/shanghai"\n')
    p.sql("CREATE TABLE orders (id INT PRIMARY KEY, amount INT)",
          "CREATE TABLE payments (id INT PRIMARY KEY, amount INT)",
          "INSERT INTO payments SELECT seq, seq * 7 FROM seq_1_to_500")
    res = drkit("--json", "snapshot")  # the daily dump: the base, with its binlog position
    assert res.exit_code == 0, res.stderr

    for n in range(1, 121):
        p.sql(f"INSERT INTO orders VALUES ({n}, {n * 3})")
        if n == 60:
            p.sql("FLUSH BINARY LOGS")  # the replayed log spans two files
    target = datetime.fromtimestamp(_next_second(), UTC).replace(microsecond=0)
    _next_second()  # everything after this is stamped after the target's second
    p.sql("INSERT INTO orders VALUES (1000, 1)", "DROP TABLE payments", "DELETE FROM orders")

    res = drkit("--json", "binlog", "stream", "--source", "shop", "--once")
    assert res.exit_code == 0, res.stderr
    res = drkit("--json", "replicate")
    assert res.exit_code == 0, res.stderr

    # The primary is gone: the drill reads the second region only.
    shutil.move(p.root / "regions/beijing", p.root / "beijing-away")
    res = drkit("--json", "drill", "--region", "shanghai", "--to-time", target.isoformat(),
                "--report", str(p.root / "drill"))
    report = json.loads(res.stdout)
    assert res.exit_code == 0, res.stderr + res.stdout
    assert report["passed"] and report["error"] is None
    assert [s["name"] for s in report["steps"]] == ["verify region", "thaw and open",
                                                  "restore to a point in time"]
    pit = report["point_in_time"]
    assert pit["source"] == "shop" and pit["kind"] == "mysql-binlog"
    tables = pit["databases"]["shop"]["tables"]
    assert tables["orders"]["rows"] == 120  # every row before the target, none after
    assert tables["payments"]["rows"] == 500  # the DROP is after the target
    assert pit["base_totals_checked"] is True
    assert len(pit["binlog_files"]) == 2 and pit["rows"] == 620
    assert report["snapshot"] == pit["base_snapshot"]
    assert report["rto_seconds"] is not None and report["rpo_seconds"] is not None
    written = json.loads(Path(str(p.root / "drill") + ".json").read_text())
    assert written["point_in_time"]["databases"] == pit["databases"]


def test_drill_to_a_time_refuses_a_source_without_a_log(binlog_project: Any,
                                                        drkit: Any) -> None:
    p = binlog_project
    toml = p.root / "drkit.toml"
    toml.write_text(toml.read_text() + '\n[sources.files]\ntype = "files"\npath = "data"\n')
    (p.root / "data").mkdir()
    res = drkit("drill", "--region", "beijing", "--to-time", "2026-11-23T10:00:00Z",
                "--database", "files")
    assert res.exit_code == 2
    assert "'files' is a files source; --to-time is for PostgreSQL and MySQL" in res.stderr
