"""Every off-by-one size, swapped, truncated or extended proof and altered leaf is rejected;
property tests check proof round trips for arbitrary trees."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drkit.errors import IntegrityError
from drkit.journal.merkle import (
    consistency_proof,
    hash_leaf,
    inclusion_proof,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

N = 20
LEAVES = [hash_leaf(f"leaf {i}".encode()) for i in range(N)]
SOME = hashlib.sha256(b"some other hash").digest()


def _flip(node: bytes, bit: int = 3) -> bytes:
    return bytes([node[0] ^ (1 << bit)]) + node[1:]


def _root_or_some(size: int) -> bytes:
    return root_hash(LEAVES[:size]) if size <= N else SOME


def inclusion_mutants(index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes):
    yield "index-1", (index - 1, size, leaf, proof, root)
    yield "index+1", (index + 1, size, leaf, proof, root)
    yield "index^2", (index ^ 2, size, leaf, proof, root)
    # A wrong size comes with that size's real root (they travel together in a checkpoint).
    yield "size-1", (index, size - 1, leaf, proof, root_hash(LEAVES[:size - 1]))
    yield "size+1", (index, size + 1, leaf, proof, _root_or_some(size + 1))
    yield "size*2", (index, size * 2, leaf, proof, root)
    yield "size/2", (index, size // 2, leaf, proof, root)
    yield "altered leaf", (index, size, _flip(leaf), proof, root)
    yield "wrong root", (index, size, leaf, proof, SOME)
    yield "trailing root", (index, size, leaf, proof + [root], root)
    yield "preceding root", (index, size, leaf, [root] + proof, root)
    yield "short garbage", (index, size, leaf, proof + [b""], root)
    for i in range(len(proof)):
        yield f"flip proof[{i}]", (index, size, leaf, proof[:i] + [_flip(proof[i])]
                                   + proof[i + 1:], root)
    if proof:
        yield "truncated", (index, size, leaf, proof[:-1], root)
        if proof != proof[::-1]:
            yield "reversed", (index, size, leaf, proof[::-1], root)
    if len(proof) > 1:
        yield "inserted", (index, size, leaf, [proof[0], SOME] + proof[1:], root)
        swapped = [proof[1], proof[0]] + proof[2:]
        if swapped != proof:
            yield "swapped 0/1", (index, size, leaf, swapped, root)


@pytest.mark.parametrize("size", range(1, N + 1))
def test_every_inclusion_proof_and_its_mutants(size: int) -> None:
    root = root_hash(LEAVES[:size])
    for index in range(size):
        proof = inclusion_proof(index, LEAVES[:size])
        verify_inclusion(index, size, LEAVES[index], proof, root)
        for name, args in inclusion_mutants(index, size, proof, root, LEAVES[index]):
            if args is None:
                continue
            i, s, leaf, p, r = args
            if (i, s) != (index, size) and 0 <= i < s <= N and p == inclusion_proof(
                    i, LEAVES[:s]) and r == root_hash(LEAVES[:s]) and leaf == LEAVES[i]:
                continue  # the mutant happens to be another true statement
            with pytest.raises(IntegrityError):
                verify_inclusion(i, s, leaf, p, r)
                pytest.fail(f"accepted mutant {name} for leaf {index} of {size}")


@pytest.mark.parametrize("size2", range(1, N + 1))
def test_every_consistency_proof_and_its_mutants(size2: int) -> None:
    root2 = root_hash(LEAVES[:size2])
    for size1 in range(0, size2 + 1):
        root1 = root_hash(LEAVES[:size1])
        proof = consistency_proof(size1, LEAVES[:size2])
        verify_consistency(size1, size2, proof, root1, root2)
        if not proof:
            continue
        mutants = {
            "size1-1": (size1 - 1, size2, proof, root1, root2),
            "size1+1": (size1 + 1, size2, proof, root1, root2),
            # A size and its root travel together in a signed checkpoint, so a wrong
            # second size comes with that size's real root (RFC 9162 verification cannot
            # tell a size apart from a same-shaped one under an unchanged root).
            "size2-1": (size1, size2 - 1, proof, root1, root_hash(LEAVES[:size2 - 1])),
            "size2+1": (size1, size2 + 1, proof, root1, _root_or_some(size2 + 1)),
            "swapped roots": (size1, size2, proof, root2, root1),
            "wrong root1": (size1, size2, proof, SOME, root2),
            "wrong root2": (size1, size2, proof, root1, SOME),
            "empty proof": (size1, size2, [], root1, root2),
            "truncated": (size1, size2, proof[:-1], root1, root2),
            "trailing root2": (size1, size2, proof + [root2], root1, root2),
            "preceding root1": (size1, size2, [root1] + proof, root1, root2),
            "preceding proof[0]": (size1, size2, [proof[0]] + proof, root1, root2),
            "rollback": (size2, size1, proof, root2, root1),
        }
        for i in range(len(proof)):
            mutants[f"flip proof[{i}]"] = (size1, size2, proof[:i] + [_flip(proof[i], 4)]
                                           + proof[i + 1:], root1, root2)
        if len(proof) > 1 and proof[0] != proof[1]:
            mutants["swapped 0/1"] = (size1, size2, [proof[1], proof[0]] + proof[2:],
                                      root1, root2)
        for name, (s1, s2, p, r1, r2) in mutants.items():
            with pytest.raises(IntegrityError):
                verify_consistency(s1, s2, p, r1, r2)
                pytest.fail(f"accepted mutant {name} for {size1}->{size2}")


def test_equal_size_fork_and_empty_tree_edges() -> None:
    r = root_hash(LEAVES[:3])
    verify_consistency(3, 3, [], r, r)
    with pytest.raises(IntegrityError, match="fork"):
        verify_consistency(3, 3, [], r, SOME)
    with pytest.raises(IntegrityError):
        verify_consistency(3, 3, [SOME], r, r)
    verify_consistency(0, 3, [], root_hash([]), r)
    with pytest.raises(IntegrityError):
        verify_consistency(0, 3, [SOME], root_hash([]), r)
    with pytest.raises(IntegrityError, match="rollback"):
        verify_consistency(4, 3, [SOME], SOME, r)
    with pytest.raises(IntegrityError):
        verify_inclusion(0, 0, LEAVES[0], [], root_hash([]))


leaf_lists = st.lists(st.binary(max_size=24), min_size=1, max_size=70)


@settings(max_examples=60, deadline=None)
@given(leaves=leaf_lists, data=st.data())
def test_inclusion_round_trip(leaves: list[bytes], data: st.DataObject) -> None:
    hashes = [hash_leaf(x) for x in leaves]
    index = data.draw(st.integers(0, len(hashes) - 1))
    root = root_hash(hashes)
    proof = inclusion_proof(index, hashes)
    # An RFC 6962 audit path has at most ceil(log2(n)) nodes.
    assert len(proof) <= (len(hashes) - 1).bit_length()
    # verify_inclusion raises IntegrityError on any mismatch; it returns nothing.
    assert verify_inclusion(index, len(hashes), hashes[index], proof, root) is None


@settings(max_examples=60, deadline=None)
@given(leaves=leaf_lists, data=st.data())
def test_consistency_round_trip_and_fork(leaves: list[bytes], data: st.DataObject) -> None:
    hashes = [hash_leaf(x) for x in leaves]
    size1 = data.draw(st.integers(0, len(hashes)))
    proof = consistency_proof(size1, hashes)
    verify_consistency(size1, len(hashes), proof, root_hash(hashes[:size1]), root_hash(hashes))
    if size1 >= 1:
        # A different history of the first size1 entries must not be provably consistent.
        forked = list(hashes)
        forked[size1 - 1] = hash_leaf(b"forged " + leaves[size1 - 1])
        with pytest.raises(IntegrityError):
            verify_consistency(size1, len(hashes), proof, root_hash(forked[:size1]),
                               root_hash(hashes))
