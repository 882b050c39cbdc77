"""Restoring a snapshot bit for bit, verifying as it goes.

Each needed pack is read once, checked against its name (the SHA-256 of its bytes) and
the journal, every chunk is authenticated while it is decrypted, chunks are written at
their offsets, and every file's SHA-256 is checked before permissions and mtimes are set.
Works on any region's store (``Repository.open``) and needs the recovery private key.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import hashlib
import os
import secrets
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from drkit.errors import InputError, IntegrityError
from drkit.progress import NULL_PROGRESS, Progress
from drkit.repo.formats import PACK_MAGIC, ChunkLocation, key_digest
from drkit.repo.repository import Repository, SnapshotInfo

WORKERS = 2
BUFFER_LIMIT = 32 << 20  # out-of-order chunks held for running file hashes


class _Budget:
    """Bytes that may be held back for out-of-order hashing, shared by all files."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.lock = threading.Lock()

    def take(self, n: int) -> bool:
        with self.lock:
            if n > self.left:
                return False
            self.left -= n
            return True

    def give(self, n: int) -> None:
        with self.lock:
            self.left += n


class _FileHash:
    """A file's SHA-256 computed as its chunks are written, in order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hasher = hashlib.sha256()
        self.next = 0
        self.waiting: dict[int, bytes] = {}
        self.broken = False

    def add(self, offset: int, data: bytes, budget: _Budget) -> None:
        with self.lock:
            if self.broken:
                return
            if offset != self.next:
                if budget.take(len(data)):
                    self.waiting[offset] = data
                else:
                    self.broken = True
                    for held in self.waiting.values():
                        budget.give(len(held))
                    self.waiting.clear()
                return
            self.hasher.update(data)
            self.next += len(data)
            while self.next in self.waiting:
                held = self.waiting.pop(self.next)
                budget.give(len(held))
                self.hasher.update(held)
                self.next += len(held)

    def digest(self, size: int) -> str | None:
        with self.lock:
            if self.broken or self.next != size:
                return None
            return self.hasher.hexdigest()


@dataclass
class RestoreResult:
    snapshot_id: str
    target: str
    files: int
    dirs: int
    symlinks: int
    bytes: int
    packs_read: int
    control_totals: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"snapshot_id": self.snapshot_id, "target": self.target, "files": self.files,
                "dirs": self.dirs, "symlinks": self.symlinks, "bytes": self.bytes,
                "packs_read": self.packs_read, "control_totals": self.control_totals}


def _safe_rel(source: str, rel: str, name: str) -> PurePosixPath:
    path = PurePosixPath(source) / rel if rel else PurePosixPath(source)
    if path.is_absolute() or any(p in ("..", "") for p in path.parts) or "/" in source:
        raise IntegrityError(f"{name}: unsafe path {str(path)!r} in snapshot tree")
    return path


def _os_error(target: Path, path: Path, exc: OSError) -> InputError:
    if exc.errno == errno.ENOSPC:
        return InputError(f"{target}: no space left on device while restoring {path}")
    return InputError(f"{path}: cannot write: {exc.strerror}")


def restore_snapshot(repo: Repository, snapshot: SnapshotInfo, target: Path,
                     recovery: X25519PrivateKey, *, paths: list[str] | None = None,
                     force: bool = False, progress: Progress = NULL_PROGRESS,
                     workers: int = WORKERS) -> RestoreResult:
    if target.exists() and not target.is_dir():
        raise InputError(f"{target}: exists and is not a directory")
    if target.exists() and any(target.iterdir()) and not force:
        raise InputError(f"{target}: is not empty (use --force to restore into it)")
    index = repo.load_index()
    tree = repo.read_tree(snapshot, recovery, index)
    name = f"{repo.store.url}: {snapshot.key}"

    files: list[tuple[Path, dict[str, Any]]] = []
    dirs: list[tuple[Path, dict[str, Any]]] = []
    links: list[tuple[Path, dict[str, Any]]] = []
    totals: dict[str, Any] = {}
    for source in tree["sources"]:
        if source.get("control_totals"):
            totals[source["name"]] = source["control_totals"]
        for entry in source["entries"]:
            rel = _safe_rel(source["name"], entry["path"], name)
            if paths and entry["type"] != "dir" and not any(
                    fnmatch.fnmatchcase(str(rel), g) or fnmatch.fnmatchcase(entry["path"], g)
                    for g in paths):
                continue
            dest = target / rel
            {"file": files, "dir": dirs, "symlink": links}[entry["type"]].append((dest, entry))

    # Where every chunk goes: pack -> chunk -> [(file, offset)].
    plan: dict[str, dict[bytes, list[tuple[Path, int]]]] = defaultdict(lambda: defaultdict(list))
    locs: dict[bytes, ChunkLocation] = {}
    total_bytes = 0
    token = secrets.token_hex(4)
    temporary: dict[Path, Path] = {}  # final name -> temporary name, until renamed
    whole: dict[Path, tuple[Path, dict[str, Any]]] = {}  # one-chunk files: (temporary, entry)
    lock = threading.Lock()
    try:
        try:
            target.mkdir(parents=True, exist_ok=True)
            root = target.resolve()
            # With --force the target may hold symlinks: never create or write through one.
            # (Checked once per folder: many entries share one.)
            parents: dict[Path, bool] = {}
            for dest, _entry in [*dirs, *files, *links]:
                inside = parents.get(dest.parent)
                if inside is None:
                    inside = parents[dest.parent] = dest.parent.resolve().is_relative_to(root)
                if not inside:
                    raise InputError(f"{dest}: a symlink in the target leads outside {target}")
            for dest, _entry in dirs:
                dest.mkdir(parents=True, exist_ok=True)
            made: set[Path] = set()
            for n, (dest, entry) in enumerate(files):
                if dest.parent not in made:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    made.add(dest.parent)
                # Written under a temporary name beside the final one and renamed only when
                # complete and hash-checked, so a failure (a full disk, Ctrl-C) never leaves a
                # file under its final name that differs from the snapshot.
                tmp = dest.with_name(f".drkit-restore-{token}-{n}")
                if len(entry["chunks"]) == 1:
                    # One chunk is the whole file: created, written, checked and renamed in
                    # one go when its chunk is decrypted (restore_pack).
                    whole[dest] = (tmp, entry)
                else:
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                                 0o600)
                    temporary[dest] = tmp
                    try:
                        os.ftruncate(fd, int(entry["size"]))
                    finally:
                        os.close(fd)
                offset = 0
                for hexid in entry["chunks"]:
                    cid = bytes.fromhex(hexid)
                    loc = index.get(cid)
                    if loc is None:
                        raise IntegrityError(f"{name}: chunk {hexid[:16]} of {dest} is not indexed")
                    locs[cid] = loc
                    plan[loc.pack][cid].append((dest, offset))
                    offset += loc.raw_length
                if offset != int(entry["size"]):
                    raise IntegrityError(f"{name}: {dest}: chunk sizes do not add up")
                total_bytes += offset
        except OSError as exc:
            raise _os_error(target, target, exc) from None

        task = progress.task("restore", total_bytes, "B")
        states = {dest: _FileHash() for dest, _entry in files if dest not in whole}
        budget = _Budget(BUFFER_LIMIT)

        def restore_pack(pack: str) -> None:
            data = repo.get_verified(pack)  # hashed once, against the journal...
            if repo.visible[pack].sha256 != key_digest(pack) or not data.startswith(PACK_MAGIC):
                # ...and the journal's hash must be the pack's name
                raise IntegrityError(f"{repo.store.url}: {pack}: content does not match its name")
            view = memoryview(data)
            for cid, dests in sorted(plan[pack].items(), key=lambda kv: locs[kv[0]].offset):
                loc = locs[cid]
                cipher = repo.cipher(loc.session, recovery)
                plain = cipher.decrypt(cid, view[loc.offset:loc.offset + loc.length],
                                       name=f"{repo.store.url}: {pack}")
                if len(plain) != loc.raw_length:
                    raise IntegrityError(f"{repo.store.url}: {pack}: chunk {cid.hex()[:16]} "
                                         "has the wrong length")
                for dest, offset in dests:
                    if dest in whole:
                        write_whole(dest, plain)
                        task.advance(len(plain))
                        continue
                    try:
                        fd = os.open(temporary[dest], os.O_WRONLY)
                        try:
                            os.pwrite(fd, plain, offset)
                        finally:
                            os.close(fd)
                    except OSError as exc:
                        raise _os_error(target, dest, exc) from None
                    states[dest].add(offset, plain, budget)
                    task.advance(len(plain))

        def write_whole(dest: Path, plain: bytes) -> None:
            tmp, entry = whole[dest]
            if hashlib.sha256(plain).hexdigest() != entry["sha256"]:
                raise IntegrityError(f"{dest}: restored content does not match the snapshot hash")
            with lock:
                temporary[dest] = tmp
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                try:
                    view = memoryview(plain)
                    while view:
                        view = view[os.write(fd, view):]
                    os.fchmod(fd, int(entry["mode"]))
                finally:
                    os.close(fd)
                os.utime(tmp, ns=(int(entry["mtime_ns"]), int(entry["mtime_ns"])))
                os.replace(tmp, dest)
            except OSError as exc:
                raise _os_error(target, dest, exc) from None
            with lock:
                del temporary[dest]

        def verify_file(item: tuple[Path, dict[str, Any]]) -> None:
            dest, entry = item
            try:
                digest = states[dest].digest(int(entry["size"]))
                tmp = temporary[dest]
                if digest is None:  # chunks arrived out of order beyond the buffer: read back
                    hasher = hashlib.sha256()
                    with tmp.open("rb") as fh:
                        while block := fh.read(4 << 20):
                            hasher.update(block)
                    digest = hasher.hexdigest()
                if digest != entry["sha256"]:
                    raise IntegrityError(f"{dest}: restored content does not match the snapshot "
                                         "hash")
                os.chmod(tmp, int(entry["mode"]))
                os.utime(tmp, ns=(int(entry["mtime_ns"]), int(entry["mtime_ns"])))
                # os.replace replaces a symlink at dest itself, never what it points to.
                os.replace(tmp, dest)
                with lock:
                    del temporary[dest]
            except OSError as exc:
                raise _os_error(target, dest, exc) from None

        # Packs in the order their data appears in the files, so most chunks reach each file's
        # running hash in order and no file has to be read back.
        order: dict[str, tuple[int, int]] = {}
        position = {dest: n for n, (dest, _e) in enumerate(files)}
        for pack, chunks in plan.items():
            order[pack] = min((position[d], off) for dests in chunks.values() for d, off in dests)
        try:
            with ThreadPoolExecutor(workers, thread_name_prefix="restore") as pool:
                ordered = sorted(plan, key=lambda p: order[p])
                for future in [pool.submit(restore_pack, p) for p in ordered]:
                    future.result()
                for future in [pool.submit(verify_file, item) for item in files
                               if item[0] not in whole]:
                    future.result()
        finally:
            task.close()
        try:
            for dest, entry in links:
                dest.parent.mkdir(parents=True, exist_ok=True)
                if dest.is_symlink() or dest.exists():
                    dest.unlink()
                os.symlink(entry["target"], dest)
                os.utime(dest, ns=(int(entry["mtime_ns"]),) * 2, follow_symlinks=False)
            for dest, entry in sorted(dirs, key=lambda d: len(d[0].parts), reverse=True):
                os.chmod(dest, int(entry["mode"]))
                os.utime(dest, ns=(int(entry["mtime_ns"]),) * 2)
        except OSError as exc:
            raise _os_error(target, target, exc) from None
        return RestoreResult(snapshot.id, str(target), len(files), len(dirs), len(links),
                             total_bytes, len(plan), totals)
    finally:
        for tmp in temporary.values():  # what a failure left half-written
            with contextlib.suppress(OSError):
                tmp.unlink()
