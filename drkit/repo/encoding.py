"""Small encoding helpers shared by the repository formats (base64, public-key text)."""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519_PREFIX = "drkit-ed25519:"
X25519_PREFIX = "drkit-x25519:"


def b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64d(text: str) -> bytes:
    """Strict base64 decode; raises ValueError on anything malformed."""
    if not isinstance(text, str):
        raise ValueError("expected a base64 string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"bad base64: {exc}") from exc


def raw_public(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def ed25519_text(key: Ed25519PublicKey) -> str:
    return ED25519_PREFIX + b64e(raw_public(key))


def x25519_text(key: X25519PublicKey) -> str:
    return X25519_PREFIX + b64e(raw_public(key))


def parse_ed25519(text: str) -> Ed25519PublicKey:
    """``drkit-ed25519:BASE64`` -> public key; ValueError if malformed."""
    text = text.strip()
    if not text.startswith(ED25519_PREFIX):
        raise ValueError(f"not a drkit Ed25519 public key (expected {ED25519_PREFIX}...)")
    raw = b64d(text[len(ED25519_PREFIX):])
    if len(raw) != 32:
        raise ValueError("Ed25519 public key must be 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def parse_x25519(text: str) -> X25519PublicKey:
    text = text.strip()
    if not text.startswith(X25519_PREFIX):
        raise ValueError(f"not a drkit X25519 public key (expected {X25519_PREFIX}...)")
    raw = b64d(text[len(X25519_PREFIX):])
    if len(raw) != 32:
        raise ValueError("X25519 public key must be 32 bytes")
    return X25519PublicKey.from_public_bytes(raw)


def fingerprint(key: Ed25519PublicKey | X25519PublicKey) -> str:
    """A short, stable name for a public key: ``SHA256:`` + first 16 bytes, hex."""
    return "SHA256:" + hashlib.sha256(raw_public(key)).hexdigest()[:32]
