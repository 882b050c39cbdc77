"""Keeping operation events in the repository, where the insider cannot reach them.

Each ingest stores one signed ``oplog-batch`` document (the normalised events read and the
findings raised), sealed to the recovery public key (events name people, addresses and
commands) and journaled like every other object, so ``replicate`` copies it to every region
and ``verify`` proves it is still there, unchanged. Only the recovery key reads it back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from drkit.clock import Clock, utc_iso
from drkit.config import Config
from drkit.repo.crypto import decrypt_document
from drkit.repo.documents import open_document, sign_document
from drkit.storage.base import ObjectInfo

OPLOG_PREFIX = "oplog"
BATCH_KIND = "oplog-batch"
BATCH_VERSION = 1


def store_batch(config: Config, *, events: Sequence[dict[str, Any]],
                findings: Sequence[dict[str, Any]], sources: Sequence[str],
                now: datetime) -> ObjectInfo:
    from drkit.repo.keys import load_writer_signing_key
    from drkit.repo.writer import put_document

    body = {"version": BATCH_VERSION, "ingested": utc_iso(now), "sources": list(sources),
            "events": list(events), "findings": list(findings)}
    signed = sign_document(BATCH_KIND, body, load_writer_signing_key(config), compress=True)
    return put_document(config, OPLOG_PREFIX, signed, encrypt=True, now=now)


def read_batches(config: Config, clock: Clock, recovery: X25519PrivateKey, *,
                 region: str | None = None) -> list[dict[str, Any]]:
    """Every stored batch of the region (default: the primary), oldest first."""
    from drkit.repo.keys import load_trusted_writer_keys
    from drkit.repo.repository import Repository
    from drkit.storage.url import open_store

    where = config.region(region) if region else config.primary_region
    store = open_store(where.url, base_dir=config.base_dir, clock=clock)
    trusted = load_trusted_writer_keys(config, store)
    repo = Repository.open(store, trusted, region=where.name)
    out = []
    for key in repo.keys_under(OPLOG_PREFIX + "/"):
        name = f"{store.url}: {key}"
        plain = decrypt_document(repo.get_verified(key), recovery, name=name)
        body = open_document(plain, BATCH_KIND, trusted, name=name)
        out.append({**body, "key": key})
    out.sort(key=lambda b: (str(b.get("ingested")), b["key"]))
    return out
