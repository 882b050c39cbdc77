"""The object-store interface every backend implements, plus key validation.

Keys are relative paths such as ``packs/ab/ab12...``. Objects are create-only: ``put``
refuses to overwrite and is atomic (a reader never sees a partial object). ``delete`` is
for the approval gate and tests only.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from drkit.errors import InvalidObjectKey, ObjectNotFound

MAX_KEY_LENGTH = 1024
# Control characters (C0, DEL, C1) and the backslash are refused: they break listings,
# logs and Windows paths, and have no place in drkit's own content-addressed keys.
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")

# Storage classes that must be thawed (restored) before their bytes can be read.
ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE", "ARCHIVE"})


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise InvalidObjectKey.

    Called by every backend before any request is sent.
    """
    if not isinstance(key, str) or not key:
        raise InvalidObjectKey("object key is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidObjectKey(f"object key is longer than {MAX_KEY_LENGTH} characters")
    if _BAD_CHARS.search(key):
        raise InvalidObjectKey(f"object key {key!r} contains a control character or backslash")
    if key.startswith("/"):
        raise InvalidObjectKey(f"object key {key!r} is an absolute path")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise InvalidObjectKey(f"object key {key!r} has an empty, '.' or '..' component")
    if key.split("/", 1)[0].startswith(".drkit"):
        raise InvalidObjectKey(f"object key {key!r} uses the reserved prefix '.drkit'")
    return key


def validate_prefix(prefix: str) -> str:
    """A listing prefix: empty, or a key-like string (may end with '/')."""
    if prefix == "":
        return prefix
    validate_key(prefix.rstrip("/") or "x")
    return prefix


@dataclass(frozen=True)
class ObjectInfo:
    """What a store can say about one object without reading it."""

    key: str
    size: int
    sha256: str | None = None  # hex; None where the service cannot give it cheaply
    md5: str | None = None  # hex; S3/COS ETag of a single-part upload
    storage_class: str | None = None
    retain_until: datetime | None = None
    needs_thaw: bool = False
    last_modified: datetime | None = None


@dataclass(frozen=True)
class Transition:
    """One lifecycle transition: after ``days`` (or on ``date``) to ``storage_class``."""

    storage_class: str | None
    days: int | None = None
    date: str | None = None


@dataclass(frozen=True)
class LifecycleRule:
    id: str
    enabled: bool
    prefix: str
    expiration_days: int | None = None
    transition_days: int | None = None  # the first transition (kept for older callers)
    transition_class: str | None = None
    noncurrent_expiration_days: int | None = None
    abort_multipart_days: int | None = None
    expiration_date: str | None = None  # Expiration {Date}: everything expires on that day
    transitions: tuple[Transition, ...] = ()  # every transition of current versions
    noncurrent_transitions: tuple[Transition, ...] = ()  # of noncurrent (older) versions


@dataclass(frozen=True)
class BucketSettings:
    """Guardrail-relevant settings of a bucket (for ``drkit verify``)."""

    versioning: str  # "Enabled", "Suspended", "Disabled"
    object_lock_enabled: bool
    object_lock_mode: str | None = None  # "COMPLIANCE" / "GOVERNANCE"
    default_retention_days: int | None = None
    lifecycle_rules: tuple[LifecycleRule, ...] = ()
    replication_rules: tuple[dict[str, Any], ...] = ()
    public_access: bool = False
    public_reasons: tuple[str, ...] = field(default_factory=tuple)
    #: The bucket policy as stored (JSON text), None when the bucket has none.
    policy: str | None = None
    #: The account that owns the bucket, as the policy names accounts: the AWS account id
    #: for S3, the owner's root UIN for COS; None when it cannot be determined.
    owner_account: str | None = None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Store(ABC):
    """An object store rooted at one URL (bucket plus optional prefix)."""

    url: str
    #: True when ``list`` returns a checksum that proves content (sha256 or md5) for
    #: every object, so verification needs no request per object.
    checksums_in_listing: bool = False

    @abstractmethod
    def put(
        self,
        key: str,
        data: bytes,
        *,
        storage_class: str | None = None,
        retain_until: datetime | None = None,
    ) -> ObjectInfo:
        """Create ``key`` with ``data``; raise ObjectExists if it exists (old bytes intact)."""

    @abstractmethod
    def get(self, key: str, *, offset: int = 0, length: int | None = None) -> bytes:
        """Return the bytes (or a range); ObjectNotFound, NeedsThaw as appropriate."""

    @abstractmethod
    def head(self, key: str) -> ObjectInfo:
        """Return metadata; ObjectNotFound if missing."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Stream every object whose key starts with ``prefix``, in key order."""

    @abstractmethod
    def thaw(self, key: str, *, days: int = 1) -> bool:
        """Start (or finish) restoring an archive-class object; True once readable."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete ``key``. Only the approval gate and tests call this."""

    @abstractmethod
    def bucket_settings(self) -> BucketSettings:
        """Versioning, object lock, lifecycle, replication and public access."""

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
        except ObjectNotFound:
            return False
        return True

    def clean_temp_files(self) -> Sequence[str]:
        """Remove what killed writes of this host left outside the object namespace (a
        local folder's temporary files); returns their names. Stores with atomic uploads
        have nothing to clean. Called by each writing run before it writes."""
        return []

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"
