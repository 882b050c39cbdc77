"""Appending control entries (registry anchors, key rotations, ...) to the primary's journal.

A minimal version: the repository lock, the writer key checked against the journaled key
history, then ``Journal.append``. Every writer of the journal outside ``RepositoryWriter``
goes through here so that no two appends race and no signer outside the history writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from drkit.clock import Clock
from drkit.config import Config
from drkit.journal import Checkpoint, Journal, JournalEntry


def append_to_primary(config: Config, entries: Sequence[JournalEntry], *, now: datetime,
                      clock: Clock | None = None) -> Checkpoint:
    """Append ``entries`` as one batch under a new checkpoint in the primary region.

    Raises KeyFileError (exit 2) when this host's writer key is missing or not in the
    repository's journaled key history, LockedError when another writer holds the lock,
    IntegrityError when the existing log does not verify.
    """
    from drkit.repo.keyhistory import repository_history, require_in_history
    from drkit.repo.keys import load_writer_signing_key, read_repository_id
    from drkit.repo.lock import RepositoryLock
    from drkit.storage.url import open_store

    signer = load_writer_signing_key(config)
    store = open_store(config.primary_region.url, base_dir=config.base_dir, clock=clock)
    trusted = repository_history(config, store)
    require_in_history(config, signer.public_key(), trusted)
    repository_id = read_repository_id(store, trusted)
    with RepositoryLock(config.cache_dir, repository_id, now=now):
        return Journal(store, "drkit:" + repository_id).append(
            list(entries), signer, now=now, trusted=trusted)
