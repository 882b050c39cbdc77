"""``file://`` backend: a folder as an object store (the embedded default).

Layout under the root folder::

    <key>                    the object's bytes
    .drkit-meta/<key>.json   sidecar: storage class, retain-until, sha256, thaw state
    .drkit-tmp/              temporary files of writes in progress
                             (``put-<host>-<pid>-<random>``, ``meta-<host>-<pid>-<random>``)

Writes go to a temporary file that is fsynced and then hard-linked into place, which
fails atomically if the key exists, so an object is never overwritten and never seen
half-written. The sidecar makes the storage contract hold on a plain disk: archive
classes must be thawed before reading, and an object whose retain-until has not passed
cannot be deleted (like COMPLIANCE object lock). The sidecar is not a security boundary:
anyone with write access to the folder can change it, which is why ``drkit verify``
hashes local objects instead of trusting it, and holds each sidecar to the retention the
journal promised (``drkit.verify.retention``); ``delete`` refuses while a sidecar exists
but cannot be read.

A write killed half-way leaves its temporary file behind. The first write of a later run
removes the temporary files of dead writers of this host (the name carries host and pid;
a pid that is alive again is only taken as dead once the file is older than the process)
and, from other hosts or older drkit versions, files untouched for a day; never a live
writer's.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import socket
import stat
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from drkit import faults
from drkit.clock import Clock, SystemClock, parse_iso, utc_iso
from drkit.errors import (
    BackendUnavailable,
    IntegrityError,
    NeedsThaw,
    ObjectExists,
    ObjectNotFound,
    RetentionActive,
    StorageError,
)
from drkit.storage.base import (
    ARCHIVE_CLASSES,
    BucketSettings,
    ObjectInfo,
    Store,
    validate_key,
    validate_prefix,
)

META_DIR = ".drkit-meta"
TMP_DIR = ".drkit-tmp"
#: Temporary files of other hosts (and of drkit versions whose names carry no pid) are
#: removed once untouched this long; no single put takes anywhere near it.
FOREIGN_TMP_AGE_S = 24 * 3600
_TMP_NAME = re.compile(r"^(put|meta)-(.+)-(\d+)-[0-9a-f]{16}$")


def fsync_dir(path: Path) -> None:
    """Make a rename or create in ``path`` durable (best effort: some file systems refuse)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class LocalStore(Store):
    checksums_in_listing = False

    def __init__(self, root: Path, *, clock: Clock | None = None, create: bool = True) -> None:
        self.root = Path(root)
        self.url = self.root.resolve().as_uri()
        self.clock = clock or SystemClock()
        self._tmp_cleaned = False
        # The folder is created by the first write, never by opening: reading, listing or
        # verifying a region whose folder was deleted must not recreate it empty.
        if not self.root.exists():
            if not create:
                raise BackendUnavailable(f"{self.url}: folder does not exist")
        elif not self.root.is_dir():
            raise BackendUnavailable(f"{self.url}: not a folder")

    # -- paths ---------------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def _meta_path(self, key: str) -> Path:
        return self.root / META_DIR / (validate_key(key) + ".json")

    def _read_meta(self, key: str) -> dict[str, object]:
        try:
            loaded = json.loads(self._meta_path(key).read_text())
        except (OSError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def sidecar(self, key: str) -> dict[str, object] | None:
        """The object's metadata sidecar as stored: None when there is none; IntegrityError
        when it exists but is not a readable one (for ``drkit verify``, which compares it
        with the retention the journal promised)."""
        # os-level reading: verify reads one sidecar per object, and pathlib's file
        # objects cost several times the read itself.
        path = os.path.join(self.root, META_DIR, validate_key(key) + ".json")
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                text = _read_fd(fd)
            finally:
                os.close(fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise IntegrityError(f"{self.url}: {key}: metadata sidecar unreadable "
                                 f"({exc.strerror})") from None
        try:
            loaded = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            raise IntegrityError(f"{self.url}: {key}: metadata sidecar is not JSON") from None
        if not isinstance(loaded, dict):
            raise IntegrityError(f"{self.url}: {key}: metadata sidecar is not an object")
        until = loaded.get("retain_until")
        if until is not None:
            try:
                parse_iso(str(until))
            except ValueError:
                raise IntegrityError(f"{self.url}: {key}: metadata sidecar has an unreadable "
                                     "retain-until") from None
        return loaded

    def _write_meta(self, key: str, meta: dict[str, object]) -> None:
        path = self._meta_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # The temporary file lives in the temp folder (same file system), named so that a
        # later run can clean it up if this process is killed.
        fd, tmp = self._mkstemp("meta")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps(meta, sort_keys=True))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    @contextlib.contextmanager
    def _publish_lock(self) -> Iterator[None]:
        fd = os.open(self.root / TMP_DIR / ".publish.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _mkstemp(self, kind: str) -> tuple[int, str]:
        tmp_dir = self.root / TMP_DIR
        tmp_dir.mkdir(parents=True, exist_ok=True)
        host = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"
        while True:
            name = tmp_dir / f"{kind}-{host}-{os.getpid()}-{secrets.token_hex(8)}"
            try:
                return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), str(name)
            except FileExistsError:  # pragma: no cover - 64 random bits
                continue

    def clean_temp_files(self) -> Sequence[str]:
        """Remove temporary files left by killed writes (once per store object); returns
        their names. Only dead writers' files: see the module docstring."""
        if self._tmp_cleaned:
            return []
        self._tmp_cleaned = True
        removed: list[str] = []
        tmp_dir = self.root / TMP_DIR
        try:
            entries = list(os.scandir(tmp_dir))
        except FileNotFoundError:
            return removed
        here = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"
        now = time.time()
        for entry in entries:
            if entry.name.startswith("."):
                continue  # the publish lock
            try:
                mtime = entry.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:
                continue
            if _temp_file_is_dead(entry.name, here, mtime, now):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                removed.append(entry.name)
        return removed

    # -- interface -------------------------------------------------------------------------
    def put(
        self,
        key: str,
        data: bytes,
        *,
        storage_class: str | None = None,
        retain_until: datetime | None = None,
    ) -> ObjectInfo:
        path = self._path(key)
        if path.exists():
            raise ObjectExists(f"{self.url}: {key} already exists")
        digest = hashlib.sha256(data).hexdigest()
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        meta: dict[str, object] = {"sha256": digest, "md5": md5, "size": len(data)}
        if storage_class:
            meta["storage_class"] = storage_class
        if retain_until:
            meta["retain_until"] = utc_iso(retain_until)
        tmp_dir = self.root / TMP_DIR
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp_dir.mkdir(parents=True, exist_ok=True)
            self.clean_temp_files()
            fd, tmp_name = self._mkstemp("put")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                faults.point("local.put.written")
                # Writers that race on one key must not replace each other's sidecar, so
                # the short step "sidecar, then link" runs under a lock on the folder
                # (flock: across processes and threads). The bytes were written outside it.
                with self._publish_lock():
                    if path.exists():
                        raise ObjectExists(f"{self.url}: {key} already exists")
                    # Sidecar first: an object that is visible always has its metadata.
                    # An orphan sidecar left by a crash is simply replaced here.
                    self._write_meta(key, meta)
                    try:
                        os.link(tmp_name, path)
                    except FileExistsError:
                        raise ObjectExists(f"{self.url}: {key} already exists") from None
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp_name)
            fsync_dir(path.parent)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise StorageError(f"{self.url}: no space left writing {key}") from exc
            raise StorageError(f"{self.url}: cannot write {key}: {exc.strerror}") from exc
        return ObjectInfo(
            key=key,
            size=len(data),
            sha256=digest,
            md5=md5,
            storage_class=storage_class or "STANDARD",
            retain_until=retain_until,
            needs_thaw=(storage_class or "") in ARCHIVE_CLASSES,
        )

    def get(self, key: str, *, offset: int = 0, length: int | None = None) -> bytes:
        path = self._path(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ObjectNotFound(f"{self.url}: {key} not found") from None
        info = self._info(key, st.st_size, st.st_mtime, hash_content=False)
        if info.needs_thaw:
            raise NeedsThaw(f"{self.url}: {key} is in {info.storage_class} and must be thawed")
        try:
            with path.open("rb") as fh:
                if offset:
                    fh.seek(offset)
                return fh.read() if length is None else fh.read(length)
        except FileNotFoundError:
            raise ObjectNotFound(f"{self.url}: {key} not found") from None
        except OSError as exc:
            raise StorageError(f"{self.url}: cannot read {key}: {exc.strerror}") from exc

    def _info(self, key: str, size: int, mtime: float, *, hash_content: bool) -> ObjectInfo:
        meta = self._read_meta(key)
        storage_class = str(meta.get("storage_class") or "STANDARD")
        retain = meta.get("retain_until")
        thawed = bool(meta.get("thawed"))
        sha = None
        if hash_content:
            sha = _hash_file(self.root / key)
        return ObjectInfo(
            key=key,
            size=size,
            sha256=sha,
            storage_class=storage_class,
            retain_until=parse_iso(str(retain)) if retain else None,
            needs_thaw=storage_class in ARCHIVE_CLASSES and not thawed,
            last_modified=datetime.fromtimestamp(mtime).astimezone(),
        )

    def head(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ObjectNotFound(f"{self.url}: {key} not found") from None
        if not path.is_file():
            raise ObjectNotFound(f"{self.url}: {key} not found")
        # The sha256 is computed from the bytes on disk, never taken from the sidecar, so
        # that an object changed behind drkit's back is seen for what it is.
        return self._info(key, st.st_size, st.st_mtime, hash_content=True)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        # Walk only the folder the prefix names, then filter by the full prefix.
        base_dir = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / base_dir if base_dir else self.root
        if not start.is_dir():
            return
        for key, st in self._walk(start, base_dir):
            if key.startswith(prefix):
                yield self._info(key, st.st_size, st.st_mtime, hash_content=False)

    def scan(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Like ``list``, key and size only: no metadata sidecar is read. For ``drkit
        verify``, which reads each sidecar once, strictly (``sidecar``), beside the bytes."""
        validate_prefix(prefix)
        base_dir = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / base_dir if base_dir else self.root
        if not start.is_dir():
            return
        for key, st in self._walk(start, base_dir):
            if key.startswith(prefix):
                yield ObjectInfo(key=key, size=st.st_size)

    def content_sha256(self, key: str) -> str:
        """SHA-256 (hex) of the object's bytes as they are on disk: what ``head`` reports,
        without its other work (one open, no sidecar). ObjectNotFound if it is absent."""
        try:
            fd = os.open(os.path.join(self.root, validate_key(key)), os.O_RDONLY)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(f"{self.url}: {key} not found") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ObjectNotFound(f"{self.url}: {key} not found")
            digest = hashlib.sha256()
            # Blocks of the file's size (at most 1 MiB): os.read allocates what it is asked
            # for, and a 1 MiB buffer for a 1 KiB object cost more than hashing it.
            block_size = max(1, min(1 << 20, st.st_size + 1))
            while block := os.read(fd, block_size):
                digest.update(block)
            return digest.hexdigest()
        except OSError as exc:
            raise StorageError(f"{self.url}: cannot read {key}: {exc.strerror}") from exc
        finally:
            os.close(fd)

    def _walk(self, folder: Path, rel: str) -> Iterator[tuple[str, os.stat_result]]:
        """Files under ``folder`` in key order (as S3 lists them: "a/x" before "a0")."""
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return
        items = []
        for entry in entries:
            if not rel and entry.name.startswith(".drkit"):
                continue
            is_dir = entry.is_dir(follow_symlinks=False)
            items.append((entry.name + "/" if is_dir else entry.name, entry, is_dir))
        for _sort_key, entry, is_dir in sorted(items, key=lambda item: item[0]):
            key = f"{rel}/{entry.name}" if rel else entry.name
            if is_dir:
                yield from self._walk(Path(entry.path), key)
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            yield key, st

    def thaw(self, key: str, *, days: int = 1) -> bool:
        info = self.head(key)
        if info.needs_thaw:
            meta = self._read_meta(key)
            meta["thawed"] = True
            self._write_meta(key, meta)
        return True

    def delete(self, key: str) -> None:
        info = self.head(key)
        if self._meta_path(key).exists():
            # A sidecar that exists but cannot be read may hide a retain-until: refuse
            # rather than treat the object as unlocked. (An object put there by hand has
            # no sidecar at all and stays deletable with approval.)
            try:
                self.sidecar(key)
            except IntegrityError as exc:
                raise RetentionActive(f"{exc}; refusing to delete while its retention is "
                                      "unknown") from None
        if info.retain_until is not None and info.retain_until > self.clock.now():
            raise RetentionActive(
                f"{self.url}: {key} is retained until {utc_iso(info.retain_until)}"
            )
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            raise ObjectNotFound(f"{self.url}: {key} not found") from None
        with contextlib.suppress(FileNotFoundError):
            self._meta_path(key).unlink()

    def bucket_settings(self) -> BucketSettings:
        # A folder has no versioning or lock of its own; drkit's sidecar emulates
        # COMPLIANCE retention per object, and verify hashes every object.
        return BucketSettings(versioning="Disabled", object_lock_enabled=False)


def _temp_file_is_dead(name: str, here: str, mtime: float, now: float) -> bool:
    m = _TMP_NAME.match(name)
    if m is None or m.group(2) != here:
        # Another host's (or an older drkit's mkstemp name): its writer cannot be checked
        # from here, so only age tells.
        return now - mtime > FOREIGN_TMP_AGE_S
    pid = int(m.group(3))
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    # The pid is alive: it is the writer only if that process is older than the file.
    started = _process_started(pid)
    return started is not None and started > mtime + 1


def _process_started(pid: int) -> float | None:
    """Wall-clock start of ``pid`` (Linux: boot time + /proc/<pid>/stat field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat[stat.rindex(")") + 2:].split()[19])
        btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text()
                     .splitlines() if line.startswith("btime "))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _read_fd(fd: int) -> bytes:
    """The rest of an open file (small files: the sidecars)."""
    blocks = []
    while block := os.read(fd, 1 << 16):
        blocks.append(block)
    return b"".join(blocks)


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
