"""Keeping the ledger in the repository, and finding it again from any region.

A stored ledger is a signed document (kind ``ledger``: the source name, when it was built,
and the ledger document itself), sealed to the recovery public key because it holds every
merchant's revenue, and journaled like every other object, so it is replicated and
verified with the snapshots it belongs to. Only the recovery key can read it back, which
a drill holds anyway.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from drkit.canonical import canonical_json
from drkit.clock import parse_iso, utc_iso
from drkit.config import Config
from drkit.errors import InputError
from drkit.ledger.model import Ledger, ledger_document_bytes
from drkit.repo.crypto import decrypt_document
from drkit.repo.documents import open_document, sign_document
from drkit.repo.keys import load_writer_signing_key
from drkit.repo.repository import Repository
from drkit.repo.writer import put_document
from drkit.storage.base import ObjectInfo

LEDGER_PREFIX = "ledgers"
LEDGER_KIND = "ledger"


@dataclass(frozen=True)
class StoredLedger:
    key: str
    source: str
    built_at: datetime
    ledger: Ledger


def store_ledger(config: Config, source: str, ledger: Ledger, *, now: datetime) -> ObjectInfo:
    """Sign, seal and store ``ledger`` in the primary region, and journal it."""
    body = {"source": source, "built_at": utc_iso(now),
            "ledger": json.loads(ledger_document_bytes(ledger))}
    signed = sign_document(LEDGER_KIND, body, load_writer_signing_key(config), compress=True)
    return put_document(config, LEDGER_PREFIX, signed, encrypt=True, now=now)


def read_stored_ledger(repo: Repository, key: str, recovery: X25519PrivateKey,
                       trusted: Sequence[Ed25519PublicKey]) -> StoredLedger:
    name = f"{repo.store.url}: {key}"
    plain = decrypt_document(repo.get_verified(key), recovery, name=name)
    body = open_document(plain, LEDGER_KIND, trusted, name=name)
    ledger = Ledger.from_json(canonical_json(body["ledger"]), source=name)
    return StoredLedger(key, str(body["source"]), parse_iso(str(body["built_at"])), ledger)


def latest_ledger(repo: Repository, source: str, recovery: X25519PrivateKey,
                  trusted: Sequence[Ed25519PublicKey]) -> StoredLedger:
    """The most recently built ledger of ``source`` in this region's repository."""
    found = [read_stored_ledger(repo, key, recovery, trusted)
             for key in repo.keys_under(LEDGER_PREFIX + "/")]
    mine = [s for s in found if s.source == source]
    if not mine:
        raise InputError(f"{repo.store.url}: no ledger stored for source {source!r} "
                         f"(run 'drkit ledger build --source {source}')")
    return max(mine, key=lambda s: (s.built_at, s.key))
