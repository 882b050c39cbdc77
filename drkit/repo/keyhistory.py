"""The writer key history: which writer keys a host trusts, from the journal, not from files.

Key files on a host prove nothing: whoever holds the writer host can move any key into
``keys/writer.key``. What counts is the history the repository itself records:

* the **anchor**: ``[verify] writer_keys`` when set, otherwise the writer key this host
  saw first (trust on first use: the key the repository's ``config`` object names, recorded
  in ``<state dir>/writer-keys/<repository id>.json`` by ``drkit keys init`` or by the first
  command that reads the repository from this host);
* every **journaled rotation**: a leaf of kind ``external`` with key ``writer-key/<hex>``
  whose note is a signed document (kind ``writer-key-rotation``) naming the old key, the
  new key, the approval request id and the time, signed by the old key and appended under
  a checkpoint the old key signs (``drkit keys rotate``).

The trusted set is the closure of the anchor under rotations found in the log as verified
with the keys trusted so far: a rotation counts when it is signed by its old key and one
of its two keys is already trusted (a verifier anchored on a later key still trusts the
earlier history the later key's checkpoints cover). Checkpoints signed by any other key
do not verify, so ``drkit verify`` reports them as CRITICAL, and a writer whose own key is
outside the history refuses to write.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import platformdirs
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from drkit.canonical import canonical_json
from drkit.clock import utc_iso
from drkit.config import Config
from drkit.errors import DrkitError, IntegrityError, KeyFileError, ObjectNotFound
from drkit.journal import JournalEntry, LogView, read_log
from drkit.repo.documents import open_document, sign_document
from drkit.repo.encoding import ed25519_text, fingerprint, parse_ed25519, raw_public
from drkit.storage.base import Store

log = logging.getLogger(__name__)

ROTATION_KIND = "writer-key-rotation"
ROTATION_FORMAT = "drkit-writer-key-rotation"
ROTATION_PREFIX = "writer-key/"
ANCHOR_FORMAT = "drkit-writer-anchor"
_MAX_ROUNDS = 16


# -- rotation records ------------------------------------------------------------------------
def rotation_entry(repository_id: str, old: Ed25519PrivateKey, new: Ed25519PublicKey, *,
                   approval: str, now: datetime) -> JournalEntry:
    """The journal leaf of an approved rotation from ``old`` to ``new`` (signed by old)."""
    body = {"format": ROTATION_FORMAT, "version": 1, "repository": repository_id,
            "old": ed25519_text(old.public_key()), "new": ed25519_text(new),
            "approval": approval, "at": utc_iso(now)}
    data = sign_document(ROTATION_KIND, body, old)
    return JournalEntry(kind="external", key=ROTATION_PREFIX + raw_public(new).hex(),
                        size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                        note={"writer_key_rotation": json.loads(data)})


def read_rotation(entry: JournalEntry, repository_id: str
                  ) -> tuple[Ed25519PublicKey, Ed25519PublicKey, dict[str, Any]]:
    """(old, new, body) of a rotation leaf; IntegrityError if it is not a valid one."""
    where = f"journal entry {entry.key}"
    doc = (entry.note or {}).get("writer_key_rotation")
    if not isinstance(doc, dict):
        raise IntegrityError(f"{where}: no writer key rotation record")
    data = canonical_json(doc)
    if hashlib.sha256(data).hexdigest() != entry.sha256 or len(data) != entry.size:
        raise IntegrityError(f"{where}: rotation record does not match its hash")
    body = doc.get("body")
    try:
        old = parse_ed25519(str((body or {}).get("old")))
        new = parse_ed25519(str((body or {}).get("new")))
    except ValueError as exc:
        raise IntegrityError(f"{where}: bad key in rotation record ({exc})") from None
    checked = open_document(data, ROTATION_KIND, [old], name=where)
    if checked.get("format") != ROTATION_FORMAT or checked.get("repository") != repository_id:
        raise IntegrityError(f"{where}: rotation record is for another repository")
    if entry.key != ROTATION_PREFIX + raw_public(new).hex():
        raise IntegrityError(f"{where}: key does not name the new writer key")
    return old, new, checked


def extend_with_rotations(trusted: Sequence[Ed25519PublicKey], entries: Iterable[JournalEntry],
                          repository_id: str) -> list[Ed25519PublicKey]:
    """``trusted`` plus every key a valid rotation links to it (repeated until stable)."""
    keys = {raw_public(k): k for k in trusted}
    rotations = []
    for entry in entries:
        if entry.kind != "external" or not entry.key.startswith(ROTATION_PREFIX):
            continue
        try:
            old, new, _body = read_rotation(entry, repository_id)
        except IntegrityError as exc:
            log.warning("%s", exc)  # an invalid record introduces nothing
            continue
        rotations.append((old, new))
    changed = True
    while changed:
        changed = False
        for old, new in rotations:
            if (raw_public(old) in keys) != (raw_public(new) in keys):
                keys.setdefault(raw_public(old), old)
                keys.setdefault(raw_public(new), new)
                changed = True
    return list(keys.values())


def history_from_log(store: Store, repository_id: str,
                     anchors: Sequence[Ed25519PublicKey]) -> tuple[list[Ed25519PublicKey],
                                                                    LogView]:
    """The key history of the log in ``store``, starting from ``anchors``, and the log as
    verified with exactly those keys. Each round reads the log with the keys known so far;
    a rotation can only be learnt from a part of the log that already verifies."""
    origin = "drkit:" + repository_id
    keys = list(anchors)
    for _round in range(_MAX_ROUNDS):
        view = read_log(store, origin, keys)
        grown = extend_with_rotations(keys, view.entries, repository_id)
        if len(grown) == len(keys):
            return keys, view
        keys = grown
    raise IntegrityError(f"{store.url}: writer key history does not settle "
                         f"after {_MAX_ROUNDS} rounds")


# -- the anchor: verify.writer_keys, else trust on first use ---------------------------------
def _state_dir(config: Config) -> Path:
    return config.verify_state_dir or Path(platformdirs.user_state_dir("drkit"))


def anchor_path(config: Config, repository_id: str) -> Path:
    return _state_dir(config) / "writer-keys" / f"{repository_id}.json"


def record_anchor(config: Config, repository_id: str, key: Ed25519PublicKey, *,
                  now: datetime | None = None, how: str) -> None:
    """Remember ``key`` as this host's anchor for the repository (never overwritten)."""
    path = anchor_path(config, repository_id)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"format": ANCHOR_FORMAT, "version": 1, "repository": repository_id,
           "anchor": ed25519_text(key), "how": how,
           "recorded": utc_iso(now) if now else None}
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_bytes(canonical_json(doc))
    os.replace(tmp, path)


def recorded_anchor(config: Config, repository_id: str) -> Ed25519PublicKey | None:
    path = anchor_path(config, repository_id)
    try:
        doc = json.loads(path.read_bytes())
        if doc.get("format") != ANCHOR_FORMAT or doc.get("repository") != repository_id:
            raise ValueError("not a writer key anchor for this repository")
        return parse_ed25519(str(doc["anchor"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeyFileError(f"{path}: writer key anchor is unreadable ({exc})") from None


def peek_repository_config(store: Store) -> tuple[str, Ed25519PublicKey, bytes]:
    """(repository id, first writer key, bytes) of a store's ``config`` object, checked
    only against its own signature: who the writer is, not yet whether to trust it."""
    from drkit.repo.keys import CONFIG_KEY

    data = store.get(CONFIG_KEY)
    try:
        doc = json.loads(data)
        first = parse_ed25519(str(doc["body"]["writer_public_key"]))
        repository_id = str(doc["body"]["repository_id"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise IntegrityError(f"{store.url}: config: not a drkit repository config") from None
    open_document(data, "repository-config", [first], name=f"{store.url}: config")
    return repository_id, first, data


def repository_anchor(config: Config, store: Store) -> tuple[str, Ed25519PublicKey]:
    """(repository id, anchor) ignoring ``verify.writer_keys``: the key this host recorded
    first, else (trust on first use, recorded now) the key the ``config`` object names."""
    repository_id, first, _data = peek_repository_config(store)
    anchor = recorded_anchor(config, repository_id)
    if anchor is None:
        log.warning("%s: trusting writer key %s on first use (recorded in %s)", store.url,
                    fingerprint(first), anchor_path(config, repository_id))
        record_anchor(config, repository_id, first, how="first use")
        anchor = first
    return repository_id, anchor


def configured_anchors(config: Config) -> list[Ed25519PublicKey]:
    keys = []
    for text in config.writer_keys:
        try:
            keys.append(parse_ed25519(text))
        except ValueError as exc:
            raise KeyFileError(f"{config.path}: verify.writer_keys: {exc}") from None
    return keys


def repository_history(config: Config, store: Store) -> list[Ed25519PublicKey]:
    """The writer keys of the repository in ``store`` as this host's own anchor sees them
    (``verify.writer_keys`` is not consulted: it is what a writer must be part of)."""
    repository_id, anchor = repository_anchor(config, store)
    keys, _view = history_from_log(store, repository_id, [anchor])
    return keys


def trusted_history(config: Config, store: Store) -> list[Ed25519PublicKey]:
    """The writer keys to verify the repository in ``store`` with: the closure under
    journaled rotations of ``verify.writer_keys``, else of the recorded (or first-use)
    anchor."""
    anchors = configured_anchors(config)
    if not anchors:
        return repository_history(config, store)
    repository_id, _first, _data = peek_repository_config(store)
    keys, _view = history_from_log(store, repository_id, anchors)
    return keys


def require_in_history(config: Config, key: Ed25519PublicKey,
                       history: Sequence[Ed25519PublicKey]) -> None:
    """Refuse (exit 2) a writer whose own key the journaled history does not name."""
    if any(raw_public(k) == raw_public(key) for k in history):
        return
    from drkit.repo.keys import WRITER_KEY_FILE

    known = ", ".join(fingerprint(k) for k in history)
    raise KeyFileError(
        f"{config.keys_dir / WRITER_KEY_FILE}: writer key {fingerprint(key)} is not in the "
        f"repository's journaled key history ({known}); writing refused. A writer key is "
        "replaced only with 'drkit keys rotate' (two approvals)")


def stores_in_order(config: Config) -> Iterable[Store]:
    """The primary's store, then the other regions' (a fallback when it is gone)."""
    from drkit.storage.url import open_store

    regions = [config.primary_region] + [r for r in config.regions.values() if not r.primary]
    for region in regions:
        try:
            yield open_store(region.url, base_dir=config.base_dir)
        except DrkitError as exc:
            log.debug("%s: cannot open (%s)", region.name, exc)


def history_for_config(config: Config, store: Store | None = None
                       ) -> list[Ed25519PublicKey] | None:
    """``trusted_history`` of the first region holding a repository (the primary first);
    None when no region holds one yet (before ``drkit keys init``). A region whose
    repository cannot be trusted is an error, never a reason to fall back to key files."""
    candidates: Iterable[Store] = [store] if store is not None else stores_in_order(config)
    problem: DrkitError | None = None
    for candidate in candidates:
        try:
            return trusted_history(config, candidate)
        except ObjectNotFound:
            continue
        except KeyFileError:
            raise
        except DrkitError as exc:
            if store is not None:
                raise
            log.debug("%s: no usable repository (%s)", candidate.url, exc)
            problem = problem or exc
    if problem is not None:
        raise problem
    return None
