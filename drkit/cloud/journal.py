"""Recording a cloud-snapshot run in the repository journal of the primary region.

Every record becomes one leaf of kind ``"external"`` (see ``SnapshotRecord.journal_fields``),
appended in one batch under a new signed checkpoint, so verify can later prove which cloud
snapshots drkit made and report any that disappeared.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from drkit.clock import Clock
from drkit.cloud.model import CloudRunResult
from drkit.config import Config

if TYPE_CHECKING:
    from drkit.approval.gate import Grant


def writer_key_available(config: Config) -> bool:
    """Whether this host holds a writer signing key (``drkit keys init`` has run)."""
    return (config.keys_dir / "writer.key").is_file()


def record_run(config: Config, result: CloudRunResult, *, now: datetime,
               clock: Clock | None = None) -> Any:
    """Append the run's records to the primary region's journal; return the Checkpoint.

    Raises KeyFileError if the writer keys cannot be read, InputError if the primary store
    holds no repository, IntegrityError if the existing log does not verify.
    """
    from drkit.journal import JournalEntry
    from drkit.repo.journal_writer import append_to_primary

    entries = [JournalEntry(**r.journal_fields()) for r in result.records]
    return append_to_primary(config, entries, now=now, clock=clock)


def record_expiry(config: Config, records: list[Any], *, now: datetime, grant: Grant,
                  clock: Clock | None = None) -> Any:
    """Log approved expiries as tombstones, each with the proof of ``grant``'s approval,
    before the snapshots are deleted, so verify expects them gone (an unlogged or unproven
    disappearance stays a finding). Returns the Checkpoint."""
    from drkit.approval.proof import tombstone_entries
    from drkit.errors import ApprovalRequired
    from drkit.repo.journal_writer import append_to_primary
    from drkit.storage.url import open_store

    if grant.registry is None:
        raise ApprovalRequired("an expiry needs the registry version it was approved under")
    if not records:
        return None
    store = open_store(config.primary_region.url, base_dir=config.base_dir, clock=clock)
    items = []
    for record in records:
        fields = record.journal_fields()
        items.append({"key": fields["key"], "size": fields["size"], "sha256": fields["sha256"]})
    entries = tombstone_entries(store, items, request_id=grant.request_id,
                                operation="cloud-expire", registry=grant.registry,
                                approved_by=grant.approved_by, regions=None)
    return append_to_primary(config, entries, now=now, clock=clock)
