"""Benchmark: the cost of one ``drkit wal push`` as the journal grows.

    python bench/journal_growth.py [--sizes 100,500,1000,2000] [--pushes 3]
                                   [--dir /tmp/drkit-journalbench]

A fresh local repository (``file:``) gets journal batches until it holds each of
``--sizes`` batches; at each size ``--pushes`` real ``drkit wal push`` processes (as
PostgreSQL's ``archive_command`` runs them, one process per 1 MiB segment, each one writer
run that appends one batch) are timed: CPU time of the child (user + system) and wall time.

The batches between the measured pushes are written directly, with the bytes
``Journal.append`` writes (a signed batch of one object entry for a small stored object,
then its signed checkpoint, by the repository's own writer key): filling a journal to
2,000 batches with real pushes costs the sum of every push's cost, hours when that cost
grows. Each measured push reads and verifies the whole journal as the real command does.

Run it on a quiet machine; the figures are CPU seconds of one process and indicative
only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from drkit.config import load_config  # noqa: E402
from drkit.journal import JournalEntry, read_log  # noqa: E402
from drkit.journal.checkpoint import Checkpoint  # noqa: E402
from drkit.journal.log import batch_key, checkpoint_key, encode_batch  # noqa: E402
from drkit.journal.merkle import RootBuilder, hash_leaf  # noqa: E402
from drkit.repo.keyhistory import repository_history  # noqa: E402
from drkit.repo.keys import load_writer_signing_key, read_repository_id  # noqa: E402
from drkit.storage.url import open_store  # noqa: E402

PASSPHRASE = "bench-passphrase"
SEGMENT = 1 << 20
CONFIG = """
[repository]
primary = "local"
keys = "keys"
cache = ".drkit/cache"

[regions.local]
url = "file:repo"

[sources.shop]
type = "postgres"
database = "shop"
"""


def env() -> dict[str, str]:
    return {**os.environ, "DRKIT_RECOVERY_PASSPHRASE": PASSPHRASE, "PYTHONPATH": str(ROOT)}


def run_drkit(project: Path, *args: str) -> tuple[dict[str, Any], float, float]:
    """(JSON output, child CPU seconds, wall seconds) of one drkit process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "drkit", "--json", *args], cwd=project,
                         env=env(), capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"drkit {' '.join(args)} failed: {out.stderr.strip()[-600:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return (dict(json.loads(out.stdout)) if out.stdout.strip() else {}), cpu, wall


class Filler:
    """Appends batches the way ``Journal.append`` writes them, without reading the log
    again for each one (the bench's own set-up, not what it measures)."""

    def __init__(self, project: Path) -> None:
        self.config = load_config(project / "drkit.toml")
        self.store = open_store(self.config.primary_region.url, base_dir=self.config.base_dir)
        self.signer = load_writer_signing_key(self.config)
        trusted = repository_history(self.config, self.store)
        self.origin = "drkit:" + read_repository_id(self.store, trusted)
        self.count = 0
        self._sync(trusted)

    def _sync(self, trusted: list[Any]) -> None:
        view = read_log(self.store, self.origin, trusted)
        view.raise_for_errors(self.store.url)
        self.builder = RootBuilder()
        for leaf in view.leaf_hashes:
            self.builder.add(leaf)
        self.head = view.batch_keys[-1] if view.batch_keys else None
        self.batches = len(view.batch_keys)

    def resync(self) -> None:
        self._sync(repository_history(self.config, self.store))

    def add_batch(self) -> None:
        self.count += 1
        data = f"filler {self.count} {os.urandom(8).hex()}\n".encode()
        key = f"bench/fill/{self.count:08d}"
        self.store.put(key, data)
        entry = JournalEntry(kind="object", key=key, size=len(data),
                             sha256=hashlib.sha256(data).hexdigest())
        start = self.builder.size
        body = encode_batch(self.origin, start, [entry], self.head, signer=self.signer)
        bkey = batch_key(start, start + 1, body)
        self.store.put(bkey, body)
        self.builder.add(hash_leaf(entry.to_bytes()))
        cp = Checkpoint(origin=self.origin, size=self.builder.size, root=self.builder.root(),
                        time=datetime.now(UTC), batch=bkey)
        self.store.put(checkpoint_key(cp.size), cp.sign(self.signer))
        self.head = bkey
        self.batches += 1


def segment(folder: Path, number: int) -> Path:
    path = folder / f"00000001000000000000{number:04X}"
    path.write_bytes(os.urandom(8192) + bytes(SEGMENT - 8192))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,500,1000,2000")
    parser.add_argument("--pushes", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/drkit-journalbench"))
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    shutil.rmtree(args.dir, ignore_errors=True)
    project = args.dir / "project"
    project.mkdir(parents=True)
    (project / "drkit.toml").write_text(CONFIG)
    os.environ["DRKIT_RECOVERY_PASSPHRASE"] = PASSPHRASE
    run_drkit(project, "keys", "init")
    pg_wal = args.dir / "pg_wal"
    pg_wal.mkdir()
    filler = Filler(project)
    results = []
    number = 0
    for size in sizes:
        filler.resync()  # the pushes appended batches of their own
        while filler.batches < size:
            filler.add_batch()
        cpus, walls = [], []
        for _ in range(args.pushes):
            number += 1
            path = segment(pg_wal, number)
            _out, cpu, wall = run_drkit(project, "wal", "push", str(path))
            cpus.append(cpu)
            walls.append(wall)
        row = {"batches": size, "push_cpu_s": round(sorted(cpus)[len(cpus) // 2], 3),
               "push_cpu_s_all": [round(c, 3) for c in cpus],
               "push_wall_s": round(sorted(walls)[len(walls) // 2], 3)}
        results.append(row)
        print(f"{size:>6} batches: wal push CPU {row['push_cpu_s']:.3f} s (median of "
              f"{args.pushes}: {row['push_cpu_s_all']}), wall {row['push_wall_s']:.3f} s",
              flush=True)
    print(json.dumps({"journal_growth": results}))


if __name__ == "__main__":
    main()
