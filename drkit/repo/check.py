"""``drkit check``: structure and, optionally, every byte of the data.

Structure: every journaled object is present with its journaled size, every index file
and snapshot manifest verifies, every chunk a snapshot names is indexed, every indexed
pack and session key is present. Read-data: each selected pack is read in full and must
hash to its name and to the journal, and with the recovery key every chunk in it is
decrypted and authenticated. Problems are collected and reported by object name.
"""

from __future__ import annotations

import hashlib
import math
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from drkit.errors import DrkitError
from drkit.progress import NULL_PROGRESS, Progress
from drkit.repo.formats import PACK_MAGIC, IndexFile, Manifest, key_digest
from drkit.repo.repository import Repository, SnapshotInfo

WORKERS = 2


@dataclass
class CheckReport:
    store: str
    snapshots: int = 0
    index_files: int = 0
    packs: int = 0
    packs_read: int = 0
    chunks_read: int = 0
    bytes_read: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"store": self.store, "ok": self.ok, "snapshots": self.snapshots,
                "index_files": self.index_files, "packs": self.packs,
                "packs_read": self.packs_read, "chunks_read": self.chunks_read,
                "bytes_read": self.bytes_read, "problems": self.problems}


def check_repository(repo: Repository, *, read_fraction: float = 0.0,
                     recovery: X25519PrivateKey | None = None,
                     progress: Progress = NULL_PROGRESS, seed: int | None = None,
                     workers: int = WORKERS) -> CheckReport:
    url = repo.store.url
    report = CheckReport(store=url)
    report.problems += repo.journal_problems
    listed = {info.key: info.size for info in repo.store.list("")}
    for key, entry in sorted(repo.visible.items()):
        if key.startswith("journal/"):
            continue
        if key not in listed:
            report.problems.append(f"{key}: missing")
        elif listed[key] != entry.size:
            report.problems.append(f"{key}: size {listed[key]}, journaled {entry.size}")

    indexes: dict[str, IndexFile] = {}
    for key in repo.keys_under("index/"):
        try:
            indexes[key] = IndexFile.decode(repo.get_verified(key), repo.trusted, name=key)
        except DrkitError as exc:
            report.problems.append(_strip(str(exc), url))
    report.index_files = len(indexes)
    chunks: dict[bytes, tuple[str, int, int]] = {}
    by_pack: dict[str, list[tuple[bytes, int, int, str]]] = {}
    for key, index in indexes.items():
        if index.pack not in repo.visible:
            report.problems.append(f"{key}: names pack {index.pack}, which is not journaled")
        elif repo.visible[index.pack].size != index.pack_size:
            report.problems.append(f"{key}: pack {index.pack} size differs from the index")
        if f"sessions/{index.session}" not in repo.visible:
            report.problems.append(f"{key}: session key {index.session[:16]} is missing")
        lst = by_pack.setdefault(index.pack, [])
        for cid, offset, length, _raw in index.chunks:
            chunks[cid] = (index.pack, offset, length)
            lst.append((cid, offset, length, index.session))
    report.packs = len(by_pack)
    locations = {cid: loc for index in indexes.values() for cid, loc in index.locations().items()}

    for key in repo.keys_under("snapshots/"):
        try:
            manifest = Manifest.decode(repo.get_verified(key), repo.trusted, name=key)
        except DrkitError as exc:
            report.problems.append(_strip(str(exc), url))
            continue
        report.snapshots += 1
        pack_digests = {key_digest(p) for p in by_pack}
        absent = [p for p in manifest.packs if p not in pack_digests]
        if absent:
            report.problems.append(f"{key}: {len(absent)} pack(s) not in any index "
                                   f"(first {absent[0][:16]})")
        missing = [c for c in manifest.tree_chunks if bytes.fromhex(c) not in chunks]
        if missing:
            report.problems.append(f"{key}: tree chunk {missing[0][:16]} is not indexed")
        if f"sessions/{manifest.session}" not in repo.visible:
            report.problems.append(f"{key}: session key {manifest.session[:16]} is missing")
        if recovery is not None and not missing:
            # With the recovery key the tree can be read: every file's chunks must be indexed.
            try:
                tree = repo.read_tree(SnapshotInfo(key_digest(key), key, manifest), recovery,
                                      locations)
            except DrkitError as exc:
                report.problems.append(_strip(str(exc), url))
                continue
            unindexed = [c for src in tree["sources"] for e in src["entries"]
                         for c in e.get("chunks", ()) if bytes.fromhex(c) not in chunks]
            if unindexed:
                report.problems.append(f"{key}: {len(unindexed)} file chunk(s) not in any "
                                       f"index (first {unindexed[0][:16]})")

    if read_fraction > 0 and by_pack:
        packs = sorted(p for p in by_pack if p in listed)
        if read_fraction < 1:
            count = max(1, math.ceil(len(packs) * read_fraction))
            packs = sorted(random.Random(seed).sample(packs, count))
        task = progress.task("check", sum(listed[p] for p in packs), "B")

        def read_pack(pack: str) -> tuple[list[str], int, int]:
            problems: list[str] = []
            try:
                data = repo.store.get(pack)
            except DrkitError as exc:
                return [f"{pack}: cannot read: {_strip(str(exc), url)}"], 0, 0
            task.advance(len(data))
            digest = hashlib.sha256(data).hexdigest()
            if digest != key_digest(pack):
                kind = "truncated" if len(data) < repo.visible[pack].size else \
                    "corrupted or swapped"
                problems.append(f"{pack}: content does not match its name ({kind})")
            elif digest != repo.visible[pack].sha256:
                problems.append(f"{pack}: content does not match the journal")
            if not data.startswith(PACK_MAGIC):
                problems.append(f"{pack}: not a drkit pack (bad header)")
            done = 0
            if recovery is not None:
                view = memoryview(data)
                for cid, offset, length, session in by_pack[pack]:
                    try:
                        if offset + length > len(data):
                            raise DrkitError(f"chunk {cid.hex()[:16]} lies beyond the end")
                        repo.cipher(session, recovery).decrypt(
                            cid, view[offset:offset + length], name=pack)
                        done += 1
                    except DrkitError as exc:
                        msg = str(exc)
                        problems.append(msg if msg.startswith(pack) else f"{pack}: {msg}")
                        if len(problems) > 20:
                            problems.append(f"{pack}: (more problems not shown)")
                            break
            return problems, len(data), done

        try:
            with ThreadPoolExecutor(workers, thread_name_prefix="check") as pool:
                for problems, size, done in pool.map(read_pack, packs):
                    report.problems.extend(problems)
                    report.bytes_read += size
                    report.chunks_read += done
                    report.packs_read += 1
        finally:
            task.close()
    return report


def _strip(message: str, prefix: str) -> str:
    for p in (prefix + ": ", prefix):
        if message.startswith(p):
            return message[len(p):]
    return message
