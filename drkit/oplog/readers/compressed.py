"""Log files as delivered: CloudTrail, CloudAudit and sudo's I/O logs may be gzip-compressed."""

from __future__ import annotations

import gzip

from drkit.errors import InputError


def maybe_gunzip(data: bytes, origin: object) -> bytes:
    """``data`` decompressed when it starts with the gzip magic, else as it is; a broken
    gzip stream is an input error naming ``origin``."""
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError) as exc:
        raise InputError(f"{origin}: not a readable gzip file ({exc})") from None
