"""RFC 6962 hashing and proofs against the published transparency-dev/merkle vectors."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from drkit.errors import IntegrityError
from drkit.journal.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    hash_children,
    hash_leaf,
    inclusion_proof,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).parent / "vectors"
RFC = json.loads((VECTORS / "rfc6962.json").read_text())
LEAVES = [bytes.fromhex(h) for h in RFC["leaves"]]
LEAF_HASHES = [hash_leaf(x) for x in LEAVES]
ROOTS = [bytes.fromhex(h) for h in RFC["roots"]]


def test_hasher_vectors() -> None:
    h = RFC["hasher"]
    assert EMPTY_ROOT.hex() == h["empty_root"] == root_hash([]).hex()
    assert hash_leaf(b"").hex() == h["empty_leaf"]
    assert hash_leaf(b"L123456").hex() == h["leaf_L123456"]
    assert hash_children(b"N123", b"N456").hex() == h["node_N123_N456"]


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_of_every_size(size: int) -> None:
    assert root_hash(LEAF_HASHES[:size]) == ROOTS[size - 1]


@pytest.mark.parametrize("case", RFC["inclusion"], ids=lambda c: f"{c['leaf']}-{c['size']}")
def test_inclusion_vectors_generate_and_verify(case: dict) -> None:
    index, size = case["leaf"] - 1, case["size"]
    proof = [bytes.fromhex(h) for h in case["proof"]]
    assert inclusion_proof(index, LEAF_HASHES[:size]) == proof
    verify_inclusion(index, size, LEAF_HASHES[index], proof, ROOTS[size - 1])


@pytest.mark.parametrize("case", RFC["consistency"],
                         ids=lambda c: f"{c['size1']}-{c['size2']}")
def test_consistency_vectors_generate_and_verify(case: dict) -> None:
    s1, s2 = case["size1"], case["size2"]
    proof = [bytes.fromhex(h) for h in case["proof"]]
    assert consistency_proof(s1, LEAF_HASHES[:s2]) == proof
    verify_consistency(s1, s2, proof, ROOTS[s1 - 1], ROOTS[s2 - 1])


def _b64(x: str) -> bytes:
    return base64.b64decode(x)


CONSISTENCY_FILES = sorted((VECTORS / "transparency-dev/consistency").rglob("*.json"))
INCLUSION_FILES = sorted((VECTORS / "transparency-dev/inclusion").rglob("*.json"))


@pytest.mark.parametrize("path", CONSISTENCY_FILES,
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_transparency_dev_consistency_files(path: Path) -> None:
    v = json.loads(path.read_text())
    proof = [_b64(x) for x in (v["proof"] or [])]
    args = (v["size1"], v["size2"], proof, _b64(v["root1"]), _b64(v["root2"]))
    if v["wantErr"]:
        with pytest.raises(IntegrityError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


@pytest.mark.parametrize("path", INCLUSION_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_transparency_dev_inclusion_files(path: Path) -> None:
    v = json.loads(path.read_text())
    proof = [_b64(x) for x in (v["proof"] or [])]
    args = (v["leafIdx"], v["treeSize"], _b64(v["leafHash"]), proof, _b64(v["root"]))
    if v["wantErr"]:
        with pytest.raises(IntegrityError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


def test_vector_files_are_present() -> None:
    # The parametrised tests above must not silently collect nothing.
    assert len(CONSISTENCY_FILES) >= 10 and len(INCLUSION_FILES) >= 8
