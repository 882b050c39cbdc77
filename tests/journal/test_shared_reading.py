"""A journal read several times in one process is parsed once, and every change between the
readings is still seen: a batch or checkpoint replaced with other bytes, a deleted object,
other trusted keys."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drkit.journal import Journal, JournalEntry, read_log
from drkit.journal.log import PARSED_BATCHES, RECENT_READINGS, checkpoint_key
from drkit.journal.merkle import hash_leaf
from drkit.storage.local import LocalStore

NOW = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)
ORIGIN = "drkit:" + "cd" * 16


def logged(store: LocalStore, signer: Ed25519PrivateKey, batches: int = 2) -> Journal:
    journal = Journal(store, ORIGIN)
    for b in range(batches):
        journal.append([JournalEntry.from_info(store.put(f"packs/{b}-{i}", f"{b}/{i}".encode()))
                        for i in range(3)], signer, now=NOW)
    return journal


def batch_path(store: LocalStore, index: int) -> str:
    return sorted(i.key for i in store.list("journal/batch/"))[index]


def test_a_second_reading_is_the_same_view_without_parsing_again(
        store: LocalStore, signer: Ed25519PrivateKey) -> None:
    logged(store, signer)
    PARSED_BATCHES.clear()
    RECENT_READINGS.clear()
    first = read_log(store, ORIGIN, [signer.public_key()])
    parsed = {id(b) for b in PARSED_BATCHES._items.values()}
    second = read_log(store, ORIGIN, [signer.public_key()])
    assert second is not first and second.entries is not first.entries
    assert (second.size, second.entries, second.leaf_hashes, second.problems) == (
        first.size, first.entries, first.leaf_hashes, first.problems)
    assert {id(b) for b in PARSED_BATCHES._items.values()} == parsed
    # The leaf hashes come from the batch lines: they are the entries' canonical bytes.
    assert first.leaf_hashes == [hash_leaf(e.to_bytes()) for e in first.entries]
    second.entries.clear()  # a caller's view is its own
    assert len(read_log(store, ORIGIN, [signer.public_key()]).entries) == 6


def test_a_batch_replaced_between_readings_is_seen(store: LocalStore,
                                                   signer: Ed25519PrivateKey) -> None:
    logged(store, signer)
    assert not read_log(store, ORIGIN, [signer.public_key()]).problems
    key = batch_path(store, 0)
    path = store.root / key
    data = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(data.replace(b"packs/0-1", b"packs/0-X"))  # same size, other bytes
    view = read_log(store, ORIGIN, [signer.public_key()])
    assert any(p.kind == "batch-invalid" and p.key == key for p in view.problems)
    assert view.checkpoint is None or view.size < 6


def test_a_deleted_checkpoint_between_readings_is_seen(store: LocalStore,
                                                       signer: Ed25519PrivateKey) -> None:
    logged(store, signer)
    assert read_log(store, ORIGIN, [signer.public_key()]).size == 6
    (store.root / checkpoint_key(6)).unlink()
    view = read_log(store, ORIGIN, [signer.public_key()])
    assert view.size == 3
    assert any(p.kind == "batch-uncovered" for p in view.problems)


def test_the_signature_is_checked_on_every_reading(store: LocalStore,
                                                   signer: Ed25519PrivateKey) -> None:
    logged(store, signer)
    assert read_log(store, ORIGIN, [signer.public_key()]).size == 6
    other = Ed25519PrivateKey.generate().public_key()
    view = read_log(store, ORIGIN, [other])
    assert view.checkpoint is None and view.entries == []
    assert {p.kind for p in view.problems} >= {"checkpoint-invalid"}
    # A replica with the same batches (another store) shares the parse, not the verdict.
    assert read_log(store, ORIGIN, [signer.public_key()]).size == 6
