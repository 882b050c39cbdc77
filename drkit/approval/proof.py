"""Tombstone proofs: a journaled deletion counts only if approvers really approved it.

Anyone holding the writer key can append a journal entry, so a ``tombstone`` entry alone
proves nothing. drkit embeds the approval in the tombstone's ``note``, so that every
region can check it on its own, from the journal and its replicated ``approval/`` records::

    {"operation": OP, "request": ID, "regions": [REGION], "approved_by": [NAME...],
     "proof": {"format": "drkit-tombstone-proof", "version": 1,
               "request": <the stored request object>,
               "decisions": [<each stored decision document>],
               "execution": <the execution claim>,
               "registry": {"number": N, "sha256": HEX}}}

``proof`` is carried by the first tombstone of a request in the log; the others of the
same request (a prune deletes many objects) name the request and are checked against that
proof. A tombstone is *proven* when all of these hold:

1. the request object hashes to its id, its plan to the plan hash, the requester signature
   verifies, and it belongs to this repository;
2. its operation is one that may delete (``DELETING_OPERATIONS``) and is the note's;
3. the approved plan names exactly this key, size and sha256, in the region(s) the
   tombstone names (cloud expiries name a snapshot record and no region);
4. registry version N exists in the store checked, with that sha256, chained to version 1
   with every update approved by a quorum of its predecessor;
5. at least the quorum (the larger of the default 2, the quorum recorded in the request
   and the pinned configuration's at execution time; one more for an unsigned request) of
   distinct people enrolled in version N, none the requester, approved with valid
   signatures before the request expired, and nobody denied;
6. the execution claim names the request and started before it expired.

Everything else is unproven: ``verify`` reports it CRITICAL ("tombstone-unproven") and
every reader (restore, drill, replicate, prune planning) treats the object as still owed.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from drkit.approval.configpin import CONFIG_PREFIX
from drkit.approval.policy import DEFAULT_QUORUM, DEFAULT_SKEW_MINUTES, quorum_from_raw
from drkit.approval.registry import (
    RegistryVersion,
    anchored_entries,
    load_versions,
    registry_content,
)
from drkit.approval.requests import (
    ApprovalRequest,
    load_decisions,
    load_execution,
    load_request,
    parse_request,
)
from drkit.canonical import canonical_json
from drkit.clock import parse_iso
from drkit.errors import ConfigError, DrkitError, InputError, IntegrityError
from drkit.journal import JournalEntry, live_entries, tombstone_regions
from drkit.storage.base import Store

PROOF_FORMAT = "drkit-tombstone-proof"
DELETING_OPERATIONS = ("prune", "delete-object", "cloud-expire")
# Operations whose tombstones remove a region's copy (and must name that region).
REGION_OPERATIONS = ("prune", "delete-object")
_SKEW = timedelta(minutes=DEFAULT_SKEW_MINUTES)


# -- writing ----------------------------------------------------------------------------------
def build_proof(store: Store, request_id: str, registry: tuple[int, str]) -> dict[str, Any]:
    """The proof of an executed request, from the records in ``store`` (the primary).
    IntegrityError (nothing is journaled) when the request or its claim is missing."""
    try:
        request = load_request(store, request_id)
    except InputError as exc:
        raise IntegrityError(f"refusing to journal the deletion: {exc}") from None
    execution = load_execution(store, request_id)
    if execution is None:
        raise IntegrityError(f"request {request_id[:12]} has no execution claim; a tombstone "
                             "is written only by the run that claimed it")
    decisions = []
    for _key, data in load_decisions(store, request_id):
        try:
            decisions.append(json.loads(data))
        except ValueError:
            continue  # unreadable: it counted for nothing at the gate either
    return {"format": PROOF_FORMAT, "version": 1, "request": request.to_object(),
            "decisions": decisions, "execution": execution,
            "registry": {"number": registry[0], "sha256": registry[1]}}


def tombstone_entries(store: Store, items: Sequence[dict[str, Any]], *, request_id: str,
                      operation: str, registry: tuple[int, str], approved_by: Sequence[str],
                      regions: Sequence[str] | None) -> list[JournalEntry]:
    """One tombstone per item (``key``, ``size``, ``sha256``); the first carries the proof."""
    proof = build_proof(store, request_id, registry)
    out: list[JournalEntry] = []
    for item in items:
        note: dict[str, Any] = {"operation": operation, "request": request_id,
                                "approved_by": sorted(approved_by)}
        if regions is not None:
            note["regions"] = list(regions)
        if not out:
            note["proof"] = proof
        out.append(JournalEntry(kind="tombstone", key=str(item["key"]), size=int(item["size"]),
                                sha256=str(item["sha256"]), note=note))
    return out


# -- checking ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Proven:
    request: ApprovalRequest
    regions: tuple[str, ...] | None


class ProofChecker:
    """Checks tombstones against one store's approval records (registry, pinned config).

    Built once per store and log; caches the registry chain and each request's proof.
    """

    def __init__(self, store: Store, repository_id: str) -> None:
        self.store = store
        self.repository_id = repository_id
        self._registry: list[RegistryVersion] | None = None
        self._registry_problem: str | None = None
        self._proofs: dict[str, _Proven | str] = {}
        self._entries: Sequence[JournalEntry] = ()  # the log whose tombstones are checked

    # The registry as this store holds it, every update checked like the gate does.
    def registry(self) -> list[RegistryVersion]:
        if self._registry is None and self._registry_problem is None:
            try:
                versions = load_versions(self.store, self.repository_id,
                                         anchored_entries(self._entries))
                for previous, version in zip(versions, versions[1:], strict=False):
                    self._check_update(previous, version)
                self._registry = versions
            except DrkitError as exc:
                self._registry_problem = f"approver registry does not verify: {exc}"
        if self._registry_problem is not None:
            raise IntegrityError(self._registry_problem)
        assert self._registry is not None
        return self._registry

    def _check_update(self, previous: RegistryVersion, version: RegistryVersion) -> None:
        from drkit.approval.gate import tally

        where = f"approver registry version {version.number}"
        request_id = version.authorized_by.get("request")
        if not isinstance(request_id, str):
            raise IntegrityError(f"{where}: names no approval request")
        request = load_request(self.store, request_id)
        content = registry_content(version.number, previous.sha256, self.repository_id,
                                   version.approvers)
        if request.operation != "approvers" or request.plan.get("registry") != content:
            raise IntegrityError(f"{where}: differs from what request {request_id[:12]} "
                                 "approved")
        execution = load_execution(self.store, request_id) or {}
        try:
            executed_at: datetime | None = parse_iso(str(execution.get("started")))
        except ValueError:
            executed_at = None
        ev = tally(request, previous, load_decisions(self.store, request_id),
                   repository_id=self.repository_id, quorum=self._quorum(request, executed_at),
                   skew=_SKEW)
        if ev.state != "approved":
            raise IntegrityError(f"{where}: request {request_id[:12]} lacks a quorum "
                                 f"({ev.describe()})")

    def _quorum(self, request: ApprovalRequest, executed_at: datetime | None) -> int:
        recorded = request.doc.get("quorum")
        quorum = max(DEFAULT_QUORUM, recorded if isinstance(recorded, int)
                     and not isinstance(recorded, bool) else 0,
                     pinned_quorum_at(self.store, request.operation, executed_at))
        return quorum + (1 if request.requester_name is None else 0)

    def _check_proof(self, request_id: str, proof: Any) -> _Proven | str:
        """The verified request, or why the proof does not hold."""
        from drkit.approval.gate import tally

        if not isinstance(proof, dict) or proof.get("format") != PROOF_FORMAT \
                or proof.get("version") != 1:
            return "no proof of approval"
        try:
            request = parse_request(canonical_json(proof.get("request")), request_id,
                                    where=f"proof of request {request_id[:12]}")
        except (IntegrityError, TypeError, ValueError) as exc:
            return f"embedded request does not verify: {exc}"
        if request.operation not in DELETING_OPERATIONS:
            return f"request {request_id[:12]} is for {request.operation!r}, which deletes nothing"
        registry_ref = proof.get("registry")
        if not isinstance(registry_ref, dict):
            return "proof names no registry version"
        try:
            versions = self.registry()
        except IntegrityError as exc:
            return str(exc)
        number = registry_ref.get("number")
        match = [v for v in versions if v.number == number]
        if not match:
            return f"approver registry version {number!r} is not in this region"
        registry = match[0]
        if registry.sha256 != registry_ref.get("sha256"):
            return f"approver registry version {number} differs from the one approved under"
        execution = proof.get("execution")
        if not isinstance(execution, dict) or execution.get("request") != request_id:
            return "no execution claim for the request"
        try:
            started: datetime | None = parse_iso(str(execution.get("started")))
        except ValueError:
            started = None
        if started is None or started > request.expires + _SKEW:
            return "the request was not executed before it expired"
        decisions = proof.get("decisions")
        if not isinstance(decisions, list):
            return "proof holds no decisions"
        raw = [(f"decision {i}", canonical_json(d)) for i, d in enumerate(decisions)]
        ev = tally(request, registry, raw, repository_id=self.repository_id,
                   quorum=self._quorum(request, started), skew=_SKEW)
        if ev.state != "approved":
            return (f"request {request_id[:12]} is {ev.state} under registry version "
                    f"{registry.number}: {ev.describe()}")
        return _Proven(request, None)

    def problem(self, entry: JournalEntry, proofs: dict[str, Any]) -> str | None:
        """Why ``entry`` (a tombstone) is unproven; None when it is proven."""
        note = entry.note or {}
        request_id = note.get("request")
        if not isinstance(request_id, str) or request_id not in proofs:
            cited = request_id or note.get("approval") or "none"
            return f"no proof of approval (cites request {str(cited)[:16]})"
        cached = self._proofs.get(request_id)
        if cached is None:
            cached = self._check_proof(request_id, proofs[request_id])
            self._proofs[request_id] = cached
        if isinstance(cached, str):
            return cached
        request = cached.request
        if note.get("operation") != request.operation:
            return f"note says {note.get('operation')!r}, the request is {request.operation!r}"
        return _plan_names(request, entry)

    def unproven(self, entries: Sequence[JournalEntry]) -> dict[int, str]:
        """Positions of the unproven tombstones in ``entries``, with the reason."""
        self._entries = entries  # the registry versions this log anchors
        proofs: dict[str, Any] = {}
        for entry in entries:
            note = entry.note or {}
            if entry.kind == "tombstone" and isinstance(note.get("request"), str) \
                    and "proof" in note:
                proofs.setdefault(str(note["request"]), note["proof"])
        out: dict[int, str] = {}
        for index, entry in enumerate(entries):
            if entry.kind == "tombstone":
                reason = self.problem(entry, proofs)
                if reason is not None:
                    out[index] = reason
        return out


def _plan_names(request: ApprovalRequest, entry: JournalEntry) -> str | None:
    """None if the approved plan deletes exactly this object in the tombstone's regions."""
    plan = request.plan if isinstance(request.plan, dict) else {}
    regions = tombstone_regions(entry)
    if request.operation == "cloud-expire":
        from drkit.cloud.model import SnapshotRecord

        for doc in plan.get("snapshots", []):
            try:
                fields = SnapshotRecord.from_dict(doc).journal_fields()
            except (KeyError, TypeError, ValueError):
                continue
            if fields["key"] == entry.key and fields["sha256"] == entry.sha256:
                return None
        return f"the approved cloud-expire plan does not name {entry.key}"
    region = plan.get("region")
    if regions != (region,):
        return (f"the tombstone names regions {list(regions or [])}, the approved plan "
                f"deletes in {region!r}")
    items = plan.get("delete", []) if request.operation == "prune" else [plan]
    for item in items:
        if isinstance(item, dict) and item.get("key") == entry.key \
                and item.get("sha256") == entry.sha256 and item.get("size") == entry.size:
            return None
    return (f"the approved {request.operation} plan does not delete {entry.key} "
            f"({entry.size} B sha256 {entry.sha256[:16]})")


def pinned_quorum_at(store: Store, operation: str, when: datetime | None) -> int:
    """The quorum of ``operation`` in the newest configuration pinned at ``when`` (the
    latest when None; 1 when nothing was pinned). A later, stricter pin does not make an
    execution that met the rules of its time unproven."""
    quorum = 1
    for info in sorted(store.list(CONFIG_PREFIX), key=lambda i: i.key):
        try:
            doc = json.loads(store.get(info.key))
            applied = parse_iso(str(doc["applied"]))
            raw = tomllib.loads(str(doc["toml"])).get("approval", {})
        except (DrkitError, ValueError, KeyError, TypeError, tomllib.TOMLDecodeError):
            continue  # a damaged pin is the config verifier's finding, not a quorum
        if when is not None and applied > when:
            break
        try:
            quorum = quorum_from_raw(raw if isinstance(raw, dict) else {}, operation,
                                     where="pinned config")
        except ConfigError:
            continue
    return quorum


def unproven_tombstones(store: Store, repository_id: str, entries: Sequence[JournalEntry]
                        ) -> dict[int, str]:
    return ProofChecker(store, repository_id).unproven(entries)


def live_objects(store: Store, repository_id: str, entries: Sequence[JournalEntry], *,
                 region: str | None, kind: str = "object") -> dict[str, JournalEntry]:
    """``live_entries`` with every unproven tombstone ignored: the one call readers make."""
    ignore = unproven_tombstones(store, repository_id, entries) \
        if any(e.kind == "tombstone" for e in entries) else {}
    return live_entries(entries, kind, region=region, ignore=ignore)
