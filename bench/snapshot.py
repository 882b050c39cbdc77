"""Benchmark: drkit against restic and borg on the same mixed data set (one command).

    .venv/bin/python bench/snapshot.py [--size-gib 1] [--dir /dev/shm/drkit-bench]

Generates about SIZE GiB: many small files, large compressible text files, incompressible
files and a SQLite database of about 1 million rows per GiB. Then drkit, restic and borg,
each into its own local repository, take turns on every step: first snapshot; a second
snapshot after changing 1% of the rows and 1% of the files; a no-change snapshot; a full
restore; a full read-data check. Each step runs the tool as a child process. Wall time and
CPU time (user + system, with every descendant) come from os.wait4; peak memory is the
larger of the child's peak RSS and the peak of the summed RSS of its whole process tree
(sampled every 50 ms), so work moved into helper processes is counted.

Prints, per step, each tool's figures and drkit's ratio against restic, against borg and
against the faster of the two, plus the stored bytes and the load average before and after.
restic and borg (Debian packages ``restic`` and ``borgbackup``; ``make bench`` installs them
when run as root) are each skipped with a note when absent. borg uses ``zstd,3`` like drkit
(its default is lz4) and repokey-blake2 encryption; restic uses its defaults (repository
version 2, compression auto). ``--data-from DIR`` copies a data set made earlier with
``--keep`` instead of generating one.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

WORDS = [
    "merchant", "order", "payment", "refund", "settle", "invoice", "amount", "status", "ok",
    "failed", "retry", "shanghai", "beijing", "nanjing", "warehouse", "sku", "customer",
    "coupon", "delivered", "pending", "2026-11-23", "INFO", "WARN", "ERROR", "request",
    "response", "latency", "ms", "user", "session", "token", "id", "cart", "checkout",
    "inventory", "price", "discount", "tax", "total", "sum", "hash", "GET", "POST", "/api/v1",
]
PASSWORD = "bench-passphrase"


def _text_block(rng: random.Random, size: int) -> bytes:
    out = []
    n = 0
    while n < size:
        line = " ".join(rng.choices(WORDS, k=12)) + f" {rng.randrange(10**9)}\n"
        out.append(line)
        n += len(line)
    return "".join(out).encode()[:size]


def generate(root: Path, size_gib: float, seed: int = 7) -> dict[str, int]:
    rng = random.Random(seed)
    total = int(size_gib * (1 << 30))
    tree = root / "tree"
    tree.mkdir(parents=True)
    counts = {"small_files": 0, "text_files": 0, "random_files": 0, "rows": 0}
    # Many small files (15%), average 8 KiB, half text, half binary.
    budget = int(total * 0.15)
    i = 0
    while budget > 0:
        d = tree / "small" / f"d{i // 500:03d}"
        if i % 500 == 0:
            d.mkdir(parents=True, exist_ok=True)
        size = rng.randrange(512, 16 * 1024)
        data = _text_block(rng, size) if i % 2 else rng.randbytes(size)
        (d / f"f{i:06d}.{'txt' if i % 2 else 'bin'}").write_bytes(data)
        budget -= size
        i += 1
    counts["small_files"] = i
    # Large compressible files (40%): logs of ~48 MiB.
    budget = int(total * 0.40)
    (tree / "logs").mkdir()
    j = 0
    while budget > 0:
        size = min(budget, 48 << 20)
        with (tree / "logs" / f"app-{j:02d}.log").open("wb") as fh:
            left = size
            while left > 0:
                block = _text_block(rng, min(left, 4 << 20))
                fh.write(block)
                left -= len(block)
        budget -= size
        j += 1
    counts["text_files"] = j
    # Incompressible files (30%): ~32 MiB of random bytes each.
    budget = int(total * 0.30)
    (tree / "media").mkdir()
    k = 0
    while budget > 0:
        size = min(budget, 32 << 20)
        (tree / "media" / f"blob-{k:02d}.bin").write_bytes(rng.randbytes(size))
        budget -= size
        k += 1
    counts["random_files"] = k
    # SQLite database (~15%): about 1M rows per GiB.
    rows = max(1000, int(1_000_000 * size_gib))
    con = sqlite3.connect(root / "shop.db")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, merchant INTEGER, "
                "amount_cents INTEGER, status TEXT, created TEXT)")
    statuses = ["paid", "refunded", "pending", "shipped"]
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
                    ((n, rng.randrange(3_000_000), rng.randrange(10**7), rng.choice(statuses),
                      f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}T12:00:00Z")
                     for n in range(rows)))
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    counts["rows"] = rows
    return counts


def mutate(root: Path, seed: int = 11) -> None:
    """Change 1% of the rows and 1% of the files."""
    rng = random.Random(seed)
    con = sqlite3.connect(root / "shop.db")
    con.execute("UPDATE orders SET status = 'disputed', amount_cents = amount_cents + 1 "
                "WHERE id % 100 = 42")
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    files = sorted(p for p in (root / "tree").rglob("*") if p.is_file())
    for p in rng.sample(files, max(1, len(files) // 100)):
        data = bytearray(p.read_bytes())
        pos = rng.randrange(len(data))
        patch = rng.randbytes(min(4096, len(data) - pos))
        data[pos:pos + len(patch)] = patch
        p.write_bytes(bytes(data))


PAGE = os.sysconf("SC_PAGE_SIZE")


def _descendants(root: int) -> set[int]:
    """``root`` and every process below it."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as fh:
                    stat = fh.read()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[stat.rindex(b")") + 2:].split()[1])
    found = {root}
    for pid in parents:
        chain = []
        p = pid
        while p > 1 and p not in found:
            chain.append(p)
            p = parents.get(p, 0)
        if p in found:
            found.update(chain)
    return found


def _rss(pids: set[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as fh:
                total += int(fh.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


@dataclass
class Measure:
    seconds: float
    cpu: float  # user + system seconds, descendants included
    peak: int  # bytes


def run(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> Measure:
    """Run one step; its output goes to ``log`` (shown if it fails)."""
    os.sync()  # start every step with no dirty pages left over from the previous one
    with log.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            # The process tree is listed every 0.25 s (a scan of /proc costs a few ms); the
            # RSS of what it holds is summed every 0.05 s.
            nonlocal peak
            pids = {proc.pid}
            ticks = 0
            while not done.wait(0.05):
                if ticks % 5 == 0:
                    pids = _descendants(proc.pid)
                ticks += 1
                peak = max(peak, _rss(pids))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _pid, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.stderr.write(log.read_text(errors="replace")[-4000:])
        raise SystemExit(f"bench: {' '.join(cmd)} failed with exit code {proc.returncode}")
    return Measure(elapsed, usage.ru_utime + usage.ru_stime, max(peak, usage.ru_maxrss * 1024))


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


DRKIT_CONFIG = """\
[repository]
primary = "local"
keys = "keys"
cache = "cache"
[regions.local]
url = "file:repo-drkit"
[sources.tree]
type = "files"
path = "data/tree"
[sources.shop]
type = "sqlite"
path = "data/shop.db"
"""

STEPS = ["first snapshot", "second (1% changed)", "no-change snapshot", "full restore",
         "check --read-data"]


@dataclass
class Tool:
    """How one tool runs each step (argv per step, in the bench folder)."""

    name: str
    init: list[str]
    steps: Callable[[int], list[str]]  # step number -> argv
    repo: str
    results: dict[str, Measure] = field(default_factory=dict)


def tools(base: Path, drkit: str) -> tuple[list[Tool], list[str]]:
    found = [Tool(
        "drkit", [drkit, "-m", "drkit", "keys", "init"],
        lambda n: [drkit, "-m", "drkit", "-q", *(
            ["snapshot"] if n < 3 else
            ["restore", "latest", "--to", "restore-drkit"] if n == 3 else
            ["check", "--read-data"])],
        "repo-drkit")]
    notes = []
    restic = shutil.which("restic")
    if restic:
        r_repo = str(base / "repo-restic")
        found.append(Tool(
            "restic", [restic, "init", "--repo", r_repo],
            lambda n: [restic, "--repo", r_repo, "--quiet", *(
                ["backup", "data/tree", "data/shop.db"] if n < 3 else
                ["restore", "latest", "--target", "restore-restic"] if n == 3 else
                ["check", "--read-data"])],
            "repo-restic"))
    else:
        notes.append("restic is not installed (Debian: apt-get install restic; "
                     "'make bench' does it as root): its columns are left out")
    borg = shutil.which("borg")
    if borg:
        b_repo = str(base / "repo-borg")
        found.append(Tool(
            "borg", [borg, "init", "--encryption", "repokey-blake2", b_repo],
            lambda n: (
                [borg, "create", "--compression", "zstd,3", f"{b_repo}::s{n}", "data/tree",
                 "data/shop.db"] if n < 3 else
                ["sh", "-c", f'mkdir -p restore-borg && cd restore-borg && exec "{borg}" '
                 f'extract "{b_repo}::s2"'] if n == 3 else
                [borg, "check", "--verify-data", b_repo]),
            "repo-borg"))
    else:
        notes.append("borg is not installed (Debian: apt-get install borgbackup; "
                     "'make bench' does it as root): its columns are left out")
    return found, notes


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


def report(found: list[Tool], stored: dict[str, int]) -> None:
    drkit, peers = found[0], found[1:]
    cols = "".join(f" {p.name + ' s':>9} {'ratio':>6}" for p in peers)
    print(f"\n{'step':<22} {'drkit s':>8}{cols} {'vs faster':>9}")
    for step in STEPS:
        d = drkit.results[step].seconds
        line = f"{step:<22} {d:8.2f}"
        for p in peers:
            line += f" {p.results[step].seconds:9.2f} {_ratio(d, p.results[step].seconds):6.2f}"
        faster = min((p.results[step].seconds for p in peers), default=math.nan)
        print(line + f" {_ratio(d, faster):9.2f}")
    print(f"\n{'CPU seconds':<22} {'drkit':>8}" + "".join(f" {p.name:>9} {'ratio':>6}"
                                                         for p in peers))
    for step in STEPS:
        d = drkit.results[step].cpu
        print(f"{step:<22} {d:8.2f}" + "".join(
            f" {p.results[step].cpu:9.2f} {_ratio(d, p.results[step].cpu):6.2f}"
            for p in peers))
    print(f"\n{'peak memory MiB':<22} {'drkit':>8}" + "".join(f" {p.name:>9} {'ratio':>6}"
                                                             for p in peers))
    for step in STEPS:
        d = drkit.results[step].peak
        print(f"{step:<22} {d / (1 << 20):8.0f}" + "".join(
            f" {p.results[step].peak / (1 << 20):9.0f} {_ratio(d, p.results[step].peak):6.2f}"
            for p in peers))
    d_store = stored["drkit"]
    line = f"\n{'stored MiB':<22} {d_store / (1 << 20):8.1f}"
    for p in peers:
        line += f" {stored[p.name] / (1 << 20):9.1f} {_ratio(d_store, stored[p.name]):6.2f}"
    smaller = min((stored[p.name] for p in peers), default=0)
    print(line + f" {_ratio(d_store, smaller):9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size-gib", type=float, default=1.0)
    parser.add_argument("--dir", type=Path, default=Path("/dev/shm/drkit-bench")
                        if Path("/dev/shm").is_dir() else Path("/tmp/drkit-bench"))
    parser.add_argument("--data-from", type=Path, default=None,
                        help="Copy this data folder (kept from an earlier run) instead of "
                             "generating one.")
    parser.add_argument("--keep", action="store_true", help="Keep the bench folder.")
    parser.add_argument("--only-drkit", action="store_true",
                        help="Leave restic and borg out (for profiling drkit alone).")
    args = parser.parse_args()
    base: Path = args.dir
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    drkit = sys.executable

    t = time.perf_counter()
    if args.data_from:
        if not (args.data_from / "tree").is_dir() or not (args.data_from / "shop.db").is_file():
            raise SystemExit(f"bench: {args.data_from}: not a bench data folder "
                             "(tree/ and shop.db expected)")
        shutil.copytree(args.data_from, base / "data", symlinks=True)
        counts: dict[str, int] = {}
    else:
        counts = generate(base / "data", args.size_gib)
    data_bytes = du(base / "data")
    print(f"data set: {data_bytes / (1 << 20):.0f} MiB, {counts} "
          f"(ready in {time.perf_counter() - t:.0f} s)")

    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(base),
           "PYTHONPATH": os.environ.get("PYTHONPATH", str(Path(__file__).resolve().parents[1])),
           "DRKIT_RECOVERY_PASSPHRASE": PASSWORD, "RESTIC_PASSWORD": PASSWORD,
           "BORG_PASSPHRASE": PASSWORD, "BORG_BASE_DIR": str(base / "borg-home"),
           "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
           "RESTIC_CACHE_DIR": str(base / "restic-cache"), "DRKIT_CONFIG": str(base / "drkit.toml")}
    (base / "drkit.toml").write_text(DRKIT_CONFIG)
    found, notes = tools(base, drkit)
    if args.only_drkit:
        found, notes = found[:1], ["--only-drkit: restic and borg left out"]
    for tool in found:
        run(tool.init, env, base, base / f"{tool.name}.log")
    load_before = os.getloadavg()
    for n, step in enumerate(STEPS):
        if n == 1:
            mutate(base / "data")
        for tool in found:
            tool.results[step] = run(tool.steps(n), env, base, base / f"{tool.name}.log")
        print(f"  {step}: " + ", ".join(f"{tool.name} {tool.results[step].seconds:.2f} s"
                                         for tool in found), flush=True)
    load_after = os.getloadavg()
    stored = {tool.name: du(base / tool.repo) for tool in found}
    report(found, stored)
    print(f"\nload average (1, 5, 15 min) before the steps: "
          f"{', '.join(f'{x:.2f}' for x in load_before)}; after: "
          f"{', '.join(f'{x:.2f}' for x in load_after)} ({os.cpu_count()} cores)")
    for note in notes:
        print(f"note: {note}")
    if not args.keep:
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
