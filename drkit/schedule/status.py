"""``drkit status``: is every backup, copy, verification and drill recent enough?

Sources of truth:

- the repository, for snapshot age per source and replication lag per region: each
  region is listed with ``drkit --json snapshots --region NAME`` in a child process (the
  same decoupling as the jobs: the CLI's JSON is the contract), all regions in parallel;
- the run records of the scheduler (state.py), for the last verification and drill and
  their outcomes.

Objectives: ``objectives.rpo_hours`` for the age of the newest snapshot of each source;
``regions.NAME.max_lag_hours`` for replication lag, the age of the oldest primary snapshot
that the region does not hold yet (0 when it holds them all); for verification and drills,
an allowance derived from the schedule: two scheduled periods plus the misfire grace time
(for the monthly rotating drill, one period per region plus one).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from apscheduler.triggers.base import BaseTrigger

from drkit.clock import Clock, parse_iso, utc_iso
from drkit.config import Config
from drkit.repo.logarchive import ArchiveStatus
from drkit.schedule.cron import next_fire_times
from drkit.schedule.runner import child_argv
from drkit.schedule.spec import ScheduleSettings
from drkit.schedule.state import RunRecord, RunStore


@dataclass
class RegionListing:
    region: str
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def list_regions(config: Config, settings: ScheduleSettings, python: str | None = None
                 ) -> dict[str, RegionListing]:
    """``drkit snapshots --region R --json`` for every region, run in parallel."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for region in sorted(config.regions):
        procs[region] = subprocess.Popen(
            child_argv(settings.config_file, ("snapshots", "--region", region), python),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=config.base_dir)
    out: dict[str, RegionListing] = {}
    for region, proc in procs.items():
        stdout, stderr = proc.communicate()
        listing = RegionListing(region)
        try:
            doc = json.loads(stdout) if proc.returncode == 0 else None
            snaps = doc.get("snapshots") if isinstance(doc, dict) else None
            if not isinstance(snaps, list):
                raise ValueError
            listing.snapshots = [s for s in snaps if isinstance(s, dict) and "time" in s]
        except ValueError:
            lines = stderr.decode("utf-8", "replace").strip().splitlines()
            last = lines[-1] if lines else f"exit {proc.returncode}"
            listing.error = last.removeprefix("drkit: error: ")[:300]
        out[region] = listing
    return out


def _source_names(snapshot: dict[str, Any]) -> list[str]:
    names = []
    for src in snapshot.get("sources") or []:
        if isinstance(src, str):
            names.append(src)
        elif isinstance(src, dict) and isinstance(src.get("name"), str):
            names.append(src["name"])
    return names


def _replicate_report(states: dict[str, dict[str, RunRecord]], region: str
                      ) -> tuple[datetime, float] | None:
    done = states.get("replicate", {}).get("last_completed")
    summary = done.summary if done is not None else None
    regions = summary.get("regions") if isinstance(summary, dict) else None
    if isinstance(regions, list):
        regions = {r.get("region"): r for r in regions if isinstance(r, dict)}
    report = regions.get(region) if isinstance(regions, dict) else None
    lag = report.get("lag_hours") if isinstance(report, dict) else None
    if done is None or isinstance(lag, bool) or not isinstance(lag, int | float):
        return None
    return done.finished_at, float(lag)


def _hours(delta: timedelta) -> float:
    return round(delta.total_seconds() / 3600, 2)


def allowance(trigger: BaseTrigger, now: datetime, grace_seconds: int | None,
              periods: int = 2) -> timedelta:
    """``periods`` times the schedule's period (gap between its next two runs) + grace."""
    times = next_fire_times(trigger, now, 2)
    period = times[1] - times[0] if len(times) == 2 else timedelta(days=366)
    return period * periods + timedelta(seconds=grace_seconds or 0)


@dataclass
class Status:
    now: str
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    replication: list[dict[str, Any]] = field(default_factory=list)
    verify: list[dict[str, Any]] = field(default_factory=list)
    drills: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"now": self.now, "ok": self.ok, "problems": self.problems,
                "snapshots": self.snapshots, "replication": self.replication,
                "verify": self.verify, "drills": self.drills, "jobs": self.jobs,
                "logs": self.logs}


def log_archives(config: Config, now: datetime) -> list[ArchiveStatus]:
    """The archived database logs of the primary region (achieved RPO, gaps)."""
    from drkit.repo.keys import load_trusted_writer_keys
    from drkit.repo.logarchive import LogCatalog, archive_status
    from drkit.repo.repository import Repository
    from drkit.storage.url import open_store

    store = open_store(config.primary_region.url, base_dir=config.base_dir)
    repo = Repository.open(store, load_trusted_writer_keys(config),
                           region=config.primary_region.name)
    catalog = LogCatalog.from_entries(repo.visible.values())
    return [archive_status(catalog, name, now) for name in catalog.archives()]


def _judge_logs(st: Status, config: Config, logs: list[ArchiveStatus]) -> None:
    limit = config.objectives.log_rpo_seconds
    for archive in logs:
        row = {**archive.to_dict(), "objective_seconds": limit}
        rpo = archive.rpo_seconds
        row["ok"] = rpo is not None and rpo <= limit and not archive.gaps
        if rpo is not None and rpo > limit:
            st.problems.append(f"log {archive.archive!r}: newest segment archived "
                               f"{rpo:.0f} s ago (objectives.log_rpo_seconds = {limit:g})")
        for gap in archive.gaps:
            st.problems.append(f"log {gap.describe()}")
        st.logs.append(row)


def compute_status(config: Config, settings: ScheduleSettings, *, clock: Clock,
                   listings: dict[str, RegionListing],
                   logs: list[ArchiveStatus] | None = None) -> Status:
    now = clock.now()
    st = Status(now=utc_iso(now))
    _judge_logs(st, config, logs or [])
    rpo = timedelta(hours=config.objectives.rpo_hours)

    # -- snapshots per source (primary region) ----------------------------------------
    primary = listings.get(config.primary)
    newest: dict[str, datetime] = {}
    if primary is not None and primary.error is None:
        for snap in primary.snapshots:
            when = parse_iso(snap["time"])
            for name in _source_names(snap):
                if name not in newest or when > newest[name]:
                    newest[name] = when
    for name in sorted(config.sources):
        row: dict[str, Any] = {"source": name, "region": config.primary,
                               "objective_hours": config.objectives.rpo_hours}
        if primary is None or primary.error is not None:
            row.update(last=None, age_hours=None, ok=False,
                       error=primary.error if primary else "not listed")
            st.problems.append(f"source {name!r}: cannot list snapshots in primary region "
                               f"{config.primary!r}: {row['error']}")
        elif name not in newest:
            row.update(last=None, age_hours=None, ok=False)
            st.problems.append(f"source {name!r}: no snapshot in region {config.primary!r}")
        else:
            age = now - newest[name]
            row.update(last=utc_iso(newest[name]), age_hours=_hours(age), ok=age <= rpo)
            if age > rpo:
                st.problems.append(
                    f"source {name!r}: last snapshot is {_hours(age):g} h old "
                    f"(objectives.rpo_hours = {config.objectives.rpo_hours:g})")
        st.snapshots.append(row)

    # -- replication lag per non-primary region ---------------------------------------
    states = RunStore(settings.state_dir).all_states()
    primary_snaps = primary.snapshots if primary and primary.error is None else []
    for region_name in sorted(config.regions):
        if region_name == config.primary:
            continue
        region = config.regions[region_name]
        listing = listings.get(region_name)
        row = {"region": region_name, "max_lag_hours": region.max_lag_hours}
        if listing is not None and listing.error is not None and \
                "no drkit repository here" in listing.error:
            # Nothing replicated to this region yet: it holds no snapshot at all.
            listing = RegionListing(region_name)
        if listing is None or listing.error is not None:
            err = listing.error if listing else "not listed"
            reported = _replicate_report(states, region_name)
            if reported is not None:
                # A cold region (archive class) cannot be listed without a thaw: take the
                # lag the last completed replicate run measured, plus the age of any
                # primary snapshot taken since that run.
                ran_at, lag_h = reported
                newer = [t for t in (parse_iso(x["time"]) for x in primary_snaps) if t > ran_at]
                lag = timedelta(hours=lag_h)
                if newer:
                    lag = max(lag, now - min(newer))
                ok = lag <= timedelta(hours=region.max_lag_hours)
                row.update(lag_hours=_hours(lag), missing=None, ok=ok,
                           source=f"replicate run of {utc_iso(ran_at)}", note=err)
                if not ok:
                    st.problems.append(
                        f"region {region_name!r}: replication lags {_hours(lag):g} h "
                        f"(regions.{region_name}.max_lag_hours = {region.max_lag_hours:g})")
                st.replication.append(row)
                continue
            row.update(lag_hours=None, missing=None, ok=False, error=err)
            st.problems.append(f"region {region_name!r}: cannot list snapshots: {err}")
            st.replication.append(row)
            continue
        held = {s.get("id") for s in listing.snapshots}
        missing = [s for s in primary_snaps if s.get("id") not in held]
        lag = (now - min(parse_iso(s["time"]) for s in missing)) if missing else timedelta(0)
        ok = lag <= timedelta(hours=region.max_lag_hours)
        newest_here = max((parse_iso(s["time"]) for s in listing.snapshots), default=None)
        row.update(lag_hours=_hours(lag), missing=len(missing), ok=ok,
                   newest=utc_iso(newest_here) if newest_here else None)
        if not ok:
            st.problems.append(
                f"region {region_name!r}: replication lags {_hours(lag):g} h, "
                f"{len(missing)} snapshot(s) not copied "
                f"(regions.{region_name}.max_lag_hours = {region.max_lag_hours:g})")
        st.replication.append(row)

    # -- verification and drills from the run records -----------------------------------
    jobs = {job.name: job for job in settings.jobs}
    grace = settings.misfire_grace_seconds

    def judge(kind: str, label: str, key: str, limit: timedelta, row: dict[str, Any]) -> None:
        entry = states.get(key, {})
        done: RunRecord | None = entry.get("last_completed")
        last: RunRecord | None = entry.get("last")
        row.update(allowance_hours=_hours(limit), last=done.finished if done else None,
                   outcome=done.outcome if done else None,
                   findings=done.findings if done else None,
                   last_attempt=last.finished if last else None,
                   last_attempt_outcome=last.outcome if last else None)
        if done is None:
            row.update(age_hours=None, ok=False)
            st.problems.append(f"{label}: never completed")
            return
        age = now - done.finished_at
        row["age_hours"] = _hours(age)
        row["ok"] = age <= limit and done.outcome == "ok"
        if age > limit:
            st.problems.append(f"{label}: last completed {_hours(age):g} h ago "
                               f"(allowed {_hours(limit):g} h by the {kind} schedule)")
        if done.outcome == "findings":
            if kind == "drill":
                # A drill's verdict is pass/fail; a failed one may have zero "findings"
                # (a restore step failed, RTO missed), so say FAILED, not "0 problems".
                st.problems.append(f"{label}: last drill FAILED")
            elif done.findings:
                st.problems.append(f"{label}: last run found {done.findings} "
                                   f"problem{'s' if done.findings != 1 else ''}")
            else:
                st.problems.append(f"{label}: last run failed (exit 1)")

    for name in ("verify", "verify-read-data"):
        if name not in jobs:
            continue
        row = {"job": name}
        judge(name, f"{name}", name, allowance(jobs[name].trigger, now, grace), row)
        st.verify.append(row)

    limits: list[timedelta] = []
    if "drill" in jobs:
        limits.append(allowance(jobs["drill"].trigger, now, grace,
                                periods=len(settings.regions) + 1))
    if "drill-all" in jobs:
        limits.append(allowance(jobs["drill-all"].trigger, now, grace))
    if limits:
        for region_name in settings.regions:
            row = {"region": region_name}
            judge("drill", f"drill of region {region_name!r}", f"drill:{region_name}",
                  min(limits), row)
            done = states.get(f"drill:{region_name}", {}).get("last_completed")
            row["rto_seconds"] = done.rto_seconds if done else None
            row["rpo_seconds"] = done.rpo_seconds if done else None
            st.drills.append(row)

    for _key, entry in sorted(states.items()):
        last = entry["last"]
        st.jobs.append({"task": last.task, "target": last.target, "last": last.finished,
                        "outcome": last.outcome, "exit_code": last.exit_code,
                        "last_success": entry["last_success"].finished
                        if "last_success" in entry else None})
    return st
