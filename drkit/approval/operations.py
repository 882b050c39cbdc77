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

from drkit.approval.configpin import dangerous_changes, latest_pinned, parse_toml, pin
from drkit.approval.gate import (
    ApprovalContext,
    Grant,
    current_registry,
    pin_registry_version,
)
from drkit.approval.identity import actor
from drkit.approval.keys import Enrollment
from drkit.approval.registry import registry_content, write_local_copy
from drkit.clock import Clock, parse_iso
from drkit.config import Config, check_config
from drkit.errors import InputError, ObjectNotFound, UsageError

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
    repo = Repository.open(ctx.store, load_trusted_writer_keys(ctx.config))
    snapshots = repo.snapshots()  # oldest first
    newest = {s.id for s in snapshots[-keep_last:]}
    forget = [s for s in snapshots
              if s.id not in newest and parse_iso(s.manifest.time) < cutoff
              and not _locked(ctx, s.key)]  # a manifest still under lock stays visible
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
        if info.retain_until is not None and info.retain_until > ctx.now():
            retained.append(key)
            continue
        delete.append({"key": key, "size": entry.size, "sha256": entry.sha256})
    return {
        "region": ctx.config.primary,
        "keep_last": keep_last,
        "older_than_days": float(params["older_than_days"]),
        "forget": [{"id": s.id, "time": s.manifest.time,
                    "sources": [x.name for x in s.manifest.sources]} for s in forget],
        "keep": [s.id for s in kept],
        "delete": delete,
        "retained": retained,
    }


def _locked(ctx: ApprovalContext, key: str) -> bool:
    try:
        info = ctx.store.head(key)
    except ObjectNotFound:
        return False
    return info.retain_until is not None and info.retain_until > ctx.now()


def _tombstone_and_delete(ctx: ApprovalContext, items: list[dict[str, Any]], grant: Grant,
                          *, operation: str, region: str) -> int:
    """Log the deletions as tombstones in the primary journal first (so a crash leaves
    the log saying "absent" rather than an unexplained hole), then delete."""
    from drkit.journal import Journal, JournalEntry
    from drkit.repo.keys import load_trusted_writer_keys, load_writer_signing_key
    from drkit.repo.lock import RepositoryLock
    from drkit.storage.url import open_store

    signer = load_writer_signing_key(ctx.config)
    trusted = load_trusted_writer_keys(ctx.config)
    store = ctx.store if region == ctx.config.primary else open_store(
        ctx.config.region(region).url, clock=ctx.clock)
    note = {"approval": grant.request_id, "operation": operation, "region": region,
            "approved_by": list(grant.approved_by)}
    entries = [JournalEntry(kind="tombstone", key=i["key"], size=int(i["size"]),
                            sha256=str(i["sha256"]), note=note)
               for i in items if i.get("logged", True)]
    with RepositoryLock(ctx.config.cache_dir, ctx.repository_id, now=ctx.now()):
        if entries:
            Journal(ctx.store, "drkit:" + ctx.repository_id).append(
                entries, signer, now=ctx.now(), trusted=trusted)
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
    from drkit.journal import Journal
    from drkit.repo.keys import load_trusted_writer_keys
    from drkit.storage.url import open_store

    region = ctx.config.region(str(params["region"]))
    key = str(params["key"])
    if key == "config" or key.startswith(("journal/", "approval/", "audit/")):
        raise InputError(f"{key}: drkit's own control objects are never deleted")
    store = open_store(region.url, clock=ctx.clock)
    try:
        info = store.head(key)
    except ObjectNotFound:
        raise InputError(f"{region.name}: {key} does not exist") from None
    sha = info.sha256 or hashlib.sha256(store.get(key)).hexdigest()
    _cp, entries = Journal(ctx.store, "drkit:" + ctx.repository_id).entries(
        load_trusted_writer_keys(ctx.config))
    logged = any(e.key == key and e.kind == "object" for e in entries) and not any(
        e.key == key and e.kind == "tombstone" for e in entries)
    return {"region": region.name, "key": key, "size": info.size, "sha256": sha,
            "logged": logged}


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
    pinned = latest_pinned(ctx.store)
    if pinned is not None:
        baseline_text, baseline = pinned.toml, f"pinned config {pinned.number}"
    else:
        baseline_text = ctx.config.path.read_text(encoding="utf-8")
        baseline = f"{ctx.config.path} (nothing pinned yet)"
    old = parse_toml(baseline_text, where=baseline)
    new = parse_toml(text, where=str(path))
    return {"baseline": baseline,
            "baseline_sha256": hashlib.sha256(baseline_text.encode()).hexdigest(),
            "new_sha256": new_sha, "changes": dangerous_changes(old, new)}


def apply_config(ctx: ApprovalContext, params: dict[str, Any], plan: dict[str, Any],
                 request_id: str | None) -> dict[str, Any]:
    text = Path(params["file"]).read_text(encoding="utf-8")
    pinned = pin(ctx.store, text, now=ctx.now(), request_id=request_id, actor=actor())
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


def production_sources_at(config: Config, target: str | Path) -> list[str]:
    """Sources marked ``production = true`` whose path is the target, inside it or holds it
    (restoring there would overwrite production data)."""
    where = Path(target).resolve()
    hits = []
    for source in config.sources.values():
        if not source.production or source.path is None:
            continue
        path = source.path.resolve()
        if where == path or where in path.parents or path in where.parents:
            hits.append(source.name)
    return sorted(hits)


def require_restore_approval(config: Config, *, snapshot_id: str, target: str | Path,
                             clock: Clock, approval_id: str | None = None) -> list[Grant]:
    """The one call a restore or drill makes before writing into ``target``: nothing when
    the target is not a production source's location, else a consumed approval per
    production source there (ApprovalRequired, exit 3, when one is missing)."""
    from drkit.approval.gate import require_approval

    grants = []
    for source in production_sources_at(config, target):
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
