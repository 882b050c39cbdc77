"""Benchmark: drkit against restic on the same mixed data set (one command).

    .venv/bin/python bench/snapshot.py [--size-gib 1] [--dir /tmp/drkit-bench]

Generates about SIZE GiB: many small files, large compressible text files, incompressible
files and a SQLite database of about 1 million rows per GiB. Then, for drkit and restic
side by side, each into its own local repository: first snapshot; a second snapshot after
changing 1% of the rows and 1% of the files; a no-change snapshot; a full restore; a full
read-data check. Each step runs the tool as a child process; wall time and peak RSS come
from os.wait4 for that child. Prints a table with the ratio drkit/restic. restic is
skipped with a note if it is not installed (Debian: apt-get install restic).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
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


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (bytes) and CPU seconds (user + system) of one child."""
    os.sync()  # start every step with no dirty pages left over from the previous one
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(out.decode(errors="replace") + err.decode(errors="replace"))
        raise SystemExit(f"bench: {' '.join(cmd)} failed with exit code {proc.returncode}")
    return elapsed, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=float, default=1.0)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/drkit-bench"))
    parser.add_argument("--keep", action="store_true", help="Keep the bench folder.")
    args = parser.parse_args()
    base: Path = args.dir
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    drkit = sys.executable
    restic = shutil.which("restic")

    t = time.perf_counter()
    counts = generate(base / "data", args.size_gib)
    data_bytes = du(base / "data")
    print(f"data set: {data_bytes / (1 << 20):.0f} MiB, {counts} "
          f"(generated in {time.perf_counter() - t:.0f} s)")

    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(base),
           "PYTHONPATH": os.environ.get("PYTHONPATH", str(Path(__file__).resolve().parents[1])),
           "DRKIT_RECOVERY_PASSPHRASE": PASSWORD, "RESTIC_PASSWORD": PASSWORD,
           "RESTIC_CACHE_DIR": str(base / "restic-cache"), "DRKIT_CONFIG": str(base / "drkit.toml")}
    (base / "drkit.toml").write_text(DRKIT_CONFIG)
    run([drkit, "-m", "drkit", "keys", "init"], env, base)
    if restic:
        run([restic, "init", "--repo", str(base / "repo-restic")], env, base)

    steps = [
        ("first snapshot", [drkit, "-m", "drkit", "-q", "snapshot"],
         ["backup", "--repo", str(base / "repo-restic"), "data/tree", "data/shop.db"]),
        ("second (1% changed)", [drkit, "-m", "drkit", "-q", "snapshot"],
         ["backup", "--repo", str(base / "repo-restic"), "data/tree", "data/shop.db"]),
        ("no-change snapshot", [drkit, "-m", "drkit", "-q", "snapshot"],
         ["backup", "--repo", str(base / "repo-restic"), "data/tree", "data/shop.db"]),
        ("full restore",
         [drkit, "-m", "drkit", "-q", "restore", "latest", "--to", "restore-drkit"],
         ["restore", "--repo", str(base / "repo-restic"), "latest", "--target",
          "restore-restic"]),
        ("check --read-data", [drkit, "-m", "drkit", "-q", "check", "--read-data"],
         ["check", "--repo", str(base / "repo-restic"), "--read-data"]),
    ]
    rows = []
    for name, dcmd, rcmd in steps:
        if name.startswith("second"):
            mutate(base / "data")
        d_time, d_mem, d_cpu = run(dcmd, env, base)
        r_time, r_mem, r_cpu = run([restic, *rcmd], env, base) if restic \
            else (float("nan"), 0, float("nan"))
        rows.append((name, d_time, r_time, d_mem, r_mem, d_cpu, r_cpu))
        print(f"  {name}: drkit {d_time:.2f} s, restic {r_time:.2f} s", flush=True)

    d_store = du(base / "repo-drkit")
    r_store = du(base / "repo-restic") if restic else 0
    print()
    print(f"{'step':<22} {'drkit s':>8} {'restic s':>9} {'ratio':>6} "
          f"{'drkit cpu':>10} {'restic cpu':>11} {'ratio':>6} "
          f"{'drkit MiB':>10} {'restic MiB':>11}")
    for name, dt, rt, dm, rm, dc, rc in rows:
        ratio = dt / rt if restic and rt > 0 else float("nan")
        cratio = dc / rc if restic and rc > 0 else float("nan")
        print(f"{name:<22} {dt:8.2f} {rt:9.2f} {ratio:6.2f} {dc:10.2f} {rc:11.2f} "
              f"{cratio:6.2f} {dm / (1 << 20):10.0f} {rm / (1 << 20):11.0f}")
    ratio = d_store / r_store if r_store else float("nan")
    print(f"{'stored bytes':<22} {d_store / (1 << 20):7.1f}M {r_store / (1 << 20):8.1f}M "
          f"{ratio:6.2f}")
    if not restic:
        print("note: restic is not installed (apt-get install restic); its columns are empty")
    if not args.keep:
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
