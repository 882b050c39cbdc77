"""Byte formats of packs, index files, snapshot manifests and snapshot trees.

Every kind carries a version; docs/format.md describes each and tests/vectors/ pins the
exact bytes. Object keys carry the SHA-256 of the stored bytes, so an object swapped for
another is caught by name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from drkit.canonical import canonical_json
from drkit.errors import FormatVersionError, IntegrityError
from drkit.repo.documents import open_document, sign_document

PACK_MAGIC = b"DRKPACK\x01"  # 7 bytes of name, 1 byte of version
INDEX_VERSION = 1
SNAPSHOT_VERSION = 1
TREE_VERSION = 1
INTENT_VERSION = 1
INTENT_PREFIX = "intents"


def content_key(prefix: str, data: bytes, *, fanout: bool = False) -> str:
    digest = hashlib.sha256(data).hexdigest()
    return f"{prefix}/{digest[:2]}/{digest}" if fanout else f"{prefix}/{digest}"


def pack_key(data: bytes, *, digest: str | None = None) -> str:
    """``packs/<2 hex>/<sha256>``; ``digest`` is the data's hex SHA-256 if already known."""
    digest = digest or hashlib.sha256(data).hexdigest()
    return f"packs/{digest[:2]}/{digest}"


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
        return sign_document("index", self.body(), signer, compress=True)

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


@dataclass(frozen=True)
class Intent:
    """A write-ahead record: the objects a writer is about to create, signed before any of
    them is written (``intents/<sha256>``). Journaled with them at commit; after a crash it
    lets any host tell the writer's own leftovers from injected data (docs/format.md)."""

    repository_id: str
    time: str
    host: str
    objects: tuple[tuple[str, int, str], ...]  # (key, size, sha256 of the stored bytes)
    #: small objects carried whole (a pack's index file), so that a run killed between a
    #: pack and its index loses nothing: the next run re-creates the index from here
    embedded: tuple[tuple[str, bytes], ...] = ()

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "intent_version": INTENT_VERSION, "repository_id": self.repository_id,
            "time": self.time, "host": self.host,
            "objects": [[k, n, h] for k, n, h in self.objects]}
        if self.embedded:
            body["embedded"] = {k: base64.b64encode(v).decode() for k, v in self.embedded}
        return body

    def embedded_object(self, key: str) -> bytes | None:
        """The embedded bytes of ``key`` if they are exactly the ones the intent names."""
        data = dict(self.embedded).get(key)
        named = {k: (n, h) for k, n, h in self.objects}.get(key)
        if data is None or named is None:
            return None
        if (len(data), hashlib.sha256(data).hexdigest()) != named:
            return None
        return data

    def encode(self, signer: Ed25519PrivateKey) -> bytes:
        return sign_document("intent", self.body(), signer)

    @classmethod
    def decode(cls, data: bytes, trusted: Sequence[Ed25519PublicKey], *, name: str) -> Intent:
        body = open_document(data, "intent", trusted, name=name)
        _check_version(body, "intent_version", INTENT_VERSION, name)
        try:
            objects = tuple((str(k), int(n), str(h)) for k, n, h in body["objects"])
            embedded = tuple((str(k), base64.b64decode(v, validate=True))
                             for k, v in dict(body.get("embedded") or {}).items())
            return cls(str(body["repository_id"]), str(body["time"]), str(body["host"]),
                       objects, embedded)
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise IntegrityError(f"{name}: malformed intent ({exc})") from None


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
    """A snapshot manifest: public header and statistics, the chunk ids of the encrypted
    tree, and the packs the snapshot's data lives in."""

    repository_id: str
    time: str
    host: str
    sources: tuple[SourceSummary, ...]
    stats: dict[str, Any]
    session: str
    tree_chunks: tuple[str, ...]  # hex chunk ids of the tree stream, in order
    tree_size: int
    tree_sha256: str
    packs: tuple[str, ...]  # sorted digests of every pack holding a chunk of the snapshot
    chunk_count: int

    def body(self) -> dict[str, Any]:
        return {"snapshot_version": SNAPSHOT_VERSION, "repository_id": self.repository_id,
                "time": self.time, "host": self.host,
                "sources": [s.to_dict() for s in self.sources], "stats": self.stats,
                "session": self.session,
                "tree": {"chunks": list(self.tree_chunks), "size": self.tree_size,
                         "sha256": self.tree_sha256},
                "packs": list(self.packs), "chunk_count": self.chunk_count}

    def encode(self, signer: Ed25519PrivateKey) -> bytes:
        return sign_document("snapshot", self.body(), signer, compress=True)

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
                tree_chunks=tuple(str(c) for c in body["tree"]["chunks"]),
                tree_size=int(body["tree"]["size"]), tree_sha256=str(body["tree"]["sha256"]),
                packs=tuple(str(p) for p in body["packs"]),
                chunk_count=int(body["chunk_count"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"{name}: malformed snapshot manifest ({exc})") from None


def encode_tree(sources: Sequence[dict[str, Any]]) -> bytes:
    """The snapshot tree as JSON lines: a header, then per source a source line followed by
    its entries (sorted by path). Line-oriented so that unchanged stretches of the tree
    deduplicate from one snapshot to the next."""
    lines = [canonical_json({"tree_version": TREE_VERSION})]
    for source in sources:
        head = {k: v for k, v in source.items() if k != "entries"}
        lines.append(canonical_json({"source": head}))
        lines.extend(canonical_json(e) for e in source["entries"])
    return b"\n".join(lines) + b"\n"


def decode_tree(data: bytes, *, name: str) -> dict[str, Any]:
    """Parse tree bytes back into ``{"tree_version": 1, "sources": [{..., "entries": []}]}``."""
    try:
        lines = data.decode("utf-8").splitlines()
        header = json.loads(lines[0])
        _check_version(header, "tree_version", TREE_VERSION, name)
        sources: list[dict[str, Any]] = []
        for line in lines[1:]:
            item = json.loads(line)
            if "source" in item:
                sources.append({**item["source"], "entries": []})
            else:
                sources[-1]["entries"].append(item)
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise IntegrityError(f"{name}: malformed snapshot tree ({exc})") from None
    return {"tree_version": header["tree_version"], "sources": sources}
