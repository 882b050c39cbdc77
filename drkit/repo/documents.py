"""Signed documents: the envelope around every repository file a reader must trust.

Format (version 1), canonical JSON::

    {"format": "drkit-signed", "version": 1, "kind": KIND, "body": {...},
     "signer": "drkit-ed25519:BASE64", "signature": BASE64}

The signature is Ed25519 over ``domain_hash("drkit/KIND/v1", canonical_json(body))`` so a
signature on one kind of document can never be replayed as another kind. Large documents
(index files, snapshot manifests) are stored as one zstd frame of those bytes; a reader
recognises the zstd magic number.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import zstandard
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from drkit.canonical import canonical_json, domain_hash
from drkit.errors import FormatVersionError, IntegrityError
from drkit.repo.encoding import b64d, b64e, ed25519_text, parse_ed25519, raw_public

SIGNED_FORMAT = "drkit-signed"
SIGNED_VERSION = 1
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MAX_DOCUMENT = 1 << 30


def sign_document(kind: str, body: dict[str, Any], signer: Ed25519PrivateKey, *,
                  compress: bool = False) -> bytes:
    digest = domain_hash(f"drkit/{kind}/v1", canonical_json(body))
    data = canonical_json({
        "format": SIGNED_FORMAT,
        "version": SIGNED_VERSION,
        "kind": kind,
        "body": body,
        "signer": ed25519_text(signer.public_key()),
        "signature": b64e(signer.sign(digest)),
    })
    if compress:
        return zstandard.ZstdCompressor(level=3, write_content_size=True).compress(data)
    return data


def open_document(data: bytes, kind: str, trusted: Sequence[Ed25519PublicKey], *,
                  name: str) -> dict[str, Any]:
    """Verify and return the body of a signed document; raise naming ``name`` otherwise."""
    if data[:4] == ZSTD_MAGIC:
        try:
            data = zstandard.ZstdDecompressor().decompress(data, max_output_size=MAX_DOCUMENT)
        except zstandard.ZstdError:
            raise IntegrityError(f"{name}: not a drkit document (bad zstd frame)") from None
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise IntegrityError(f"{name}: not a drkit document (unreadable JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != SIGNED_FORMAT:
        raise IntegrityError(f"{name}: not a drkit signed document")
    version = doc.get("version")
    if not isinstance(version, int):
        raise IntegrityError(f"{name}: document has no version")
    if version > SIGNED_VERSION:
        raise FormatVersionError(
            f"{name}: written by a newer drkit (document format {version}, "
            f"this drkit reads up to {SIGNED_VERSION})")
    if doc.get("kind") != kind:
        raise IntegrityError(f"{name}: expected a {kind} document, found {doc.get('kind')!r}")
    body = doc.get("body")
    if not isinstance(body, dict):
        raise IntegrityError(f"{name}: document has no body")
    try:
        signer = parse_ed25519(str(doc.get("signer", "")))
        signature = b64d(str(doc.get("signature", "")))
    except ValueError as exc:
        raise IntegrityError(f"{name}: bad signer or signature field: {exc}") from None
    signer_raw = raw_public(signer)
    if not any(raw_public(k) == signer_raw for k in trusted):
        raise IntegrityError(f"{name}: signed by an untrusted key {doc.get('signer')}")
    try:
        signer.verify(signature, domain_hash(f"drkit/{kind}/v1", canonical_json(body)))
    except InvalidSignature:
        raise IntegrityError(f"{name}: signature does not verify") from None
    if canonical_json(doc) != data:
        raise IntegrityError(f"{name}: document is not in canonical form")
    return body
