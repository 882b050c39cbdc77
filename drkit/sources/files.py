"""``files`` source: a directory tree with regular files, directories and symlinks.

Unchanged files are not read at all: a local files cache (per repository and source, in
the cache folder) maps each path to (size, mtime, ctime, inode) and the chunk ids and
hash of its content; a file whose four values match and whose chunks are all still in the
repository is taken from the cache. The cache is only written after the snapshot is
committed.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import os
import stat
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

from drkit.errors import InputError
from drkit.progress import ProgressTask
from drkit.sources.base import ChunkSink, Source, SourceResult, StoredContent

log = logging.getLogger(__name__)
CACHE_VERSION = 1
MAX_IN_FLIGHT = 64  # batches handed to the pool and not yet settled
# Small files go to the pool in batches (one task per batch, not per file): per-task
# overhead would otherwise cost more than chunking a few KiB.
BATCH_FILES = 64
BATCH_BYTES = 4 << 20


def _store_batch(sink: ChunkSink, root: Path, files: list[tuple[str, int]]
                 ) -> list[StoredContent | OSError]:
    """Store each (relative path, size); a file that cannot be read gives its OSError."""
    out: list[StoredContent | OSError] = []
    base = str(root)
    for rel, size in files:
        try:
            # A plain string: a Path per file costs more than storing a small file.
            out.append(sink.store_file(os.path.join(base, rel), size))
        except OSError as exc:  # unreadable, or vanished, while being read
            out.append(exc)
    return out


def excluded(rel: str, patterns: tuple[str, ...], *, is_dir: bool) -> bool:
    """Glob match on the relative path or on the base name; ``dir/**`` excludes a folder."""
    name = rel.rsplit("/", 1)[-1]
    for pattern in patterns:
        if fnmatch.fnmatchcase(rel, pattern) or fnmatch.fnmatchcase(name, pattern):
            return True
        if is_dir and fnmatch.fnmatchcase(rel + "/", pattern):
            return True
    return False


class FilesSource(Source):
    type = "files"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._new_cache: dict[str, list[Any]] = {}
        self._old_cache: dict[str, list[Any]] | None = None
        self._skipped: list[dict[str, str]] = []

    @property
    def root(self) -> Path:
        assert self.config.path is not None
        return self.config.path

    @property
    def cache_path(self) -> Path:
        return self.cache_dir / f"files-{self.repository_id}-{self.name}.json"

    def check(self) -> None:
        if not self.root.exists():
            raise InputError(f"source {self.name!r}: {self.root} does not exist")
        if not self.root.is_dir():
            raise InputError(f"source {self.name!r}: {self.root} is not a directory")
        if not os.access(self.root, os.R_OK | os.X_OK):
            raise InputError(f"source {self.name!r}: {self.root} is not readable")

    def estimate_bytes(self) -> int | None:
        """The sizes the files cache recorded at the last snapshot: no walk needed."""
        cache = self._load_cache()
        if not cache:
            return None
        return sum(int(v[0]) for v in cache.values() if v and isinstance(v[0], int))

    def _load_cache(self) -> dict[str, list[Any]]:
        try:
            data = json.loads(self.cache_path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
            return {}
        files = data.get("files")
        return files if isinstance(files, dict) else {}

    def _walk(self) -> Iterator[tuple[str, os.stat_result]]:
        """(relative path, lstat) of every entry, parents before children, sorted."""
        stack = [""]
        while stack:
            rel_dir = stack.pop()
            path = self.root / rel_dir if rel_dir else self.root
            try:
                with os.scandir(path) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                if not rel_dir:
                    raise InputError(f"source {self.name!r}: cannot list {path}: "
                                     f"{exc.strerror}") from None
                # One unreadable folder must not cost the whole snapshot (as with restic):
                # it is left out, named in a warning and counted in the summary.
                self._skip(rel_dir, f"cannot list: {exc.strerror}")
                continue
            subdirs = []
            for entry in entries:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # vanished while we looked
                is_dir = stat.S_ISDIR(st.st_mode)
                if excluded(rel, self.config.exclude, is_dir=is_dir):
                    continue
                yield rel, st
                if is_dir:
                    subdirs.append(rel)
            stack.extend(reversed(subdirs))

    def _skip(self, rel: str, reason: str) -> None:
        log.warning("source %s: skipping %s (%s)", self.name, rel, reason)
        self._skipped.append({"path": rel, "reason": reason})

    def snapshot(self, sink: ChunkSink, pool: Executor, task: ProgressTask) -> SourceResult:
        old_cache = self._old_cache = self._load_cache()
        result = SourceResult(self.name, self.type, str(self.root))
        self._skipped = result.skipped
        root_st = self.root.stat()
        result.entries.append({"path": "", "type": "dir", "mode": stat.S_IMODE(root_st.st_mode),
                               "mtime_ns": root_st.st_mtime_ns})
        Batch = list[tuple[dict[str, Any], list[Any]]]  # (entry, cache key) per file
        pending: deque[tuple[Batch, Future[list[StoredContent | OSError]]]] = deque()
        batch: Batch = []
        batch_bytes = 0
        dropped: set[int] = set()  # id() of entries left out (unreadable files)

        def submit() -> None:
            nonlocal batch, batch_bytes
            if batch:
                files = [(e["path"], k[0]) for e, k in batch]
                pending.append((batch, pool.submit(_store_batch, sink, self.root, files)))
                batch, batch_bytes = [], 0

        def settle(limit: int) -> None:
            while len(pending) > limit:
                done, future = pending.popleft()
                for (entry, key), content in zip(done, future.result(), strict=True):
                    if isinstance(content, OSError):
                        dropped.add(id(entry))
                        result.files -= 1
                        self._skip(entry["path"],
                                   f"cannot read: {content.strerror or content}")
                        continue
                    entry["size"] = content.size
                    entry["sha256"] = content.sha256
                    entry["chunks"] = [c.hex() for c in content.chunks]
                    result.bytes_total += content.size
                    result.bytes_read += content.size
                    self._new_cache[entry["path"]] = [*key, content.sha256, entry["chunks"]]

        for rel, st in self._walk():
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                result.entries.append({"path": rel, "type": "dir", "mode": mode,
                                       "mtime_ns": st.st_mtime_ns})
            elif stat.S_ISLNK(st.st_mode):
                try:
                    target = os.readlink(self.root / rel)
                except OSError:
                    continue
                result.entries.append({"path": rel, "type": "symlink", "target": target,
                                       "mtime_ns": st.st_mtime_ns})
            elif stat.S_ISREG(st.st_mode):
                result.files += 1
                entry: dict[str, Any] = {"path": rel, "type": "file", "mode": mode,
                                         "mtime_ns": st.st_mtime_ns}
                result.entries.append(entry)
                key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
                cached = old_cache.get(rel)
                if cached and cached[:4] == key:
                    chunks = tuple(bytes.fromhex(c) for c in cached[5])
                    if sink.has_all(chunks):
                        entry.update(size=st.st_size, sha256=cached[4], chunks=cached[5])
                        result.bytes_total += st.st_size
                        self._new_cache[rel] = cached
                        task.advance(st.st_size)
                        continue
                batch.append((entry, key))
                batch_bytes += st.st_size
                if len(batch) >= BATCH_FILES or batch_bytes >= BATCH_BYTES:
                    submit()
                    settle(MAX_IN_FLIGHT)
            else:
                kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else
                        "a socket" if stat.S_ISSOCK(st.st_mode) else "a device")
                self._skip(rel, f"{kind}, not a file, folder or symlink")
        submit()
        settle(0)
        if dropped:
            result.entries = [e for e in result.entries if id(e) not in dropped]
        return result

    def committed(self) -> None:
        if self._new_cache == self._old_cache and self._owner_only():
            return  # nothing changed: the file on disk already says exactly this
        # The cache names every path with its SHA-256: readable by the owner only, like the
        # keys (0600 in a 0700 folder), whatever the umask.
        self.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.cache_dir, 0o700)
        tmp = self.cache_path.with_name(self.cache_path.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # left by a killed run, perhaps with a looser mode
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps({"version": CACHE_VERSION, "files": self._new_cache}))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.cache_path)

    def _owner_only(self) -> bool:
        try:
            return (stat.S_IMODE(os.stat(self.cache_path).st_mode) == 0o600
                    and stat.S_IMODE(os.stat(self.cache_dir).st_mode) == 0o700)
        except OSError:
            return False

    def cleanup(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.cache_path.with_name(self.cache_path.name + ".tmp").unlink()


SOURCE = FilesSource
