"""The restore drill: prove that one region alone can bring the business back.

Steps, each timed and recorded in the report:

1. verify the region (refuse to trust one with findings unless told to);
2. thaw archive-class objects (metadata first, then the snapshot's packs) and wait;
3. restore the snapshot into a scratch folder, checking every chunk and file hash;
4. check every database's control totals against the snapshot's;
5. recompute the compensation ledger from the restored database and reconcile it with the
   ledger stored in the repository, merchant by merchant;
6. measure RTO (start to reconciled data) and RPO (age of the snapshot) against the
   objectives.

Only the drilled region's store is ever opened: the primary may be gone.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from drkit.approval.proof import live_objects
from drkit.clock import Clock, parse_iso, utc_iso
from drkit.config import Config
from drkit.drill.report import DrillReport, StepResult
from drkit.errors import DrkitError, InputError, IntegrityError, StorageError
from drkit.journal import LogView, read_log
from drkit.ledger import compute_ledger, reconcile
from drkit.ledger.store import LEDGER_PREFIX, latest_ledger
from drkit.numbers import count
from drkit.progress import NULL_PROGRESS, Progress
from drkit.repo.keys import load_trusted_writer_keys
from drkit.repo.repository import Repository, SnapshotInfo
from drkit.repo.restore import restore_snapshot
from drkit.sources.base import DATABASE_TYPES, database_module
from drkit.sources.sqlite import control_totals
from drkit.storage.base import Store
from drkit.storage.url import open_store
from drkit.thaw import ThawTimeout, thaw_objects
from drkit.verify.anchors import fingerprint
from drkit.verify.context import repository_origin
from drkit.verify.core import verify_region
from drkit.verify.state import TrustedState, default_state_dir

log = logging.getLogger(__name__)


class StepFailed(Exception):
    """A drill step found a problem; the drill stops and reports it."""


@dataclass
class DrillOptions:
    region: str
    snapshot: str = "latest"
    scratch: Path | None = None
    keep: bool = False
    accept_findings: bool = False
    thaw_timeout: float = 6 * 3600.0
    thaw_poll: float = 30.0
    state_dir: Path | None = None
    ledger_source: str | None = None


@dataclass
class _Run:
    report: DrillReport
    monotonic: Callable[[], float]
    sleep: Callable[[float], None]
    progress: Progress
    store: Store | None = None
    repo: Repository | None = None
    snapshot: SnapshotInfo | None = None
    restored: Path | None = None
    control: dict[str, Any] = field(default_factory=dict)
    scratch_dbs: list[tuple[str, str]] = field(default_factory=list)  # (source, database)
    view: LogView | None = None  # the region's journal, read once by the verify step

    @contextmanager
    def step(self, name: str) -> Iterator[dict[str, Any]]:
        """Time a step; a StepFailed or drkit error marks it failed and stops the drill."""
        started = self.monotonic()
        info: dict[str, Any] = {"detail": "", "data": {}}
        try:
            yield info
        except StepFailed as exc:
            self.report.add(StepResult(name, False, self.monotonic() - started, str(exc),
                                       info["data"]))
            raise
        except DrkitError as exc:
            self.report.add(StepResult(name, False, self.monotonic() - started, str(exc),
                                       info["data"]))
            raise
        self.report.add(StepResult(name, True, self.monotonic() - started, info["detail"],
                                   info["data"]))


def run_drill(config: Config, options: DrillOptions, recovery: X25519PrivateKey, *,
              clock: Clock, progress: Progress = NULL_PROGRESS,
              monotonic: Callable[[], float] = time.monotonic,
              sleep: Callable[[float], None] = time.sleep) -> DrillReport:
    """Run a drill on one region and return its report (never raises for a failed step:
    the failure is in the report; ``report.error`` holds a drkit error's message)."""
    region = config.region(options.region)
    start = monotonic()
    report = DrillReport(region=region.name, started_at=utc_iso(clock.now()),
                         rto_objective_seconds=config.objectives.rto_minutes * 60,
                         rpo_objective_seconds=config.objectives.rpo_hours * 3600)
    run = _Run(report, monotonic, sleep, progress)
    scratch, scratch_owned = _scratch(options)
    trusted = load_trusted_writer_keys(config)
    try:
        try:
            run.store = open_store(region.url, base_dir=config.base_dir, clock=clock)
            _verify(run, config, options, trusted, clock)
            _thaw_and_open(run, options, trusted)
            _restore(run, scratch, recovery)
            _load_databases(run, config)
            _check_control_totals(run)
            _reconcile_ledger(run, config, options, recovery, trusted)
            report.rto_seconds = monotonic() - start
        except StepFailed:
            pass
        except IntegrityError as exc:
            # A chunk or file that fails authentication is a failed drill (exit 1), not an
            # error: the failed step already says which.
            log.info("drill failed: %s", exc)
        except DrkitError as exc:
            report.error = str(exc)
        if run.snapshot is not None:
            taken = parse_iso(run.snapshot.manifest.time)
            report.rpo_seconds = (clock.now() - taken).total_seconds()
    finally:
        _drop_databases(run, config, options)
        _clean_up(run, scratch, scratch_owned, keep=options.keep)
    return report


def _scratch(options: DrillOptions) -> tuple[Path, bool]:
    """The scratch folder (an empty one given, or a new temporary one) and whether the
    drill made it."""
    scratch_owned = options.scratch is None
    scratch = options.scratch or Path(tempfile.mkdtemp(prefix="drkit-drill-"))
    if not scratch_owned and scratch.exists() and any(scratch.iterdir()):
        raise InputError(f"{scratch}: scratch folder is not empty")
    return scratch, scratch_owned


def _clean_up(run: _Run, scratch: Path, scratch_owned: bool, *, keep: bool) -> None:
    """Close the store; unless ``keep``, remove what the drill restored (the whole scratch
    folder when the drill made it)."""
    if run.store is not None:
        run.store.close()
    if not keep:
        if scratch_owned:
            shutil.rmtree(scratch, ignore_errors=True)
        elif run.restored is not None:
            shutil.rmtree(run.restored, ignore_errors=True)


def _verify(run: _Run, config: Config, options: DrillOptions, trusted: list[Any],
            clock: Clock) -> None:
    assert run.store is not None
    region = config.region(options.region)
    with run.step("verify region") as info:
        origin = repository_origin([(region.name, run.store)], trusted)
        state = TrustedState(options.state_dir or config.verify_state_dir
                             or default_state_dir(), origin)
        run.view = read_log(run.store, origin, trusted)
        result = verify_region(region, run.store, origin=origin, trusted=trusted,
                               state=state, now=clock.now(), view=run.view,
                               progress=run.progress)
        state.save()
        info["data"] = {"log_size": result.log_size, "findings": len(result.findings)}
        if result.findings:
            found = [f.to_dict() for f in result.findings]
            if not options.accept_findings:
                info["data"]["verify_findings"] = found
                listed = "; ".join(f.line() for f in result.findings[:3])
                more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
                raise StepFailed(f"{len(found)} verify finding(s): {listed}{more}; refusing "
                                 "to trust this region (--accept-findings overrides, and the "
                                 "report records it)")
            run.report.accepted_findings = found
            info["detail"] = f"{len(found)} finding(s) accepted with --accept-findings"
        else:
            info["detail"] = f"clean; log size {result.log_size}"


def _thaw(run: _Run, keys: list[str], what: str, options: DrillOptions) -> int:
    """Thaw the archive-class objects among ``keys`` and wait until all are readable."""
    assert run.store is not None
    try:
        result = thaw_objects(run.store, keys, what=what, timeout=options.thaw_timeout,
                              poll=options.thaw_poll, progress=run.progress,
                              monotonic=run.monotonic, sleep=run.sleep)
    except ThawTimeout as exc:
        raise StepFailed(str(exc)) from None
    return len(result.requested)


def _thaw_and_open(run: _Run, options: DrillOptions, trusted: list[Any]) -> None:
    assert run.store is not None and run.view is not None
    view = run.view
    with run.step("thaw and open") as info:
        # The journal and the config object are always readable; everything else the
        # repository needs to list snapshots (manifests, index files, sealed session keys,
        # stored ledgers) is thawed first, then the packs of the chosen snapshot.
        origin_id = view.origin.removeprefix("drkit:")
        live = live_objects(run.store, origin_id, view.entries, region=run.report.region)
        meta = [k for k in live if not k.startswith("packs/")]
        thawed = _thaw(run, meta, "metadata", options)
        run.repo = Repository.open(run.store, trusted, region=run.report.region)
        snap = run.repo.find_snapshot(options.snapshot)
        run.snapshot = snap
        run.report.snapshot = snap.id
        run.report.snapshot_time = snap.manifest.time
        if view.checkpoint is not None:
            # The fingerprint is a trust anchor for a verifier that loses its state
            # (``drkit verify --expect``): the drill report is kept off the verifying host.
            run.report.checkpoint = {"size": view.checkpoint.size,
                                     "root": view.checkpoint.root.hex(),
                                     "fingerprint": fingerprint(view.checkpoint)}
        packs = [k for k in live if k.startswith("packs/")
                 and k.rsplit("/", 1)[-1] in set(snap.manifest.packs)]
        thawed += _thaw(run, packs, "packs", options)
        info["detail"] = (f"snapshot {snap.id[:12]} of {snap.manifest.time}; "
                          f"{thawed} archived objects thawed")
        info["data"] = {"thawed": thawed, "packs": len(snap.manifest.packs)}


def _restore(run: _Run, scratch: Path, recovery: X25519PrivateKey) -> None:
    assert run.repo is not None and run.snapshot is not None
    with run.step("restore") as info:
        target = scratch / "restore"
        run.restored = target
        result = restore_snapshot(run.repo, run.snapshot, target, recovery,
                                  progress=run.progress)
        run.control = result.control_totals
        info["detail"] = (f"{result.files} files, {result.bytes:,} bytes from "
                          f"{result.packs_read} packs; every chunk and file hash checked")
        info["data"] = {"files": result.files, "bytes": result.bytes,
                        "packs": result.packs_read}


def _load_databases(run: _Run, config: Config) -> None:
    """Load every restored PostgreSQL/MySQL dump into a scratch database of the source's
    server and check its control totals there. Scratch names are ``drkit_scratch_*`` and
    never a database the config marks as production (the source modules refuse it)."""
    assert run.snapshot is not None and run.restored is not None
    sources = [s for s in run.snapshot.manifest.sources if s.type in DATABASE_TYPES]
    if not sources:
        return
    from drkit.sources.dbcommon import scratch_name

    with run.step("load databases") as info:
        loaded = 0
        for src in sources:
            source_cfg = config.source(src.name)
            module = database_module(src.type)
            expected = (run.control.get(src.name) or {}).get("databases", {})
            dumps = sorted((run.restored / src.name).glob("*.sql"))
            if not dumps:
                raise StepFailed(f"source {src.name!r}: no database dump was restored")
            for dump in dumps:
                database = dump.stem
                if database not in expected:
                    raise StepFailed(f"source {src.name!r}: the snapshot recorded no control "
                                     f"totals for database {database!r}")
                name = scratch_name(f"drill_{run.report.region}_{src.name}_{database}")
                # A scratch database left by an interrupted drill is replaced.
                module.drop_scratch(source_cfg, name, config=config)
                run.scratch_dbs.append((src.name, name))
                with dump.open("rb") as fh:
                    module.load_dump(source_cfg, fh, name, config=config)
                module.check_restored(source_cfg, name, expected[database])
                loaded += 1
        info["detail"] = (f"{loaded} database(s) loaded into scratch databases; control "
                          "totals match")
        info["data"] = {"databases": loaded,
                        "scratch": [name for _src, name in run.scratch_dbs]}


def _drop_databases(run: _Run, config: Config, options: DrillOptions) -> None:
    if options.keep:
        return
    for source, name in run.scratch_dbs:
        try:
            database_module(config.source(source).type).drop_scratch(config.source(source), name,
                                                                config=config)
        except DrkitError as exc:
            log.warning("drill: could not drop scratch database %s: %s", name, exc)


def _sqlite_sources(run: _Run) -> dict[str, Path]:
    """Restored SQLite databases by source name."""
    assert run.snapshot is not None and run.restored is not None
    out = {}
    for src in run.snapshot.manifest.sources:
        if src.type == "sqlite":
            folder = run.restored / src.name
            files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
            if len(files) != 1:
                raise StepFailed(f"source {src.name!r}: expected one restored database file "
                                 f"in {folder}, found {len(files)}")
            out[src.name] = files[0]
    return out


def _check_control_totals(run: _Run) -> None:
    with run.step("control totals") as info:
        dbs = _sqlite_sources(run)
        problems = []
        tables = 0
        for name, path in sorted(dbs.items()):
            expected = run.control.get(name)
            if not expected:
                problems.append(f"{name}: the snapshot recorded no control totals")
                continue
            # Recomputed by the algorithm the snapshot recorded (older snapshots: v1).
            actual = control_totals(path, algorithm=str(expected.get("algorithm")
                                                        or "drkit-sqlite-rows-v1"))
            exp_tables = expected.get("tables", expected)
            act_tables = actual.get("tables", actual)
            for table in sorted(set(exp_tables) | set(act_tables)):
                tables += 1
                if exp_tables.get(table) != act_tables.get(table):
                    problems.append(f"{name}.{table}: expected {exp_tables.get(table)}, "
                                    f"restored {act_tables.get(table)}")
        info["data"] = {"databases": len(dbs), "tables": tables}
        if problems:
            raise StepFailed("; ".join(problems[:5]) +
                             (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
        info["detail"] = f"{len(dbs)} database(s), {tables} tables match"


def _reconcile_ledger(run: _Run, config: Config, options: DrillOptions,
                      recovery: X25519PrivateKey, trusted: list[Any]) -> None:
    assert run.repo is not None
    with run.step("reconcile ledger") as info:
        dbs = _sqlite_sources(run)
        if not run.repo.keys_under(LEDGER_PREFIX + "/"):
            info["detail"] = "no ledger stored in this region; nothing to reconcile"
            return
        source = options.ledger_source or _ledger_source(config, dbs)
        if source not in dbs:
            raise StepFailed(f"ledger source {source!r} is not a SQLite source of snapshot "
                             f"{run.snapshot.id[:12] if run.snapshot else '?'}")
        stored = latest_ledger(run.repo, source, recovery, trusted)
        conn = sqlite3.connect(f"file:{dbs[source]}?mode=ro", uri=True)
        try:
            actual = compute_ledger(conn, stored.ledger.spec)
        except sqlite3.Error as exc:
            raise StepFailed(f"restored database {dbs[source].name}: {exc}") from None
        finally:
            conn.close()
        result = reconcile(stored.ledger, actual)
        totals = stored.ledger.totals
        run.report.reconciled = result.reconciled
        run.report.mismatched = [_mismatch(m) for m in result.mismatched]
        run.report.ledger = {
            "key": stored.key, "source": source, "built_at": utc_iso(stored.built_at),
            "merchants": totals.merchants, "cash_fen": totals.cash_fen,
            "cash_merchants": totals.cash_merchants,
            "traffic_merchants": totals.traffic_merchants,
            "restored_cash_fen": actual.totals.cash_fen,
            "cash_at_stake_fen": result.cash_at_stake_fen,
        }
        info["data"] = {"reconciled": result.reconciled,
                        "mismatched": len(result.mismatched)}
        if result.mismatched:
            first = run.report.mismatched[0]
            raise StepFailed(f"{len(result.mismatched)} of {totals.merchants} merchants do not "
                             f"reconcile, e.g. merchant {first['merchant_id']}: "
                             f"{first['summary']}")
        info["detail"] = f"all {result.reconciled} merchants reconcile"


def run_pitr_drill(config: Config, options: DrillOptions, recovery: X25519PrivateKey, *,
                   source: str, target_time: datetime, clock: Clock,
                   progress: Progress = NULL_PROGRESS,
                   monotonic: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> DrillReport:
    """A point-in-time drill of database source ``source`` from one region alone: verify
    the region, thaw the bases' and the archived log's objects, restore the newest base
    before ``target_time`` plus the log up to it into a private scratch server (reading
    only this region), and read every table's row count and control totals there.

    PostgreSQL (``postgres``): the base backup plus the archived WAL
    (``drkit.pitr.postgres.restore_to_point``, whose ``restore_command`` reads this
    region). MySQL/MariaDB (``mysql``): the daily dump that records its binlog position,
    its control totals checked in the scratch server, plus the archived binlog replayed
    on top (``drkit.pitr.mysql.restore_to_point``). RPO: the age of the region's newest
    archived log segment (objective ``objectives.log_rpo_seconds``)."""
    from drkit.repo.logarchive import LogCatalog

    kind = config.source(source).type
    if kind not in PITR_TYPES:
        raise InputError(f"source {source!r} is a {kind} source; a point-in-time drill is "
                         "for PostgreSQL and MySQL/MariaDB sources")
    region = config.region(options.region)
    start = monotonic()
    report = DrillReport(region=region.name, started_at=utc_iso(clock.now()),
                         rto_objective_seconds=config.objectives.rto_minutes * 60,
                         rpo_objective_seconds=config.objectives.log_rpo_seconds)
    report.point_in_time = {"source": source, "kind": PITR_TYPES[kind],
                            "target": utc_iso(target_time)}
    run = _Run(report, monotonic, sleep, progress)
    scratch, scratch_owned = _scratch(options)
    trusted = load_trusted_writer_keys(config)
    newest: str | None = None
    try:
        try:
            run.store = open_store(region.url, base_dir=config.base_dir, clock=clock)
            _verify(run, config, options, trusted, clock)
            assert run.view is not None
            with run.step("thaw and open") as info:
                origin_id = run.view.origin.removeprefix("drkit:")
                live = live_objects(run.store, origin_id, run.view.entries,
                                    region=region.name)
                thawed = _thaw(run, [k for k in live if not k.startswith("packs/")],
                               "metadata", options)
                run.repo = Repository.open(run.store, trusted, region=region.name)
                catalog = LogCatalog.from_entries(run.repo.visible.values())
                segments = catalog.of(source)
                wanted = {p for seg in segments for p in seg.packs}
                base_type = _BASE_TYPES[kind]
                for snap in run.repo.snapshots():
                    if any(s.name == source and s.type == base_type
                           for s in snap.manifest.sources):
                        wanted.update(snap.manifest.packs)
                thawed += _thaw(run, [k for k in live if k.startswith("packs/")
                                      and k.rsplit("/", 1)[-1] in wanted], "packs", options)
                newest = max((seg.archived for seg in segments if seg.in_sequence),
                             default=None)
                what = "WAL" if kind == "postgres" else "binlog"
                info["detail"] = (f"{len(segments)} archived {what} files of {source}; "
                                  f"{thawed} archived objects thawed")
                info["data"] = {"thawed": thawed, "log_files": len(segments)}
            with run.step("restore to a point in time") as info:
                run.restored = scratch / "pitr"
                restore = _restore_wal_point if kind == "postgres" else _restore_binlog_point
                info["detail"], files = restore(run, config, source, target_time, recovery)
                info["data"] = {"rows": report.point_in_time["rows"], "log_files": files}
            report.rto_seconds = monotonic() - start
            if newest is not None:
                report.rpo_seconds = (clock.now() - parse_iso(newest)).total_seconds()
        except StepFailed:
            pass
        except IntegrityError as exc:
            log.info("drill failed: %s", exc)
        except DrkitError as exc:
            report.error = str(exc)
    finally:
        _clean_up(run, scratch, scratch_owned, keep=options.keep)
    return report


#: Source types a point-in-time drill handles, with the kind of log they archive.
PITR_TYPES = {"postgres": "postgres-wal", "mysql": "mysql-binlog"}
#: The snapshot source type that holds each one's bases.
_BASE_TYPES = {"postgres": "postgres-base", "mysql": "mysql"}


def _restore_wal_point(run: _Run, config: Config, source: str, target_time: datetime,
                       recovery: X25519PrivateKey) -> tuple[str, int]:
    """The base backup plus the WAL, fetched by the scratch server from this region.
    Returns the step's detail and the number of log files used."""
    from drkit.pitr.postgres import restore_to_point

    assert run.restored is not None and run.report.point_in_time is not None
    result = restore_to_point(config, source, target_time=target_time, target_lsn=None,
                              scratch=run.restored, recovery=recovery, repo=run.repo,
                              region=run.report.region)
    rows = sum(db["rows"] for db in result.databases.values())
    run.report.snapshot = result.base_backup
    run.report.point_in_time.update({
        "base_backup": result.base_backup, "wal_files": result.segments_fetched,
        "recovery_stopped": result.stopped_at, "rows": rows, "databases": result.databases})
    return (f"base backup {result.base_backup[:12]} + {result.segments_fetched} WAL files; "
            f"{rows} rows in {len(result.databases)} database(s); "
            f"{result.stopped_at or 'recovery ended'}", result.segments_fetched)


def _restore_binlog_point(run: _Run, config: Config, source: str, target_time: datetime,
                          recovery: X25519PrivateKey) -> tuple[str, int]:
    """The dump that records its binlog position, loaded into a private server with its
    control totals checked, plus this region's archived binlog up to the target."""
    from drkit.pitr.mysql import restore_to_point

    assert run.restored is not None and run.report.point_in_time is not None
    result = restore_to_point(config, source, target_time=target_time, target_position=None,
                              target_gtid=None, scratch=run.restored, recovery=recovery,
                              repo=run.repo)
    rows = sum(db["rows"] for db in result.databases.values())
    checked = all(db["base_totals_checked"] for db in result.databases.values())
    run.report.snapshot = result.base_snapshot
    run.report.point_in_time.update({
        "base_snapshot": result.base_snapshot, "base_position": result.base_position,
        "binlog_files": result.files_replayed, "base_totals_checked": checked,
        "rows": rows, "databases": result.databases})
    return (f"snapshot {result.base_snapshot[:12]} (dump at "
            f"{', '.join(sorted(set(result.base_position.values())))}"
            f"{'; its control totals match' if checked else ''}) + "
            f"{count(len(result.files_replayed), 'binlog file')}; {rows} rows in "
            f"{len(result.databases)} database(s)", len(result.files_replayed))


def _ledger_source(config: Config, dbs: dict[str, Path]) -> str:
    configured = config.ledger.get("source")
    if isinstance(configured, str):
        return configured
    if len(dbs) == 1:
        return next(iter(dbs))
    raise StepFailed("several SQLite sources: name the ledger's with [ledger] source = ... "
                     "or --ledger-source")


def _mismatch(m: Any) -> dict[str, Any]:
    data: dict[str, Any] = m.to_dict() if hasattr(m, "to_dict") else dict(m)
    data.setdefault("merchant_id", getattr(m, "merchant_id", None))
    if "summary" not in data:
        data["summary"] = _summarise(data)
    return data


def _summarise(d: dict[str, Any]) -> str:
    parts = [str(d.get("kind", "changed"))]
    diffs = d.get("fields") or d.get("differences") or {}
    if isinstance(diffs, dict):
        for name, value in list(diffs.items())[:4]:
            if isinstance(value, dict) and "expected" in value:
                parts.append(f"{name} {value['expected']} -> {value.get('actual')}")
            else:
                parts.append(f"{name} {value}")
    stake = d.get("cash_at_stake_fen")
    if stake:
        parts.append(f"cash at stake {int(stake) // 100:,}.{int(stake) % 100:02d}")
    return "; ".join(parts)


__all__ = ["PITR_TYPES", "DrillOptions", "StorageError", "run_drill", "run_pitr_drill"]
