"""Recording a cloud-snapshot run in the repository journal of the primary region.

Every record becomes one leaf of kind ``"external"`` (see ``SnapshotRecord.journal_fields``),
appended in one batch under a new signed checkpoint, so verify can later prove which cloud
snapshots drkit made and report any that disappeared.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drkit.clock import Clock
from drkit.cloud.model import CloudRunResult
from drkit.config import Config


def writer_key_available(config: Config) -> bool:
    """Whether this host holds a writer signing key (``drkit keys init`` has run)."""
    return (config.keys_dir / "writer.key").is_file()


def record_run(config: Config, result: CloudRunResult, *, now: datetime,
               clock: Clock | None = None) -> Any:
    """Append the run's records to the primary region's journal; return the Checkpoint.

    Raises KeyFileError if the writer keys cannot be read, InputError if the primary store
    holds no repository, IntegrityError if the existing log does not verify.
    """
    from drkit.journal import Journal, JournalEntry
    from drkit.repo.keys import (
        load_trusted_writer_keys,
        load_writer_signing_key,
        read_repository_id,
    )
    from drkit.storage.url import open_store

    signer = load_writer_signing_key(config)
    trusted = load_trusted_writer_keys(config)
    store = open_store(config.primary_region.url, base_dir=config.base_dir, clock=clock)
    repository_id = read_repository_id(store, trusted)
    entries = [JournalEntry(**r.journal_fields()) for r in result.records]
    return Journal(store, f"drkit:{repository_id}").append(entries, signer, now=now,
                                                          trusted=trusted)


def record_expiry(config: Config, records: list[Any], *, now: datetime, approval: str,
                  clock: Clock | None = None) -> Any:
    """Log approved expiries as tombstones before the snapshots are deleted, so verify
    expects them gone (an unlogged disappearance stays a finding). Returns the Checkpoint."""
    from drkit.journal import Journal, JournalEntry
    from drkit.repo.keys import (
        load_trusted_writer_keys,
        load_writer_signing_key,
        read_repository_id,
    )
    from drkit.storage.url import open_store

    signer = load_writer_signing_key(config)
    trusted = load_trusted_writer_keys(config)
    store = open_store(config.primary_region.url, base_dir=config.base_dir, clock=clock)
    repository_id = read_repository_id(store, trusted)
    entries = []
    for record in records:
        fields = record.journal_fields()
        entries.append(JournalEntry(kind="tombstone", key=fields["key"], size=fields["size"],
                                    sha256=fields["sha256"],
                                    note={"approval": approval, "operation": "cloud-expire"}))
    return Journal(store, f"drkit:{repository_id}").append(entries, signer, now=now,
                                                          trusted=trusted)
