"""The one way to append to the repository journal of the primary region.

Every writer of the journal outside ``RepositoryWriter`` (pinned configs, cloud-snapshot
records, tombstones) goes through ``append_to_primary``: it takes the repository lock, so
no two appends race, and verifies the existing log against the trusted writer keys before
adding a signed checkpoint.

(Minimal version written for the config pin; the lead keeps helper A's fuller module,
with the proof checks for tombstones, at merge. The signature is the same.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from drkit.clock import Clock
from drkit.config import Config


def append_to_primary(config: Config, entries: Sequence[Any], *, now: datetime,
                      clock: Clock | None = None) -> Any:
    """Append ``entries`` (JournalEntry) to the primary's journal under the repository lock
    and a new signed checkpoint; return the Checkpoint.

    Raises KeyFileError if the writer keys cannot be read, LockedError if another writer
    holds the lock, IntegrityError if the existing log does not verify.
    """
    from drkit.journal import Journal
    from drkit.repo.keys import (
        load_trusted_writer_keys,
        load_writer_signing_key,
        read_repository_id,
    )
    from drkit.repo.lock import RepositoryLock
    from drkit.storage.url import open_store

    signer = load_writer_signing_key(config)
    trusted = load_trusted_writer_keys(config)
    store = open_store(config.primary_region.url, base_dir=config.base_dir, clock=clock)
    repository_id = read_repository_id(store, trusted)
    with RepositoryLock(config.cache_dir, repository_id, now=now):
        return Journal(store, f"drkit:{repository_id}").append(list(entries), signer,
                                                              now=now, trusted=trusted)
