"""RFC 6962 / RFC 9162 Merkle tree hashing, inclusion and consistency proofs.

Leaf hash = SHA-256(0x00 || entry), node hash = SHA-256(0x01 || left || right); the tree
over n leaves splits at the largest power of two smaller than n. Proof generation follows
RFC 9162 section 2.1.3.1 / 2.1.4.1, verification the algorithms of sections 2.1.3.2 and
2.1.4.2. Verification raises ``IntegrityError`` and never returns a boolean.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from drkit.errors import IntegrityError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def hash_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class RootBuilder:
    """Incremental tree head: add leaf hashes one by one, ask for the root at any time.

    Keeps the O(log n) perfect subtrees of the current size (a compact range), so
    roots at many sizes (every checkpoint of a log) cost one pass over the leaves.
    """

    def __init__(self) -> None:
        self._stack: list[bytes] = []
        self.size = 0

    def add(self, leaf_hash: bytes) -> None:
        node = leaf_hash
        n = self.size
        while n & 1:
            node = hash_children(self._stack.pop(), node)
            n >>= 1
        self._stack.append(node)
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        node = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            node = hash_children(left, node)
        return node


def root_hash(leaf_hashes: Iterable[bytes]) -> bytes:
    """The Merkle tree hash (MTH) over leaf hashes."""
    builder = RootBuilder()
    for leaf in leaf_hashes:
        builder.add(leaf)
    return builder.root()


def _largest_power_of_two_below(n: int) -> int:
    """Largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    return root_hash(leaves[start:end])


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) of RFC 9162 2.1.3.1."""
    size = len(leaf_hashes)
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} outside a tree of size {size}")
    proof: list[bytes] = []
    start, end, m = 0, size, index
    # Walk from the root down, collecting sibling subtree hashes, then reverse so the
    # proof runs from the leaf upwards as the verifier consumes it.
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if m < k:
            proof.append(_subtree(leaf_hashes, start + k, end))
            end = start + k
        else:
            proof.append(_subtree(leaf_hashes, start, start + k))
            start += k
            m -= k
    proof.reverse()
    return proof


def consistency_proof(size1: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 2.1.4.1 (empty for m == 0 or m == n)."""
    size2 = len(leaf_hashes)
    if not 0 <= size1 <= size2:
        raise ValueError(f"cannot prove size {size1} consistent with size {size2}")
    if size1 in (0, size2):
        return []
    return _subproof(size1, leaf_hashes, 0, size2, True)


def _subproof(m: int, leaves: Sequence[bytes], start: int, end: int, whole: bool
              ) -> list[bytes]:
    n = end - start
    if m == n:
        return [] if whole else [_subtree(leaves, start, end)]
    k = _largest_power_of_two_below(n)
    if m <= k:
        return _subproof(m, leaves, start, start + k, whole) + [_subtree(leaves, start + k, end)]
    return _subproof(m - k, leaves, start + k, end, False) + [_subtree(leaves, start, start + k)]


def _check_hashes(proof: Sequence[bytes], what: str) -> None:
    for i, node in enumerate(proof):
        if not isinstance(node, bytes | bytearray) or len(node) != HASH_SIZE:
            raise IntegrityError(f"{what}: proof element {i} is not a {HASH_SIZE}-byte hash")


def verify_inclusion(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes],
                     root: bytes) -> None:
    """Raise IntegrityError unless ``proof`` shows leaf ``index`` is in the tree ``root``."""
    what = f"inclusion proof for leaf {index} in tree of size {size}"
    if not 0 <= index < size:
        raise IntegrityError(f"{what}: leaf index out of range")
    if len(leaf_hash) != HASH_SIZE or len(root) != HASH_SIZE:
        raise IntegrityError(f"{what}: leaf or root is not a {HASH_SIZE}-byte hash")
    _check_hashes(proof, what)
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise IntegrityError(f"{what}: proof is too long")
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = hash_children(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise IntegrityError(f"{what}: proof is too short")
    if r != root:
        raise IntegrityError(f"{what}: computed root does not match")


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes,
                       root2: bytes) -> None:
    """Raise IntegrityError unless the tree (size1, root1) is a prefix of (size2, root2)."""
    what = f"consistency proof from size {size1} to {size2}"
    if size1 < 0 or size2 < 0:
        raise IntegrityError(f"{what}: negative size")
    if size2 < size1:
        raise IntegrityError(f"{what}: the second tree is smaller (rollback or truncation)")
    _check_hashes(proof, what)
    if size1 == size2:
        if proof:
            raise IntegrityError(f"{what}: proof must be empty for equal sizes")
        if root1 != root2:
            raise IntegrityError(f"{what}: same size but different roots (fork)")
        return
    if size1 == 0:
        if proof:
            raise IntegrityError(f"{what}: proof must be empty from an empty tree")
        return
    if not proof:
        raise IntegrityError(f"{what}: proof is empty")
    if len(root1) != HASH_SIZE or len(root2) != HASH_SIZE:
        raise IntegrityError(f"{what}: a root is not a {HASH_SIZE}-byte hash")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is a power of two: its root is the first node
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise IntegrityError(f"{what}: proof is too long")
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = hash_children(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise IntegrityError(f"{what}: proof is too short")
    if fr != root1:
        raise IntegrityError(f"{what}: does not match the first root")
    if sr != root2:
        raise IntegrityError(f"{what}: does not match the second root")
