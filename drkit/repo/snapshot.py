"""Taking a snapshot: sources -> chunk sink -> packs -> signed manifest -> journal."""

from __future__ import annotations

import contextlib
import gc
import logging
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from drkit import faults
from drkit.clock import Clock, utc_iso
from drkit.config import Config
from drkit.errors import InputError
from drkit.progress import Progress
from drkit.repo.chunking import ChunkStore
from drkit.repo.formats import Manifest, SourceSummary, content_key, encode_tree, key_digest
from drkit.repo.logretention import STATS_KEY as LOG_BASES
from drkit.repo.logretention import describe_bases
from drkit.repo.writer import RepositoryWriter
from drkit.sources.base import Source, SourceResult, make_source
from drkit.storage.base import Store

log = logging.getLogger(__name__)
WORKERS = 2


@dataclass
class SnapshotResult:
    snapshot_id: str
    time: str
    sources: list[str]
    files: int
    bytes_total: int
    bytes_read: int
    bytes_new: int
    bytes_stored: int
    objects_written: int
    duration_s: float
    journal_size: int
    reused_leftovers: int = 0
    control_totals: dict[str, Any] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)  # source, path, reason

    def to_dict(self) -> dict[str, Any]:
        return {"snapshot_id": self.snapshot_id, "time": self.time, "sources": self.sources,
                "files": self.files, "bytes_total": self.bytes_total,
                "bytes_read": self.bytes_read, "bytes_new": self.bytes_new,
                "bytes_stored": self.bytes_stored, "objects_written": self.objects_written,
                "duration_s": round(self.duration_s, 3), "journal_size": self.journal_size,
                "reused_leftovers": self.reused_leftovers, "skipped": self.skipped}


@contextlib.contextmanager
def _few_collections() -> Iterator[None]:
    """Run with the cyclic garbage collector mostly idle. A snapshot allocates an entry per
    file and keeps it to the end (hardly any cycles), so the default thresholds would walk
    every live object again and again as they grow; reference counting frees the rest."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def take_snapshot(config: Config, *, clock: Clock, progress: Progress,
                  source_names: list[str] | None = None, store: Store | None = None,
                  workers: int = WORKERS,
                  make_sources: Callable[[str], list[Source]] | None = None,
                  lock_wait: float = 0.0) -> SnapshotResult:
    """Snapshot the named sources (all by default) into the primary region.

    ``make_sources(repository_id)`` replaces the configured sources with others (a
    PostgreSQL base backup, ``drkit.pitr.postgres``). ``lock_wait``: seconds to wait for
    the repository lock while another live process (a WAL push) holds it."""
    started = time.monotonic()
    now = clock.now()
    names = source_names or sorted(config.sources)
    # The keys first: after 'drkit init' the next step is 'drkit keys init', whatever the
    # sources say.
    writer = RepositoryWriter.for_config(config, now=now, store=store)
    writer.lock_wait = lock_wait
    if not names and make_sources is None:
        raise InputError(f"{config.path}: no sources configured (add a [sources.NAME] table; "
                         "'drkit init' wrote commented examples)")
    configs = [config.source(n) for n in names] if make_sources is None else []
    with writer, _few_collections():
        sources: list[Source] = [make_source(c, config.cache_dir, writer.keys.repository_id)
                                 for c in configs]
        if make_sources is not None:
            sources = make_sources(writer.keys.repository_id)
            names = [s.name for s in sources]
        for source in sources:
            source.check()
        try:
            writer.load_known_chunks()
            estimates = [s.estimate_bytes() for s in sources]
            # A total (and so a bar with an ETA) when every source can guess cheaply.
            total = sum(e for e in estimates if e) if all(
                e is not None for e in estimates) else None
            task = progress.task("snapshot", total or None, "B")
            try:
                sink = ChunkStore(writer, writer.keys.id_key, task)
                results: list[SourceResult] = []
                # Sources run side by side (a database copy overlaps with a file walk); their
                # per-file work shares one pool sized to the cores.
                with ThreadPoolExecutor(workers, thread_name_prefix="chunk") as pool, \
                        ThreadPoolExecutor(len(sources), thread_name_prefix="source") as runs:
                    futures = [runs.submit(s.snapshot, sink, pool, task) for s in sources]
                    results = [f.result() for f in futures]
            finally:
                task.close()
            session, _session_key = writer.session
            tree = sink.store_tree(encode_tree([r.tree() for r in results]))
            writer.flush()
            chunks = {bytes.fromhex(c) for r in results for e in r.entries
                      for c in e.get("chunks", ())}
            chunks.update(tree.chunks)
            packs = sorted({key_digest(writer.known[c].pack) for c in chunks})
            stats: dict[str, Any] = {
                "files": sum(r.files for r in results),
                "bytes_total": sum(r.bytes_total for r in results),
                "bytes_read": sum(r.bytes_read for r in results),
                "bytes_new": writer.bytes_new, "bytes_stored": writer.bytes_stored}
            # Where each database base stands in its log, readable without the recovery
            # key: what the approved prune keeps of the archived log (drkit.repo.logretention).
            bases = describe_bases(results)
            if bases:
                stats[LOG_BASES] = bases
            manifest = Manifest(
                repository_id=writer.keys.repository_id, time=utc_iso(now),
                host=socket.gethostname(),
                sources=tuple(SourceSummary(r.name, r.type, r.files, r.bytes_total)
                              for r in results),
                stats=stats, session=session,
                tree_chunks=tuple(c.hex() for c in tree.chunks), tree_size=tree.size,
                tree_sha256=tree.sha256, packs=tuple(packs), chunk_count=len(chunks))
            encoded = manifest.encode(writer.keys.signing_key)
            info = writer.put_object(content_key("snapshots", encoded), encoded)
            reused = len(writer.reused)
            objects = len(writer.written)
            checkpoint = writer.commit()
            for source in sources:
                faults.point("snapshot.state.before")
                source.committed()
                faults.point("snapshot.state.after")
        finally:
            for source in sources:
                source.cleanup()
    return SnapshotResult(
        snapshot_id=key_digest(info.key), time=utc_iso(now), sources=names,
        files=int(stats["files"]), bytes_total=int(stats["bytes_total"]),
        bytes_read=int(stats["bytes_read"]), bytes_new=writer.bytes_new,
        bytes_stored=writer.bytes_stored, objects_written=objects,
        duration_s=time.monotonic() - started, journal_size=checkpoint.size,
        reused_leftovers=reused,
        control_totals={r.name: r.control_totals for r in results if r.control_totals},
        skipped=[{"source": r.name, **item} for r in results for item in r.skipped])
