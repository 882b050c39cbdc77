"""The approver registry: who may approve, pinned in the repository as numbered versions.

Version N is the create-only object ``approval/registry/NNNNNN.json`` in the primary store
(canonical JSON)::

    {"format": "drkit-approver-registry", "version": 1, "registry_version": N,
     "repository": REPO_ID, "previous": SHA256-HEX of version N-1's bytes | null,
     "approvers": [enrolment statements, each signed by its own key],
     "created": ISO, "authorized_by": {"bootstrap": {"os_user", "host"}} | {"request": ID}}

Each version is anchored in the repository journal (``anchor_entry``: key, size and sha256
of its bytes, plus the document) before it is stored; only anchored versions count
(``drkit.approval.gate.load_registry_chain``), and verify checks them in every region.

Version 1 is the bootstrap (allowed once: only while no version is anchored). Every later
version names the approval request that authorised it; ``drkit.approval.gate`` checks that
request's plan equals this version's content and that a quorum of version N-1's approvers
signed it, so the chain can be re-verified by anyone from the repository alone.

A local copy (``[approval] registry_file``, default ``approvers.json`` next to drkit.toml)
exists for people to read; it is never a source of truth: if it differs from the pinned
version, every approval command refuses (exit 3) instead of guessing which one is right.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import platformdirs

from drkit.approval.keys import Enrollment
from drkit.canonical import canonical_json
from drkit.clock import utc_iso
from drkit.config import Config
from drkit.errors import (
    ApprovalRequired,
    InputError,
    IntegrityError,
    ObjectExists,
    ObjectNotFound,
)
from drkit.journal import JournalEntry
from drkit.storage.base import Store

log = logging.getLogger(__name__)

REGISTRY_FORMAT = "drkit-approver-registry"
REGISTRY_PREFIX = "approval/registry/"
ANCHOR_NOTE = "approver-registry"


def registry_key(number: int) -> str:
    return f"{REGISTRY_PREFIX}{number:06d}.json"


@dataclass(frozen=True)
class RegistryVersion:
    number: int
    doc: dict[str, Any]
    sha256: str  # of the stored bytes
    approvers: tuple[Enrollment, ...]

    @property
    def authorized_by(self) -> dict[str, Any]:
        value = self.doc.get("authorized_by")
        return value if isinstance(value, dict) else {}

    def people(self) -> dict[str, list[Enrollment]]:
        out: dict[str, list[Enrollment]] = {}
        for e in self.approvers:
            out.setdefault(e.name, []).append(e)
        return out

    def person_for_key(self, key_text: str) -> str | None:
        for e in self.approvers:
            if e.key == key_text:
                return e.name
        return None

    def to_bytes(self) -> bytes:
        return canonical_json(self.doc)

    def summary(self) -> dict[str, Any]:
        return {
            "version": self.number,
            "sha256": self.sha256,
            "created": self.doc.get("created"),
            "authorized_by": self.authorized_by,
            "approvers": [{"name": e.name, "roles": list(e.roles), "key": e.key,
                           "fingerprint": e.fingerprint} for e in self.approvers],
        }


def registry_content(number: int, previous: str | None, repository_id: str,
                     approvers: Sequence[Enrollment]) -> dict[str, Any]:
    """The part of a registry version an approval request's plan binds."""
    ordered = sorted(approvers, key=lambda e: (e.name, e.key))
    keys = [e.key for e in ordered]
    if len(set(keys)) != len(keys):
        raise InputError("the same approver key is listed twice")
    return {"format": REGISTRY_FORMAT, "version": 1, "registry_version": number,
            "repository": repository_id, "previous": previous,
            "approvers": [e.to_dict() for e in ordered]}


def parse_version(data: bytes, number: int, repository_id: str, previous: str | None,
                  *, where: str) -> RegistryVersion:
    """Structural checks of one stored version (authorisation is checked by the gate)."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise IntegrityError(f"{where}: approver registry is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != REGISTRY_FORMAT:
        raise IntegrityError(f"{where}: not a drkit approver registry")
    if doc.get("version") != 1:
        raise IntegrityError(f"{where}: unsupported registry format {doc.get('version')!r}")
    if canonical_json(doc) != data:
        raise IntegrityError(f"{where}: approver registry is not in canonical form (edited?)")
    if doc.get("registry_version") != number:
        raise IntegrityError(f"{where}: says it is version {doc.get('registry_version')!r}, "
                             f"stored as version {number}")
    if doc.get("repository") != repository_id:
        raise IntegrityError(f"{where}: belongs to repository {doc.get('repository')!r}, "
                             f"not {repository_id}")
    if doc.get("previous") != previous:
        raise IntegrityError(f"{where}: does not chain to version {number - 1} "
                             "(previous hash differs: a version was replaced)")
    raw = doc.get("approvers")
    if not isinstance(raw, list):
        raise IntegrityError(f"{where}: no approver list")
    approvers = tuple(Enrollment.from_dict(item, where=where) for item in raw)
    return RegistryVersion(number, doc, hashlib.sha256(data).hexdigest(), approvers)


def anchor_entry(version: RegistryVersion) -> JournalEntry:
    """The repository-journal leaf that anchors ``version``: its key, size and sha256 like
    any logged object (so replicate copies it and verify checks it in every region), and
    the document itself, so a crash between anchoring and storing loses nothing."""
    data = version.to_bytes()
    return JournalEntry(kind="object", key=registry_key(version.number), size=len(data),
                        sha256=version.sha256,
                        note={"anchor": ANCHOR_NOTE, "registry_version": version.number,
                              "document": version.doc})


def anchored_entries(entries: Iterable[JournalEntry]) -> list[JournalEntry]:
    """The anchors of registry versions 1..N in the journal, in order.

    The first entry for a version's key is its anchor; any later entry for that key (a
    tombstone, another object) would replace a registry version and is an integrity
    failure, as is a gap in the numbering."""
    anchors: dict[str, JournalEntry] = {}
    for entry in entries:
        if not entry.key.startswith(REGISTRY_PREFIX):
            continue
        if entry.key in anchors or entry.kind != "object":
            raise IntegrityError(f"journal: {entry.key}: a later {entry.kind} entry would "
                                 "replace an anchored approver registry version; registry "
                                 "versions are never replaced")
        anchors[entry.key] = entry
    ordered = sorted(anchors)
    for number, key in enumerate(ordered, start=1):
        if key != registry_key(number):
            raise IntegrityError(f"journal: anchors {key} but no {registry_key(number)}")
    return [anchors[k] for k in ordered]


def _anchored_bytes(anchor: JournalEntry) -> bytes | None:
    doc = (anchor.note or {}).get("document")
    if not isinstance(doc, dict):
        return None
    data = canonical_json(doc)
    return data if hashlib.sha256(data).hexdigest() == anchor.sha256 else None


def load_versions(store: Store, repository_id: str, anchors: Sequence[JournalEntry]
                  ) -> list[RegistryVersion]:
    """The anchored versions, each read from the store and compared with its anchor,
    structurally verified and chained; [] when the journal anchors none.

    A version replaced in the store is an integrity failure; one missing from the store
    (a crash between anchoring and storing, or a deletion) is put back from the journal's
    copy. A registry object the journal does not anchor is an integrity failure too
    (``drkit verify`` reports it as CRITICAL)."""
    versions: list[RegistryVersion] = []
    previous: str | None = None
    anchored = set()
    for number, anchor in enumerate(anchors, start=1):
        key = registry_key(number)
        anchored.add(key)
        where = f"{store.url}: {key}"
        try:
            data = store.get(key)
        except ObjectNotFound:
            restored = _anchored_bytes(anchor)
            if restored is None:
                raise IntegrityError(f"{where}: anchored approver registry version is "
                                     "missing from the store") from None
            log.warning("%s: missing from the store; putting back the version the journal "
                        "anchors", where)
            with contextlib.suppress(ObjectExists):
                store.put(key, restored)
            data = restored
        found = hashlib.sha256(data).hexdigest()
        if found != anchor.sha256 or len(data) != anchor.size:
            raise IntegrityError(f"{where}: differs from approver registry version {number} "
                                 f"anchored in the repository journal (sha256 "
                                 f"{anchor.sha256[:16]}, found {found[:16]}): replaced by "
                                 "hand; nothing trusts it")
        version = parse_version(data, number, repository_id, previous, where=where)
        versions.append(version)
        previous = version.sha256
    extra = sorted(i.key for i in store.list(REGISTRY_PREFIX) if i.key not in anchored)
    if extra:
        # Anchoring comes before storing, so no crash leaves such an object: someone put
        # it there by hand. It decides nothing, but approvals stop until a person looks.
        raise IntegrityError(f"{store.url}: {extra[0]}: approver registry object that the "
                             "repository journal does not anchor (put by hand); it is not "
                             "trusted, and approval commands refuse until it is removed")
    return versions


def unanchored_objects(store: Store, anchors: Sequence[JournalEntry]) -> list[str]:
    anchored = {a.key for a in anchors}
    return sorted(i.key for i in store.list(REGISTRY_PREFIX) if i.key not in anchored)


def build_version(content: dict[str, Any], *, now: datetime,
                  authorized_by: dict[str, Any]) -> RegistryVersion:
    """A new version's document (not stored yet: it is anchored in the journal first)."""
    doc = {**content, "created": utc_iso(now), "authorized_by": authorized_by}
    data = canonical_json(doc)
    approvers = tuple(Enrollment.from_dict(a, where="new registry") for a in doc["approvers"])
    return RegistryVersion(int(content["registry_version"]), doc,
                           hashlib.sha256(data).hexdigest(), approvers)


def store_version(store: Store, version: RegistryVersion) -> None:
    """Write an anchored version create-only."""
    try:
        store.put(registry_key(version.number), version.to_bytes())
    except ObjectExists:
        if store.get(registry_key(version.number)) != version.to_bytes():
            raise IntegrityError(f"{store.url}: {registry_key(version.number)} exists with "
                                 "other content than the version just anchored") from None


def bootstrap_content(repository_id: str, enrollments: Sequence[Enrollment], *,
                      min_people: int) -> dict[str, Any]:
    """Version 1's content, after checking there are enough distinct people."""
    people = {e.name for e in enrollments}
    if len(people) < min_people:
        raise InputError(f"bootstrap needs at least {min_people} distinct people (the quorum "
                         f"plus the requester), got {len(people)}")
    return registry_content(1, None, repository_id, enrollments)


# -- the local copy -------------------------------------------------------------------------
def local_registry_path(config: Config) -> Path:
    name = config.approval.get("registry_file", "approvers.json")
    if not isinstance(name, str) or not name:
        raise InputError(f"{config.path}: approval.registry_file must be a file name")
    return config.base_dir / name


def check_local_copy(config: Config, current: RegistryVersion) -> None:
    """Refuse a local registry file that differs from the pinned one; create it if absent."""
    path = local_registry_path(config)
    pinned = current.to_bytes()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        try:
            write_local_copy(config, current)
        except OSError as exc:  # a read-only config folder: the copy is only a convenience
            log.warning("%s: cannot write the local approver registry copy: %s", path, exc)
        return
    except OSError as exc:
        raise InputError(f"{path}: cannot read the local approver registry: {exc}") from None
    try:
        same = canonical_json(json.loads(data)) == pinned
    except (ValueError, UnicodeDecodeError):
        same = False
    if not same:
        raise ApprovalRequired(
            f"{path}: differs from the approver registry pinned in the repository "
            f"(version {current.number}, sha256 {current.sha256[:16]}); a local edit cannot "
            "change who approves. Restore the file with 'drkit approvers show --write-local' "
            "or request a change: 'drkit request approvers --add FILE --remove NAME "
            "--reason TEXT'")


def write_local_copy(config: Config, current: RegistryVersion) -> Path:
    path = local_registry_path(config)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_bytes(json.dumps(current.doc, indent=2, sort_keys=True).encode() + b"\n")
    os.replace(tmp, path)
    return path


# -- trust on first use, per verifying host ----------------------------------------------------
def state_dir(config: Config) -> Path:
    return config.verify_state_dir or Path(platformdirs.user_state_dir("drkit"))


def check_seen(config: Config, repository_id: str, versions: Sequence[RegistryVersion]) -> None:
    """Compare with the versions this host saw before; a replaced or vanished version is an
    integrity failure (a quiet rewrite of the registry by someone with store access)."""
    path = state_dir(config) / "approval" / f"{repository_id}.registry.json"
    try:
        seen = json.loads(path.read_text())
        seen_versions = dict(seen.get("versions", {}))
    except FileNotFoundError:
        seen_versions = {}
    except (OSError, ValueError, AttributeError) as exc:
        raise IntegrityError(f"{path}: trusted registry state unreadable ({exc})") from None
    current = {str(v.number): v.sha256 for v in versions}
    for number, sha in seen_versions.items():
        if number not in current:
            raise IntegrityError(f"approver registry version {number} was seen by this host "
                                 f"({path}) but is gone from the repository (rolled back)")
        if current[number] != sha:
            raise IntegrityError(f"approver registry version {number} was replaced since this "
                                 f"host last saw it (sha256 {sha[:16]} -> "
                                 f"{current[number][:16]})")
    if current != seen_versions:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"versions": current}, sort_keys=True))
        os.replace(tmp, path)


def find_version(store: Store, number: int) -> bytes:
    try:
        return store.get(registry_key(number))
    except ObjectNotFound:
        raise InputError(f"{store.url}: no approver registry version {number}") from None
