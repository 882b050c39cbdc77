"""The [schedule] table: defaults, and errors that name drkit.toml and the key."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from drkit.config import load_config
from drkit.errors import ConfigError
from drkit.schedule.spec import load_schedule


def test_defaults(make_config: Callable[..., Path], tmp_path: Path) -> None:
    s = load_schedule(load_config(make_config()))
    assert s.exprs == {"snapshot": "0 2 * * *", "replicate": "after-snapshot",
                       "verify": "15 * * * *", "verify-read-data": "30 4 * * *",
                       "ledger": "off", "drill": "0 6 1 * *",
                       "drill-all": "0 8 15 1,4,7,10 *", "prune-request": "0 9 * * sun",
                       "cloud-snapshot": "off",  # on by default only with a [cloud] section
                       "oplog-report": "off", "oplog-check": "off"}  # ... with [oplog]
    assert [j.name for j in s.jobs] == ["snapshot", "verify", "verify-read-data", "drill",
                                        "drill-all", "prune-request"]
    assert s.replicate_after_snapshot
    assert s.misfire_grace_seconds == 6 * 3600
    assert s.state_dir == tmp_path / ".drkit/cache/schedule"
    assert s.jobstore_url == f"sqlite:///{tmp_path}/.drkit/cache/schedule/jobs.sqlite"
    assert s.metrics_file == tmp_path / ".drkit/cache/schedule/drkit.prom"
    assert s.regions == ("beijing", "nanjing", "shanghai")
    assert not s.webhook.configured


def test_custom_values(make_config: Callable[..., Path], tmp_path: Path) -> None:
    s = load_schedule(load_config(make_config(
        'timezone = "Asia/Shanghai"\nreplicate = "0 */4 * * *"\nledger = "0 5 * * *"\n'
        'ledger_sources = ["shop"]\nmisfire_grace_seconds = 0\n'
        'metrics_file = "textfile/drkit.prom"\njobstore = "postgresql+psycopg://u@h/db"\n'
        '[schedule.webhook]\nwecom = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"\n')))
    assert s.exprs["replicate"] == "0 */4 * * *" and not s.replicate_after_snapshot
    assert "replicate" in [j.name for j in s.jobs] and "ledger" in [j.name for j in s.jobs]
    assert s.misfire_grace_seconds is None  # 0 = no limit
    assert s.metrics_file == tmp_path / "textfile/drkit.prom"
    assert s.webhook.configured and s.webhook.url is None
    job = s.job("snapshot")
    first = job.trigger.get_next_fire_time(None, __import__("datetime").datetime(
        2026, 11, 23, tzinfo=__import__("datetime").UTC))
    assert first.utcoffset() == timedelta(hours=8) and first.hour == 2


@pytest.mark.parametrize(("toml", "key", "reason"), [
    ('verify = "0 * * *"', "schedule.verify", "need 5 fields"),
    ('snapshot = "30 2 * * funday"', "schedule.snapshot", "unknown day of week"),
    ('snapshot = 5', "schedule.snapshot", "must be a string"),
    ('colour = "red"', "schedule.colour", "unknown key"),
    ('timezone = "Mars/Olympus"', "schedule.timezone", "unknown time zone"),
    ('snapshot = "off"', "schedule.replicate", "snapshot is \"off\""),
    ('ledger = "0 5 * * *"', "schedule.ledger_sources", "missing"),
    ('ledger_sources = ["nope"]', "schedule.ledger_sources", "unknown source 'nope'"),
    ('read_data_sample = "150%"', "schedule.read_data_sample", "percentage"),
    ('misfire_grace_seconds = -1', "schedule.misfire_grace_seconds", "between 0 and 604800"),
    ('metrics_file = "m.txt"', "schedule.metrics_file", ".prom"),
    ('jobstore = "jobs.sqlite"', "schedule.jobstore", "SQLAlchemy URL"),
    ('on_sigterm = "ignore"', "schedule.on_sigterm", "wait"),
    ('[schedule.webhook]\nurl = "ftp://x"', "schedule.webhook.url", "http"),
    ('[schedule.webhook]\nsecret = "x"', "schedule.webhook.secret", "unknown key"),
])
def test_errors_name_the_file_and_key(make_config: Callable[..., Path], toml: str, key: str,
                                      reason: str) -> None:
    path = make_config(toml + "\n")
    with pytest.raises(ConfigError) as err:
        load_schedule(load_config(path))
    assert err.value.file == str(path)
    assert err.value.key == key
    assert reason in str(err.value)


def test_cli_reports_schedule_error_as_one_line(drkit, make_config: Callable[..., Path]
                                                ) -> None:
    make_config('verify = "every hour"\n')
    res = drkit("schedule", "show")
    assert res.exit_code == 2
    assert res.stderr.startswith("drkit: error: ")
    assert "drkit.toml: schedule.verify: 'every hour' is not a crontab expression" in res.stderr
    assert res.stderr.count("\n") == 1


def test_cloud_snapshot_job_is_daily_when_a_cloud_is_configured(
        make_config: Callable[..., Path]) -> None:
    from drkit.schedule.runner import plan_commands
    from drkit.schedule.state import RunStore

    path = make_config()
    with path.open("a") as fh:
        fh.write('\n[cloud]\npoll_seconds = 0\n')
    s = load_schedule(load_config(path))
    assert s.exprs["cloud-snapshot"] == "30 1 * * *"
    assert "cloud-snapshot" in [j.name for j in s.jobs]
    [run] = plan_commands(s, "cloud-snapshot", RunStore(s.state_dir))
    assert run.argv == ("cloud", "snapshot")
