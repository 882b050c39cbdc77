"""The job runner: one scheduled run, from the daemon or from a crontab line.

Every run goes through ``run_job`` (the daemon calls it in a worker thread, crontab lines
call it through ``drkit schedule run-job NAME``), so recording is in one place:

1. take the flock'd lock file of the job's kind (``locks/<kind>.lock``); if another run of
   that kind holds it, the run is *skipped* and recorded as such (never queued behind);
2. run each drkit command as a child process ``drkit --config FILE --json ...``
   (the console script: ``drkit.schedule.crontab.drkit_command``)
   in its own session, capture its exit code and its one JSON document;
3. per command: a ``RunRecord`` (state.py), an audit event (``drkit.audit.record_event``),
   the metrics file rewritten, and on failure or findings a webhook notification.

The child takes the repository's own lock, which is what protects a repository shared by
several hosts; the lock file here keeps one host from starting a second run of a kind.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from drkit.clock import Clock, utc_iso
from drkit.config import Config
from drkit.metrics import MetricFamily, write_textfile
from drkit.notify import Delivery, redact_text, send_notification
from drkit.schedule.spec import OFF, ScheduleSettings, drill_rotation
from drkit.schedule.state import SCHEDULED_ENV, RunRecord, RunStore, outcome_for_exit

log = logging.getLogger(__name__)
SUMMARY_LIMIT = 256 * 1024   # keep a command's JSON document in the record up to this size
PRUNE_REASON = "scheduled retention"


@dataclass(frozen=True)
class CommandRun:
    """One drkit command a job runs: labels for records/metrics and its arguments."""

    task: str
    target: str
    argv: tuple[str, ...]


@dataclass
class JobResult:
    name: str
    records: list[RunRecord] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """The worst outcome as a drkit exit code (skipped counts as clean)."""
        worst = 0
        for rec in self.records:
            code = {"ok": 0, "skipped": 0, "findings": 1, "refused": 3}.get(rec.outcome, 2)
            worst = max(worst, code)
        return worst


class ActiveRuns:
    """Child processes of this process, so SIGTERM can be forwarded and awaited."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._terminated: set[int] = set()
        self.stopping = threading.Event()

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._children[proc.pid] = proc

    def remove(self, proc: subprocess.Popen[bytes]) -> bool:
        """Forget ``proc``; True when it was terminated on purpose."""
        with self._lock:
            self._children.pop(proc.pid, None)
            return proc.pid in self._terminated

    def count(self) -> int:
        with self._lock:
            return len(self._children)

    def terminate_all(self) -> int:
        """SIGTERM every running child's process group; drkit commands then stop cleanly."""
        self.stopping.set()
        with self._lock:
            procs = list(self._children.values())
            for proc in procs:
                self._terminated.add(proc.pid)
        for proc in procs:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            log.warning("sent SIGTERM to child pid %d", proc.pid)
        return len(procs)


ACTIVE = ActiveRuns()


@contextmanager
def kind_lock(lock_dir: Path, kind: str, job: str) -> Iterator[bool]:
    """Hold ``lock_dir/<kind>.lock`` (flock, non-blocking); yields False if it is taken."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / f"{kind}.lock"
    fh: IO[str] = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held across yield
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} host {socket.gethostname()} job {job}\n")
        fh.flush()
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    finally:
        fh.close()


# -- what a job runs -----------------------------------------------------------------------

def plan_commands(settings: ScheduleSettings, name: str, store: RunStore) -> list[CommandRun]:
    """The drkit commands job ``name`` runs now (drill rotation reads the run records)."""
    if name == "snapshot":
        return [CommandRun("snapshot", "", ("snapshot",))]
    if name == "replicate":
        return [CommandRun("replicate", "", ("replicate",))]
    if name == "verify":
        return [CommandRun("verify", "", ("verify", "--all"))]
    if name == "verify-read-data":
        return [CommandRun("verify-read-data", "",
                           ("verify", "--all", f"--read-data={settings.read_data_sample}"))]
    if name == "ledger":
        return [CommandRun("ledger", s, ("ledger", "build", "--source", s))
                for s in settings.ledger_sources]
    secrets: tuple[str, ...] = ()
    if settings.recovery_key:
        secrets += ("--recovery-key", str(settings.recovery_key))
    if settings.passphrase_file:
        secrets += ("--passphrase-file", str(settings.passphrase_file))
    if name == "drill":
        region = drill_rotation(settings.regions, last_drills(store, settings.regions))[0]
        return [CommandRun("drill", region, ("drill", "--region", region, *secrets))]
    if name == "drill-all":
        return [CommandRun("drill", r, ("drill", "--region", r, *secrets))
                for r in settings.regions]
    if name == "cloud-snapshot":
        return [CommandRun("cloud-snapshot", "", ("cloud", "snapshot"))]
    if name == "prune-request":
        return [CommandRun("prune-request", "",
                           ("request", "prune", "--reason", PRUNE_REASON))]
    raise ValueError(f"unknown job {name!r}")


def last_drills(store: RunStore, regions: tuple[str, ...]) -> dict[str, datetime | None]:
    """Last completed drill per region (a drill with findings still counts as done)."""
    out: dict[str, datetime | None] = {}
    for region in regions:
        rec = store.get(f"drill:{region}", "last_completed")
        out[region] = rec.finished_at if rec else None
    return out


# -- figures from a command's JSON document ------------------------------------------------

_BYTES_KEYS = ("bytes_stored", "bytes_written", "bytes_uploaded", "bytes_added", "bytes_copied",
               "bytes_checked", "bytes_read", "bytes", "total_bytes", "size")


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _scopes(doc: Any) -> list[dict[str, Any]]:
    if not isinstance(doc, dict):
        return []
    scopes = [doc]
    for name in ("summary", "totals", "stats", "result", "drill", "report"):
        if isinstance(doc.get(name), dict):
            scopes.append(doc[name])
    return scopes


def extract_figures(doc: Any) -> dict[str, float | None]:
    """bytes, findings, RTO and RPO (seconds) from a command's --json document.

    Looked up by name at the top level and in a ``summary``/``totals``/``stats``/``result``
    sub-object: ``bytes_written``/``bytes``/...; ``findings`` (a list or a count);
    ``rto_seconds`` or ``rto_minutes``; ``rpo_seconds``, ``rpo_minutes`` or ``rpo_hours``.
    Reports per region (``regions``, as replicate and verify give) add up their bytes.
    """
    out: dict[str, float | None] = {"bytes": None, "findings": None,
                                    "rto_seconds": None, "rpo_seconds": None}
    for scope in _scopes(doc):
        if out["bytes"] is None:
            for key in _BYTES_KEYS:
                if (v := _num(scope.get(key))) is not None:
                    out["bytes"] = v
                    break
        if out["findings"] is None:
            f = scope.get("findings", scope.get("finding_count", scope.get("mismatched_count")))
            out["findings"] = float(len(f)) if isinstance(f, list) else _num(f)
        for what in ("rto", "rpo"):
            slot = f"{what}_seconds"
            if out[slot] is None:
                for suffix, factor in (("_seconds", 1), ("_minutes", 60), ("_hours", 3600)):
                    if (v := _num(scope.get(what + suffix))) is not None:
                        out[slot] = v * factor
                        break
    if out["bytes"] is None:
        # per-region reports (replicate, verify): the sum over the regions
        total = None
        for region in _region_reports(doc):
            for key in _BYTES_KEYS:
                if (v := _num(region.get(key))) is not None:
                    total = (total or 0.0) + v
                    break
        out["bytes"] = total
    return out


def _region_reports(doc: Any) -> list[dict[str, Any]]:
    regions = doc.get("regions") if isinstance(doc, dict) else None
    if isinstance(regions, dict):
        regions = list(regions.values())
    return [r for r in regions if isinstance(r, dict)] if isinstance(regions, list) else []


# -- running ---------------------------------------------------------------------------------

def child_argv(config_file: Path, argv: tuple[str, ...], python: str | None = None
               ) -> list[str]:
    from drkit.schedule.crontab import drkit_command

    return [*drkit_command(python), "--config", str(config_file), "--json", *argv]


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return redact_text(lines[-1].removeprefix("drkit: error: "))[:500] if lines else ""


def run_command(config: Config, settings: ScheduleSettings, cmd: CommandRun, *,
                clock: Clock, origin: str, scheduled_for: datetime | None = None,
                python: str | None = None) -> RunRecord:
    """Run one drkit command as a child process and return its record (never raises)."""
    started = clock.now()
    t0 = time.monotonic()
    exit_code: int | None = None
    terminated = False
    stdout = b""
    stderr = b""
    argv = child_argv(settings.config_file, cmd.argv, python)
    try:
        # The child is told it runs for the scheduler, which keeps its run record itself.
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=config.base_dir,
                                start_new_session=True,
                                env={**os.environ, SCHEDULED_ENV: "1"})
    except OSError as exc:
        stderr = f"cannot start {argv[0]}: {exc.strerror}".encode()
    else:
        ACTIVE.add(proc)
        try:
            stdout, stderr = proc.communicate()
        finally:
            terminated = ACTIVE.remove(proc)
        exit_code = proc.returncode
    doc: Any = None
    text = stdout.decode("utf-8", "replace").strip()
    if text:
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
    figures = extract_figures(doc)
    err = stderr.decode("utf-8", "replace")
    message = _last_line(err)
    outcome = outcome_for_exit(exit_code, terminated=terminated)
    if exit_code is not None and exit_code < 0 and not message:
        message = f"killed by signal {-exit_code}"
    return RunRecord(
        task=cmd.task, target=cmd.target, command=list(cmd.argv), origin=origin,
        started=utc_iso(started), finished=utc_iso(clock.now()),
        duration_seconds=round(time.monotonic() - t0, 3), exit_code=exit_code,
        outcome=outcome, scheduled_for=utc_iso(scheduled_for) if scheduled_for else None,
        message=message,
        bytes=int(figures["bytes"]) if figures["bytes"] is not None else None,
        findings=int(figures["findings"]) if figures["findings"] is not None else None,
        rto_seconds=figures["rto_seconds"], rpo_seconds=figures["rpo_seconds"],
        summary=doc if len(text) <= SUMMARY_LIMIT else None,
    )


def execute(config: Config, settings: ScheduleSettings, name: str, lock_kind: str,
            commands: list[CommandRun], *, clock: Clock, origin: str,
            scheduled_for: datetime | None = None, python: str | None = None) -> JobResult:
    """Run ``commands`` under the ``lock_kind`` lock and report each outcome.

    Never raises for a failing command: failures become records, metrics and
    notifications. A run that finds the lock taken is recorded as skipped.
    """
    result = JobResult(name)
    store = RunStore(settings.state_dir)
    with kind_lock(settings.lock_dir(), lock_kind, name) as got:
        if not got:
            log.warning("job %s skipped: another %s job is running (lock %s)", name,
                        lock_kind, settings.lock_dir() / f"{lock_kind}.lock")
            now = utc_iso(clock.now())
            for cmd in commands[:1] or [CommandRun(name, "", ())]:
                rec = RunRecord(task=cmd.task, target=cmd.target, command=list(cmd.argv),
                                origin=origin, started=now, finished=now,
                                duration_seconds=0.0, exit_code=None, outcome="skipped",
                                scheduled_for=utc_iso(scheduled_for) if scheduled_for else None,
                                message=f"another {lock_kind} job holds the lock")
                report(config, settings, store, rec, clock=clock, result=result)
            return result
        for cmd in commands:
            if ACTIVE.stopping.is_set():
                log.warning("not starting %s %s: shutting down", cmd.task, cmd.target)
                break
            rec = run_command(config, settings, cmd, clock=clock, origin=origin,
                              scheduled_for=scheduled_for, python=python)
            report(config, settings, store, rec, clock=clock, result=result)
    return result


def run_job(config: Config, settings: ScheduleSettings, name: str, *, clock: Clock,
            origin: str, scheduled_for: datetime | None = None,
            python: str | None = None) -> JobResult:
    """Run scheduled job ``name`` (and replication after a successful snapshot)."""
    if not settings.runnable(name):
        settings.job(name)  # raises InputError naming the scheduled jobs
    store = RunStore(settings.state_dir)
    from drkit.schedule.spec import LOCK_KIND

    result = execute(config, settings, name, LOCK_KIND[name],
                     plan_commands(settings, name, store), clock=clock, origin=origin,
                     scheduled_for=scheduled_for, python=python)
    chain = (name == "snapshot" and settings.replicate_after_snapshot
             and result.records and result.records[-1].outcome == "ok")
    if chain and not ACTIVE.stopping.is_set():
        after = execute(config, settings, "replicate", LOCK_KIND["replicate"],
                        plan_commands(settings, "replicate", store), clock=clock,
                        origin=origin, python=python)
        result.records += after.records
        result.deliveries += after.deliveries
    return result


def record_missed(config: Config, settings: ScheduleSettings, name: str,
                  scheduled_for: datetime, *, clock: Clock) -> JobResult:
    """Report a run the daemon did not start because it was later than the grace time."""
    result = JobResult(name)
    now = utc_iso(clock.now())
    rec = RunRecord(task=name, target="", command=[], origin="daemon", started=now,
                    finished=now, duration_seconds=0.0, exit_code=None, outcome="missed",
                    scheduled_for=utc_iso(scheduled_for),
                    message=f"missed: more than {settings.misfire_grace_seconds} s late "
                            "(schedule.misfire_grace_seconds)")
    report(config, settings, RunStore(settings.state_dir), rec, clock=clock, result=result)
    return result


# -- reporting: state, audit, metrics, webhook -----------------------------------------------

def report(config: Config, settings: ScheduleSettings, store: RunStore, rec: RunRecord, *,
           clock: Clock, result: JobResult) -> None:
    """Record ``rec`` everywhere; each channel's failure is logged, never raised."""
    result.records.append(rec)
    level = logging.INFO if rec.outcome in ("ok", "skipped") else logging.WARNING
    log.log(level, "job %s%s: %s (exit %s, %.1f s)%s", rec.task,
            f" [{rec.target}]" if rec.target else "", rec.outcome, rec.exit_code,
            rec.duration_seconds, f": {rec.message}" if rec.message else "")
    try:
        store.add(rec)
    except OSError as exc:
        log.error("cannot write run record in %s: %s", settings.state_dir, exc.strerror)
    audit(config, rec, clock)
    try:
        write_metrics(settings, store, clock)
    except Exception as exc:  # metrics must never stop the job from being reported
        log.error("cannot write metrics file %s: %s", settings.metrics_file, exc)
    if rec.outcome not in ("ok", "skipped") and settings.webhook.configured:
        from drkit.verify.anchors import current_anchors

        result.deliveries += notify(settings, rec, current_anchors(config, clock))


def audit(config: Config, rec: RunRecord, clock: Clock) -> None:
    """The one call into the audit log (drkit.audit.record_event never raises)."""
    try:
        from drkit.audit import record_event
    except ImportError:
        log.debug("drkit.audit not available; run of %s not audited", rec.task)
        return
    try:
        # The audit log knows ok/findings/refused/error; the precise outcome (crashed,
        # terminated, missed, skipped) goes in the details.
        result = {"ok": "ok", "skipped": "ok", "findings": "findings",
                  "refused": "refused"}.get(rec.outcome, "error")
        record_event(
            config, action=f"schedule.{rec.task}", result=result,
            params={"task": rec.task, "target": rec.target, "command": rec.command,
                    "origin": rec.origin, "scheduled_for": rec.scheduled_for},
            details={"outcome": rec.outcome, "exit_code": rec.exit_code,
                     "duration_seconds": rec.duration_seconds,
                     "bytes": rec.bytes, "findings": rec.findings,
                     "rto_seconds": rec.rto_seconds, "rpo_seconds": rec.rpo_seconds,
                     "message": rec.message, "host": rec.host},
            clock=clock)
    except Exception as exc:  # record_event promises not to raise; be sure anyway
        log.error("audit of %s failed: %s", rec.task, type(exc).__name__)


def notify(settings: ScheduleSettings, rec: RunRecord,
           anchors: list[str] | None = None) -> list[Delivery]:
    """The webhook message for a run; ``anchors`` are the newest checkpoint fingerprints,
    sent so that a verifier that loses its state has them somewhere else."""
    what = f"{rec.task}" + (f" ({rec.target})" if rec.target else "")
    event = {
        "source": "drkit",
        "event": f"job_{rec.outcome}",
        "host": rec.host,
        "config": str(settings.config_file),
        "task": rec.task,
        "target": rec.target,
        "outcome": rec.outcome,
        "exit_code": rec.exit_code,
        "scheduled_for": rec.scheduled_for,
        "started": rec.started,
        "finished": rec.finished,
        "duration_seconds": rec.duration_seconds,
        "findings": rec.findings,
        "message": rec.message,
        "anchors": list(anchors or []),
    }
    lines = [f"host: {rec.host}", f"job: {what}",
             f"outcome: <font color=\"warning\">{rec.outcome}</font> (exit {rec.exit_code})",
             f"at: {rec.finished}"]
    if rec.findings:
        lines.append(f"findings: {rec.findings}")
    if rec.message:
        lines.append(f"message: {rec.message}")
    lines += [f"anchor: `{a}`" for a in anchors or []]
    return send_notification(url=settings.webhook.url, wecom=settings.webhook.wecom,
                             event=event, title=f"drkit: {what} {rec.outcome}", lines=lines,
                             timeout=settings.webhook.timeout_seconds)


def _ts(text: str) -> float:
    from drkit.clock import parse_iso

    return parse_iso(text).timestamp()


def metric_families(store: RunStore, clock: Clock) -> list[MetricFamily]:
    """Metrics from the run records (labels ``task`` and ``target``, not ``job``, which
    Prometheus reserves for the scrape job)."""
    last_run = MetricFamily("drkit_job_last_run_timestamp_seconds",
                            "When the job's last run finished (Unix time).")
    last_ok = MetricFamily("drkit_job_last_success_timestamp_seconds",
                           "When the job last finished with exit code 0 (Unix time).")
    duration = MetricFamily("drkit_job_last_duration_seconds",
                            "Duration of the job's last run.")
    code = MetricFamily("drkit_job_last_exit_code",
                        "Exit code of the job's last run (0 clean, 1 findings, 2 error, "
                        "3 refused, other: crashed; negative: killed by that signal).")
    failed = MetricFamily("drkit_job_last_run_failed",
                          "1 when the job's last run did not complete (error, refused, "
                          "crashed, terminated).")
    size = MetricFamily("drkit_job_last_bytes", "Bytes reported by the job's last run.")
    findings = MetricFamily("drkit_job_last_findings",
                            "Findings reported by the job's last completed run.")
    rto = MetricFamily("drkit_drill_rto_seconds",
                       "Recovery time measured by the last completed drill of the region.")
    rpo = MetricFamily("drkit_drill_rpo_seconds",
                       "Recovery point (data age) of the last completed drill of the region.")
    lag = MetricFamily("drkit_replication_lag_hours",
                       "Replication lag of each region reported by the last completed "
                       "replicate run.")
    written = MetricFamily("drkit_schedule_metrics_written_timestamp_seconds",
                           "When drkit last wrote this file.")
    for entry in store.all_states().values():
        last = entry["last"]
        labels = {"task": last.task, "target": last.target}
        last_run.add(_ts(last.finished), **labels)
        duration.add(last.duration_seconds, **labels)
        if last.exit_code is not None:
            code.add(last.exit_code, **labels)
        failed.add(0 if last.completed else 1, **labels)
        if last.bytes is not None:
            size.add(last.bytes, **labels)
        if "last_success" in entry:
            last_ok.add(_ts(entry["last_success"].finished), **labels)
        done = entry.get("last_completed")
        if done is not None:
            if done.findings is not None:
                findings.add(done.findings, **labels)
            if done.task == "drill":
                if done.rto_seconds is not None:
                    rto.add(done.rto_seconds, region=done.target)
                if done.rpo_seconds is not None:
                    rpo.add(done.rpo_seconds, region=done.target)
            if done.task == "replicate":
                for region in _region_reports(done.summary):
                    if (hours := _num(region.get("lag_hours"))) is not None:
                        lag.add(hours, region=str(region.get("region", "")))
    written.add(clock.now().timestamp())
    return [last_run, last_ok, duration, code, failed, size, findings, rto, rpo, lag, written]


def stream_families(state_dir: Path) -> list[MetricFamily]:
    """Metrics of the WAL streams (``drkit wal stream`` writes its state after each
    archived version; the daemon's supervisor adds its restarts)."""
    from drkit.pitr.stream import STREAMS_DIR, read_stream_states

    lsn = MetricFamily("drkit_wal_stream_last_archived_lsn",
                       "WAL position (bytes) up to which the stream has archived.")
    when = MetricFamily("drkit_wal_stream_last_archived_timestamp_seconds",
                        "When the stream last archived new WAL (Unix time).")
    commit = MetricFamily("drkit_wal_stream_last_commit_timestamp_seconds",
                          "Newest commit time inside the archived WAL (Unix time).")
    lag = MetricFamily("drkit_wal_stream_lag_seconds",
                       "Seconds between the newest archived commit and its archiving.")
    restarts = MetricFamily("drkit_wal_stream_restarts", "Restarts of the stream by the "
                            "scheduler's supervisor since the scheduler started.",
                            type="counter")
    for st in read_stream_states(state_dir / STREAMS_DIR):
        labels = {"source": str(st.get("archive", ""))}
        if (v := _num(st.get("last_lsn_bytes"))) is not None:
            lsn.add(v, **labels)
        if isinstance(st.get("last_archived"), str):
            when.add(_ts(st["last_archived"]), **labels)
        if isinstance(st.get("last_commit"), str):
            commit.add(_ts(st["last_commit"]), **labels)
        if (v := _num(st.get("lag_seconds"))) is not None:
            lag.add(v, **labels)
        if (v := _num(st.get("restarts"))) is not None:
            restarts.add(v, **labels)
    return [lsn, when, commit, lag, restarts]


def write_metrics(settings: ScheduleSettings, store: RunStore, clock: Clock) -> None:
    write_textfile(settings.metrics_file, metric_families(store, clock)
                   + stream_families(settings.state_dir))


__all__ = ["ACTIVE", "OFF", "CommandRun", "JobResult", "execute", "extract_figures",
           "kind_lock", "plan_commands", "record_missed", "run_command", "run_job",
           "write_metrics"]
