"""`drkit status` on real repositories, and the audit events of scheduled runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from drkit.clock import FixedClock
from drkit.config import load_config
from drkit.schedule.spec import load_schedule
from drkit.schedule.state import RunRecord, RunStore


def test_status_names_the_source_whose_snapshot_is_two_days_old(
        drkit: Any, repository: Callable[..., Path], clock: FixedClock) -> None:
    repository()
    now = clock.now()
    clock.set(now - timedelta(days=2))
    assert drkit("snapshot").exit_code == 0  # both sources, two days ago
    clock.set(now - timedelta(hours=1))
    assert drkit("snapshot", "--source", "uploads").exit_code == 0  # only uploads is fresh
    clock.set(now)
    res = drkit("--json", "status")
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    rows = {r["source"]: r for r in doc["snapshots"]}
    assert rows["shop"]["age_hours"] == 48 and rows["shop"]["ok"] is False
    assert rows["uploads"]["age_hours"] == 1 and rows["uploads"]["ok"] is True
    assert ("source 'shop': last snapshot is 48 h old (objectives.rpo_hours = 26)"
            in doc["problems"])
    assert not any("'uploads'" in p for p in doc["problems"])
    # nothing was replicated: the other regions lag by the age of the oldest snapshot
    lag = {r["region"]: r for r in doc["replication"]}
    assert set(lag) == {"nanjing", "shanghai"}
    assert lag["nanjing"]["lag_hours"] == 48 and lag["nanjing"]["missing"] == 2
    assert any("region 'shanghai': replication lags 48 h" in p for p in doc["problems"])
    # verification and drills never ran
    assert "verify: never completed" in doc["problems"]
    assert "drill of region 'beijing': never completed" in doc["problems"]
    # the human form says the same
    text = drkit("status")
    assert text.exit_code == 1
    assert "source 'shop': last snapshot is 48 h old" in text.stdout
    assert "STALE" in text.stdout


def test_status_clean_when_everything_is_recent(drkit: Any, repository: Callable[..., Path],
                                                clock: FixedClock, tmp_path: Path,
                                                only_jobs: Callable[..., str]) -> None:
    path = repository(only_jobs(verify="15 * * * *", drill="0 6 1 * *"))
    # a single-region repository: no replication to wait for
    text = path.read_text()
    start = text.index("[regions.shanghai]")
    end = text.index("# What gets snapshotted")
    path.write_text(text[:start] + text[end:])
    settings = load_schedule(load_config(path))
    assert settings.regions == ("beijing",)
    assert drkit("snapshot").exit_code == 0
    store = RunStore(settings.state_dir)

    def ran(task: str, target: str, hours_ago: float, outcome: str = "ok",
            findings: int | None = 0) -> None:
        at = (clock.now() - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
        store.add(RunRecord(task=task, target=target, command=[task], origin="daemon",
                            started=at, finished=at, duration_seconds=1.0,
                            exit_code={"ok": 0, "findings": 1}[outcome], outcome=outcome,
                            findings=findings, rto_seconds=60.0, rpo_seconds=7200.0))

    ran("verify", "", 0.5)
    ran("drill", "beijing", 24 * 20)
    res = drkit("--json", "status")
    doc = json.loads(res.stdout)
    assert res.exit_code == 0, doc["problems"]
    assert doc["ok"] is True and doc["replication"] == []
    assert doc["drills"][0]["rto_seconds"] == 60.0
    # a verification with findings is a problem even when it is recent
    ran("verify", "", 0.2, outcome="findings", findings=3)
    res = drkit("--json", "status")
    assert res.exit_code == 1
    assert json.loads(res.stdout)["problems"] == ["verify: last run found 3 problems"]
    # a failed drill says FAILED, never "found 0 problem(s)"
    ran("drill", "beijing", 1, outcome="findings", findings=0)
    problems = json.loads(drkit("--json", "status").stdout)["problems"]
    assert "drill of region 'beijing': last drill FAILED" in problems
    ran("drill", "beijing", 0.5)
    # and an old one is stale: allowance = 2 hourly periods + 6 h grace
    ran("verify", "", 9)
    store2 = RunStore(settings.state_dir)
    assert store2.get("verify", "last_completed").findings == 0
    res = drkit("--json", "status")
    problems = json.loads(res.stdout)["problems"]
    assert res.exit_code == 1
    assert problems == ["verify: last completed 9 h ago (allowed 8 h by the verify schedule)"]


def test_scheduled_runs_are_in_the_audit_log(drkit: Any, repository: Callable[..., Path],
                                             clock: FixedClock) -> None:
    from drkit.audit import AuditLog

    path = repository()
    res = drkit("--json", "schedule", "run-job", "snapshot")
    doc = json.loads(res.stdout)
    tasks = [(r["task"], r["outcome"]) for r in doc["runs"]]
    assert tasks[0] == ("snapshot", "ok")
    snap = doc["runs"][0]
    assert snap["bytes"] and snap["bytes"] > 100_000  # bytes_stored of the snapshot
    # replicate is chained after a successful snapshot
    assert [t for t, _ in tasks] == ["snapshot", "replicate"]
    events = [e for e in _events(AuditLog.open(load_config(path), clock))
              if str(e.get("action", "")).startswith("schedule.")]
    actions = [(e["action"], e["result"], e["details"]["outcome"]) for e in events]
    assert ("schedule.snapshot", "ok", "ok") in actions
    assert any(a[0] == "schedule.replicate" for a in actions)
    assert all(e["params"]["origin"] == "manual" for e in events)
    # status: shanghai is ARCHIVE, yet it is listed without a thaw (its metadata is read
    # from the primary's identical copy, checked against its own journal), like nanjing
    doc = json.loads(drkit("--json", "status").stdout)
    rows = {r["region"]: r for r in doc["replication"]}
    assert rows["nanjing"] == {**rows["nanjing"], "lag_hours": 0, "missing": 0, "ok": True}
    assert rows["shanghai"] == {**rows["shanghai"], "lag_hours": 0, "missing": 0, "ok": True}
    assert not any("region" in p and "replication" in p for p in doc["problems"])


def _events(log: Any) -> list[dict[str, Any]]:
    out = []
    for entry in log.read().entries if hasattr(log.read(), "entries") else log.read()[1]:
        note = getattr(entry, "note", None)
        if isinstance(note, dict):
            out.append(note)
    return out


def test_scheduled_drill_measures_rto_and_rpo_per_region(
        drkit: Any, repository: Callable[..., Path], clock: FixedClock) -> None:
    path = repository('passphrase_file = "pass.txt"\n')
    settings = load_schedule(load_config(path))
    assert drkit("--json", "schedule", "run-job", "snapshot").exit_code == 0
    res = drkit("--json", "schedule", "run-job", "drill")
    [run] = json.loads(res.stdout)["runs"]
    assert run["command"] == ["drill", "--region", "beijing", "--passphrase-file",
                              str(path.parent / "pass.txt")]
    assert run["outcome"] == "ok", run["message"]
    assert run["rto_seconds"] > 0 and run["rpo_seconds"] >= 0
    prom = settings.metrics_file.read_text()
    assert 'drkit_drill_rto_seconds{region="beijing"} ' in prom
    assert 'drkit_drill_rpo_seconds{region="beijing"} ' in prom
    doc = json.loads(drkit("--json", "status").stdout)
    drills = {r["region"]: r for r in doc["drills"]}
    assert drills["beijing"]["ok"] is True
    assert drills["beijing"]["rto_seconds"] == run["rto_seconds"]
    assert "drill of region 'nanjing': never completed" in doc["problems"]
    # the next monthly drill takes the next region
    show = json.loads(drkit("--json", "schedule", "show").stdout)
    [drill] = [j for j in show["jobs"] if j["name"] == "drill"]
    assert drill["regions"] == ["nanjing", "shanghai", "beijing"]
