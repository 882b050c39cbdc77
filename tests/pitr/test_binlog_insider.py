"""The insider story on a private MariaDB server writing a ROW binlog: the daily dump (which
records its binlog position), a write load, ``drkit binlog stream --once``; an insider
drops a table and deletes the rest; ``incident find`` names the DROP first; restoring to
just before it (by position, by GTID, by time) holds every row committed before it,
counted against the load generator's own record."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pymysql


class Load:
    """Inserts orders one autocommit statement at a time and records, per id, when the
    statement was sent and when its commit returned. A lock shared with the insider orders
    the two exactly."""

    def __init__(self, project: Any) -> None:
        self.conn = project.server.connect("shop")
        self.lock = threading.Lock()
        self.sent: dict[int, float] = {}
        self.returned: dict[int, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        cur = self.conn.cursor()
        n = 0
        while not self.stop.is_set():
            n += 1
            with self.lock:
                self.sent[n] = time.time()
                cur.execute("INSERT INTO orders (id, merchant, amount) VALUES (%s, %s, %s)",
                            (n, f"m{n % 37}", n * 3))
                self.returned[n] = time.time()
            time.sleep(0.003)


def restore(drkit: Any, scratch: Path, *args: str) -> dict[str, Any]:
    res = drkit("--json", "restore", "--database", "shop", "--to", str(scratch), *args)
    assert res.exit_code == 0, res.stderr
    return dict(json.loads(res.stdout))


def stop_kept_server(scratch: Path) -> None:
    pid = scratch / "server" / "mysqld.pid"
    if pid.exists():
        os.kill(int(pid.read_text().split()[0]), signal.SIGTERM)
        for _ in range(100):
            if not pid.exists():
                break
            time.sleep(0.1)


def test_insider_drops_a_table_and_deletes_the_rest(binlog_project: Any,
                                                     drkit: Any) -> None:
    p = binlog_project
    p.sql("CREATE TABLE orders (id INT PRIMARY KEY, merchant VARCHAR(20), amount INT)",
          "CREATE TABLE payments (id INT PRIMARY KEY, amount INT)",
          "INSERT INTO payments SELECT seq, seq * 7 FROM seq_1_to_500")
    res = drkit("--json", "snapshot")  # the daily dump: the base, with its binlog position
    assert res.exit_code == 0, res.stderr

    load = Load(p)
    load.thread.start()
    time.sleep(2.5)
    p.sql("FLUSH BINARY LOGS")  # the log spans several files, one closed mid-load
    time.sleep(1.5)
    with load.lock:  # the insider, at T
        before = sorted(load.returned)
        p.sql("DROP TABLE payments", "DELETE FROM orders")
    time.sleep(1)
    load.stop.set()
    load.thread.join()
    assert len(before) > 100 and len(load.returned) > len(before)

    res = drkit("--json", "binlog", "stream", "--source", "shop", "--once")
    assert res.exit_code == 0, res.stderr
    streamed = json.loads(res.stdout)
    assert streamed["complete"] >= 1 and streamed["partial"] == 1

    res = drkit("--json", "incident", "find", "--database", "shop")
    assert res.exit_code == 1, res.stderr
    report = json.loads(res.stdout)
    first = report["incidents"][0]
    assert (first["kind"], first["relation"]) == ("DROP", "shop.payments")
    assert "DROP TABLE" in first["statement"] and first["thread_id"] is not None
    assert first["server_id"] == 1 and first["gtid"].startswith("0-1-")
    deletes = [i for i in report["incidents"] if i["kind"] == "DELETE"]
    assert [(d["relation"], d["rows"]) for d in deletes] == [("shop.orders", len(before))]
    assert deletes[0]["statement"] == "DELETE FROM orders"
    assert "no WHERE" in deletes[0]["reasons"] and deletes[0]["share"] == 1.0
    proposal = report["proposal"]
    assert proposal["to_position"] == first["position"]

    scratch = Path(tempfile.mkdtemp(prefix="drkit-r-"))
    try:
        restored = restore(drkit, scratch / "pos", "--to-position", proposal["to_position"],
                           "--keep-running")
        tables = restored["databases"]["shop"]["tables"]
        assert tables["payments"]["rows"] == 500
        assert tables["orders"]["rows"] == len(before)
        conn = pymysql.connect(unix_socket=restored["socket"], user="root", database="shop")
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM orders ORDER BY id")
            ids = [r[0] for r in cur.fetchall()]
        conn.close()
        assert ids == before  # exactly the rows committed before the DROP
        stop_kept_server(scratch / "pos")

        by_gtid = restore(drkit, scratch / "gtid", "--to-gtid", proposal["to_gtid"])
        assert by_gtid["databases"]["shop"]["tables"] == tables

        # By time: binlog times are whole seconds (a statement's start), and the target
        # is exclusive: what returned before T's second is there, nothing sent at or
        # after it is.
        cut = load.sent[before[len(before) // 2]]
        by_time = restore(drkit, scratch / "time", "--to-time",
                          time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(cut))
                          + f".{int((cut % 1) * 1e6):06d}Z")
        floor = math.floor(cut)
        got = by_time["databases"]["shop"]["tables"]["orders"]["rows"]
        surely = sum(1 for i in before if load.returned[i] < floor)
        at_most = sum(1 for i in before if load.sent[i] < floor)
        assert 0 < surely <= got <= at_most
        assert by_time["databases"]["shop"]["tables"]["payments"]["rows"] == 500
    finally:
        stop_kept_server(scratch / "pos")
        shutil.rmtree(scratch, ignore_errors=True)
