"""Run records: what every scheduled run did, kept in the schedule state folder.

Layout under ``ScheduleSettings.state_dir`` (default ``<cache>/schedule``)::

    runs/<task>[:<target>].json   {"format": "drkit-run-state", "version": 1,
                                   "last": RECORD, "last_completed": RECORD,
                                   "last_success": RECORD}
    history.jsonl                 every record, one JSON object a line, appended
    state.lock                    flock'd around each update
    locks/<kind>.lock             one per job kind, held while a job of that kind runs

"completed" means the command ran to the end (exit 0 or 1: clean or findings);
"success" means exit 0. Files are replaced atomically, so a crash mid-update leaves the
previous state. ``drkit status`` and the metrics file are computed from these records.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from drkit.clock import parse_iso, utc_iso

STATE_FORMAT = "drkit-run-state"
STATE_VERSION = 1
OUTCOMES = ("ok", "findings", "error", "refused", "crashed", "terminated", "skipped", "missed")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")


#: Set in the environment of commands the scheduler runs: their run record is written by
#: the scheduler, so the command does not write a "manual" one as well.
SCHEDULED_ENV = "DRKIT_SCHEDULED_RUN"


def record_manual_run(config: Any, argv: list[str], exit_code: int, result: Any, *,
                      started: datetime, finished: datetime) -> None:
    """A run record for ``drkit verify`` (every region) or ``drkit drill --region R`` run by
    hand, so ``drkit status`` counts it like a scheduled one."""
    from drkit.schedule.runner import extract_figures
    from drkit.schedule.spec import load_schedule

    if os.environ.get(SCHEDULED_ENV):
        return
    task, target = argv[0], ""
    if task == "verify":
        if any(a == "--region" or a.startswith("--region=") for a in argv):
            return  # a partial verify does not stand for the scheduled one
        if any(a.startswith("--read-data") for a in argv):
            task = "verify-read-data"
    elif task == "drill":
        for i, arg in enumerate(argv):
            if arg == "--region" and i + 1 < len(argv):
                target = argv[i + 1]
            elif arg.startswith("--region="):
                target = arg.split("=", 1)[1]
        if not target:
            return
    else:
        return
    figures = extract_figures(result)
    record = RunRecord(
        task=task, target=target, command=list(argv), origin="manual",
        started=utc_iso(started), finished=utc_iso(finished),
        duration_seconds=round((finished - started).total_seconds(), 3), exit_code=exit_code,
        outcome=outcome_for_exit(exit_code),
        findings=int(figures["findings"]) if figures["findings"] is not None else None,
        rto_seconds=figures["rto_seconds"], rpo_seconds=figures["rpo_seconds"])
    RunStore(load_schedule(config).state_dir).add(record)


def outcome_for_exit(code: int | None, *, terminated: bool = False) -> str:
    if terminated:
        return "terminated"
    # 4 is verify's FIRST-CONTACT (no trusted state on this host): loud like findings.
    return {0: "ok", 1: "findings", 2: "error", 3: "refused", 4: "findings"}.get(
        code if code is not None else -1, "crashed")


@dataclass
class RunRecord:
    task: str                      # job name: snapshot, verify, drill, ...
    target: str                    # region or source for per-target tasks, else ""
    command: list[str]             # drkit arguments after --config/--json
    origin: str                    # "daemon", "cron" or "manual"
    started: str                   # ISO 8601 UTC
    finished: str
    duration_seconds: float
    exit_code: int | None
    outcome: str
    scheduled_for: str | None = None
    message: str = ""
    bytes: int | None = None
    findings: int | None = None
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    summary: Any = None            # the command's --json document (None if none/too big)
    host: str = field(default_factory=lambda: os.uname().nodename)

    @property
    def key(self) -> str:
        return f"{self.task}:{self.target}" if self.target else self.task

    @property
    def finished_at(self) -> datetime:
        return parse_iso(self.finished)

    @property
    def completed(self) -> bool:
        return self.outcome in ("ok", "findings")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class RunStore:
    """The run records of one state folder."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.runs_dir = state_dir / "runs"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "state.lock", "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _path(self, key: str) -> Path:
        return self.runs_dir / f"{_UNSAFE.sub('_', key)}.json"

    def add(self, record: RunRecord) -> None:
        """Append to the history; update last/last_completed/last_success of its key."""
        with self._locked():
            self.state_dir.mkdir(parents=True, exist_ok=True)
            with open(self.state_dir / "history.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record.to_dict(), sort_keys=True) + "\n")
            if record.outcome in ("skipped", "missed"):
                return  # nothing ran: the last real run stays the last run
            path = self._path(record.key)
            doc = self._read(path)
            doc["last"] = record.to_dict()
            if record.completed:
                doc["last_completed"] = record.to_dict()
            if record.outcome == "ok":
                doc["last_success"] = record.to_dict()
            _atomic_write(path, json.dumps(doc, indent=1, sort_keys=True))

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            doc = {}
        if not isinstance(doc, dict):
            doc = {}
        doc["format"], doc["version"] = STATE_FORMAT, STATE_VERSION
        return doc

    def get(self, key: str, which: str = "last") -> RunRecord | None:
        doc = self._read(self._path(key))
        data = doc.get(which)
        return RunRecord.from_dict(data) if isinstance(data, dict) else None

    def all_states(self) -> dict[str, dict[str, RunRecord]]:
        """key -> {"last": ..., "last_completed": ..., "last_success": ...}."""
        out: dict[str, dict[str, RunRecord]] = {}
        if not self.runs_dir.is_dir():
            return out
        for path in sorted(self.runs_dir.glob("*.json")):
            doc = self._read(path)
            entry = {w: RunRecord.from_dict(doc[w]) for w in
                     ("last", "last_completed", "last_success") if isinstance(doc.get(w), dict)}
            if "last" in entry:
                out[entry["last"].key] = entry
        return out

    def history(self) -> list[RunRecord]:
        path = self.state_dir / "history.jsonl"
        if not path.exists():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError, TypeError):
                out.append(RunRecord.from_dict(json.loads(line)))
        return out
