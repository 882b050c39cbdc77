"""Benchmark: point-in-time recovery of PostgreSQL under a steady write load.

    .venv/bin/python bench/pitr.py [--seconds 90] [--rate 20] [--archive-timeout 30]
                                   [--dir /tmp/drkit-pitrbench]

Two private PostgreSQL servers (initdb in --dir, Unix socket only, never a shared server),
each with its own drkit project and local repository:

- **push**: ``archive_command = drkit wal push`` with ``archive_timeout``;
- **stream**: no archive_command; ``drkit wal stream`` (pg_receivewal, ``--interval 1``).

Each gets a base backup, then a load of ``--rate`` small insert transactions a second for
``--seconds``. Reported, from the load generator's own commit record and the archive's
catalogue (each archived version's ``archived`` time and newest commit inside it; both
with one-second resolution):

- **achieved RPO**: sampled every second after a warm-up of one archive_timeout, the
  seconds between the newest commit made and the newest commit already archived (what a
  loss of the server at that moment would cost); max and mean. Goal: <= 60 s with push,
  <= 5 s with streaming;
- **archive throughput**: ``drkit wal push`` (a process per segment, as archive_command
  runs it) of the push server's completed 16 MiB segments into a fresh repository;
- **restore to a time** (base backup + WAL replay + control totals in a scratch server)
  versus a restore of the base backup snapshot alone (files only).

Wall times are indicative only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from drkit.clock import parse_iso  # noqa: E402
from drkit.pitr.server import ScratchServer, bin_dir, free_port, user_prefix  # noqa: E402

PASSPHRASE = "bench-passphrase"


def env() -> dict[str, str]:
    return {**os.environ, "DRKIT_RECOVERY_PASSPHRASE": PASSPHRASE, "PYTHONPATH": str(ROOT)}


def drkit(project: Path, *args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "drkit", "--json", *args], cwd=project,
                         env=env(), capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"drkit {' '.join(args)} failed: {out.stderr.strip()[-400:]}")
    return dict(json.loads(out.stdout)) if out.stdout.strip() else {}


def make_server(base: Path, name: str, settings: dict[str, str]) -> ScratchServer:
    bindir = bin_dir()
    data = base / name / "data"
    subprocess.run([*user_prefix(), str(bindir / "initdb"), "-D", str(data), "-A", "trust",
                    "-U", "drkit", "--no-sync", "-E", "UTF8"], capture_output=True, check=True)
    server = ScratchServer(data, bindir, socket_dir=base / name, port=free_port())
    project = base / name / "project"
    project.mkdir()
    (project / "drkit.toml").write_text(f"""
[repository]
primary = "local"
keys = "keys"
cache = ".drkit/cache"

[regions.local]
url = "file:repo"

[sources.shop]
type = "postgres"
host = "{base / name}"
port = {server.port}
user = "drkit"
database = "shop"
pg_bin = "{bindir}"
""")
    drkit(project, "keys", "init")
    if "archive_command" in settings:
        settings["archive_command"] = (
            f"env PYTHONPATH={ROOT} DRKIT_RECOVERY_PASSPHRASE={PASSPHRASE} {sys.executable} "
            f"-m drkit --config {project / 'drkit.toml'} wal push --database shop %p")
    server.start({"wal_level": "replica", "fsync": "off", **settings})
    conn = server.connect("postgres", "drkit")
    conn.execute("CREATE DATABASE shop")
    conn.close()
    shop = server.connect("shop", "drkit")
    shop.execute("CREATE TABLE orders (id int PRIMARY KEY, merchant text, amount int)")
    shop.close()
    return server


class Load:
    """``rate`` single-row insert transactions a second; records each commit's time."""

    def __init__(self, server: ScratchServer, rate: float) -> None:
        self.conn = server.connect("shop", "drkit")
        self.rate = rate
        self.commits: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            self.conn.execute("INSERT INTO orders VALUES (%s, %s, %s)", (n, f"m{n % 37}", n))
            self.commits.append(time.time())
            self.stop.wait(1.0 / self.rate)


def archived_commits(project: Path) -> list[tuple[float, float]]:
    """(archived at, newest commit inside) of every archived WAL version."""
    sys.argv = sys.argv[:1]
    from drkit.config import load_config
    from drkit.repo.keys import load_trusted_writer_keys
    from drkit.repo.logarchive import LogCatalog
    from drkit.repo.repository import Repository
    from drkit.storage.url import open_store

    config = load_config(project / "drkit.toml")
    store = open_store(config.primary_region.url, base_dir=config.base_dir)
    repo = Repository.open(store, load_trusted_writer_keys(config), region="local")
    out = []
    for seg in LogCatalog.from_entries(repo.visible.values()).of("shop"):
        if seg.info.last_time:
            out.append((parse_iso(seg.archived).timestamp(),
                        parse_iso(seg.info.last_time).timestamp()))
    return sorted(out)


def rpo_samples(commits: list[float], archived: list[tuple[float, float]], start: float,
                end: float) -> list[float]:
    samples = []
    t = start
    while t <= end:
        made = [c for c in commits if c <= t]
        safe = [c for a, c in archived if a <= t]
        if made:
            samples.append(max(0.0, made[-1] - (max(safe) if safe else commits[0])))
        t += 1.0
    return samples


def run_load(server: ScratchServer, seconds: float, rate: float) -> tuple[Load, float, float]:
    load = Load(server, rate)
    start = time.time()
    load.thread.start()
    time.sleep(seconds)
    end = time.time()
    load.stop.set()
    load.thread.join()
    return load, start, end


def figures(name: str, samples: list[float]) -> dict[str, Any]:
    if not samples:
        return {"mode": name, "samples": 0}
    return {"mode": name, "samples": len(samples), "rpo_max_s": round(max(samples), 1),
            "rpo_mean_s": round(sum(samples) / len(samples), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=90.0)
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--archive-timeout", type=int, default=30)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/drkit-pitrbench"))
    args = ap.parse_args()
    base: Path = args.dir
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    results: dict[str, Any] = {"seconds": args.seconds, "rate_tx_s": args.rate,
                               "archive_timeout_s": args.archive_timeout}
    servers: list[ScratchServer] = []
    stream: subprocess.Popen[bytes] | None = None
    try:
        # -- push (archive_command) --------------------------------------------------------
        push_srv = make_server(base, "push", {"archive_mode": "on", "archive_command": "",
                                              "archive_timeout": str(args.archive_timeout)})
        servers.append(push_srv)
        project = base / "push" / "project"
        drkit(project, "wal", "basebackup")
        load, start, end = run_load(push_srv, args.seconds, args.rate)
        marker = datetime.fromtimestamp(load.commits[len(load.commits) // 2], UTC)
        time.sleep(args.archive_timeout + 5)
        samples = rpo_samples(load.commits, archived_commits(project),
                              start + args.archive_timeout, end)
        results["push"] = figures("push", samples)

        t0 = time.monotonic()
        out = drkit(project, "restore", "--database", "shop", "--to-time",
                    marker.isoformat(), "--to", str(base / "push" / "pitr"))
        results["restore_to_time_s"] = round(time.monotonic() - t0, 2)
        results["restore_to_time_wal_files"] = out["segments_fetched"]
        snaps = drkit(project, "snapshots")
        snap_id = (snaps.get("snapshots") or [{}])[-1].get("id")
        t0 = time.monotonic()
        drkit(project, "restore", str(snap_id), "--to", str(base / "push" / "full"))
        results["restore_base_backup_only_s"] = round(time.monotonic() - t0, 2)

        # -- archive throughput: wal push of real completed segments -------------------------
        pg_wal = push_srv.data / "pg_wal"
        segs = sorted(p for p in pg_wal.iterdir() if len(p.name) == 24 and p.is_file())[:6]
        thr = base / "throughput"
        thr.mkdir()
        (thr / "drkit.toml").write_text((project / "drkit.toml").read_text())
        drkit(thr, "keys", "init")
        t0 = time.monotonic()
        total = 0
        for seg in segs:
            copy = thr / seg.name
            shutil.copyfile(seg, copy)
            drkit(thr, "wal", "push", str(copy))
            total += copy.stat().st_size
        took = time.monotonic() - t0
        results["throughput"] = {"segments": len(segs), "mib": round(total / 2**20, 1),
                                 "seconds": round(took, 2),
                                 "mib_s": round(total / 2**20 / took, 1) if took else None,
                                 "seconds_per_segment": round(took / max(1, len(segs)), 2)}
        push_srv.stop()

        # -- stream (pg_receivewal) -----------------------------------------------------------
        stream_srv = make_server(base, "stream", {})
        servers.append(stream_srv)
        project = base / "stream" / "project"
        drkit(project, "wal", "basebackup")
        stream = subprocess.Popen([sys.executable, "-m", "drkit", "wal", "stream",
                                   "--interval", "1"], cwd=project, env=env(),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(3)
        load, start, end = run_load(stream_srv, args.seconds, args.rate)
        time.sleep(5)
        stream.terminate()
        stream.wait(60)
        samples = rpo_samples(load.commits, archived_commits(project), start + 5, end)
        results["stream"] = figures("stream", samples)
        state = json.loads((project / ".drkit/cache/schedule/streams/shop.json").read_text())
        results["stream"]["partial_versions"] = state["partial_versions"]
        results["stream"]["push_seconds_mean"] = state["push_seconds_mean"]
    finally:
        if stream is not None and stream.poll() is None:
            stream.kill()
        for srv in servers:
            srv.stop()
    print(json.dumps(results, indent=2))
    push, strm = results["push"], results["stream"]
    print(f"RPO with wal push (archive_timeout {args.archive_timeout} s): max "
          f"{push.get('rpo_max_s')} s, mean {push.get('rpo_mean_s')} s (goal <= 60 s)")
    print(f"RPO with wal stream: max {strm.get('rpo_max_s')} s, mean {strm.get('rpo_mean_s')} s "
          "(goal <= 5 s)")
    t = results["throughput"]
    print(f"archive throughput (wal push, a process per segment): {t['mib_s']} MiB/s, "
          f"{t['seconds_per_segment']} s per 16 MiB segment")
    print(f"restore to a time: {results['restore_to_time_s']} s; base backup restore alone: "
          f"{results['restore_base_backup_only_s']} s")


if __name__ == "__main__":
    main()
