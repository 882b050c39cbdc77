"""The Journal on a real local store: append, read back, checkpoints and tampering."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drkit.errors import IntegrityError
from drkit.journal import Checkpoint, Journal, JournalEntry, key_name
from drkit.journal.merkle import consistency_proof, hash_leaf, root_hash, verify_consistency
from drkit.storage.local import LocalStore

NOW = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)
ORIGIN = "drkit:" + "ab" * 16


def put_objects(store: LocalStore, n: int, prefix: str = "packs/") -> list[JournalEntry]:
    return [JournalEntry.from_info(store.put(f"{prefix}{i:04d}", f"data {prefix}{i}".encode()))
            for i in range(n)]


def test_append_and_read_back(store: LocalStore, signer: Ed25519PrivateKey) -> None:
    journal = Journal(store, ORIGIN)
    assert journal.entries([signer.public_key()]) == (None, [])
    first = put_objects(store, 3)
    cp1 = journal.append(first, signer, now=NOW)
    assert (cp1.size, cp1.origin, cp1.time) == (3, ORIGIN, NOW)
    second = put_objects(store, 2, "index/")
    cp2 = journal.append(second, signer, now=NOW)
    cp, entries = journal.entries([signer.public_key()])
    assert cp == cp2 and entries == first + second
    assert cp2.root == root_hash([hash_leaf(e.to_bytes()) for e in entries])
    proof = consistency_proof(3, [hash_leaf(e.to_bytes()) for e in entries])
    verify_consistency(3, 5, proof, cp1.root, cp2.root)
    keys = sorted(i.key for i in store.list("journal/"))
    assert keys[-2:] == ["journal/checkpoint/0000000000000003",
                         "journal/checkpoint/0000000000000005"]
    assert journal.latest([signer.public_key()]) == cp2


def test_checkpoint_text_is_a_c2sp_signed_note(store: LocalStore,
                                               signer: Ed25519PrivateKey) -> None:
    cp = Journal(store, ORIGIN).append(put_objects(store, 1), signer, now=NOW)
    text = store.get("journal/checkpoint/0000000000000001").decode()
    body, _, sigs = text.rpartition("\n\n")
    lines = body.split("\n")
    assert lines[:3] == [ORIGIN, "1", base64.b64encode(cp.root).decode()]
    assert lines[3] == "time 2026-11-23T02:30:00Z" and lines[4].startswith("batch journal/")
    dash, name, sig = sigs.strip().split(" ")
    assert dash == "\u2014" and name == key_name(signer.public_key())
    raw = base64.b64decode(sig)
    pub = signer.public_key().public_bytes_raw()
    assert raw[:4] == hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4]
    signer.public_key().verify(raw[4:], (body + "\n").encode())


def test_wrong_key_forged_signature_and_altered_body(store: LocalStore,
                                                     signer: Ed25519PrivateKey) -> None:
    journal = Journal(store, ORIGIN)
    journal.append(put_objects(store, 2), signer, now=NOW)
    data = store.get("journal/checkpoint/0000000000000002")
    other = Ed25519PrivateKey.generate()
    with pytest.raises(IntegrityError, match="not signed by a trusted writer key"):
        Checkpoint.open(data, [other.public_key()])
    altered = data.replace(b"\n2\n", b"\n3\n", 1)
    with pytest.raises(IntegrityError, match="does not verify"):
        Checkpoint.open(altered, [signer.public_key()])
    with pytest.raises(IntegrityError, match="origin"):
        Checkpoint.open(data, [signer.public_key()], origin="drkit:other")
    with pytest.raises(IntegrityError):
        Checkpoint.open(data.replace(b"\n\n", b"\n"), [signer.public_key()])


def test_forged_entry_with_bad_checkpoint_is_an_error(tmp_path: Path,
                                                     signer: Ed25519PrivateKey) -> None:
    store = LocalStore(tmp_path / "s")
    journal = Journal(store, ORIGIN)
    journal.append(put_objects(store, 2), signer, now=NOW)
    attacker = Ed25519PrivateKey.generate()
    # The attacker appends a batch and checkpoint through the same code with their own key.
    forged_store_view = Journal(store, ORIGIN)
    evil = JournalEntry.from_info(store.put("packs/evil", b"evil"))
    with pytest.raises(IntegrityError):
        forged_store_view.append([evil], attacker, now=NOW)  # old log is not theirs
    forged_store_view.append([evil], attacker, now=NOW, trusted=[signer.public_key()])
    with pytest.raises(IntegrityError, match="checkpoint/0000000000000003.*not signed"):
        journal.entries([signer.public_key()])
    view = journal.read([signer.public_key()])
    assert view.size == 2 and [p.kind for p in view.errors] == ["checkpoint-invalid"]


def test_deleted_batch_and_altered_batch(store: LocalStore, signer: Ed25519PrivateKey) -> None:
    journal = Journal(store, ORIGIN)
    journal.append(put_objects(store, 2), signer, now=NOW)
    journal.append(put_objects(store, 2, "index/"), signer, now=NOW)
    batches = sorted(i.key for i in store.list("journal/batch/"))
    path = store.root / batches[0]
    original = path.read_bytes()
    path.write_bytes(original.replace(b"packs/0000", b"packs/0001"))
    with pytest.raises(IntegrityError, match="altered"):
        journal.entries([signer.public_key()])
    path.unlink()
    view = journal.read([signer.public_key()])
    assert {p.kind for p in view.errors} == {"batch-missing"}
    assert view.checkpoint is None


def test_rewritten_history_with_valid_signatures_is_a_fork(tmp_path: Path,
                                                          signer: Ed25519PrivateKey) -> None:
    store = LocalStore(tmp_path / "s")
    journal = Journal(store, ORIGIN)
    journal.append(put_objects(store, 2), signer, now=NOW)
    # A second, different history signed by the same key, written to a fresh store, then
    # its newest checkpoint dropped into the first store: the older checkpoint disagrees.
    other = LocalStore(tmp_path / "o")
    j2 = Journal(other, ORIGIN)
    j2.append(put_objects(other, 1, "x/"), signer, now=NOW)
    j2.append(put_objects(other, 2, "y/"), signer, now=NOW)
    for info in other.list("journal/"):
        if not store.exists(info.key):
            store.put(info.key, other.get(info.key))
    view = journal.read([signer.public_key()])
    assert view.size == 3
    assert [p.kind for p in view.errors] == ["fork"]


def test_stray_batch_after_a_crash_is_a_warning_and_append_continues(
        store: LocalStore, signer: Ed25519PrivateKey) -> None:
    journal = Journal(store, ORIGIN)
    journal.append(put_objects(store, 2), signer, now=NOW)
    from drkit.journal.log import batch_key, encode_batch

    view = journal.read([signer.public_key()])
    leftover = encode_batch(ORIGIN, 2, put_objects(store, 1, "crash/"), view.batch_keys[-1])
    store.put(batch_key(2, 3, leftover), leftover)
    cp = journal.append(put_objects(store, 2, "retry/"), signer, now=NOW)
    view = journal.read([signer.public_key()])
    assert cp.size == 4 and not view.errors
    assert [p.kind for p in view.problems] == ["stray-batch"]


def test_entry_format_and_contradiction(store: LocalStore, signer: Ed25519PrivateKey) -> None:
    e = JournalEntry("object", "packs/a", 3, "0" * 64, md5="1" * 32)
    assert e.to_bytes() == (b'{"key":"packs/a","kind":"object","md5":"' + b"1" * 32
                            + b'","sha256":"' + b"0" * 64 + b'","size":3,"v":1}')
    assert JournalEntry.from_bytes(e.to_bytes()) == e
    with pytest.raises(IntegrityError, match="canonical"):
        JournalEntry.from_bytes(e.to_bytes().replace(b",", b", ", 1))
    with pytest.raises(ValueError):
        JournalEntry("object", "journal/x", 1, "0" * 64)
    with pytest.raises(ValueError):
        JournalEntry("deleted", "packs/a", 1, "0" * 64)
    t = JournalEntry("tombstone", "packs/a", 3, "0" * 64, note={"approval": "req-1"})
    x = JournalEntry("external", "aws:ec2:snap-0123 eu-west-1", 0, "0" * 64)
    journal = Journal(store, ORIGIN)
    journal.append([e], signer, now=NOW)
    journal.append([t, x], signer, now=NOW)
    assert journal.entries([signer.public_key()])[1] == [e, t, x]
    with pytest.raises(IntegrityError, match="different content"):
        journal.append([JournalEntry("object", "index/z", 1, "2" * 64)] * 1
                       + [JournalEntry("object", "index/z", 2, "3" * 64)], signer, now=NOW)


def _v1_log(store: LocalStore, signer: Ed25519PrivateKey, sizes: list[int]) -> None:
    """A log as drkit wrote it before batch format 2: unsigned batches, one checkpoint each."""
    from drkit.journal.log import batch_key, checkpoint_key, encode_batch
    from drkit.journal.merkle import RootBuilder

    builder, prev, start = RootBuilder(), None, 0
    for n in sizes:
        entries = put_objects(store, n, f"v1-{start}/")
        data = encode_batch(ORIGIN, start, entries, prev)
        assert data.startswith(b"drkit-journal-batch/1 ")
        key = batch_key(start, start + n, data)
        store.put(key, data)
        for e in entries:
            builder.add(hash_leaf(e.to_bytes()))
        cp = Checkpoint(ORIGIN, builder.size, builder.root(), NOW, key)
        store.put(checkpoint_key(builder.size), cp.sign(signer))
        prev, start = key, start + n


def test_format_1_batches_stay_readable_and_appends_continue_in_format_2(
        store: LocalStore, signer: Ed25519PrivateKey) -> None:
    _v1_log(store, signer, [2, 1])
    journal = Journal(store, ORIGIN)
    assert journal.read([signer.public_key()]).problems == []
    cp = journal.append(put_objects(store, 2, "new/"), signer, now=NOW)
    view = journal.read([signer.public_key()])
    assert cp.size == 5 and view.problems == []
    newest = store.get(view.batch_keys[-1])
    assert newest.startswith(b"drkit-journal-batch/2 ")
    assert "\n\n\u2014 drkit-writer/" in newest.decode()  # signed like a checkpoint


def test_deleted_checkpoints_are_reported_and_the_next_append_adopts_the_batch(
        store: LocalStore, signer: Ed25519PrivateKey) -> None:
    from drkit.journal.log import checkpoint_key

    journal = Journal(store, ORIGIN)
    for n in (2, 1, 1):
        journal.append(put_objects(store, n, f"run{n}-{len(list(store.list('')))}/"),
                       signer, now=NOW)
    trusted = [signer.public_key()]
    store.delete(checkpoint_key(4))  # the newest
    view = journal.read(trusted)
    assert view.size == 3 and [p.kind for p in view.errors] == ["batch-uncovered"]
    journal.entries(trusted)  # reading goes on: the content is still proven
    cp = journal.append(put_objects(store, 1, "after/"), signer, now=NOW)
    assert cp.size == 5  # position 3 was not taken again: the batch 3..4 was adopted
    view = journal.read(trusted)
    assert [(p.kind, p.key) for p in view.errors] == [("checkpoint-deleted", checkpoint_key(4))]
    assert "its entries are kept" in view.errors[0].message
    assert not [p for p in view.problems if p.kind == "stray-batch"]
    store.delete(checkpoint_key(2))  # an older, superseded one
    kinds = sorted(p.kind for p in journal.read(trusted).errors)
    assert kinds == ["checkpoint-deleted", "checkpoint-deleted"]


def test_an_interrupted_append_recorded_write_ahead_is_completed_not_reported(
        store: LocalStore, signer: Ed25519PrivateKey, tmp_path: Path) -> None:
    from drkit.journal.log import checkpoint_key

    journal = Journal(store, ORIGIN, intents_dir=tmp_path / "state")
    journal.append(put_objects(store, 2), signer, now=NOW)
    entries = put_objects(store, 1, "crash/")
    journal.append(entries, signer, now=NOW)
    store.delete(checkpoint_key(3))  # as if the run had died before this put
    journal.intents.add(journal.read([signer.public_key()]).problems[0].key)
    view = journal.read([signer.public_key()])
    assert view.errors == [] and [p.kind for p in view.problems] == ["interrupted-append"]
    # The retry of the same entries (a spooled event) is not logged twice.
    cp = journal.append(entries, signer, now=NOW)
    assert cp.size == 3
    view = journal.read([signer.public_key()])
    assert view.problems == [] and journal.intents.batches() == set()
