"""Chunk ids, session keys sealed to the recovery key, and chunk encryption.

- chunk id = HMAC-SHA256(ID key, plaintext chunk): equal data deduplicates, but an
  outsider cannot confirm a guess about the content without the ID key.
- session key: 32 random bytes per run, sealed to the recovery X25519 public key with an
  ephemeral X25519 key, HKDF-SHA256 and AES-256-GCM (an ECIES construction; see
  docs/format.md "session"). A writer can seal but never unseal.
- chunk blob = nonce(12) || AES-256-GCM(session key, nonce, payload, aad), where
  payload = type byte (0 = stored, 1 = zstd) || data and
  aad = "drkit/chunk/v1" || chunk id (32 bytes), so a blob moved to another id fails.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import dataclass
from typing import Any

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from drkit.canonical import canonical_json
from drkit.errors import FormatVersionError, IntegrityError
from drkit.repo.encoding import b64d, b64e, fingerprint, raw_public

SESSION_FORMAT = "drkit-session-key"
SESSION_VERSION = 1
SESSION_INFO = b"drkit/session-key/v1"
CHUNK_AAD = b"drkit/chunk/v1"
DOC_AAD = b"drkit/encrypted-document/v1"
NONCE_SIZE = 12
TAG_SIZE = 16
BLOB_OVERHEAD = NONCE_SIZE + TAG_SIZE + 1
TYPE_STORED = 0
TYPE_ZSTD = 1
ZSTD_LEVEL = 3


_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    # zstd contexts are costly to create and not thread-safe: one per thread.
    ctx = getattr(_local, "compressor", None)
    if ctx is None:
        ctx = _local.compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    return ctx


def _decompressor() -> zstandard.ZstdDecompressor:
    ctx = getattr(_local, "decompressor", None)
    if ctx is None:
        ctx = _local.decompressor = zstandard.ZstdDecompressor()
    return ctx


def chunk_id(id_key: bytes, data: bytes | memoryview) -> bytes:
    return hmac.digest(id_key, data, "sha256")


def chunker_seed(id_key: bytes) -> int:
    """FastCDC gear seed derived from the ID key, so cut points do not fingerprint content."""
    return int.from_bytes(hmac.digest(id_key, b"drkit/fastcdc-seed/v1", "sha256")[:4], "big") \
        & 0x7FFFFFFF


def _wrap_key(shared: bytes, ephemeral_pub: bytes, recovery_pub: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral_pub + recovery_pub,
                info=SESSION_INFO).derive(shared)


@dataclass(frozen=True)
class SealedSession:
    """A session key and the bytes of its ``sessions/`` object."""

    key: bytes
    data: bytes

    @property
    def session_id(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def seal_session_key(recovery_public: X25519PublicKey, repository_id: str, *,
                     key: bytes | None = None, ephemeral: X25519PrivateKey | None = None,
                     nonce: bytes | None = None) -> SealedSession:
    """Make (or, for test vectors, take) a session key and seal it to the recovery key."""
    key = key if key is not None else secrets.token_bytes(32)
    ephemeral = ephemeral or X25519PrivateKey.generate()
    nonce = nonce if nonce is not None else secrets.token_bytes(NONCE_SIZE)
    eph_pub = raw_public(ephemeral.public_key())
    rec_pub = raw_public(recovery_public)
    wrap = _wrap_key(ephemeral.exchange(recovery_public), eph_pub, rec_pub)
    header = {"format": SESSION_FORMAT, "version": SESSION_VERSION,
              "repository_id": repository_id, "recovery_key": fingerprint(recovery_public),
              "ephemeral_public": b64e(eph_pub), "nonce": b64e(nonce)}
    sealed = AESGCM(wrap).encrypt(nonce, key, canonical_json(header))
    return SealedSession(key, canonical_json({**header, "sealed": b64e(sealed)}))


def unseal_session_key(data: bytes, recovery: X25519PrivateKey, *, name: str) -> bytes:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise IntegrityError(f"{name}: session key object is unreadable") from None
    if not isinstance(doc, dict) or doc.get("format") != SESSION_FORMAT:
        raise IntegrityError(f"{name}: not a drkit session key object")
    if not isinstance(doc.get("version"), int) or doc["version"] > SESSION_VERSION:
        raise FormatVersionError(f"{name}: session key format {doc.get('version')!r} "
                                 "is newer than this drkit supports")
    header = {k: v for k, v in doc.items() if k != "sealed"}
    try:
        eph_pub = b64d(header["ephemeral_public"])
        nonce = b64d(header["nonce"])
        sealed = b64d(doc["sealed"])
        wrap = _wrap_key(recovery.exchange(X25519PublicKey.from_public_bytes(eph_pub)),
                         eph_pub, raw_public(recovery.public_key()))
        return AESGCM(wrap).decrypt(nonce, sealed, canonical_json(header))
    except (KeyError, TypeError, ValueError, InvalidTag):
        raise IntegrityError(
            f"{name}: session key does not open with this recovery key "
            "(wrong key or altered object)") from None


class ChunkCipher:
    """Encrypts and decrypts chunk blobs under one session key (thread-safe)."""

    def __init__(self, session_key: bytes) -> None:
        self._aead = AESGCM(session_key)

    def encrypt(self, cid: bytes, data: bytes | memoryview, *, nonce: bytes | None = None,
                compress: bool = True) -> bytearray:
        payload_type = TYPE_STORED
        body: bytes | memoryview = data
        if compress:
            packed = _compressor().compress(data)
            if len(packed) < len(data):
                payload_type, body = TYPE_ZSTD, packed
        nonce = nonce if nonce is not None else secrets.token_bytes(NONCE_SIZE)
        # One copy of the body (behind its type byte), encrypted straight into the blob
        # after the nonce: no intermediate bytes objects for a chunk of up to 4 MiB.
        plaintext = bytearray(1 + len(body))
        plaintext[0] = payload_type
        plaintext[1:] = body
        blob = bytearray(NONCE_SIZE + len(plaintext) + TAG_SIZE)
        blob[:NONCE_SIZE] = nonce
        self._aead.encrypt_into(nonce, plaintext, CHUNK_AAD + cid,
                                memoryview(blob)[NONCE_SIZE:])
        return blob

    def decrypt(self, cid: bytes, blob: bytes | memoryview, *, name: str) -> bytes:
        if len(blob) < BLOB_OVERHEAD:
            raise IntegrityError(f"{name}: chunk {cid.hex()[:16]} is truncated")
        try:
            plaintext = self._aead.decrypt(bytes(blob[:NONCE_SIZE]), bytes(blob[NONCE_SIZE:]),
                                           CHUNK_AAD + cid)
        except InvalidTag:
            raise IntegrityError(
                f"{name}: chunk {cid.hex()[:16]} fails authentication") from None
        payload_type = plaintext[0]
        if payload_type == TYPE_STORED:
            return plaintext[1:]
        if payload_type == TYPE_ZSTD:
            try:
                return _decompressor().decompress(plaintext[1:], max_output_size=64 << 20)
            except zstandard.ZstdError as exc:
                raise IntegrityError(f"{name}: chunk {cid.hex()[:16]}: bad zstd: {exc}") from None
        raise IntegrityError(f"{name}: chunk {cid.hex()[:16]} has unknown type {payload_type}")


def encrypt_document(recovery_public: X25519PublicKey, repository_id: str, data: bytes
                     ) -> bytes:
    """Seal a whole document to the recovery key (its own session key inside)."""
    session = seal_session_key(recovery_public, repository_id)
    nonce = secrets.token_bytes(NONCE_SIZE)
    ct = AESGCM(session.key).encrypt(nonce, zstandard.ZstdCompressor(level=ZSTD_LEVEL)
                                     .compress(data), DOC_AAD)
    return canonical_json({"format": "drkit-encrypted-document", "version": 1,
                           "session": json.loads(session.data), "nonce": b64e(nonce),
                           "ciphertext": b64e(ct)})


def decrypt_document(data: bytes, recovery: X25519PrivateKey, *, name: str) -> bytes:
    try:
        doc: dict[str, Any] = json.loads(data)
        session = canonical_json(doc["session"])
        nonce = b64d(doc["nonce"])
        ct = b64d(doc["ciphertext"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise IntegrityError(f"{name}: not a drkit encrypted document") from None
    if doc.get("version") != 1:
        raise FormatVersionError(f"{name}: encrypted document version {doc.get('version')!r}")
    key = unseal_session_key(session, recovery, name=name)
    try:
        packed = AESGCM(key).decrypt(nonce, ct, DOC_AAD)
    except InvalidTag:
        raise IntegrityError(f"{name}: document fails authentication") from None
    return zstandard.ZstdDecompressor().decompress(packed, max_output_size=1 << 30)
