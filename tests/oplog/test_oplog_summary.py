"""Ingest summaries without the recovery key: bastion log gaps in ``drkit oplog check``, the
weekly ``drkit oplog summary`` and the scheduler's ``oplog-report`` job that sends it.

Through the real CLI, a repository on the moto server and a real local webhook server; the
scheduled job runs drkit as a child process, as the scheduler does.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any


def _history(path: Path, commands: list[tuple[datetime, str]]) -> None:
    path.write_text("".join(f"#{int(at.timestamp())}\n{cmd}\n" for at, cmd in commands))


def _enable_oplog(project: Any, extra: str = "") -> None:
    config = project.root / "drkit.toml"
    config.write_text(config.read_text() + f'\n[oplog]\nmax_log_gap = "4h"\n{extra}')


def test_silent_bastion_is_a_gap_and_the_summary_goes_out_without_the_key(
        s3_project: Any, hooks: Any, tmp_path: Path) -> None:
    project = s3_project
    _enable_oplog(project)
    tue = datetime(2026, 11, 24, tzinfo=UTC)  # a Tuesday; working hours 09:00-19:00 UTC
    history = tmp_path / "wang.history"
    _history(history, [(tue + timedelta(hours=9, minutes=5), "ls /data"),
                       (tue + timedelta(hours=9, minutes=10),
                        "mysql -uroot -pS3cret -e 'drop database orders'")])
    source = f"history:{history}?user=wang&host=bastion-1"

    project.clock.set(tue + timedelta(hours=9, minutes=30))
    res = project.run("--json", "oplog", "ingest", source, ok=False)
    assert res.exit_code == 1, res.stderr
    first = json.loads(res.stdout)
    assert first["stored"].startswith("oplog/") and first["summary"].startswith(
        "oplog-summary/")
    assert len(hooks.bodies) == 1  # the CRITICAL drop, at once

    # Nothing more from the bastion all day: the next reads are silent, and stored as such.
    for hour in (12, 15):
        project.clock.set(tue + timedelta(hours=hour))
        again = json.loads(project.run("--json", "oplog", "ingest", source).stdout)
        assert (again["new"], again["stored"]) == (0, None)
        assert again["summary"].startswith("oplog-summary/")
    # The summary is in the repository unsealed but signed, and replicated like the rest.
    project.run("replicate")
    assert len(list((project.root / "regions" / "shanghai" / "oplog-summary").iterdir())) == 3

    res = project.run("--json", "oplog", "check", "--since", "2026-11-24", ok=False)
    assert res.exit_code == 1, res.stderr
    check = json.loads(res.stdout)
    assert check["summaries"] == 3
    assert [(f["check"], f["severity"], f["region"]) for f in check["findings"]] == [
        ("bastion-log-gap", "high", source)]
    assert check["gaps"] == [{"source": source, "from": "2026-11-24T09:10:00Z",
                              "to": "2026-11-24T15:00:00Z", "working_minutes": 350,
                              "still_silent": True}]
    text = project.run("oplog", "check", "--since", "2026-11-24", ok=False).stdout
    assert "HIGH" in text and "350 minutes of working hours" in text

    # The weekly summary: read with the writer keys only (no recovery key anywhere here).
    project.clock.set(tue + timedelta(hours=16))
    res = project.run("--json", "oplog", "summary", "--since", "2026-11-24", "--send",
                      "--out-dir", str(tmp_path / "reports"))
    doc = json.loads(res.stdout)
    assert doc["report"] == str(tmp_path / "reports" / "oplog-summary-2026-11-24.md")
    assert [(f["operator"], f["severity"], f["status"], f["count"])
            for f in doc["findings"]] == [("wang", "critical", "outside-drkit", 1)]
    assert doc["ingests"] == 3 and len(doc["gaps"]) == 1
    assert [n["ok"] for n in doc["notifications"]] == [True]
    sent = hooks.bodies[-1]
    assert sent["event"] == "oplog_weekly_report"
    assert sent["report_file"] == str((tmp_path / "reports" /
                                      "oplog-summary-2026-11-24.md").resolve())
    assert "## Findings" in sent["report_markdown"] and "| critical | wang |" in \
        sent["report_markdown"]
    assert sent["summary"]["gaps"][0]["source"] == source
    # No command line, password or address leaves in the unsealed summary.
    assert "S3cret" not in json.dumps(sent) and "drop database" not in json.dumps(sent)
    report = (tmp_path / "reports" / "oplog-summary-2026-11-24.md").read_text()
    assert report == sent["report_markdown"] and "Bastion log gaps" in report


def test_weekly_job_sends_the_summary_from_a_child_process(
        s3_project: Any, hooks: Any, tmp_path: Path) -> None:
    project = s3_project
    _enable_oplog(project)
    # The scheduled child runs on the real clock; ingest "now" so the week includes it.
    now = datetime.now(UTC).replace(microsecond=0)
    project.clock.set(now)
    history = tmp_path / "li.history"
    _history(history, [(now - timedelta(minutes=30), "rm -rf /var/lib/mysql/shop")])
    res = project.run("--json", "oplog", "ingest", f"history:{history}?user=li&host=b-2",
                      "--no-notify", ok=False)
    assert res.exit_code == 1, res.stderr

    from drkit.config import load_config
    from drkit.schedule.spec import load_schedule

    settings = load_schedule(load_config(project.root / "drkit.toml"))
    assert settings.exprs["oplog-report"] == "0 8 * * mon"
    assert "oplog-report" in [j.name for j in settings.jobs]

    res = project.run("--json", "schedule", "run-job", "oplog-report")
    assert res.exit_code == 0, res.stderr
    [sent] = [b for b in hooks.bodies if b.get("event") == "oplog_weekly_report"]
    assert [(f["operator"], f["rule"], f["severity"]) for f in sent["summary"]["findings"]] \
        == [("li", "shell:rm-rf-data", "critical")]
    written = Path(sent["report_file"])
    assert written.parent == settings.state_dir / "reports" and written.is_file()
    assert "| critical | li |" in written.read_text()
