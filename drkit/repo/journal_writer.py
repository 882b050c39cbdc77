"""The one path by which drkit appends to a repository's journal.

Snapshots (``repo/writer.py``), cloud-snapshot records and expiries (``cloud/journal.py``)
and approved deletions (``approval/operations.py``) all append here, so that

- every append holds the repository lock (``repo/lock.py``): no two appends race, and
  none interleaves with a snapshot's commit;
- every tombstone is checked for its proof of approval (``approval/proof.py``) before it is
  written: drkit itself never writes a tombstone that ``verify`` would call unproven.

- the signer is checked against the repository's journaled writer-key history
  (``repo/keyhistory.py``): a key file swapped in by hand never writes.

The audit log is a separate journal with its own writer (``drkit.audit``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from drkit.clock import Clock
from drkit.config import Config
from drkit.errors import IntegrityError
from drkit.journal import Checkpoint, Journal, JournalEntry
from drkit.repo.lock import RepositoryLock
from drkit.storage.base import Store


def append_locked(store: Store, repository_id: str, entries: Sequence[JournalEntry],
                  signer: Ed25519PrivateKey, *, trusted: Sequence[Ed25519PublicKey],
                  now: datetime, lock: RepositoryLock, intents_dir: Path | None = None
                  ) -> Checkpoint:
    """Append ``entries`` to ``store``'s journal while the caller holds ``lock``.

    ``intents_dir`` (this host's cache folder) keeps the write-ahead record of the append,
    so a crash between the batch and its checkpoint is completed by the next append
    instead of being reported (``drkit.journal.log``).

    Raises IntegrityError (nothing written) if a tombstone lacks a valid proof, or if the
    existing log does not verify.
    """
    if not lock.held:
        raise RuntimeError(f"{lock.path}: the repository lock must be held to append")
    journal = Journal(store, "drkit:" + repository_id, intents_dir=intents_dir)
    if any(e.kind == "tombstone" for e in entries):
        from drkit.approval.proof import unproven_tombstones

        _cp, existing = journal.entries(trusted)
        combined = [*existing, *entries]
        unproven = unproven_tombstones(store, repository_id, combined)
        mine = {i - len(existing): why for i, why in unproven.items() if i >= len(existing)}
        if mine:
            index, why = min(mine.items())
            raise IntegrityError(f"{store.url}: refusing to journal the deletion of "
                                 f"{entries[index].key}: {why}")
    return journal.append(entries, signer, now=now, trusted=trusted)


def append_to_primary(config: Config, entries: Sequence[JournalEntry], *, now: datetime,
                      clock: Clock | None = None) -> Checkpoint:
    """Append ``entries`` to the primary region's journal under the repository lock, signed
    with this host's writer key. Raises KeyFileError (exit 2) when that key is missing or
    not in the repository's journaled key history, InputError if the primary holds no
    repository, LockedError when another writer holds the lock, IntegrityError as
    ``append_locked``."""
    from drkit.repo.keyhistory import repository_history, require_in_history
    from drkit.repo.keys import load_writer_signing_key, read_repository_id
    from drkit.storage.url import open_store

    signer = load_writer_signing_key(config)
    store = open_store(config.primary_region.url, base_dir=config.base_dir, clock=clock)
    # The existing log is verified against the journaled key history (earlier writer keys
    # included), and this host's key must be in it.
    trusted = repository_history(config, store)
    require_in_history(config, signer.public_key(), trusted)
    repository_id = read_repository_id(store, trusted)
    with RepositoryLock(config.cache_dir, repository_id, now=now) as lock:
        return append_locked(store, repository_id, entries, signer, trusted=trusted, now=now,
                             lock=lock, intents_dir=config.cache_dir)
