"""The gate around dangerous operations: evaluate a request's decisions, refuse or run.

A request may run only when all of these hold at the moment of execution:

1. it verifies (its id is the hash of its content, the plan matches the plan hash, the
   requester's signature is good) and belongs to this repository;
2. at least *quorum* distinct enrolled people approved it with valid signatures made by
   keys in the approver registry in force, none of them the requester (a request filed
   without a requester signature needs one approval more, because its real author could
   be among the approvers);
3. nobody enrolled denied it (one denial vetoes);
4. it has not expired (and was not created in the future beyond the allowed skew);
5. it was never executed before (a create-only claim makes approvals single use);
6. the plan recomputed now is byte-for-byte the approved plan (same hash).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from drkit.approval import configpin, hints, policy
from drkit.approval.identity import actor
from drkit.approval.registry import (
    RegistryVersion,
    anchor_entry,
    anchored_entries,
    bootstrap_content,
    build_version,
    check_local_copy,
    check_seen,
    load_versions,
    registry_content,
    store_version,
    unanchored_objects,
)
from drkit.approval.requests import (
    ApprovalRequest,
    claim_execution,
    list_request_ids,
    load_decisions,
    load_execution,
    load_request,
    put_result,
    verify_decision,
)
from drkit.canonical import canonical_hash
from drkit.clock import Clock, parse_iso, utc_iso
from drkit.config import Config, check_config_text
from drkit.errors import ApprovalRequired, DrkitError, IntegrityError, KeyFileError
from drkit.journal import JournalEntry, LogView, read_log
from drkit.progress import NULL_PROGRESS, Progress
from drkit.storage.base import Store

log = logging.getLogger(__name__)


@dataclass
class ApprovalContext:
    """The primary store, the repository id and the time source of one command."""

    config: Config
    clock: Clock
    store: Store
    repository_id: str
    progress: Progress = NULL_PROGRESS
    trusted: Sequence[Ed25519PublicKey] = ()  # the journaled writer key history

    @classmethod
    def open(cls, config: Config, clock: Clock, progress: Progress = NULL_PROGRESS
             ) -> ApprovalContext:
        from drkit.repo.keys import load_trusted_writer_keys, read_repository_id
        from drkit.storage.url import open_store

        store = open_store(config.primary_region.url, clock=clock)
        trusted = load_trusted_writer_keys(config, store)
        repository_id = read_repository_id(store, trusted)
        return cls(config, clock, store, repository_id, progress, trusted)

    def now(self) -> datetime:
        return self.clock.now()

    # The pinned configuration is read (and its chain checked) once per command.
    _pins: list[configpin.PinnedConfig] | None = field(default=None, init=False, repr=False)
    _warned: set[str] = field(default_factory=set, init=False, repr=False)

    def warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            log.warning("%s", message)


    def journal(self) -> LogView:
        """The primary's repository journal as verified with the trusted writer keys."""
        return read_log(self.store, "drkit:" + self.repository_id, list(self.trusted))


# -- the configuration in force ----------------------------------------------------------------
def load_config_chain(ctx: ApprovalContext) -> list[configpin.PinnedConfig]:
    """Every pinned configuration, oldest first; a version that weakens its predecessor is
    accepted only with the executed, quorum-approved ``config-apply`` request it names, so
    even the writer key cannot pin a weaker config by writing the object and its leaf."""
    if ctx._pins is None:
        from drkit.repo.keys import load_trusted_writer_keys

        entries = configpin.journal_entries(ctx.store, ctx.repository_id,
                                            load_trusted_writer_keys(ctx.config))
        versions = configpin.pinned_versions(ctx.store, entries)
        # Checking a pin evaluates a request under the registry chain, whose own check asks
        # for the quorum in force: that re-entry sees these versions; if any check fails
        # the command stops here, so nothing acts on an unproven version.
        ctx._pins = versions
        try:
            for index, version in enumerate(versions):
                _check_pin(ctx, versions[index - 1] if index else None, version)
        except BaseException:
            ctx._pins = None
            raise
        if not versions:
            ctx.warn_once(
                f"{ctx.store.url}: NO CONFIGURATION IS PINNED in this repository (made before "
                "'drkit keys init' pinned it): the built-in defaults (quorum "
                f"{policy.DEFAULT_QUORUM}, expiry {policy.DEFAULT_EXPIRY_HOURS:g} h) count as "
                "pinned; pin this drkit.toml with an approved 'drkit config apply NEW.toml'")
    return ctx._pins


def _check_pin(ctx: ApprovalContext, previous: configpin.PinnedConfig | None,
               version: configpin.PinnedConfig) -> None:
    where = f"{ctx.store.url}: {version.name}"
    if previous is None and version.request is None:
        # The first pin is written by 'keys init' right after the repository's config
        # object (journal leaves 0 and 1); a first pin made later must be approved.
        if version.journal_index <= 1:
            return
        raise IntegrityError(f"{where}: first pinned config was not written by 'keys init' "
                             "and names no approved request")
    old = previous.raw if previous is not None else {}
    changes = configpin.dangerous_changes(old, version.raw)
    if previous is not None and not changes:
        return
    request_id = version.request
    if request_id is None:
        raise IntegrityError(f"{where}: weakens {previous.name if previous else 'the defaults'}"
                             f" ({', '.join(c['change'] for c in changes)}) but names no "
                             "approved request")
    try:
        request = load_request(ctx.store, request_id)
    except DrkitError as exc:  # missing, damaged or edited: no proof
        raise IntegrityError(f"{where}: its request {request_id[:12]} cannot be read: "
                             f"{exc}") from None
    baseline = previous.sha256 if previous is not None else None
    if request.operation != "config-apply" \
            or request.plan.get("new_sha256") != version.sha256 \
            or (baseline is not None and request.plan.get("baseline_sha256") != baseline):
        raise IntegrityError(f"{where}: differs from what request {request_id[:12]} approved")
    if load_execution(ctx.store, request.id) is None:
        raise IntegrityError(f"{where}: request {request_id[:12]} was never executed")
    table = old.get("approval") if isinstance(old.get("approval"), dict) else {}
    try:
        quorum = policy.quorum_from_raw(table or {}, "config-apply", where=version.name)
    except DrkitError:
        quorum = policy.DEFAULT_QUORUM
    if request.requester_name is None:
        quorum += 1
    skew = timedelta(minutes=policy.DEFAULT_SKEW_MINUTES)
    registries = load_registry_chain(ctx)
    for registry in reversed(registries):
        ev = evaluate(ctx, request, registry, ignore_expiry=True, quorum=quorum, skew=skew)
        if not ev.denials and len(ev.approvers) >= quorum:
            return
    raise IntegrityError(f"{where}: request {request_id[:12]} lacks a quorum of {quorum} "
                         "approvals")


def pinned_config(ctx: ApprovalContext) -> configpin.PinnedConfig | None:
    versions = load_config_chain(ctx)
    return versions[-1] if versions else None


def pinned_raw(ctx: ApprovalContext) -> dict[str, Any]:
    """The pinned drkit.toml as parsed TOML ({} = the built-in defaults, nothing pinned)."""
    pinned = pinned_config(ctx)
    if pinned is None:
        return {}
    raw = pinned.raw
    local_changes = configpin.dangerous_changes(raw, ctx.config.raw)
    if local_changes:
        ctx.warn_once(
            f"{ctx.config.path} weakens {pinned.name} ("
            + ", ".join(_describe_change(c) for c in local_changes)
            + "): the approval gate and the production check of restore use the pinned "
            "values; change the configuration with 'drkit config apply NEW.toml'")
    return raw


def _describe_change(change: dict[str, Any]) -> str:
    rest = ", ".join(f"{k}={v}" for k, v in change.items() if k != "change")
    return f"{change['change']} {rest}".strip()


def pinned_settings(ctx: ApprovalContext) -> Config | None:
    """The pinned configuration as a typed Config (paths resolve as in the local file)."""
    pinned = pinned_config(ctx)
    if pinned is None:
        return None
    config, _problems = check_config_text(pinned.toml, ctx.config.path)
    return config


def _pinned_table(ctx: ApprovalContext) -> dict[str, Any]:
    table = pinned_raw(ctx).get("approval")
    return table if isinstance(table, dict) else {}


def quorum_for(ctx: ApprovalContext, operation: str) -> int:
    """The quorum in force: the pinned one, or the local one where it is stricter."""
    local = policy.quorum_for(ctx.config, operation)
    pinned = policy.quorum_from_raw(_pinned_table(ctx), operation, where="pinned config")
    if local < pinned:
        ctx.warn_once(f"{ctx.config.path}: approval.quorum for {operation} is {local}, lower "
                      f"than the pinned {pinned}: ignored")
    return max(local, pinned)


def expiry(ctx: ApprovalContext) -> timedelta:
    """How long a request lives: the pinned expiry, or the local one where it is shorter."""
    local = policy.expiry(ctx.config)
    value = _pinned_table(ctx).get("expiry_hours", policy.DEFAULT_EXPIRY_HOURS)
    pinned = timedelta(hours=float(value))
    if local > pinned:
        ctx.warn_once(f"{ctx.config.path}: approval.expiry_hours is longer than the pinned "
                      f"{value}: ignored")
    return min(local, pinned)


def max_skew(ctx: ApprovalContext) -> timedelta:
    local = policy.max_skew(ctx.config)
    value = _pinned_table(ctx).get("max_skew_minutes", policy.DEFAULT_SKEW_MINUTES)
    pinned = timedelta(minutes=float(value))
    if local > pinned:
        ctx.warn_once(f"{ctx.config.path}: approval.max_skew_minutes is larger than the "
                      f"pinned {value}: ignored")
    return min(local, pinned)


# -- the registry in force ---------------------------------------------------------------------
def registry_anchors(ctx: ApprovalContext, view: LogView | None = None) -> list[JournalEntry]:
    return anchored_entries((view or ctx.journal()).entries)


def load_registry_chain(ctx: ApprovalContext) -> list[RegistryVersion]:
    """Every version the repository journal anchors, each later one proven to be approved
    by its predecessor. Registry objects the journal does not anchor count for nothing."""
    versions = load_versions(ctx.store, ctx.repository_id, registry_anchors(ctx))
    for previous, version in zip(versions, versions[1:], strict=False):
        _check_update(ctx, previous, version)
    if versions:
        check_seen(ctx.config, ctx.repository_id, versions)
    return versions


def _check_update(ctx: ApprovalContext, previous: RegistryVersion,
                  version: RegistryVersion) -> None:
    where = f"approver registry version {version.number}"
    request_id = version.authorized_by.get("request")
    if not isinstance(request_id, str):
        raise IntegrityError(f"{where}: names no approval request (only version 1 may be a "
                             "bootstrap)")
    request = load_request(ctx.store, request_id)
    content = registry_content(version.number, previous.sha256, ctx.repository_id,
                               version.approvers)
    if request.operation != "approvers" or request.plan.get("registry") != content:
        raise IntegrityError(f"{where}: differs from what request {request_id[:12]} approved")
    evaluation = evaluate(ctx, request, previous, ignore_expiry=True)
    if evaluation.denials or len(evaluation.approvers) < evaluation.quorum:
        raise IntegrityError(f"{where}: request {request_id[:12]} lacks a quorum of version "
                             f"{previous.number}'s approvers ({evaluation.describe()})")


def pin_registry_version(ctx: ApprovalContext, content: dict[str, Any], *,
                         authorized_by: dict[str, Any]) -> RegistryVersion:
    """Anchor a new version in the repository journal (through the writer key), then
    store it create-only. The journal is written first so that no registry object can
    exist that the journal does not anchor."""
    from drkit.repo.journal_writer import append_to_primary

    anchors = registry_anchors(ctx)
    number = int(content["registry_version"])
    if number != len(anchors) + 1:
        raise ApprovalRequired(f"the repository journal anchors approver registry versions "
                               f"1..{len(anchors)}; version {number} would replace one; "
                               "nothing was changed")
    version = build_version(content, now=ctx.now(), authorized_by=authorized_by)
    append_to_primary(ctx.config, [anchor_entry(version)], now=ctx.now(), clock=ctx.clock)
    store_version(ctx.store, version)
    return version


def _anchors_elsewhere(ctx: ApprovalContext, primary: LogView) -> list[JournalEntry]:
    """Registry anchors in another region's journal, or a region whose journal is longer
    than the primary's (so the primary was rolled back, perhaps to before the bootstrap):
    the other regions remember what the primary may have been made to forget."""
    from drkit.storage.url import open_store

    for region in ctx.config.regions.values():
        if region.primary:
            continue
        try:
            store = open_store(region.url, base_dir=ctx.config.base_dir, clock=ctx.clock)
            view = read_log(store, primary.origin, list(ctx.trusted))
        except DrkitError as exc:
            log.warning("%s: cannot read its journal (%s)", region.name, exc)
            continue
        anchors = anchored_entries(view.entries)
        if anchors:
            return anchors
        if view.size > primary.size:
            raise ApprovalRequired(f"region {region.name}'s journal is longer than the "
                                   f"primary's ({view.size} > {primary.size} entries): the "
                                   "primary was rolled back; bootstrap refused, nothing was "
                                   "written")
    return []


def bootstrap_registry(ctx: ApprovalContext, enrollments: Sequence[Any], *,
                       min_people: int, who: dict[str, str]) -> RegistryVersion:
    """Pin version 1, once. Every check runs before anything is written: the journal
    must verify, anchor no version, and the store and this host's state must know none."""
    from drkit.repo.keys import WRITER_KEY_FILE

    view = ctx.journal()
    if view.problems:
        raise ApprovalRequired(f"{ctx.store.url}: the repository journal does not verify "
                               f"({view.problems[0]}); bootstrap refused, nothing was written")
    if "config" not in {e.key for e in view.entries}:
        raise ApprovalRequired(f"{ctx.store.url}: the repository journal does not log the "
                               "repository config (emptied or rolled back?); bootstrap "
                               "refused, nothing was written")
    anchors = registry_anchors(ctx, view) or _anchors_elsewhere(ctx, view)
    if anchors:
        raise ApprovalRequired(
            f"{ctx.store.url}: the repository journal anchors approver registry version(s) "
            f"1..{len(anchors)} (version 1 sha256 {anchors[0].sha256[:16]}); bootstrap is "
            "one-time and cannot replace it, whatever the store or this host's state hold. "
            "Change approvers with 'drkit request approvers --add FILE --remove NAME "
            "--reason TEXT'")
    stray = unanchored_objects(ctx.store, anchors)
    if stray:
        raise ApprovalRequired(f"{ctx.store.url}: {stray[0]}: an approver registry object "
                               "the journal does not anchor (put by hand?); bootstrap "
                               "refused, nothing was written")
    check_seen(ctx.config, ctx.repository_id, [])  # this host saw a registry: rolled back
    content = bootstrap_content(ctx.repository_id, enrollments, min_people=min_people)
    if not (ctx.config.keys_dir / WRITER_KEY_FILE).is_file():
        raise KeyFileError(f"{ctx.config.keys_dir / WRITER_KEY_FILE}: not found; the "
                           "bootstrap anchors the registry in the repository journal, so it "
                           "runs on the set-up host, where the writer key is")
    return pin_registry_version(ctx, content, authorized_by={"bootstrap": dict(who)})


class RegistryMissing(ApprovalRequired):
    """No approver registry is pinned yet: a dangerous operation is refused (exit 3); a
    command that only reads approval state treats it as a set-up problem (exit 2)."""


def current_registry(ctx: ApprovalContext, *, check_local: bool = True) -> RegistryVersion:
    versions = load_registry_chain(ctx)
    if not versions:
        raise RegistryMissing(
            f"{ctx.store.url}: no approver registry is pinned in this repository; enrol "
            "people with 'drkit approvers enroll NAME' and pin the first registry once with "
            "'drkit approvers bootstrap FILE...' (see docs/approval.md)")
    if check_local:
        check_local_copy(ctx.config, versions[-1])
    return versions[-1]


# -- evaluation -------------------------------------------------------------------------------
@dataclass
class Evaluation:
    request: ApprovalRequest
    state: str  # pending, approved, denied, expired, executed, invalid
    quorum: int
    approvers: dict[str, str] = field(default_factory=dict)  # person -> fingerprint key
    denials: list[dict[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    executed: dict[str, Any] | None = None

    def describe(self) -> str:
        got = ", ".join(sorted(self.approvers)) or "nobody"
        text = f"{len(self.approvers)} of {self.quorum} approvals ({got})"
        if self.denials:
            text += "; denied by " + ", ".join(
                f"{d['name']} ({d['reason']})" for d in self.denials)
        return text

    def to_dict(self) -> dict[str, Any]:
        req = self.request
        return {
            "id": req.id, "operation": req.operation, "params": req.params,
            "state": self.state, "quorum": self.quorum,
            "approved_by": sorted(self.approvers), "denied_by": self.denials,
            "problems": self.problems, "requester": req.requester,
            "reason": req.doc.get("reason"), "created": req.doc["created"],
            "expires": req.doc["expires"], "plan_sha256": req.plan_sha256,
            "executed": self.executed,
        }


def required_quorum(ctx: ApprovalContext, request: ApprovalRequest) -> int:
    """The quorum in force (pinned config, or the local file where stricter), or the one
    recorded in the request when it was filed if that is larger."""
    recorded = request.doc.get("quorum")
    quorum = max(quorum_for(ctx, request.operation),
                 recorded if isinstance(recorded, int) else 1)
    if request.requester_name is None:
        quorum += 1
    return quorum


def tally(request: ApprovalRequest, registry: RegistryVersion,
          decisions: Sequence[tuple[str, bytes]], *, repository_id: str, quorum: int,
          skew: timedelta, now: datetime | None = None) -> Evaluation:
    """Count a request's signed decisions under one registry version, from bytes.

    Pure: nothing is read from a store, so the same rules serve the gate (decisions from
    the primary store) and the tombstone proof checker (decisions embedded in the journal).
    ``now`` (when given) refuses requests and decisions dated in the future. The state is
    "invalid", "denied", "approved" or "pending"; expiry and execution are the caller's.
    """
    ev = Evaluation(request, "pending", quorum)
    requester = request.requester_name
    if request.requester_signature and request.requester.get("key"):
        signed_by = registry.person_for_key(str(request.requester["key"]))
        if signed_by != requester:
            ev.problems.append(f"the requester key is not enrolled as {requester!r} in "
                               f"registry version {registry.number}")
            ev.state = "invalid"
    if request.doc.get("repository") != repository_id:
        ev.problems.append(f"request is for repository {request.doc.get('repository')}, "
                           f"not {repository_id}")
        ev.state = "invalid"
    if now is not None and request.created > now + skew:
        ev.problems.append(f"request was created in the future ({request.doc['created']})")
        ev.state = "invalid"
    seen_keys: dict[str, str] = {}
    for key, data in decisions:
        try:
            decision = verify_decision(key, data, request.id)
        except IntegrityError as exc:
            ev.problems.append(str(exc))
            continue
        body = decision.body
        person = registry.person_for_key(str(body.get("key")))
        claimed = body.get("name")
        if person is None:
            ev.problems.append(f"{key}: signed by key {body.get('key')} (claims {claimed!r}) "
                               f"which is not enrolled in registry version {registry.number}; "
                               "not counted")
            continue
        if claimed != person:
            ev.problems.append(f"{key}: claims to be {claimed!r} but the key belongs to "
                               f"{person!r}; not counted")
            continue
        try:
            at = parse_iso(str(body.get("at")))
        except ValueError:
            ev.problems.append(f"{key}: unreadable time; not counted")
            continue
        if at > request.expires + skew or (now is not None and at > now + skew):
            ev.problems.append(f"{key}: {person} signed at {body.get('at')}, after the "
                               "request expired or in the future; not counted")
            continue
        if decision.verdict == "deny":
            ev.denials.append({"name": person, "reason": str(body.get("reason", "")),
                               "at": str(body.get("at"))})
            continue
        if person == requester:
            ev.problems.append(f"{person} requested this and cannot approve their own "
                               "request; not counted")
            continue
        if person in ev.approvers:
            if seen_keys[person] != body.get("key"):
                ev.problems.append(f"{person} approved twice with two different keys; "
                                   "counted once (approvals count people, not keys)")
            continue
        ev.approvers[person] = str(body.get("key"))
        seen_keys[person] = str(body.get("key"))
    if ev.state == "invalid":
        return ev
    if ev.denials:
        ev.state = "denied"
    elif len(ev.approvers) >= ev.quorum:
        ev.state = "approved"
    return ev


def evaluate(ctx: ApprovalContext, request: ApprovalRequest, registry: RegistryVersion, *,
             ignore_expiry: bool = False, quorum: int | None = None,
             skew: timedelta | None = None) -> Evaluation:
    """Count the decisions. ``quorum`` and ``skew`` default to the ones in force; checking
    an old pinned config passes the values that were in force before it."""
    now = ctx.now()
    if skew is None:
        skew = max_skew(ctx)
    ev = tally(request, registry, load_decisions(ctx.store, request.id),
               repository_id=ctx.repository_id,
               quorum=required_quorum(ctx, request) if quorum is None else quorum,
               skew=skew, now=now)
    ev.executed = load_execution(ctx.store, request.id)
    if ev.state == "invalid":
        return ev
    if ev.executed is not None:
        ev.state = "executed"
    elif ev.denials:
        ev.state = "denied"
    elif not ignore_expiry and now > request.expires:
        ev.state = "expired"
    elif len(ev.approvers) >= ev.quorum:
        ev.state = "approved"
    else:
        ev.state = "pending"
    return ev


def list_requests(ctx: ApprovalContext) -> list[Evaluation]:
    registry = current_registry(ctx)
    out = []
    for request_id in list_request_ids(ctx.store):
        try:
            request = load_request(ctx.store, request_id)
        except IntegrityError as exc:
            log.error("%s", exc)
            continue
        out.append(evaluate(ctx, request, registry))
    out.sort(key=lambda e: (e.request.doc["created"], e.request.id))
    return out


def how_to_request(operation: str, params: Mapping[str, Any]) -> str:
    """How to get and use an approval for exactly these parameters (drkit.approval.hints)."""
    return hints.how_to_request(operation, params)


def check_approved(ctx: ApprovalContext, request: ApprovalRequest, plan: Any,
                   registry: RegistryVersion) -> Evaluation:
    """Raise ApprovalRequired (exit 3) with every reason the request cannot run now."""
    ev = evaluate(ctx, request, registry)
    rid = request.id[:12]
    if ev.state == "invalid":
        raise ApprovalRequired(f"request {rid} is not valid: " + "; ".join(ev.problems))
    if ev.state == "executed":
        raise ApprovalRequired(f"request {rid} was already executed at "
                               f"{(ev.executed or {}).get('started')}; approvals are single "
                               "use: file a new request")
    if ev.state == "denied":
        raise ApprovalRequired(f"request {rid} was denied: " + "; ".join(
            f"{d['name']}: {d['reason']}" for d in ev.denials))
    if ev.state == "expired":
        raise ApprovalRequired(f"request {rid} expired at {request.doc['expires']}; file a "
                               "new request")
    if ev.state != "approved":
        detail = ("; " + "; ".join(ev.problems)) if ev.problems else ""
        raise ApprovalRequired(f"request {rid} needs {ev.quorum} approvals from enrolled "
                               f"people other than the requester, has {ev.describe()}"
                               f"{detail}")
    if canonical_hash(plan) != request.plan_sha256:
        raise ApprovalRequired(
            f"request {rid}: the plan changed since it was approved (approved plan "
            f"{request.plan_sha256[:12]}, plan now {canonical_hash(plan)[:12]}: "
            f"{_plan_difference(request.plan, plan)}); nothing was done, file a new request")
    return ev


def _plan_difference(old: Any, new: Any) -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        parts = []
        for k in keys[:3]:
            a, b = old.get(k), new.get(k)
            if isinstance(a, list) and isinstance(b, list):
                added = [x for x in b if x not in a]
                removed = [x for x in a if x not in b]
                parts.append(f"{k}: {len(added)} added, {len(removed)} removed")
            else:
                parts.append(f"{k} differs")
        return ", ".join(parts) or "content differs"
    return "content differs"


# -- running --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Grant:
    """Proof that an approved request was consumed for one run."""

    request_id: str
    operation: str
    approved_by: tuple[str, ...]
    requester: str | None
    # The registry version (number, sha256) the approvals were counted under: tombstone
    # proofs name it so a verifier can count them again from the region alone.
    registry: tuple[int, str] | None = None


def consume(ctx: ApprovalContext, request: ApprovalRequest, plan: Any) -> Grant:
    """Check everything and claim the request (single use); the caller then runs it."""
    registry = current_registry(ctx)
    ev = check_approved(ctx, request, plan, registry)
    claim_execution(ctx.store, request.id, now=ctx.now(), actor=actor())
    return Grant(request.id, request.operation, tuple(sorted(ev.approvers)),
                 request.requester_name, (registry.number, registry.sha256))


def record_result(ctx: ApprovalContext, grant: Grant, result: Mapping[str, Any]) -> None:
    put_result(ctx.store, grant.request_id, {"request": grant.request_id,
                                             "finished": utc_iso(ctx.now()),
                                             "result": dict(result)})


def execute(ctx: ApprovalContext, request_id: str, *,
            expect: tuple[str, Mapping[str, Any]] | None = None) -> tuple[Grant, dict[str, Any]]:
    """``drkit execute ID`` (or an operation run with ``--approval ID``, which passes the
    operation and parameters it was asked for as ``expect``): recompute the plan, check the
    gate, run, record the result."""
    from drkit.approval.operations import get_operation
    from drkit.approval.requests import resolve_id

    request = load_request(ctx.store, resolve_id(ctx.store, request_id))
    if expect is not None and (request.operation != expect[0]
                               or request.params != dict(expect[1])):
        raise ApprovalRequired(f"request {request.id[:12]} approves {request.operation} with "
                               f"{request.params}, not {expect[0]} with {dict(expect[1])}")
    operation = get_operation(request.operation)
    if operation.run is None:
        raise ApprovalRequired(
            f"request {request.id[:12]} is for {request.operation!r}, which runs through its "
            f"own command ({operation.runs_via}): "
            f"'{hints.run_command(request.operation, request.params, request.id[:12])}'")
    plan = operation.plan(ctx, request.params)
    grant = consume(ctx, request, plan)
    try:
        result = operation.run(ctx, request.params, plan, grant)
    except DrkitError as exc:
        record_result(ctx, grant, {"ok": False, "error": str(exc)})
        raise
    record_result(ctx, grant, {"ok": True, **result})
    return grant, result


def require_approval(operation: str, params: Mapping[str, Any], plan: Any, *,
                     config: Config, clock: Clock, approval_id: str | None = None) -> Grant:
    """The gate for dangerous operations run by other modules (restore into production,
    key rotation): return a Grant if an approved, unexecuted request for exactly this
    operation, parameters and plan exists (``approval_id`` picks one); else raise
    ApprovalRequired (exit 3) saying how to get one. The request is consumed."""
    ctx = ApprovalContext.open(config, clock)
    wanted = dict(params)
    if approval_id is not None:
        from drkit.approval.requests import resolve_id

        request = load_request(ctx.store, resolve_id(ctx.store, approval_id))
        if request.operation != operation or request.params != wanted:
            raise ApprovalRequired(f"request {request.id[:12]} approves {request.operation} "
                                   f"{request.params}, not {operation} {wanted}")
        return consume(ctx, request, plan)
    registry = current_registry(ctx)
    plan_hash = canonical_hash(plan)
    candidates = []
    for request_id in list_request_ids(ctx.store):
        try:
            request = load_request(ctx.store, request_id)
        except IntegrityError:
            continue
        if request.operation == operation and request.params == wanted \
                and request.plan_sha256 == plan_hash:
            candidates.append(request)
    for request in candidates:
        if evaluate(ctx, request, registry).state == "approved":
            return consume(ctx, request, plan)
    states = ", ".join(f"{r.id[:12]} {evaluate(ctx, r, registry).state}" for r in candidates)
    raise ApprovalRequired(f"{operation} is a dangerous operation and needs approval "
                           f"({states or 'no matching request'}); "
                           + how_to_request(operation, wanted))


# -- proof behind journaled writer key rotations ------------------------------------------------
def rotation_problems(ctx: ApprovalContext, entries: Sequence[JournalEntry]) -> list[
        tuple[str, str]]:
    """(journal key, problem) for every writer key rotation in ``entries`` that does not
    name an executed ``keys rotate`` request for exactly its new key, approved by a quorum
    of some anchored registry version's approvers. A rotation is signed by the old key
    only, so without this check a writer-key holder could add keys on their own."""
    from drkit.approval.operations import keys_plan
    from drkit.repo.keyhistory import ROTATION_PREFIX, read_rotation

    rotations = [e for e in entries
                 if e.kind == "external" and e.key.startswith(ROTATION_PREFIX)]
    if not rotations:
        return []
    try:
        versions = load_registry_chain(ctx)
    except DrkitError as exc:
        return [(e.key, f"cannot check its approval: {exc}") for e in rotations]
    out = []
    for entry in rotations:
        try:
            _old, _new, body = read_rotation(entry, ctx.repository_id)
            request = load_request(ctx.store, str(body.get("approval")))
        except DrkitError as exc:
            out.append((entry.key, str(exc)))
            continue
        plan = keys_plan("rotate", {"public_keys": [body.get("new")]})
        if request.operation != "keys" or request.plan != plan:
            out.append((entry.key, f"request {request.id[:12]} does not approve rotating to "
                                   f"{body.get('new')}"))
            continue
        proven = False
        for version in versions:
            ev = evaluate(ctx, request, version, ignore_expiry=True)
            if ev.state == "executed" and not ev.denials \
                    and len(ev.approvers) >= ev.quorum:
                proven = True
                break
        if not proven:
            out.append((entry.key, f"request {request.id[:12]} was not executed with a "
                                   "quorum of approvals under any anchored registry version"))
    return out
