"""The cloud-snapshot operations every caller uses: snapshot, status, expiry plan, verify.

``take_snapshots`` creates one snapshot per selected resource, waits, copies each to every
configured region/account, waits again and returns every record. Nothing is journalled
here: the caller appends ``journal_entries(result)`` in one batch after the whole run has
succeeded, so a run that fails half-way leaves no record behind (its snapshots exist in
the cloud, tagged with the run id, but drkit does not count them as backups).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from drkit.clock import utc_iso
from drkit.cloud.base import Pending, Provider, Waiter
from drkit.cloud.config import CloudConfig
from drkit.cloud.model import (
    CloudRunResult,
    ExpiryCandidate,
    MissingSnapshot,
    SnapshotRecord,
    StaleResource,
)
from drkit.errors import ConfigError
from drkit.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)


def providers_for(cfg: CloudConfig) -> list[Provider]:
    """One provider per configured cloud (AWS first)."""
    providers: list[Provider] = []
    if cfg.aws is not None:
        from drkit.cloud.aws import AwsProvider

        providers.append(AwsProvider(cfg.aws))
    if cfg.tencent is not None:
        from drkit.cloud.tencent import TencentProvider

        providers.append(TencentProvider(cfg.tencent))
    if not providers:
        raise ConfigError("no cloud configured: add [cloud.aws] or [cloud.tencent]",
                          file=cfg.file, key="cloud")
    return providers


def _waiter(cfg: CloudConfig, sleep: Callable[[float], None] | None,
            monotonic: Callable[[], float] | None) -> Waiter:
    waiter = Waiter(cfg.wait_timeout_minutes * 60.0, cfg.poll_seconds)
    if sleep is not None:
        waiter.sleep = sleep
    if monotonic is not None:
        waiter.monotonic = monotonic
    return waiter


def take_snapshots(cfg: CloudConfig, run_id: str, *, now: datetime,
                   providers: Sequence[Provider] | None = None,
                   progress: Progress = NULL_PROGRESS,
                   sleep: Callable[[float], None] | None = None,
                   monotonic: Callable[[], float] | None = None) -> CloudRunResult:
    """Snapshot every selected resource and copy each snapshot to every target; wait for all.

    Raises CloudOperationFailed (exit 1) naming the first failure or the operations still
    pending at the timeout, CloudUnavailable (exit 2) for unreachable APIs or refused
    credentials.
    """
    waiter = _waiter(cfg, sleep, monotonic)
    records: list[SnapshotRecord] = []
    for provider in providers if providers is not None else providers_for(cfg):
        resources = provider.discover()
        log.info("%s: %d resources selected", provider.name, len(resources))
        started: list[Pending] = [provider.start_snapshot(r, run_id) for r in resources]
        waiter.wait(provider, started, progress, "snapshots")
        copies: list[Pending] = []
        for pending in started:
            copies += provider.start_copies(pending.record, run_id)
        waiter.wait(provider, copies, progress, "cross-region copies")
        records += [p.record for p in started] + [p.record for p in copies]
    return CloudRunResult(run_id, now, tuple(records))


def journal_entries(result: CloudRunResult) -> list[Any]:
    """``drkit.journal.JournalEntry`` objects (kind "external") for every record."""
    from drkit.journal import JournalEntry  # the journal engineer's module

    return [JournalEntry(**r.journal_fields()) for r in result.records]


def record_in_journal(journal: Any, result: CloudRunResult, signer: Any, *,
                      now: datetime) -> Any:
    """Append the run's records to the journal as one batch; returns the new Checkpoint."""
    return journal.append(journal_entries(result), signer, now=now)


def status(cfg: CloudConfig, *, now: datetime,
           providers: Sequence[Provider] | None = None) -> tuple[list[dict[str, Any]],
                                                                 list[StaleResource]]:
    """Every selected resource with its newest complete snapshot per region, and the stale
    ones (none within ``max_age_hours`` in the source region or any copy region)."""
    limit = timedelta(hours=cfg.max_age_hours)
    rows: list[dict[str, Any]] = []
    stale: list[StaleResource] = []
    for provider in providers if providers is not None else providers_for(cfg):
        for resource in provider.discover():
            times = provider.snapshot_times(resource)
            rows.append({"provider": provider.name, "kind": resource.kind,
                         "resource_id": resource.resource_id, "region": resource.region,
                         "latest": {k: (v.isoformat() if v else None) for k, v in times.items()}})
            for place, latest in times.items():
                if latest is None or now - latest > limit:
                    stale.append(StaleResource(provider.name, resource.kind,
                                               resource.resource_id, place, latest,
                                               cfg.max_age_hours))
    return rows, stale


def plan_expiry(cfg: CloudConfig, *, now: datetime,
                providers: Sequence[Provider] | None = None) -> list[ExpiryCandidate]:
    """drkit-made snapshots that retention would expire. Executing the plan is dangerous:
    only the approval gate calls ``expire_approved`` with it, after a second approval.

    Per provider, resource, kind and region (and account), the newest ``keep_min``
    snapshots are always kept; of the rest, those older than ``retention_days`` expire.
    """
    out: list[ExpiryCandidate] = []
    for provider in providers if providers is not None else providers_for(cfg):
        pcfg = cfg.aws if provider.name == "aws" else cfg.tencent
        assert pcfg is not None
        retention = timedelta(days=pcfg.retention_days)
        groups: dict[tuple[str, str, str, str | None], list[SnapshotRecord]] = {}
        for rec in provider.drkit_snapshots():
            groups.setdefault((rec.kind, rec.resource_id, rec.region, rec.account), []).append(rec)
        for recs in groups.values():
            # Same-second snapshots are ordered by run id, which starts with the run time.
            recs.sort(key=lambda r: (r.created_at, r.run_id), reverse=True)
            for rec in recs[pcfg.keep_min:]:
                age = now - rec.created_at
                if age > retention:
                    out.append(ExpiryCandidate(
                        rec, f"{age.days} days old, retention {pcfg.retention_days} days, "
                             f"{pcfg.keep_min} newer kept"))
    return out


EXPIRY_OPERATION = "cloud-expire"


def expiry_plan_document(cfg: CloudConfig, *, as_of: datetime,
                         providers: Sequence[Provider] | None = None) -> dict[str, Any]:
    """The plan approvers sign for ``cloud-expire``: every snapshot ``plan_expiry`` would
    expire as of ``as_of``. ``as_of`` is a request parameter, so the plan does not drift
    while approvals are collected; it only changes if snapshots appear or vanish."""
    candidates = plan_expiry(cfg, now=as_of, providers=providers)
    return {"operation": EXPIRY_OPERATION, "as_of": utc_iso(as_of),
            "snapshots": sorted((c.record.to_dict() for c in candidates),
                                key=lambda d: (d["provider"], d["region"], d["snapshot_id"]))}


def expire_approved(cfg: CloudConfig, candidates: Iterable[ExpiryCandidate], *,
                    providers: Sequence[Provider] | None = None) -> list[SnapshotRecord]:
    """Delete planned snapshots. ONLY the approval gate may call this, after approval."""
    by_name = {p.name: p for p in (providers if providers is not None else providers_for(cfg))}
    done: list[SnapshotRecord] = []
    for cand in candidates:
        by_name[cand.record.provider].delete(cand.record)
        done.append(cand.record)
    return done


def find_missing(cfg: CloudConfig, recorded: Iterable[SnapshotRecord | Any], *,
                 providers: Sequence[Provider] | None = None) -> list[MissingSnapshot]:
    """Findings for recorded snapshots that exist in no region any more.

    ``recorded`` holds SnapshotRecords or journal entries of kind "external" (their note
    is the record). Each id is looked up in its recorded region first, then in every other
    configured region, exactly as a deleted object is a finding in verify.
    """
    by_name = {p.name: p for p in (providers if providers is not None else providers_for(cfg))}
    findings: list[MissingSnapshot] = []
    for item in recorded:
        rec = item if isinstance(item, SnapshotRecord) else _record_from_entry(item)
        if rec is None:
            continue
        provider = by_name.get(rec.provider)
        if provider is None:
            continue
        regions = [rec.region] + [r for r in provider.regions() if r != rec.region]
        if not any(provider.exists(rec, region) for region in regions):
            findings.append(MissingSnapshot(rec, tuple(regions)))
    return findings


def _record_from_entry(entry: Any) -> SnapshotRecord | None:
    if getattr(entry, "kind", None) != "external" or not isinstance(getattr(entry, "note", None),
                                                                    dict):
        return None
    note = entry.note
    if note.get("provider") not in ("aws", "tencent"):
        return None
    return SnapshotRecord.from_dict(note)
