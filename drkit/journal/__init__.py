"""The journal: an append-only RFC 6962 Merkle log of every object a repository writes,
with Ed25519-signed checkpoints (C2SP tlog-checkpoint in a C2SP signed note).

See docs/journal.md for the formats.
"""

from drkit.journal.checkpoint import Checkpoint, key_id, key_name
from drkit.journal.entry import JOURNAL_PREFIX, KINDS, JournalEntry, live_entries, tombstone_regions
from drkit.journal.log import (
    Batch,
    Journal,
    LogProblem,
    LogView,
    batch_key,
    checkpoint_key,
    decode_batch,
    read_log,
)

__all__ = [
    "JOURNAL_PREFIX",
    "KINDS",
    "Batch",
    "Checkpoint",
    "Journal",
    "JournalEntry",
    "LogProblem",
    "LogView",
    "batch_key",
    "checkpoint_key",
    "decode_batch",
    "key_id",
    "key_name",
    "live_entries",
    "read_log",
    "tombstone_regions",
]
