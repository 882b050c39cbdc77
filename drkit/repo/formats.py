"""Byte formats of packs, index files, snapshot manifests and snapshot trees.

Every kind carries a version; docs/format.md describes each and tests/vectors/ pins the
exact bytes. Object keys carry the SHA-256 of the stored bytes, so an object swapped for
another is caught by name.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from drkit.canonical import canonical_json
from drkit.errors import FormatVersionError, IntegrityError
from drkit.repo.crypto import NONCE_SIZE, ZSTD_LEVEL
from drkit.repo.documents import open_document, sign_document
from drkit.repo.encoding import b64d, b64e

PACK_MAGIC = b"DRKPACK\x01"  # 7 bytes of name, 1 byte of version
INDEX_VERSION = 1
SNAPSHOT_VERSION = 1
TREE_VERSION = 1
TREE_AAD = b"drkit/tree/v1"


def content_key(prefix: str, data: bytes, *, fanout: bool = False) -> str:
    digest = hashlib.sha256(data).hexdigest()
    return f"{prefix}/{digest[:2]}/{digest}" if fanout else f"{prefix}/{digest}"


def pack_key(data: bytes) -> str:
    return content_key("packs", data, fanout=True)


def key_digest(key: str) -> str:
    return key.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ChunkLocation:
    pack: str
    offset: int
    length: int
    raw_length: int
    session: str


@dataclass(frozen=True)
class IndexFile:
    repository_id: str
    session: str
    pack: str
    pack_size: int
    chunks: tuple[tuple[bytes, int, int, int], ...]  # (chunk id, offset, length, raw length)

    def body(self) -> dict[str, Any]:
        return {"index_version": INDEX_VERSION, "repository_id": self.repository_id,
                "session": self.session, "pack": self.pack, "pack_size": self.pack_size,
                "chunks": [[c.hex(), o, n, r] for c, o, n, r in self.chunks]}

    def encode(self, signer: Ed25519PrivateKey) -> bytes:
        return sign_document("index", self.body(), signer)

    @classmethod
    def decode(cls, data: bytes, trusted: Sequence[Ed25519PublicKey], *, name: str
               ) -> IndexFile:
        body = open_document(data, "index", trusted, name=name)
        _check_version(body, "index_version", INDEX_VERSION, name)
        try:
            chunks = tuple((bytes.fromhex(c), int(o), int(n), int(r))
                           for c, o, n, r in body["chunks"])
            return cls(str(body["repository_id"]), str(body["session"]), str(body["pack"]),
                       int(body["pack_size"]), chunks)
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"{name}: malformed index file ({exc})") from None

    def locations(self) -> dict[bytes, ChunkLocation]:
        return {c: ChunkLocation(self.pack, o, n, r, self.session)
                for c, o, n, r in self.chunks}


def _check_version(body: dict[str, Any], field: str, supported: int, name: str) -> None:
    version = body.get(field)
    if not isinstance(version, int):
        raise IntegrityError(f"{name}: no {field}")
    if version > supported:
        raise FormatVersionError(f"{name}: {field} {version} is newer than this drkit "
                                 f"supports ({supported}); upgrade drkit")


@dataclass(frozen=True)
class SourceSummary:
    name: str
    type: str
    files: int
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "files": self.files, "bytes": self.bytes}


@dataclass(frozen=True)
class Manifest:
    """A snapshot manifest: public header, encrypted tree, referenced chunk ids."""

    repository_id: str
    time: str
    host: str
    sources: tuple[SourceSummary, ...]
    stats: dict[str, Any]
    session: str
    tree: dict[str, str]  # {"nonce": b64, "ciphertext": b64}
    chunks: tuple[str, ...]  # sorted hex chunk ids (keyed ids: they reveal nothing)

    def body(self) -> dict[str, Any]:
        return {"snapshot_version": SNAPSHOT_VERSION, "repository_id": self.repository_id,
                "time": self.time, "host": self.host,
                "sources": [s.to_dict() for s in self.sources], "stats": self.stats,
                "session": self.session, "tree": self.tree, "chunks": list(self.chunks)}

    def encode(self, signer: Ed25519PrivateKey) -> bytes:
        return sign_document("snapshot", self.body(), signer)

    @classmethod
    def decode(cls, data: bytes, trusted: Sequence[Ed25519PublicKey], *, name: str) -> Manifest:
        body = open_document(data, "snapshot", trusted, name=name)
        _check_version(body, "snapshot_version", SNAPSHOT_VERSION, name)
        try:
            return cls(
                repository_id=str(body["repository_id"]), time=str(body["time"]),
                host=str(body["host"]),
                sources=tuple(SourceSummary(str(s["name"]), str(s["type"]), int(s["files"]),
                                            int(s["bytes"])) for s in body["sources"]),
                stats=dict(body["stats"]), session=str(body["session"]),
                tree={"nonce": str(body["tree"]["nonce"]),
                      "ciphertext": str(body["tree"]["ciphertext"])},
                chunks=tuple(str(c) for c in body["chunks"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"{name}: malformed snapshot manifest ({exc})") from None


def encrypt_tree(tree: dict[str, Any], session_key: bytes, repository_id: str, *,
                 nonce: bytes | None = None) -> dict[str, str]:
    nonce = nonce if nonce is not None else secrets.token_bytes(NONCE_SIZE)
    packed = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(canonical_json(tree))
    ct = AESGCM(session_key).encrypt(nonce, packed, TREE_AAD + repository_id.encode("ascii"))
    return {"nonce": b64e(nonce), "ciphertext": b64e(ct)}


def decrypt_tree(sealed: dict[str, str], session_key: bytes, repository_id: str, *,
                 name: str) -> dict[str, Any]:
    try:
        packed = AESGCM(session_key).decrypt(b64d(sealed["nonce"]), b64d(sealed["ciphertext"]),
                                             TREE_AAD + repository_id.encode("ascii"))
    except (InvalidTag, ValueError, KeyError):
        raise IntegrityError(f"{name}: snapshot tree fails authentication") from None
    tree = json.loads(zstandard.ZstdDecompressor().decompress(packed, max_output_size=1 << 31))
    if not isinstance(tree, dict):
        raise IntegrityError(f"{name}: malformed snapshot tree")
    _check_version(tree, "tree_version", TREE_VERSION, name)
    return tree
