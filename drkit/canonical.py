"""Canonical JSON: the one byte form that drkit hashes and signs.

Sorted keys, no insignificant whitespace, UTF-8, no NaN/Infinity. Every signed or
content-addressed document (manifests, checkpoints' payloads, requests, ledgers) goes
through ``canonical_json`` so that two writers produce the same bytes for the same data.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

# One encoder for every call (json.dumps with options builds a new one each time; it holds
# no state between calls, so sharing it across threads is safe).
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                            allow_nan=False)


def canonical_json(obj: Any) -> bytes:
    return _ENCODER.encode(obj).encode("utf-8")


def canonical_hash(obj: Any) -> str:
    """Hex SHA-256 of the canonical JSON of ``obj``."""
    return hashlib.sha256(canonical_json(obj)).hexdigest()


def domain_hash(domain: str, data: bytes) -> bytes:
    """SHA-256 over a domain-separation tag and data, for signatures that must not be
    confused across kinds of document ("drkit/checkpoint/v1", "drkit/approval/v1", ...)."""
    tag = domain.encode("ascii")
    return hashlib.sha256(len(tag).to_bytes(2, "big") + tag + data).digest()
