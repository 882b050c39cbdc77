"""Golden vectors: the exact bytes of every repository file kind, and reading them back."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from drkit.errors import FormatVersionError, IntegrityError, WrongPassphrase
from drkit.repo import crypto, formats, keys

HERE = Path(__file__).parent
VECTORS = json.loads((HERE / "repository_v1.json").read_text())


def _generator():
    spec = importlib.util.spec_from_file_location("make_vectors", HERE / "make_vectors.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(VECTORS["expected"]))
def test_writer_produces_the_golden_bytes(name: str) -> None:
    computed = _generator().compute(VECTORS["inputs"])
    assert computed[name] == VECTORS["expected"][name], f"format of {name} changed"


def test_readers_accept_the_golden_bytes() -> None:
    inp, exp = VECTORS["inputs"], VECTORS["expected"]
    writer = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(inp["writer_seed"]))
    trusted = [writer.public_key()]
    recovery = keys.unseal_recovery_key(exp["recovery_key_file"].encode(), inp["passphrase"],
                                        name="vector")
    assert recovery.private_bytes_raw().hex() == inp["recovery_private"]
    with pytest.raises(WrongPassphrase):
        keys.unseal_recovery_key(exp["recovery_key_file"].encode(), "wrong", name="vector")
    session_key = crypto.unseal_session_key(exp["session_object"].encode(), recovery,
                                            name="vector")
    assert session_key.hex() == inp["session_key"]
    cid = bytes.fromhex(exp["chunk_id"])
    plain = crypto.ChunkCipher(session_key).decrypt(cid, bytes.fromhex(exp["chunk_blob"]),
                                                    name="vector")
    assert plain == inp["chunk_plaintext"].encode()
    index = formats.IndexFile.decode(bytes.fromhex(exp["index_file"]), trusted, name="vector")
    assert index.pack == exp["pack_key"] and index.chunks[0][0] == cid
    manifest = formats.Manifest.decode(bytes.fromhex(exp["manifest"]), trusted, name="vector")
    assert manifest.tree_sha256 == hashlib.sha256(exp["tree"].encode()).hexdigest()
    tree = formats.decode_tree(exp["tree"].encode(), name="vector")
    assert [e["path"] for e in tree["sources"][0]["entries"]] == ["", "a.txt", "link"]


def test_tampering_and_newer_versions_are_refused() -> None:
    inp, exp = VECTORS["inputs"], VECTORS["expected"]
    writer = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(inp["writer_seed"]))
    trusted = [writer.public_key()]
    cid = bytes.fromhex(exp["chunk_id"])
    blob = bytearray(bytes.fromhex(exp["chunk_blob"]))
    blob[20] ^= 1
    with pytest.raises(IntegrityError, match="fails authentication"):
        crypto.ChunkCipher(bytes.fromhex(inp["session_key"])).decrypt(cid, bytes(blob),
                                                                      name="vector")
    other = X25519PrivateKey.generate()
    with pytest.raises(IntegrityError):
        crypto.unseal_session_key(exp["session_object"].encode(), other, name="vector")
    with pytest.raises(IntegrityError, match="untrusted"):
        formats.IndexFile.decode(bytes.fromhex(exp["index_file"]),
                                 [Ed25519PrivateKey.generate().public_key()], name="vector")
    doc = json.loads(exp["repository_config"])
    doc["version"] = 2
    from drkit.canonical import canonical_json

    with pytest.raises(FormatVersionError, match="newer"):
        from drkit.repo.documents import open_document

        open_document(canonical_json(doc), "repository-config", trusted, name="config")
