"""Running jobs: records, metrics, webhook notifications, locks and the crontab lines.

Commands run for real as child processes. Where the scheduled command of a job is not the
point, the runner is given real drkit commands with a known outcome: `drkit config check`
(clean) and `drkit init --dir .` in a folder that has a drkit.toml (exit 2, one line).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drkit.clock import FixedClock
from drkit.config import load_config
from drkit.schedule.runner import CommandRun, execute, kind_lock, plan_commands
from drkit.schedule.spec import load_schedule
from drkit.schedule.state import RunRecord, RunStore

OK = CommandRun("snapshot", "", ("config", "check"))
FAIL = CommandRun("verify", "", ("init", "--dir", "."))
SECRET = "s3cr3t-robot-key-0001"


def parse_prom(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        assert m, f"bad exposition line {line!r}"
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def labels(**kw: str) -> frozenset[tuple[str, str]]:
    return frozenset(kw.items())


def hook_toml(hook: Any, *, wecom_path: str = "/cgi-bin/webhook/send") -> str:
    return (f'[schedule.webhook]\nurl = "{hook.url("/generic")}"\n'
            f'wecom = "{hook.url(wecom_path)}?key={SECRET}"\n')


def test_failure_is_recorded_measured_and_notified(make_config: Callable[..., Path],
                                                   hook: Any, clock: FixedClock,
                                                   caplog: Any) -> None:
    path = make_config(hook_toml(hook))
    config = load_config(path)
    settings = load_schedule(config)
    caplog.set_level("INFO")
    result = execute(config, settings, "verify", "verify", [FAIL], clock=clock, origin="manual")
    [rec] = result.records
    assert rec.outcome == "error" and rec.exit_code == 2
    assert "already exists" in rec.message
    assert result.exit_code == 2

    # run records
    store = RunStore(settings.state_dir)
    assert store.get("verify").outcome == "error"
    assert store.get("verify", "last_success") is None
    assert [r.outcome for r in store.history()] == ["error"]

    # metrics for node_exporter
    prom = parse_prom(settings.metrics_file.read_text())
    v = labels(task="verify", target="")
    assert prom[("drkit_job_last_exit_code", v)] == 2
    assert prom[("drkit_job_last_run_failed", v)] == 1
    assert prom[("drkit_job_last_run_timestamp_seconds", v)] == clock.now().timestamp()
    assert ("drkit_job_last_success_timestamp_seconds", v) not in prom
    assert oct(settings.metrics_file.stat().st_mode & 0o777) == "0o644"

    # generic JSON webhook and the WeCom group-robot markdown message
    by_path = {r["path"].split("?")[0]: r for r in hook.requests}
    generic = by_path["/generic"]["json"]
    assert generic["event"] == "job_error" and generic["task"] == "verify"
    assert generic["exit_code"] == 2 and "already exists" in generic["message"]
    wecom = by_path["/cgi-bin/webhook/send"]
    assert wecom["path"].endswith(f"?key={SECRET}")
    assert wecom["json"]["msgtype"] == "markdown"
    content = wecom["json"]["markdown"]["content"]
    assert content.startswith("**drkit: verify error**") and "exit 2" in content
    assert [d.ok for d in result.deliveries] == [True, True]
    # the robot key is the only credential: never in logs or results
    assert SECRET not in caplog.text
    assert all(SECRET not in d.url for d in result.deliveries)
    assert "key=***" in result.deliveries[1].url


def test_clean_run_updates_last_success_and_sends_nothing(make_config: Callable[..., Path],
                                                          hook: Any, clock: FixedClock
                                                          ) -> None:
    config = load_config(make_config(hook_toml(hook)))
    settings = load_schedule(config)
    execute(config, settings, "verify", "verify", [FAIL], clock=clock, origin="manual")
    clock.advance(__import__("datetime").timedelta(hours=1))
    result = execute(config, settings, "snapshot", "snapshot", [OK], clock=clock,
                     origin="cron")
    [rec] = result.records
    assert rec.outcome == "ok" and rec.origin == "cron"
    assert rec.summary["valid"] is True  # the command's JSON document is kept
    assert result.deliveries == [] and len(hook.requests) == 2  # only the earlier failure
    prom = parse_prom(settings.metrics_file.read_text())
    s = labels(task="snapshot", target="")
    assert prom[("drkit_job_last_success_timestamp_seconds", s)] == clock.now().timestamp()
    assert prom[("drkit_job_last_exit_code", s)] == 0
    # the earlier failure of another task is still in the file
    assert prom[("drkit_job_last_exit_code", labels(task="verify", target=""))] == 2


def test_failed_notification_never_hides_the_failure(drkit, make_config: Callable[..., Path],
                                                     hook: Any, clock: FixedClock) -> None:
    hook.status = 500
    make_config(hook_toml(hook) + "\n")
    # the scheduled prune-request job files `drkit request prune`: run it through the CLI
    # while both webhooks refuse; the WeCom one answers 200 with an errcode next.
    res = drkit("--json", "schedule", "run-job", "prune-request")
    doc = json.loads(res.stdout)
    [run] = doc["runs"]
    assert run["command"] == ["request", "prune", "--reason", "scheduled retention"]
    if run["outcome"] != "ok":
        assert res.exit_code == doc["exit_code"] != 0
        assert [n["ok"] for n in doc["notifications"]] == [False, False]
        assert "HTTP 500" in doc["notifications"][0]["error"]
        assert "notification to wecom" in res.stderr and "key=***" in res.stderr
    assert SECRET not in res.stderr + res.stdout

    hook.status = 200
    hook.body = {"errcode": 93000, "errmsg": "invalid webhook url"}
    config = load_config(Path(drkit.cwd) / "drkit.toml")
    result = execute(config, load_schedule(config), "verify", "verify", [FAIL], clock=clock,
                     origin="manual")
    assert result.records[0].outcome == "error"
    assert [d.ok for d in result.deliveries] == [True, False]
    assert "errcode 93000" in result.deliveries[1].error


def test_unreachable_webhook_is_logged_without_the_key(make_config: Callable[..., Path],
                                                       clock: FixedClock, caplog: Any) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    config = load_config(make_config(
        f'[schedule.webhook]\nwecom = "http://127.0.0.1:{port}/send?key={SECRET}"\n'
        'timeout_seconds = 2\n'))
    result = execute(config, load_schedule(config), "verify", "verify", [FAIL], clock=clock,
                     origin="manual")
    assert result.exit_code == 2
    [d] = result.deliveries
    assert not d.ok and "ConnectionError" in d.error
    assert SECRET not in caplog.text and SECRET not in d.error
    assert "notification to wecom" in caplog.text


def test_a_running_job_of_the_same_kind_makes_the_next_one_skip(
        drkit, make_config: Callable[..., Path], clock: FixedClock) -> None:
    path = make_config()
    settings = load_schedule(load_config(path))
    # Another daemon (or cron) holds the verify lock: verify-read-data shares it.
    with kind_lock(settings.lock_dir(), "verify", "verify"):
        res = drkit("--json", "schedule", "run-job", "verify-read-data")
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert [r["outcome"] for r in doc["runs"]] == ["skipped"]
    assert "another verify job holds the lock" in doc["runs"][0]["message"]
    store = RunStore(settings.state_dir)
    assert [r.outcome for r in store.history()] == ["skipped"]
    assert store.all_states() == {}  # nothing ran, so there is no "last run"


def test_crontab_lines_run_the_job_under_flock(drkit, make_config: Callable[..., Path]
                                               ) -> None:
    path = make_config('snapshot = "30 2 * * 0"\nverify = "*/5 * * * *"\n')
    res = drkit("--json", "schedule", "crontab")
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    lines = {ln["job"]: ln for ln in doc["lines"]}
    assert lines["snapshot"]["schedule"] == "30 2 * * 0"  # crontab itself: 0 = Sunday
    cmd = lines["verify"]["command"]
    assert re.match(r"^cd /\S+ && mkdir -p /\S+ && /\S*flock -n /\S+/cron-verify\.lock "
                    r"/\S+/drkit --config /", cmd)
    assert " schedule run-job --origin cron verify >/dev/null" in cmd
    assert "CRON_TZ=UTC" in doc["crontab"]
    assert "replicate runs after each successful snapshot" in doc["crontab"]

    settings = load_schedule(load_config(path))
    store = RunStore(settings.state_dir)
    # cron starts in $HOME; a clone of drkit there (a folder named drkit) must not shadow
    # the installed package the way 'python -m drkit' let it.
    home = path.parent / "home"
    (home / "drkit").mkdir(parents=True)
    (home / "drkit" / "__init__.py").write_text("raise ImportError('shadowed')\n")
    out = subprocess.run(["/bin/sh", "-c", cmd], capture_output=True, text=True, cwd=home)
    assert "ImportError" not in out.stderr and "shadowed" not in out.stderr, out.stderr
    assert out.stdout == ""  # quiet under cron: the JSON result goes to /dev/null
    [rec] = store.history()
    assert rec.task == "verify" and rec.origin == "cron" and rec.command == ["verify", "--all"]
    # while the previous cron run still holds its flock, the next one exits at once
    with open(settings.lock_dir() / "cron-verify.lock", "a") as fh:
        import fcntl

        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        again = subprocess.run(["/bin/sh", "-c", cmd], capture_output=True, text=True)
    assert again.returncode == 1
    assert len(store.history()) == 1


def test_drill_rotates_through_regions_from_the_run_records(make_config: Callable[..., Path]
                                                            ) -> None:
    settings = load_schedule(load_config(make_config()))
    store = RunStore(settings.state_dir)

    def drilled(region: str, when: str, outcome: str = "ok") -> None:
        store.add(RunRecord(task="drill", target=region, command=["drill", "--region", region],
                            origin="daemon", started=when, finished=when,
                            duration_seconds=1.0, exit_code=0 if outcome == "ok" else 2,
                            outcome=outcome, rto_seconds=42.0, rpo_seconds=3600.0))

    assert [c.target for c in plan_commands(settings, "drill", store)] == ["beijing"]
    drilled("beijing", "2026-09-01T06:00:00Z")
    assert [c.argv for c in plan_commands(settings, "drill", store)] == [
        ("drill", "--region", "nanjing")]
    drilled("nanjing", "2026-10-01T06:00:00Z")
    drilled("shanghai", "2026-11-01T06:00:00Z", outcome="error")  # failed: not done
    assert [c.target for c in plan_commands(settings, "drill", store)] == ["shanghai"]
    drilled("shanghai", "2026-11-02T06:00:00Z")
    assert [c.target for c in plan_commands(settings, "drill", store)] == ["beijing"]
    assert [c.target for c in plan_commands(settings, "drill-all", store)] == [
        "beijing", "nanjing", "shanghai"]


def test_figures_from_the_commands_json_documents() -> None:
    from drkit.schedule.runner import extract_figures

    snapshot = {"snapshot_id": "ab", "bytes_read": 10, "bytes_new": 7, "bytes_stored": 5}
    assert extract_figures(snapshot)["bytes"] == 5
    verify = {"clean": False, "findings": [{"severity": "critical"}, {"severity": "warn"}],
              "regions": [{"region": "a", "bytes_read": 100}, {"region": "b",
                                                                 "bytes_read": 50}]}
    assert extract_figures(verify) == {"bytes": 150, "findings": 2, "rto_seconds": None,
                                       "rpo_seconds": None}
    replicate = {"regions": {"a": {"bytes_copied": 3, "lag_hours": 0.5}}, "findings": []}
    assert extract_figures(replicate)["bytes"] == 3
    drill = {"format": "drkit-drill-report/1", "rto_seconds": 95.5, "rpo_seconds": 7200,
             "mismatched_count": 0}
    assert extract_figures(drill) == {"bytes": None, "findings": 0, "rto_seconds": 95.5,
                                      "rpo_seconds": 7200}
    assert extract_figures({"summary": {"rto_minutes": 2, "rpo_hours": 1}})["rpo_seconds"] == 3600
    assert extract_figures(None) == {"bytes": None, "findings": None, "rto_seconds": None,
                                     "rpo_seconds": None}


def test_drill_and_replication_metrics(make_config: Callable[..., Path], clock: FixedClock
                                       ) -> None:
    from drkit.schedule.runner import write_metrics

    settings = load_schedule(load_config(make_config()))
    store = RunStore(settings.state_dir)
    at = "2026-11-23T02:30:00Z"
    store.add(RunRecord(task="drill", target="nanjing", command=[], origin="daemon",
                        started=at, finished=at, duration_seconds=120.0, exit_code=0,
                        outcome="ok", rto_seconds=95.5, rpo_seconds=7200.0, findings=0))
    store.add(RunRecord(task="replicate", target="", command=[], origin="daemon",
                        started=at, finished=at, duration_seconds=3.0, exit_code=1,
                        outcome="findings", bytes=3, findings=1,
                        summary={"regions": {"shanghai": {"region": "shanghai",
                                                          "lag_hours": 30.5}}}))
    write_metrics(settings, store, clock)
    prom = parse_prom(settings.metrics_file.read_text())
    assert prom[("drkit_drill_rto_seconds", labels(region="nanjing"))] == 95.5
    assert prom[("drkit_drill_rpo_seconds", labels(region="nanjing"))] == 7200
    assert prom[("drkit_replication_lag_hours", labels(region="shanghai"))] == 30.5
    r = labels(task="replicate", target="")
    assert prom[("drkit_job_last_findings", r)] == 1
    assert prom[("drkit_job_last_bytes", r)] == 3
    assert prom[("drkit_job_last_run_failed", r)] == 0  # findings: it ran to the end
    assert ("drkit_job_last_success_timestamp_seconds", r) not in prom
