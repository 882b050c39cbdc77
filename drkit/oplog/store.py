"""Keeping operation events in the repository, where the insider cannot reach them.

Each ingest stores one signed ``oplog-batch`` document (the normalised events read and the
findings raised), sealed to the recovery public key (events name people, addresses and
commands) and journaled like every other object, so ``replicate`` copies it to every region
and ``verify`` proves it is still there, unchanged. Only the recovery key reads it back.

Beside it, every ingest stores one signed ``oplog-summary`` document under
``oplog-summary/`` that is *not* sealed: the findings without commands, addresses,
identities or resources (operator, rule, status, count, first/last time, sessions, hosts),
and, per bastion source read, when it was read and the minutes in which it had events.
The weekly summary job and the log-gap check read these with the writer keys alone, so
the recovery key never has to be on the scheduler's host. An ingest with nothing new still
stores its summary: that a source was read and was silent is what a log gap is made of.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from drkit.clock import Clock, utc_iso
from drkit.config import Config
from drkit.repo.crypto import decrypt_document
from drkit.repo.documents import open_document, sign_document
from drkit.storage.base import ObjectInfo, Store

if TYPE_CHECKING:
    from drkit.repo.repository import Repository

OPLOG_PREFIX = "oplog"
BATCH_KIND = "oplog-batch"
BATCH_VERSION = 1
SUMMARY_PREFIX = "oplog-summary"
SUMMARY_KIND = "oplog-summary"
SUMMARY_VERSION = 1
#: Finding fields the unsealed summary keeps (no commands, addresses, keys or resources).
SUMMARY_FINDING_FIELDS = ("id", "severity", "operator", "rule", "class", "what", "status",
                          "count", "first", "last", "actions", "sessions", "hosts",
                          "sources", "results")


def store_batch(config: Config, *, events: Sequence[dict[str, Any]],
                findings: Sequence[dict[str, Any]], sources: Sequence[str],
                now: datetime) -> ObjectInfo:
    from drkit.repo.keys import load_writer_signing_key
    from drkit.repo.writer import put_document

    body = {"version": BATCH_VERSION, "ingested": utc_iso(now), "sources": list(sources),
            "events": list(events), "findings": list(findings)}
    signed = sign_document(BATCH_KIND, body, load_writer_signing_key(config), compress=True)
    return put_document(config, OPLOG_PREFIX, signed, encrypt=True, now=now)


def summary_finding(finding: dict[str, Any]) -> dict[str, Any]:
    return {k: finding[k] for k in SUMMARY_FINDING_FIELDS if k in finding}


def store_ingest(config: Config, *, events: Sequence[dict[str, Any]],
                 findings: Sequence[dict[str, Any]], sources: Sequence[str],
                 activity: dict[str, dict[str, Any]], read: int, now: datetime
                 ) -> tuple[str | None, str]:
    """Store one ingest: the sealed batch (when there are new events) and the unsealed
    summary, journaled in one commit. Returns (batch key or None, summary key)."""
    from drkit.repo.keys import load_writer_signing_key
    from drkit.repo.writer import RepositoryWriter

    signer = load_writer_signing_key(config)
    with RepositoryWriter.for_config(config, now=now) as writer:
        batch_key = None
        if events:
            body = {"version": BATCH_VERSION, "ingested": utc_iso(now),
                    "sources": list(sources), "events": list(events),
                    "findings": list(findings)}
            batch_key = writer.put_document(
                OPLOG_PREFIX, sign_document(BATCH_KIND, body, signer, compress=True),
                encrypt=True).key
        summary = {"version": SUMMARY_VERSION, "ingested": utc_iso(now),
                   "sources": list(sources), "read": read, "new": len(events),
                   "batch": batch_key,
                   "findings": [summary_finding(f) for f in findings],
                   "activity": activity}
        summary_key = writer.put_document(
            SUMMARY_PREFIX, sign_document(SUMMARY_KIND, summary, signer, compress=True),
            encrypt=False).key
        writer.commit()
    return batch_key, summary_key


def _open_region(config: Config, clock: Clock, region: str | None
                 ) -> tuple[Store, list[Ed25519PublicKey], Repository]:
    """The region's store (default: the primary), its trusted writer keys and repository."""
    from drkit.repo.keys import load_trusted_writer_keys
    from drkit.repo.repository import Repository
    from drkit.storage.url import open_store

    where = config.region(region) if region else config.primary_region
    store = open_store(where.url, base_dir=config.base_dir, clock=clock)
    trusted = load_trusted_writer_keys(config, store)
    return store, trusted, Repository.open(store, trusted, region=where.name)


def read_summaries(config: Config, clock: Clock, *, region: str | None = None
                   ) -> list[dict[str, Any]]:
    """Every stored ingest summary of the region (default: the primary), oldest first;
    signatures checked against the trusted writer keys, no recovery key needed."""
    store, trusted, repo = _open_region(config, clock, region)
    out = []
    for key in repo.keys_under(SUMMARY_PREFIX + "/"):
        body = open_document(repo.get_verified(key), SUMMARY_KIND, trusted,
                             name=f"{store.url}: {key}")
        out.append({**body, "key": key})
    out.sort(key=lambda b: (str(b.get("ingested")), b["key"]))
    return out


def read_batches(config: Config, clock: Clock, recovery: X25519PrivateKey, *,
                 region: str | None = None) -> list[dict[str, Any]]:
    """Every stored batch of the region (default: the primary), oldest first."""
    store, trusted, repo = _open_region(config, clock, region)
    out = []
    for key in repo.keys_under(OPLOG_PREFIX + "/"):
        name = f"{store.url}: {key}"
        plain = decrypt_document(repo.get_verified(key), recovery, name=name)
        body = open_document(plain, BATCH_KIND, trusted, name=name)
        out.append({**body, "key": key})
    out.sort(key=lambda b: (str(b.get("ingested")), b["key"]))
    return out
