"""The insider story on a private PostgreSQL server archiving with ``drkit wal push``:
a write load runs; an insider drops a table and deletes the rest; ``incident find`` names
the DROP; a restore to just before it holds every row committed before it, counted
against the load generator's own record.

The server is private (initdb in a temporary folder, Unix socket only, a free port), never
the machine's shared server. Skipped when the PostgreSQL server programs are absent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drkit.pitr.server import ScratchServer, free_port, user_prefix

PASSPHRASE = "correct horse battery staple"


def _bindir() -> Path | None:
    for path in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (path / "initdb").exists() and (path / "pg_waldump").exists():
            return path
    return None


@pytest.fixture
def pg_project(tmp_path: Path, drkit: Any, monkeypatch: pytest.MonkeyPatch
               ) -> Iterator[tuple[Path, ScratchServer]]:
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server programs (initdb, pg_waldump) are not installed")
    if user_prefix() and shutil.which("unshare") is None:
        pytest.skip("running as root without 'unshare': PostgreSQL cannot be started")
    monkeypatch.setenv("DRKIT_RECOVERY_PASSPHRASE", PASSPHRASE)
    base = Path(tempfile.mkdtemp(prefix="drkit-pg-"))
    data = base / "data"
    init = subprocess.run([*user_prefix(), str(bindir / "initdb"), "-D", str(data), "-A",
                           "trust", "-U", "drkit", "--no-sync", "-E", "UTF8"],
                          capture_output=True, text=True, check=False)
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"initdb failed: {init.stderr.strip()[-200:]}")
    server = ScratchServer(data, bindir, socket_dir=base, port=free_port())
    (tmp_path / "drkit.toml").write_text(f"""
[repository]
primary = "beijing"
keys = "keys"
cache = ".drkit/cache"
pack_size_mib = 4

[regions.beijing]
url = "file:regions/beijing"

[sources.shop]
type = "postgres"
host = "{base}"
port = {server.port}
user = "drkit"
database = "shop"
pg_bin = "{bindir}"
""")
    assert drkit("keys", "init").exit_code == 0
    push = (f"env PYTHONPATH={Path(__file__).resolve().parents[2]} "
            f"DRKIT_RECOVERY_PASSPHRASE='{PASSPHRASE}' {sys.executable} -m drkit --config "
            f"{tmp_path / 'drkit.toml'} wal push --database shop %p")
    server.start({"archive_mode": "on", "archive_command": push, "wal_level": "replica",
                  "fsync": "off", "max_wal_size": "64MB"})
    try:
        yield tmp_path, server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


class Load:
    """Inserts orders one transaction at a time and records which committed. A lock
    shared with the insider orders the two exactly: a row counts as committed before the
    DROP when its commit returned before the insider took the lock."""

    def __init__(self, server: ScratchServer) -> None:
        self.conn = server.connect("shop", "drkit")
        self.lock = threading.Lock()
        self.committed: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            with self.lock:
                self.conn.execute("INSERT INTO orders (id, merchant, amount) "
                                  "VALUES (%s, %s, %s)", (n, f"m{n % 37}", n * 3))
                self.committed.append(n)  # autocommit: the commit has returned
            time.sleep(0.002)


def wait_archived(server: ScratchServer, timeout: float = 120.0) -> str:
    conn = server.connect("postgres", "drkit")
    (lsn,) = conn.execute("SELECT pg_switch_wal()").fetchone()
    (name,) = conn.execute("SELECT pg_walfile_name(%s)", (lsn,)).fetchone()
    deadline = time.monotonic() + timeout
    while True:
        last, failed = conn.execute(
            "SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver").fetchone()
        if last is not None and last >= name:
            conn.close()
            return str(name)
        assert time.monotonic() < deadline, f"WAL not archived: last {last}, failed {failed}"
        time.sleep(0.3)


def test_insider_drops_a_table_and_deletes_the_rest(pg_project: tuple[Path, ScratchServer],
                                                     drkit: Any) -> None:
    root, server = pg_project
    admin = server.connect("postgres", "drkit")
    admin.execute("CREATE DATABASE shop")
    admin.close()
    shop = server.connect("shop", "drkit")
    shop.execute("CREATE TABLE orders (id int PRIMARY KEY, merchant text, amount int)")
    shop.execute("CREATE TABLE payments (id int PRIMARY KEY, amount int)")
    shop.execute("INSERT INTO payments SELECT g, g * 7 FROM generate_series(1, 500) g")

    res = drkit("--json", "wal", "basebackup", "--database", "shop")
    assert res.exit_code == 0, res.stderr

    load = Load(server)
    load.thread.start()
    time.sleep(3)
    with load.lock:  # the insider, at T
        before = list(load.committed)
        shop.execute("DROP TABLE payments")
        shop.execute("DELETE FROM orders")
    time.sleep(1)
    load.stop.set()
    load.thread.join()
    assert len(before) > 50 and len(load.committed) > len(before)
    wait_archived(server)

    res = drkit("--json", "incident", "find", "--database", "shop", "--min-rows", "20")
    assert res.exit_code == 1, res.stderr
    report = json.loads(res.stdout)
    first = report["incidents"][0]
    assert (first["kind"], first["relation"]) == ("DROP", "shop.public.payments")
    deletes = [i for i in report["incidents"] if i["kind"] == "DELETE"]
    assert [(d["relation"], d["rows"]) for d in deletes] == [("shop.public.orders",
                                                               len(before))]
    proposal = report["proposal"]
    assert proposal["to_lsn"] == first["lsn"]

    scratch = Path(tempfile.mkdtemp(prefix="drkit-r-"))
    try:
        res = drkit("--json", "restore", "--database", "shop", "--to-lsn",
                    proposal["to_lsn"], "--to", str(scratch / "s"), "--keep-running")
        assert res.exit_code == 0, res.stderr
        restored = json.loads(res.stdout)
        tables = restored["databases"]["shop"]["tables"]
        assert tables["public.orders"]["rows"] == len(before)
        assert tables["public.payments"]["rows"] == 500
        import psycopg

        with psycopg.connect(host=restored["socket_dir"], port=restored["port"],
                             user="drkit", dbname="shop") as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM orders ORDER BY id")]
        assert ids == before  # exactly the rows committed before the DROP
    finally:
        pid = scratch / "s" / "data" / "postmaster.pid"
        if pid.exists():
            import os
            import signal

            os.kill(int(pid.read_text().split()[0]), signal.SIGINT)
            time.sleep(1)
        shutil.rmtree(scratch, ignore_errors=True)
