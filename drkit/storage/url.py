"""Store URLs and opening a backend from one.

``file:///abs/path`` or ``file:relative/path`` (relative to the config file's folder),
``s3://bucket/prefix?region=eu-west-1&endpoint=http://host:port&credentials=env:NAME``,
``cos://bucket-1250000000/prefix?region=ap-shanghai&credentials=env:NAME``.

``credentials=env:NAME`` makes the backend read ``NAME_ACCESS_KEY_ID`` and
``NAME_SECRET_ACCESS_KEY`` (S3; optional ``NAME_SESSION_TOKEN``) or ``NAME_SECRET_ID`` and
``NAME_SECRET_KEY`` (COS) from the environment, so that every region can have its own
credentials. Without it, S3 uses boto3's default chain (``profile=`` picks a profile) and
COS reads ``TENCENTCLOUD_SECRET_ID`` / ``TENCENTCLOUD_SECRET_KEY``. Secrets never appear in
URLs, logs or messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from drkit.clock import Clock
from drkit.errors import InputError
from drkit.redact import redact_url
from drkit.storage.base import Store

SCHEMES = ("file", "s3", "cos")
_S3_PARAMS = {"region", "endpoint", "profile", "credentials", "addressing"}
_COS_PARAMS = {"region", "endpoint", "credentials", "scheme"}
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_COS_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9\-]*-\d{5,}$")


@dataclass(frozen=True)
class StoreURL:
    scheme: str
    bucket: str = ""
    prefix: str = ""
    path: Path | None = None
    params: dict[str, str] = field(default_factory=dict)
    text: str = ""

    def __str__(self) -> str:
        return redact_url(self.text)

    @property
    def location(self) -> str:
        """Where the store is, independent of how the URL was written (parameters such as
        credentials or endpoint do not change it): the folder, or scheme://bucket/prefix."""
        if self.path is not None:
            return str(self.path)
        return f"{self.scheme}://{self.bucket}/{self.prefix}"


def parse_store_url(url: str, *, base_dir: Path | None = None) -> StoreURL:
    """Parse and validate a store URL; raise InputError naming what is wrong."""
    if not isinstance(url, str) or not url.strip():
        raise InputError("store URL is empty")
    shown = redact_url(url)  # what error messages quote: never a secret
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InputError(
            f"store URL {shown!r}: unknown scheme "
            f"{parts.scheme + ':' if parts.scheme else '(none)'}"
            f" (expected one of {', '.join(s + '://' for s in SCHEMES)})"
        )
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InputError(f"store URL {shown!r}: file URLs take no host")
        raw = unquote(parts.path)
        if not raw:
            raise InputError(f"store URL {shown!r}: no path")
        path = Path(raw)
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        if params:
            raise InputError(f"store URL {shown!r}: file URLs take no parameters")
        return StoreURL(scheme="file", path=path, text=url)
    bucket = parts.netloc
    prefix = parts.path.strip("/")
    allowed = _S3_PARAMS if scheme == "s3" else _COS_PARAMS
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise InputError(
            f"store URL {shown!r}: unknown parameter {unknown[0]!r}"
            f" (allowed: {', '.join(sorted(allowed))})"
        )
    if not bucket:
        raise InputError(f"store URL {shown!r}: no bucket name")
    if scheme == "s3" and not _BUCKET_RE.match(bucket):
        raise InputError(f"store URL {shown!r}: {bucket!r} is not a valid S3 bucket name")
    if scheme == "cos":
        if not _COS_BUCKET_RE.match(bucket):
            raise InputError(
                f"store URL {shown!r}: COS bucket must be named BUCKETNAME-APPID, got {bucket!r}"
            )
        if not params.get("region"):
            raise InputError(f"store URL {shown!r}: COS URLs need ?region=ap-...")
    cred = params.get("credentials")
    if cred is not None and not re.fullmatch(r"env:[A-Za-z_][A-Za-z0-9_]*", cred):
        raise InputError(f"store URL {shown!r}: credentials must look like env:NAME")
    if prefix:
        from drkit.storage.base import validate_key

        try:
            validate_key(prefix)
        except InputError:
            raise
        except Exception as exc:  # InvalidObjectKey is a StorageError
            raise InputError(f"store URL {shown!r}: bad prefix: {exc}") from exc
    return StoreURL(scheme=scheme, bucket=bucket, prefix=prefix, params=params, text=url)


def open_store(
    url: str | StoreURL, *, base_dir: Path | None = None, clock: Clock | None = None
) -> Store:
    """Open the backend a URL names. Cloud SDKs are imported only when needed."""
    parsed = url if isinstance(url, StoreURL) else parse_store_url(url, base_dir=base_dir)
    if parsed.scheme == "file":
        from drkit.storage.local import LocalStore

        assert parsed.path is not None
        return LocalStore(parsed.path, clock=clock)
    if parsed.scheme == "s3":
        from drkit.storage.s3 import S3Store

        return S3Store.from_url(parsed, clock=clock)
    from drkit.storage.cos import COSStore

    return COSStore.from_url(parsed, clock=clock)
