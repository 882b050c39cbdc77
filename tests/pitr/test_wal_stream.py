"""``drkit wal stream`` on a private PostgreSQL server: a write load runs, the stream is
killed with SIGKILL in the middle of a segment and restarted; the archive then has no gap
and no segment twice, verify is clean, the scheduler's metrics show the stream, and a
``restore --to-time`` from the streamed WAL holds exactly the rows committed before the
time.

The server is private (initdb in a temporary folder, Unix socket only, a free port), never
the machine's shared server. Skipped when the PostgreSQL programs are absent.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drkit.config import load_config
from drkit.pitr.server import ScratchServer, free_port, user_prefix
from drkit.repo.keys import load_trusted_writer_keys
from drkit.repo.logarchive import LogCatalog, find_gaps
from drkit.repo.repository import Repository
from drkit.storage.url import open_store

PASSPHRASE = "correct horse battery staple"
ROOT = Path(__file__).resolve().parents[2]


def _bindir() -> Path | None:
    for path in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if all((path / p).exists() for p in ("initdb", "pg_waldump", "pg_receivewal")):
            return path
    return None


@pytest.fixture
def pg_stream(tmp_path: Path, drkit: Any, monkeypatch: pytest.MonkeyPatch
              ) -> Iterator[tuple[Path, ScratchServer]]:
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL programs (initdb, pg_waldump, pg_receivewal) are not "
                    "installed")
    if user_prefix() and shutil.which("unshare") is None:
        pytest.skip("running as root without 'unshare': PostgreSQL cannot be started")
    monkeypatch.setenv("DRKIT_RECOVERY_PASSPHRASE", PASSPHRASE)
    base = Path(tempfile.mkdtemp(prefix="drkit-pgs-"))
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

[regions.shanghai]
url = "file:regions/shanghai"

[sources.shop]
type = "postgres"
host = "{base}"
port = {server.port}
user = "drkit"
database = "shop"
pg_bin = "{bindir}"

[schedule]
wal_stream = ["shop"]
""")
    assert drkit("keys", "init").exit_code == 0
    # No archive_command: the stream is the only way WAL reaches the repository.
    server.start({"wal_level": "replica", "fsync": "off", "max_wal_size": "64MB",
                  "max_wal_senders": "4", "max_replication_slots": "4"})
    try:
        yield tmp_path, server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


class Load:
    """Inserts rows one transaction at a time (each ~2 KiB, so segments fill in seconds)
    and records which committed; ``lock`` orders it exactly against a marker time."""

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
                self.conn.execute("INSERT INTO orders (id, body) VALUES (%s, %s)",
                                  (n, os.urandom(1024).hex()))
                self.committed.append(n)
            time.sleep(0.001)


def start_stream(root: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "drkit", "--config",
                             str(root / "drkit.toml"), "--json", "wal", "stream", "--source",
                             "shop", "--interval", "0.5"], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def stream_state(root: Path) -> dict[str, Any]:
    path = root / ".drkit/cache/schedule/streams/shop.json"
    return json.loads(path.read_text()) if path.exists() else {}


def wait_for(what: str, check: Any, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def catalog(root: Path) -> LogCatalog:
    config = load_config(root / "drkit.toml")
    store = open_store(config.primary_region.url, base_dir=config.base_dir)
    repo = Repository.open(store, load_trusted_writer_keys(config), region="beijing")
    return LogCatalog.from_entries(repo.visible.values())


def slot_active(server: ScratchServer) -> bool:
    conn = server.connect("postgres", "drkit")
    try:
        row = conn.execute("SELECT active FROM pg_replication_slots "
                           "WHERE slot_name = 'drkit_shop'").fetchone()
    finally:
        conn.close()
    return bool(row and row[0])


def test_stream_survives_kill_9_without_gap_or_duplicate_and_restores_to_a_time(
        pg_stream: tuple[Path, ScratchServer], drkit: Any) -> None:
    root, server = pg_stream
    admin = server.connect("postgres", "drkit")
    admin.execute("CREATE DATABASE shop")
    shop = server.connect("shop", "drkit")
    shop.execute("CREATE TABLE orders (id int PRIMARY KEY, body text)")
    res = drkit("--json", "wal", "basebackup", "--database", "shop")
    assert res.exit_code == 0, res.stderr

    stream = start_stream(root)
    load = Load(server)
    load.thread.start()
    try:
        # Killed mid-segment: at least one complete segment and a partial version of the
        # next archived; the segment being received is neither complete nor empty.
        wait_for("a complete segment and a partial one", lambda: (
            stream.poll() is None and stream_state(root).get("segments", 0) >= 1
            and stream_state(root).get("partial_versions", 0) >= 1))
        stream.send_signal(signal.SIGKILL)
        stream.wait()
        # pg_receivewal dies with its parent (it would otherwise keep the slot busy).
        wait_for("the slot to be released", lambda: not slot_active(server), 120)
        time.sleep(2)  # WAL written while nothing streams: the slot keeps it

        with load.lock:  # the marker time T: every commit before it has returned
            before = list(load.committed)
            time.sleep(0.05)
            (marker,) = shop.execute("SELECT clock_timestamp()").fetchone()
            time.sleep(0.05)

        stream = start_stream(root)
        time.sleep(3)
    finally:
        load.stop.set()
        load.thread.join()
    assert len(before) > 100 and len(load.committed) > len(before)
    (lsn,) = admin.execute("SELECT pg_switch_wal()").fetchone()
    (last_name,) = admin.execute("SELECT pg_walfile_name(%s)", (lsn,)).fetchone()
    wait_for(f"segment {last_name} archived complete", lambda: any(
        not s.info.partial for s in catalog(root).versions("shop", last_name)))
    stream.send_signal(signal.SIGTERM)
    out, err = stream.communicate(timeout=180)
    assert stream.returncode == 0, err.decode()
    summary = json.loads(out)
    assert summary["archive"] == "shop" and summary["last_lsn"]

    # A lost spool (a new host): streaming resumes where the repository's archive ends.
    shutil.rmtree(root / ".drkit/cache/wal-stream/shop")
    shop.execute("INSERT INTO orders SELECT g, 'late' FROM generate_series(-5000, -1) g")
    res = drkit("--json", "wal", "stream", "--source", "shop", "--once")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["partial_versions"] >= 1

    cat = catalog(root)
    segments = [s for s in cat.of("shop") if s.in_sequence]
    assert find_gaps(segments) == []
    complete = [s.info.name for s in segments if not s.info.partial]
    assert len(complete) == len(set(complete)) >= 2  # no segment twice
    assert complete == sorted(complete)
    assert last_name in complete
    assert drkit("replicate").exit_code == 0
    res = drkit("--json", "verify", "--all", "--accept-first-contact")
    assert res.exit_code == 0, res.stdout + res.stderr
    assert json.loads(res.stdout)["findings"] == []
    res = drkit("--json", "wal", "status")
    assert res.exit_code == 0 and json.loads(res.stdout)["archives"][0]["gaps"] == []

    metrics = (root / ".drkit/cache/schedule/drkit.prom").read_text()
    assert 'drkit_wal_stream_last_archived_lsn{source="shop"}' in metrics

    scratch = Path(tempfile.mkdtemp(prefix="drkit-rt-"))
    try:
        res = drkit("--json", "restore", "--database", "shop", "--to-time",
                    marker.isoformat(), "--to", str(scratch / "s"))
        assert res.exit_code == 0, res.stderr
        restored = json.loads(res.stdout)
        assert restored["databases"]["shop"]["tables"]["public.orders"]["rows"] == len(before)
        assert "recovery stopping before commit" in (restored["recovery_stopped"] or "")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    # The same point from the second region's copy alone (the primary is not read).
    shutil.move(root / "regions/beijing", root / "beijing-away")
    drill = subprocess.run(
        [sys.executable, "-m", "drkit", "--config", str(root / "drkit.toml"), "--json", "drill",
         "--region", "shanghai", "--to-time", marker.isoformat(), "--report", str(root / "drill")],
        cwd=root, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
        text=True, timeout=600, check=False)
    report = json.loads(drill.stdout)
    assert drill.returncode == 0, drill.stderr + drill.stdout
    assert report["passed"]
    pit = report["point_in_time"]
    assert pit["databases"]["shop"]["tables"]["public.orders"]["rows"] == len(before)
    assert [s["name"] for s in report["steps"]] == ["verify region", "thaw and open",
                                                  "restore to a point in time"]
