"""The approver registry: who may approve, pinned in the repository as numbered versions.

Version N is the create-only object ``approval/registry/NNNNNN.json`` in the primary store
(canonical JSON)::

    {"format": "drkit-approver-registry", "version": 1, "registry_version": N,
     "repository": REPO_ID, "previous": SHA256-HEX of version N-1's bytes | null,
     "approvers": [enrolment statements, each signed by its own key],
     "created": ISO, "authorized_by": {"bootstrap": {"os_user", "host"}} | {"request": ID}}

Version 1 is the bootstrap (allowed once: only while no version exists). Every later
version names the approval request that authorised it; ``drkit.approval.gate`` checks that
request's plan equals this version's content and that a quorum of version N-1's approvers
signed it, so the chain can be re-verified by anyone from the repository alone.

A local copy (``[approval] registry_file``, default ``approvers.json`` next to drkit.toml)
exists for people to read; it is never a source of truth: if it differs from the pinned
version, every approval command refuses (exit 3) instead of guessing which one is right.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
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
from drkit.storage.base import Store

log = logging.getLogger(__name__)

REGISTRY_FORMAT = "drkit-approver-registry"
REGISTRY_PREFIX = "approval/registry/"


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


def load_versions(store: Store, repository_id: str) -> list[RegistryVersion]:
    """Every pinned version, structurally verified and chained; [] when none exists."""
    keys = sorted(info.key for info in store.list(REGISTRY_PREFIX))
    versions: list[RegistryVersion] = []
    previous: str | None = None
    for index, key in enumerate(keys, start=1):
        if key != registry_key(index):
            raise IntegrityError(f"{store.url}: {key}: unexpected registry object "
                                 f"(expected {registry_key(index)}: a version is missing)")
        version = parse_version(store.get(key), index, repository_id, previous,
                                where=f"{store.url}: {key}")
        versions.append(version)
        previous = version.sha256
    return versions


def pin_version(store: Store, content: dict[str, Any], *, now: datetime,
                authorized_by: dict[str, Any]) -> RegistryVersion:
    """Write a new version create-only; a concurrent writer of the same number loses."""
    doc = {**content, "created": utc_iso(now), "authorized_by": authorized_by}
    data = canonical_json(doc)
    number = int(content["registry_version"])
    try:
        store.put(registry_key(number), data)
    except ObjectExists:
        raise ApprovalRequired(f"{store.url}: approver registry version {number} already "
                               "exists; nothing was changed") from None
    approvers = tuple(Enrollment.from_dict(a, where="new registry") for a in doc["approvers"])
    return RegistryVersion(number, doc, hashlib.sha256(data).hexdigest(), approvers)


def bootstrap(store: Store, repository_id: str, enrollments: Sequence[Enrollment], *,
              now: datetime, actor: dict[str, str], min_people: int) -> RegistryVersion:
    """Pin the first registry. Refused once any version exists: this is a one-time step."""
    existing = list(store.list(REGISTRY_PREFIX))
    if existing:
        raise ApprovalRequired(
            f"{store.url}: an approver registry is already pinned ({len(existing)} "
            "version(s)); bootstrap is one-time. Change approvers with "
            "'drkit request approvers --add FILE --remove NAME --reason TEXT'")
    people = {e.name for e in enrollments}
    if len(people) < min_people:
        raise InputError(f"bootstrap needs at least {min_people} distinct people (the quorum "
                         f"plus the requester), got {len(people)}")
    content = registry_content(1, None, repository_id, enrollments)
    return pin_version(store, content, now=now, authorized_by={"bootstrap": dict(actor)})


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
