"""Write tests/vectors/repository_v1.json: known inputs and keys -> the exact bytes.

Run only when the format changes on purpose (and bump the version of what changed):
    .venv/bin/python tests/vectors/make_vectors.py
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from pyfastcdc import FastCDC

from drkit.repo import crypto, formats, keys
from drkit.repo.keys import CHUNK_AVG, CHUNK_MAX, CHUNK_MIN

HERE = Path(__file__).parent
FAST_KDF = {"name": "argon2id", "iterations": 1, "lanes": 1, "memory_cost": 8192}


def seeded(label: str, n: int) -> bytes:
    """Deterministic pseudo-random bytes: SHA-256 in counter mode."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{label}/{counter}".encode()).digest()
        counter += 1
    return bytes(out[:n])


def inputs() -> dict[str, Any]:
    return {
        "id_key": seeded("id-key", 32).hex(),
        "writer_seed": seeded("writer", 32).hex(),
        "recovery_private": seeded("recovery", 32).hex(),
        "ephemeral_private": seeded("ephemeral", 32).hex(),
        "session_key": seeded("session", 32).hex(),
        "session_nonce": seeded("session-nonce", 12).hex(),
        "chunk_nonce": seeded("chunk-nonce", 12).hex(),
        "kdf_salt": seeded("salt", 16).hex(),
        "kdf_nonce": seeded("kdf-nonce", 12).hex(),
        "passphrase": "correct horse battery staple",
        "repository_id": seeded("repo-id", 16).hex(),
        "chunk_plaintext": ("drkit golden vector " * 200),
        "cdc_input_label": "cdc-input",
        "cdc_input_size": 3 << 20,
    }


def compute(inp: dict[str, Any]) -> dict[str, Any]:
    id_key = bytes.fromhex(inp["id_key"])
    writer = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(inp["writer_seed"]))
    recovery = X25519PrivateKey.from_private_bytes(bytes.fromhex(inp["recovery_private"]))
    ephemeral = X25519PrivateKey.from_private_bytes(bytes.fromhex(inp["ephemeral_private"]))
    session_key = bytes.fromhex(inp["session_key"])
    repo_id = inp["repository_id"]
    plaintext = inp["chunk_plaintext"].encode()

    cid = crypto.chunk_id(id_key, plaintext)
    sealed = crypto.seal_session_key(recovery.public_key(), repo_id, key=session_key,
                                     ephemeral=ephemeral,
                                     nonce=bytes.fromhex(inp["session_nonce"]))
    blob = crypto.ChunkCipher(session_key).encrypt(cid, plaintext,
                                                   nonce=bytes.fromhex(inp["chunk_nonce"]))
    recovery_file = keys.seal_recovery_key(recovery, inp["passphrase"], kdf=FAST_KDF,
                                           salt=bytes.fromhex(inp["kdf_salt"]),
                                           nonce=bytes.fromhex(inp["kdf_nonce"]))
    pack = formats.PACK_MAGIC + blob
    pack_key = formats.pack_key(pack)
    index = formats.IndexFile(repo_id, sealed.session_id, pack_key, len(pack),
                              ((cid, len(formats.PACK_MAGIC), len(blob), len(plaintext)),))
    tree = formats.encode_tree([{
        "name": "uploads", "type": "files", "path": "/srv/uploads", "control_totals": None,
        "entries": [
            {"path": "", "type": "dir", "mode": 0o755, "mtime_ns": 1_700_000_000_000_000_000},
            {"path": "a.txt", "type": "file", "mode": 0o644, "mtime_ns": 1_700_000_000_5,
             "size": len(plaintext), "sha256": hashlib.sha256(plaintext).hexdigest(),
             "chunks": [cid.hex()]},
            {"path": "link", "type": "symlink", "target": "a.txt", "mtime_ns": 1}]}])
    manifest = formats.Manifest(
        repository_id=repo_id, time="2026-11-23T02:30:00Z", host="backup-1",
        sources=(formats.SourceSummary("uploads", "files", 1, len(plaintext)),),
        stats={"bytes_new": len(plaintext), "bytes_read": len(plaintext)},
        session=sealed.session_id, tree_chunks=(cid.hex(),), tree_size=len(tree),
        tree_sha256=hashlib.sha256(tree).hexdigest(),
        packs=(formats.key_digest(pack_key),), chunk_count=1)
    wk = keys.WriterKeys(repo_id, id_key, writer, recovery.public_key())
    from datetime import UTC, datetime

    config_doc = keys.encode_repository_config(wk, now=datetime(2026, 11, 23, 2, 30, tzinfo=UTC))
    seed = crypto.chunker_seed(id_key)
    cdc = FastCDC(CHUNK_AVG, min_size=CHUNK_MIN, max_size=CHUNK_MAX, normalized_chunking=1,
                  seed=seed)
    cuts = [c.length for c in cdc.cut_buf(seeded(inp["cdc_input_label"],
                                                 inp["cdc_input_size"]))]
    return {
        "chunk_id": cid.hex(),
        "chunker_seed": seed,
        "cdc_lengths": cuts,
        "session_object": sealed.data.decode(),
        "session_id": sealed.session_id,
        "chunk_blob": blob.hex(),
        "recovery_key_file": recovery_file.decode(),
        "pack_key": pack_key,
        "index_file": index.encode(writer).hex(),
        "tree": tree.decode(),
        "manifest": manifest.encode(writer).hex(),
        "repository_config": config_doc.decode(),
    }


def main() -> None:
    inp = inputs()
    doc = {"description": "drkit repository format v1 golden vectors (docs/format.md)",
           "inputs": inp, "expected": compute(inp)}
    (HERE / "repository_v1.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
