"""The dangerous operations: how each computes its exact plan, and how it runs.

A plan is plain JSON data; its canonical hash is what approvers sign (through the request).
``drkit execute`` recomputes the plan from the request's parameters and the repository as
it is *now*, and runs only if the hash is unchanged, so an approval never covers more (or
other) deletions than the ones the approvers saw.

Operations that run inside another module's command (restore into production, key
rotation) have ``run = None``: that command calls ``drkit.approval.require_approval`` with
the same plan the helper functions here compute.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from drkit.approval.configpin import (
    check_approval_section,
    dangerous_changes,
    parse_toml,
    pin,
)
from drkit.approval.gate import (
    ApprovalContext,
    Grant,
    current_registry,
    pin_registry_version,
    pinned_config,
)
from drkit.approval.identity import actor
from drkit.approval.keys import Enrollment
from drkit.approval.registry import registry_content, write_local_copy
from drkit.clock import Clock, parse_iso, utc_iso
from drkit.config import Config, check_config
from drkit.errors import (
    ApprovalRequired,
    DrkitError,
    InputError,
    IntegrityError,
    ObjectNotFound,
    RetentionActive,
    UsageError,
)
from drkit.repo.retention import journaled_until, later
from drkit.storage.base import Store

log = logging.getLogger(__name__)

PlanFn = Callable[[ApprovalContext, dict[str, Any]], dict[str, Any]]
RunFn = Callable[[ApprovalContext, dict[str, Any], dict[str, Any], Grant], dict[str, Any]]


@dataclass(frozen=True)
class Operation:
    name: str
    summary: str
    plan: PlanFn
    run: RunFn | None
    runs_via: str = ""


# -- prune --------------------------------------------------------------------------------------
def prune_params(config_retention_days: int, *, keep_last: int | None,
                 older_than_days: float | None) -> dict[str, Any]:
    keep = 1 if keep_last is None else keep_last
    if keep < 1:
        raise UsageError("--keep-last must be at least 1: prune never removes every snapshot")
    if older_than_days is None:
        if config_retention_days <= 0:
            raise UsageError("the primary region has no retention_days; say how old a "
                             "snapshot must be to go with --older-than-days N")
        days = float(config_retention_days)
    elif older_than_days < 0:
        raise UsageError("--older-than-days must not be negative")
    else:
        days = older_than_days
    return {"keep_last": keep, "older_than_days": float(days)}


def plan_prune(ctx: ApprovalContext, params: dict[str, Any]) -> dict[str, Any]:
    """The snapshots beyond retention, and every object no remaining snapshot needs."""
    from drkit.repo.formats import key_digest
    from drkit.repo.keys import load_trusted_writer_keys
    from drkit.repo.repository import Repository

    keep_last = int(params["keep_last"])
    cutoff = ctx.now() - timedelta(days=float(params["older_than_days"]))
    identity = region_binding(ctx, ctx.config.primary, ctx.store)
    repo = Repository.open(ctx.store, load_trusted_writer_keys(ctx.config),
                           region=ctx.config.primary)
    snapshots = repo.snapshots()  # oldest first
    newest = {s.id for s in snapshots[-keep_last:]}
    forget = [s for s in snapshots
              if s.id not in newest and parse_iso(s.manifest.time) < cutoff
              and not _locked(ctx, s.key, repo.visible.get(s.key))]
    # (a manifest still under lock stays visible)
    forget_ids = {s.id for s in forget}
    kept = [s for s in snapshots if s.id not in forget_ids]
    # A snapshot names the packs its data (and its tree) lives in; a pack, its index file
    # and a session key are kept while any remaining snapshot needs them.
    needed_packs: set[str] = set()
    needed_sessions: set[str] = set()
    needed_chunks: set[bytes] = set()
    for snap in kept:
        manifest: Any = snap.manifest
        needed_sessions.add(str(manifest.session))
        if hasattr(manifest, "packs"):
            needed_packs.update(str(p) for p in manifest.packs)
        else:  # manifests that list chunk ids instead of packs
            needed_chunks.update(bytes.fromhex(c) for c in manifest.chunks)
    # The archived database log (WAL, binlog) keeps its packs and session keys: pruning
    # log segments is a decision of its own, never a side effect of forgetting snapshots.
    from drkit.repo.logarchive import needed_objects

    log_packs, log_sessions = needed_objects(repo.visible.values())
    needed_packs |= log_packs
    needed_sessions |= log_sessions
    doomed: set[str] = {s.key for s in forget}
    if forget:
        for index_key, index in repo.index_files():
            if key_digest(index.pack) in needed_packs or any(
                    cid in needed_chunks for cid, _o, _n, _r in index.chunks):
                needed_sessions.add(index.session)
                continue
            doomed.add(index_key)
            if index.pack in repo.visible:
                doomed.add(index.pack)
        for key in repo.keys_under("sessions/"):
            if key.split("/", 1)[1] not in needed_sessions:
                doomed.add(key)
    delete = []
    retained = []
    for key in sorted(doomed):
        entry = repo.visible[key]
        try:
            info = ctx.store.head(key)
        except ObjectNotFound:
            continue  # already gone: nothing to delete, verify reports it
        # The journaled retain-until counts even if the sidecar of a local copy was edited.
        until = later(info.retain_until, journaled_until(entry, ctx.config.primary))
        if until is not None and until > ctx.now():
            retained.append(key)
            continue
        delete.append({"key": key, "size": entry.size, "sha256": entry.sha256})
    return {
        "region": ctx.config.primary,
        "identity": identity,
        "keep_last": keep_last,
        "older_than_days": float(params["older_than_days"]),
        "forget": [{"id": s.id, "time": s.manifest.time,
                    "sources": [x.name for x in s.manifest.sources]} for s in forget],
        "keep": [s.id for s in kept],
        "delete": delete,
        "retained": retained,
    }


def _locked(ctx: ApprovalContext, key: str, entry: Any = None) -> bool:
    try:
        info = ctx.store.head(key)
    except ObjectNotFound:
        return False
    until = later(info.retain_until, journaled_until(entry, ctx.config.primary))
    return until is not None and until > ctx.now()


def region_binding(ctx: ApprovalContext, region: str, store: Store) -> dict[str, str] | None:
    """The target region's identity for a plan (None for a region that has none yet).

    Refuses (exit 3) when the store at the region's URL says it is another region or
    repository: an approval for one region's copy must never reach another's (for
    instance after two regions' URLs were swapped in drkit.toml).
    """
    from drkit.repo.keys import load_trusted_writer_keys
    from drkit.repo.region_identity import check_identity

    try:
        identity = check_identity(store, load_trusted_writer_keys(ctx.config), region=region,
                                  repository_id=ctx.repository_id)
    except IntegrityError as exc:
        raise ApprovalRequired(f"refused, nothing deleted: {exc}") from None
    return identity.binding() if identity is not None else None


def _tombstone_and_delete(ctx: ApprovalContext, items: list[dict[str, Any]], grant: Grant,
                          *, operation: str, region: str) -> int:
    """Log the deletions as proven tombstones for ``region`` in the primary journal first
    (so a crash leaves the log saying "absent" rather than an unexplained hole), then
    delete in that region only."""
    from drkit.approval.proof import tombstone_entries
    from drkit.repo.journal_writer import append_locked
    from drkit.repo.keyhistory import repository_history, require_in_history
    from drkit.repo.keys import load_writer_signing_key
    from drkit.repo.lock import RepositoryLock
    from drkit.storage.url import open_store

    signer = load_writer_signing_key(ctx.config)
    # Like every journal writer: the log is checked against the journaled key history, and
    # this host's key must be part of it (a key file swapped in by hand never writes).
    trusted = repository_history(ctx.config, ctx.store)
    require_in_history(ctx.config, signer.public_key(), trusted)
    store = ctx.store if region == ctx.config.primary else open_store(
        ctx.config.region(region).url, clock=ctx.clock)
    logged = [i for i in items if i.get("logged", True)]
    if logged and grant.registry is None:
        raise ApprovalRequired("a deletion needs the registry version it was approved under")
    with RepositoryLock(ctx.config.cache_dir, ctx.repository_id, now=ctx.now()) as lock:
        if logged:
            assert grant.registry is not None
            entries = tombstone_entries(ctx.store, logged, request_id=grant.request_id,
                                        operation=operation, registry=grant.registry,
                                        approved_by=grant.approved_by, regions=[region])
            append_locked(ctx.store, ctx.repository_id, entries, signer, trusted=trusted,
                          now=ctx.now(), lock=lock, intents_dir=ctx.config.cache_dir)
        task = ctx.progress.task("deleting", total=len(items))
        try:
            for item in items:
                store.delete(item["key"])
                task.advance()
        finally:
            task.close()
    return len(items)


def run_prune(ctx: ApprovalContext, params: dict[str, Any], plan: dict[str, Any],
              grant: Grant) -> dict[str, Any]:
    deleted = _tombstone_and_delete(ctx, list(plan["delete"]), grant, operation="prune",
                                    region=str(plan["region"]))
    return {"forgotten": len(plan["forget"]), "deleted": deleted,
            "bytes": sum(int(i["size"]) for i in plan["delete"])}


# -- delete one object ----------------------------------------------------------------------------
def plan_delete_object(ctx: ApprovalContext, params: dict[str, Any]) -> dict[str, Any]:
    from drkit.approval.proof import live_objects
    from drkit.journal import Journal
    from drkit.repo.keys import load_trusted_writer_keys
    from drkit.repo.region_identity import IDENTITY_KEY
    from drkit.storage.url import open_store

    region = ctx.config.region(str(params["region"]))
    key = str(params["key"])
    if key in ("config", IDENTITY_KEY) or key.startswith(("journal/", "approval/", "audit/")):
        raise InputError(f"{key}: drkit's own control objects are never deleted")
    store = open_store(region.url, clock=ctx.clock)
    identity = region_binding(ctx, region.name, store)
    try:
        info = store.head(key)
    except ObjectNotFound:
        raise InputError(f"{region.name}: {key} does not exist") from None
    sha = info.sha256 or hashlib.sha256(store.get(key)).hexdigest()
    _cp, entries = Journal(ctx.store, "drkit:" + ctx.repository_id).entries(
        load_trusted_writer_keys(ctx.config))
    # Logged and still owed by this region (no proven tombstone for it here): the deletion
    # is journaled as a tombstone naming this region only.
    logged = key in live_objects(ctx.store, ctx.repository_id, entries, region=region.name)
    # The retention the journal promised this region's copy holds even when a local
    # sidecar was edited to an earlier date or removed (drkit.repo.retention).
    promised = max((u for e in entries if e.key == key and e.kind == "object"
                    and (u := journaled_until(e, region.name)) is not None), default=None)
    if promised is not None and promised > ctx.now():
        raise RetentionActive(f"{region.name}: {key} is retained until {utc_iso(promised)} "
                              "(as journaled); it cannot be deleted yet")
    return {"region": region.name, "identity": identity, "key": key, "size": info.size,
            "sha256": sha, "logged": logged}


def run_delete_object(ctx: ApprovalContext, params: dict[str, Any], plan: dict[str, Any],
                      grant: Grant) -> dict[str, Any]:
    _tombstone_and_delete(ctx, [plan], grant, operation="delete-object",
                          region=str(plan["region"]))
    return {"deleted": 1, "region": plan["region"], "key": plan["key"],
            "tombstone": bool(plan["logged"])}


# -- config apply -----------------------------------------------------------------------------
def config_apply_params(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    return {"file": str(path.resolve()), "sha256": hashlib.sha256(text.encode()).hexdigest()}


def plan_config_apply(ctx: ApprovalContext, params: dict[str, Any]) -> dict[str, Any]:
    path = Path(params["file"])
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    new_sha = hashlib.sha256(text.encode()).hexdigest()
    if new_sha != params["sha256"]:
        raise InputError(f"{path}: changed since the request was filed (sha256 "
                         f"{params['sha256'][:12]} -> {new_sha[:12]}); file a new request")
    _config, problems = check_config(path)
    if problems:
        raise InputError(f"{path}: not a valid drkit.toml: {problems[0]}")
    new = parse_toml(text, where=str(path))
    check_approval_section(new, where=str(path))
    # The baseline is the pinned configuration only: the live drkit.toml is editable by
    # whoever holds this host, so comparing with it would let an edit pass as "no change".
    pinned = pinned_config(ctx)
    if pinned is not None:
        return {"baseline": pinned.name, "baseline_sha256": pinned.sha256,
                "new_sha256": new_sha, "changes": dangerous_changes(pinned.raw, new)}
    # A repository made before 'keys init' pinned its config: nothing to compare with, so
    # the first pin always needs an approval (and is compared with the built-in defaults).
    return {"baseline": "built-in defaults (nothing pinned)", "baseline_sha256": None,
            "new_sha256": new_sha,
            "changes": [{"change": "nothing-pinned"}, *dangerous_changes({}, new)]}


def apply_config(ctx: ApprovalContext, params: dict[str, Any], plan: dict[str, Any],
                 request_id: str | None) -> dict[str, Any]:
    text = Path(params["file"]).read_text(encoding="utf-8")
    pinned = pin(ctx.config, ctx.store, text, now=ctx.now(), request_id=request_id,
                 actor=actor(), clock=ctx.clock)
    ctx._pins = None  # read the chain again, with the new version, if asked
    target = ctx.config.path
    tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    return {"pinned": pinned.number, "config": str(target), "sha256": pinned.sha256,
            "changes": plan["changes"]}


def run_config_apply(ctx: ApprovalContext, params: dict[str, Any], plan: dict[str, Any],
                     grant: Grant) -> dict[str, Any]:
    return apply_config(ctx, params, plan, grant.request_id)


# -- approver registry changes --------------------------------------------------------------------
def approvers_params(add: list[Enrollment], remove: list[str]) -> dict[str, Any]:
    if not add and not remove:
        raise UsageError("say what changes: --add ENROLLMENT.json and/or --remove NAME")
    return {"add": [e.to_dict() for e in add], "remove": sorted(set(remove))}


def plan_approvers(ctx: ApprovalContext, params: dict[str, Any]) -> dict[str, Any]:
    current = current_registry(ctx)
    add = [Enrollment.from_dict(doc, where="--add") for doc in params.get("add", [])]
    remove = set(params.get("remove", []))
    keep = []
    removed = []
    for e in current.approvers:
        if e.name in remove or e.key in remove or e.fingerprint in remove:
            removed.append(e.fingerprint)
        else:
            keep.append(e)
    unknown = remove - {e.name for e in current.approvers} \
        - {e.key for e in current.approvers} - {e.fingerprint for e in current.approvers}
    if unknown:
        raise InputError(f"not in the approver registry: {', '.join(sorted(unknown))}")
    existing = {e.key for e in keep}
    for e in add:
        if e.key in existing:
            raise InputError(f"{e.name}: key {e.fingerprint} is already enrolled")
    content = registry_content(current.number + 1, current.sha256, ctx.repository_id,
                               keep + add)
    return {"registry": content,
            "added": [{"name": e.name, "fingerprint": e.fingerprint} for e in add],
            "removed": sorted(removed)}


def run_approvers(ctx: ApprovalContext, params: dict[str, Any], plan: dict[str, Any],
                  grant: Grant) -> dict[str, Any]:
    version = pin_registry_version(ctx, plan["registry"],
                                   authorized_by={"request": grant.request_id})
    write_local_copy(ctx.config, version)
    return {"registry_version": version.number, "sha256": version.sha256,
            "added": plan["added"], "removed": plan["removed"]}


# -- operations run by other commands ----------------------------------------------
def restore_production_plan(snapshot_id: str, target: str | Path, source: str) -> dict[str, Any]:
    """The plan a restore into a production target must have approved (the restore command
    and ``drkit request restore-production`` both build it with this function)."""
    return {"snapshot": snapshot_id, "target": str(Path(target).resolve()), "source": source}


def production_sources_at(config: Config, target: str | Path,
                          pinned: Config | None = None) -> list[str]:
    """Sources marked ``production = true`` whose path is the target, inside it or holds it
    (restoring there would overwrite production data), in the pinned configuration
    (``pinned``) and in the local one: a local edit can add protection, never remove it."""
    where = Path(target).resolve()
    hits = set()
    for settings in (pinned, config):
        if settings is None:
            continue
        for source in settings.sources.values():
            if not source.production or source.path is None:
                continue
            path = source.path.resolve()
            if where == path or where in path.parents or path in where.parents:
                hits.add(source.name)
    return sorted(hits)


def pinned_production_config(config: Config, clock: Clock, store: Store | None = None
                             ) -> Config | None:
    """The pinned configuration (typed) as the repository in ``store`` (default: the primary
    region) holds it, for the production check of a restore. None, with a loud warning,
    when it cannot be read (a disaster took the store, or nothing is pinned): then only the
    local production sources count. A pinned chain that does not verify stops the restore."""
    from drkit.approval.gate import pinned_settings
    from drkit.repo.keys import load_trusted_writer_keys, read_repository_id
    from drkit.storage.url import open_store

    try:
        if store is None:
            store = open_store(config.primary_region.url, base_dir=config.base_dir,
                               clock=clock)
        repository_id = read_repository_id(store, load_trusted_writer_keys(config))
        ctx = ApprovalContext(config, clock, store, repository_id)
        return pinned_settings(ctx)
    except IntegrityError:
        raise
    except DrkitError as exc:
        log.warning("cannot read the pinned configuration (%s): only the production "
                    "sources of %s are protected from this restore", exc, config.path)
        return None


def require_restore_approval(config: Config, *, snapshot_id: str, target: str | Path,
                             clock: Clock, approval_id: str | None = None,
                             store: Store | None = None) -> list[Grant]:
    """The one call a restore or drill makes before writing into ``target``: nothing when
    the target is not a production source's location (in the pinned configuration, read
    from ``store`` or the primary, or the local one), else a consumed approval per
    production source there (ApprovalRequired, exit 3, when one is missing)."""
    from drkit.approval.gate import require_approval

    pinned = pinned_production_config(config, clock, store)
    local_only = set(production_sources_at(config, target))
    grants = []
    for source in production_sources_at(config, target, pinned):
        if source not in local_only:
            log.warning("%s: source %r is not marked production there, but the pinned "
                        "configuration protects it: restoring over it needs approval",
                        config.path, source)
        plan = restore_production_plan(snapshot_id, target, source)
        grants.append(require_approval("restore-production", plan, plan, config=config,
                                       clock=clock, approval_id=approval_id))
    return grants


def keys_plan(action: str, detail: dict[str, Any]) -> dict[str, Any]:
    """The plan for rotating or adding keys: the action and the new public key(s)."""
    return {"action": action, **detail}


def _params_are_plan(ctx: ApprovalContext, params: dict[str, Any]) -> dict[str, Any]:
    return dict(params)


def _plan_restore(ctx: ApprovalContext, params: dict[str, Any]) -> dict[str, Any]:
    return restore_production_plan(str(params["snapshot"]), str(params["target"]),
                                   str(params["source"]))


def _plan_cloud_expire(ctx: ApprovalContext, params: dict[str, Any]) -> dict[str, Any]:
    """The cloud snapshots past retention as of ``params["as_of"]`` (recomputed at execute
    time, so a snapshot list that changed since the request is refused)."""
    from drkit.clock import parse_iso
    from drkit.cloud.config import load_cloud_config
    from drkit.cloud.run import expiry_plan_document

    return expiry_plan_document(load_cloud_config(ctx.config),
                                as_of=parse_iso(str(params["as_of"])))


#: The one registry of dangerous operations: the gate (``get_operation``), the quorum table
#: of ``[approval]`` (``policy.approval_problems``), the dangerous-change check of
#: ``config apply`` (``configpin.dangerous_changes``) and docs/approval.md all follow it.
OPERATIONS: dict[str, Operation] = {
    "prune": Operation("prune", "forget snapshots beyond retention and delete objects no "
                       "remaining snapshot needs", plan_prune, run_prune),
    "delete-object": Operation("delete-object", "delete one object in a region",
                               plan_delete_object, run_delete_object),
    "config-apply": Operation("config-apply", "apply a drkit.toml that removes a region or "
                              "shortens retention", plan_config_apply, run_config_apply),
    "approvers": Operation("approvers", "change the approver registry", plan_approvers,
                           run_approvers),
    "restore-production": Operation("restore-production", "restore into a production target",
                                    _plan_restore, None, runs_via="drkit restore"),
    "keys": Operation("keys", "rotate or add keys", _params_are_plan, None,
                      runs_via="drkit keys"),
    "cloud-expire": Operation("cloud-expire", "delete drkit's cloud snapshots past retention",
                              _plan_cloud_expire, None, runs_via="drkit cloud expire"),
}


def get_operation(name: str) -> Operation:
    try:
        return OPERATIONS[name]
    except KeyError:
        raise InputError(f"unknown operation {name!r} (known: "
                         f"{', '.join(sorted(OPERATIONS))})") from None
