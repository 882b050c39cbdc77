"""Benchmark: ``drkit verify`` and ``drkit replicate`` at scale (one command).

    .venv/bin/python bench/verify.py [--objects 100000] [--new 10000] [--dir DIR]

1. A repository whose primary (a local folder) holds OBJECTS small logged objects
   (1 KiB each, so per-object overhead dominates), journaled in batches of 10,000.
2. ``verify`` of the primary without --read-data: a local folder's metadata is not
   trustworthy, so every object is hashed from disk.
3. ``replicate`` of all of them to an S3 region on a local moto server (server mode,
   127.0.0.1), then ``verify`` of that region without --read-data: listing-based, so the
   number of S3 requests is counted and must be about OBJECTS / 1000 LIST pages, not one
   request per object.
4. NEW new objects, then ``replicate`` to two regions (a local folder and S3).

Prints objects/s for each step and the S3 request counts. Indicative only: moto in
Python is far slower per request than real S3, and the page cache is warm.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from moto_server import MotoServer, create_bucket, credentials_env, s3_url  # noqa: E402

from drkit.clock import FixedClock  # noqa: E402
from drkit.config import RegionConfig  # noqa: E402
from drkit.journal import Journal, JournalEntry, read_log  # noqa: E402
from drkit.replicate import replicate  # noqa: E402
from drkit.repo.keys import CONFIG_KEY, encode_repository_config, init_keys  # noqa: E402
from drkit.repo.region_identity import ensure_identity  # noqa: E402
from drkit.storage.local import LocalStore  # noqa: E402
from drkit.storage.url import open_store, parse_store_url  # noqa: E402
from drkit.verify import TrustedState, verify_region  # noqa: E402

FAST_KDF = {"name": "argon2id", "iterations": 1, "lanes": 1, "memory_cost": 8}
LOCK_DAYS = 3650


def count_requests(store: Any) -> Counter[str]:
    """Count S3 API calls made through a store's boto3 client."""
    counts: Counter[str] = Counter()

    def hook(model: Any, **_kw: Any) -> None:
        counts[model.name] += 1

    store._client.meta.events.register("before-call.s3", hook)
    return counts


def put_objects(store: LocalStore, n: int, start: int, workers: int = 8) -> list[JournalEntry]:
    def one(i: int) -> JournalEntry:
        data = hashlib.sha256(str(i).encode()).digest() * 32  # 1 KiB, distinct
        digest = hashlib.sha256(data).hexdigest()
        return JournalEntry.from_info(store.put(f"packs/{digest[:2]}/{digest}", data))

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, range(start, start + n)))


def region(name: str, url: str, *, primary: bool = False, cls: str = "STANDARD",
           base: Path | None = None) -> RegionConfig:
    return RegionConfig(name=name, url=parse_store_url(url, base_dir=base), primary=primary,
                        storage_class=cls, lock_days=0 if primary else LOCK_DAYS,
                        retention_days=0 if primary else LOCK_DAYS)


def rate(n: int, seconds: float) -> str:
    return f"{n:>8,} objects {seconds:8.2f} s {n / seconds:10,.0f} objects/s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--new", type=int, default=10_000)
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="drkit-bench-verify-"))
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    clock = FixedClock(datetime.now(UTC))
    os.environ.update(credentials_env())
    server = MotoServer().start()
    try:
        keys = init_keys(work / "keys", "bench", kdf=FAST_KDF)
        trusted = [keys.signing_key.public_key()]
        origin = "drkit:" + keys.repository_id
        primary = LocalStore(work / "regions/beijing", clock=clock)
        journal = Journal(primary, origin)
        info = primary.put(CONFIG_KEY, encode_repository_config(keys, now=clock.now()))
        journal.append([JournalEntry.from_info(info)], keys.signing_key, now=clock.now())
        # As 'drkit keys init' does; replicate below signs the other regions' identities.
        ensure_identity(primary, keys.signing_key, trusted, region="beijing",
                        repository_id=keys.repository_id, now=clock.now())

        t = time.perf_counter()
        done = 0
        while done < args.objects:
            step = min(10_000, args.objects - done)
            journal.append(put_objects(primary, step, done), keys.signing_key,
                           now=clock.now())
            done += step
        print(f"setup: write + journal        {rate(args.objects, time.perf_counter() - t)}")

        beijing = region("beijing", (work / "regions/beijing").as_uri(), primary=True)
        state = TrustedState(work / "state", origin)
        t = time.perf_counter()
        view = read_log(primary, origin, trusted)
        t_log = time.perf_counter() - t
        report = verify_region(beijing, primary, origin=origin, trusted=trusted, state=state,
                               now=clock.now(), view=view)
        elapsed = time.perf_counter() - t
        assert report.clean and report.objects_hashed == args.objects + 1, report.findings
        print(f"verify local (hash each)      {rate(args.objects + 1, elapsed)}"
              f"   (journal read + checks: {t_log:.2f} s)")

        bucket = create_bucket(server.endpoint, "bench-s3", versioning=True,
                               object_lock_days=LOCK_DAYS)
        s3_region = region("shanghai", s3_url(server.endpoint, bucket), cls="STANDARD_IA")
        s3 = open_store(s3_region.url, clock=clock)
        t = time.perf_counter()
        _view, results = replicate(primary, [(s3_region, s3)], origin=origin, trusted=trusted,
                                   now=clock.now(), workers=16, signer=keys.signing_key)
        elapsed = time.perf_counter() - t
        assert not results[0].findings, results[0].findings
        print(f"replicate all to S3 (moto)    {rate(results[0].objects_copied, elapsed)}")

        s3_verify = open_store(s3_region.url, clock=clock)
        counts = count_requests(s3_verify)
        t = time.perf_counter()
        report = verify_region(s3_region, s3_verify, origin=origin, trusted=trusted,
                               state=state, now=clock.now(), primary_view=view)
        elapsed = time.perf_counter() - t
        assert report.clean, report.findings
        assert report.objects_checked_by_listing == args.objects + 1
        print(f"verify S3 (listing-based)     {rate(args.objects + 1, elapsed)}")
        print(f"  S3 requests: {sum(counts.values())} ({dict(sorted(counts.items()))})")

        local_region = region("hangzhou", (work / "regions/hangzhou").as_uri(),
                              cls="STANDARD_IA")
        hangzhou = LocalStore(work / "regions/hangzhou", clock=clock)
        # Bring the local replica up to date first so that step 4 copies only new objects.
        replicate(primary, [(local_region, hangzhou)], origin=origin, trusted=trusted,
                  now=clock.now(), workers=16, signer=keys.signing_key)
        journal.append(put_objects(primary, args.new, 20_000_000), keys.signing_key,
                       now=clock.now())
        t = time.perf_counter()
        _view, results = replicate(primary, [(local_region, hangzhou), (s3_region, s3)],
                                   origin=origin, trusted=trusted, now=clock.now(), workers=16,
                                   signer=keys.signing_key)
        elapsed = time.perf_counter() - t
        copied = sum(r.objects_copied for r in results)
        assert not any(r.findings for r in results)
        print(f"replicate new to 2 regions    {rate(copied, elapsed)}"
              f"   ({', '.join(f'{r.region}: {r.objects_copied}' for r in results)})")
    finally:
        server.stop()
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
