"""Benchmark: the ``drkit verify`` command at scale, on a local folder and on S3 (moto).

    .venv/bin/python bench/verify.py [--objects 100000] [--s3-objects 10000] [--dir DIR]

1. A project set up as a user sets it up (drkit.toml, ``drkit keys init``): the primary
   region on a local folder (beijing), a second region on S3 (shanghai) served by moto
   running as its own process on 127.0.0.1, with Object Lock.
2. S3_OBJECTS small logged objects (1 KiB each, so per-object overhead dominates),
   journaled in batches of 10,000 as a snapshot journals them, copied by ``drkit
   replicate``; then ``drkit verify --region shanghai --accept-first-contact``: S3 is
   checked by listing (the ETag proves content), so the S3 requests are counted by
   operation and must be about one LIST page per 1,000 objects, not one per object.
3. More objects, up to OBJECTS in the primary; then ``drkit verify --region beijing``: a
   local folder's metadata proves nothing, so every object is hashed from disk and its
   retention sidecar read.

Every verify is the whole command, run in this process (key history, journals, objects,
records, audit log, run record): wall and CPU seconds (``time.process_time``; moto's
CPU is not counted), objects/s, and S3 requests per 1,000 objects. The machine may be
shared: compare CPU seconds and ratios rather than wall times.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from moto_server import create_bucket, credentials_env, free_port, s3_url  # noqa: E402

from drkit.cli.main import main as drkit_main  # noqa: E402
from drkit.config import load_config  # noqa: E402
from drkit.journal import Journal, JournalEntry  # noqa: E402
from drkit.repo.keys import load_writer_signing_key, read_repository_id  # noqa: E402
from drkit.storage.local import LocalStore  # noqa: E402

LOCK_DAYS = 3650
BATCH = 10_000
PASSPHRASE = "a long passphrase for the verify benchmark"  # noqa: S105 - a bench secret

CONFIG = """\
[repository]
primary = "beijing"
keys = "keys"

[regions.beijing]
url = "file:regions/beijing"

[regions.shanghai]
url = "{s3}"
storage_class = "STANDARD_IA"
lock_days = {lock}
retention_days = {lock}

[verify]
state_dir = "state"
"""


@contextlib.contextmanager
def moto_process() -> Iterator[str]:
    """moto's S3 server in a process of its own (its Python does not share our GIL)."""
    port = free_port()
    env = dict(os.environ, MOTO_EC2_LOAD_DEFAULT_AMIS="false")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                             "-p", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                create_bucket(endpoint, "bench-probe")
                break
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def drkit(config: Path, *args: str) -> int:
    """Run one drkit command in this process; its exit code."""
    try:
        drkit_main(["--config", str(config), "-q", *args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def verify(config: Path, region: str, *args: str) -> tuple[int, float, float]:
    """``drkit verify --region REGION ARGS``: objects logged, wall and CPU seconds."""
    out = io.StringIO()
    wall, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(out):
        code = drkit(config, "--json", "verify", "--region", region, *args)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    report = json.loads(out.getvalue())
    if code != 0:
        raise SystemExit(f"verify {region} exited {code}: {report.get('findings')}")
    return report["regions"][0]["objects_logged"], wall, cpu


def count_s3_requests() -> Counter[str]:
    """Count every S3 API call of the stores drkit opens from here on (they share one
    boto3 session, and a session's handlers reach the clients it makes later)."""
    from drkit.storage.s3 import _shared_session

    counts: Counter[str] = Counter()

    def hook(model: Any, **_kw: Any) -> None:
        counts[model.name] += 1

    _shared_session().events.register("before-call.s3", hook)
    return counts


def add_objects(store: LocalStore, journal: Journal, signer: Any, start: int, stop: int
                ) -> None:
    """Objects ``start`` .. ``stop`` - 1 (1 KiB each), journaled 10,000 at a time."""
    def one(i: int) -> JournalEntry:
        data = hashlib.sha256(str(i).encode()).digest() * 32
        digest = hashlib.sha256(data).hexdigest()
        return JournalEntry.from_info(store.put(f"packs/{digest[:2]}/{digest}", data))

    with ThreadPoolExecutor(8) as pool:
        for first in range(start, stop, BATCH):
            entries = list(pool.map(one, range(first, min(stop, first + BATCH))))
            journal.append(entries, signer, now=datetime.now(UTC))


def line(what: str, objects: int, wall: float, cpu: float) -> str:
    return (f"{what:<28} {objects:>8,} objects {wall:7.2f} s wall {cpu:7.2f} s CPU "
            f"{objects / wall:9,.0f} objects/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--objects", type=int, default=100_000,
                    help="objects in the local primary (default 100,000)")
    ap.add_argument("--s3-objects", type=int, default=10_000,
                    help="objects copied to S3 (moto is slow to fill; default 10,000)")
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    s3_objects = min(args.s3_objects, args.objects)
    work = args.dir or Path(tempfile.mkdtemp(prefix="drkit-bench-verify-"))
    if work.exists():
        shutil.rmtree(work)
    (work / "keys").mkdir(parents=True, mode=0o700)
    os.environ.update(credentials_env())
    os.environ["DRKIT_RECOVERY_PASSPHRASE"] = PASSPHRASE
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    try:
        with moto_process() as endpoint:
            bucket = create_bucket(endpoint, "bench-verify", versioning=True,
                                   object_lock_days=LOCK_DAYS)
            config = work / "drkit.toml"
            config.write_text(CONFIG.format(s3=s3_url(endpoint, bucket), lock=LOCK_DAYS))
            assert drkit(config, "keys", "init") == 0
            cfg = load_config(config)
            signer = load_writer_signing_key(cfg)
            assert cfg.primary_region.url.path is not None
            primary = LocalStore(cfg.primary_region.url.path)
            journal = Journal(primary, "drkit:" + read_repository_id(
                primary, [signer.public_key()]))

            t = time.perf_counter()
            add_objects(primary, journal, signer, 0, s3_objects)
            assert drkit(config, "replicate") == 0
            print(f"setup: {s3_objects:,} objects written and replicated to S3 in "
                  f"{time.perf_counter() - t:.0f} s")
            counts = count_s3_requests()
            logged, wall, cpu = verify(config, "shanghai", "--accept-first-contact")
            total = sum(counts.values())
            print(line("verify S3 (moto, listing)", logged, wall, cpu))
            print(f"  S3 requests: {total} ({total * 1000 / logged:.1f} per 1,000 "
                  f"objects): {dict(sorted(counts.items()))}")

            t = time.perf_counter()
            add_objects(primary, journal, signer, s3_objects, args.objects)
            print(f"setup: {args.objects - s3_objects:,} more objects in the primary in "
                  f"{time.perf_counter() - t:.0f} s")
            logged, wall, cpu = verify(config, "beijing")
            print(line("verify local (hash each)", logged, wall, cpu))
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
