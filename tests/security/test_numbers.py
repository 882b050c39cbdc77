"""Attack: an insider holding the writer host's config switches the lag/RTO/RPO alarms off
with a number (issue 24.5).

Every comparison with NaN is false, so ``max_lag_hours = nan`` made a region that never
receives a copy look "ok"; ``inf`` and absurd values do the same more quietly, and huge
integers crashed ``status`` (exit 70) so the cron mail said "internal error" instead of
"STALE". The insider holds exactly the config file on the writer host; the attack is
played through the real CLI. Expected: ``config check`` and ``status`` refuse the file with
exit 2 and a line naming the key, so monitoring that runs them sees a failure, never "ok".
"""

from __future__ import annotations

from pathlib import Path

import pytest

CONFIG = """\
[repository]
primary = "beijing"
[regions.beijing]
url = "file:regions/bj"
lock_days = 7
retention_days = 30
max_lag_hours = {lag}
[regions.shanghai]
url = "file:regions/sh"
max_lag_hours = {lag}
[sources.shop]
type = "files"
path = "data"
[objectives]
rto_minutes = {rto}
rpo_hours = {rpo}
"""
HONEST = {"lag": "26", "rto": "240", "rpo": "26"}


@pytest.fixture
def writer_host(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "orders.csv").write_text("id,amount\n1,100\n")
    return tmp_path


@pytest.mark.parametrize("key", ["lag", "rto", "rpo"])
@pytest.mark.parametrize("value", ["nan", "inf", "1e300", "9" * 5000],
                         ids=["nan", "inf", "absurd", "huge"])
def test_guardrail_number_cannot_switch_alarm_off(drkit, writer_host: Path, key: str,
                                                  value: str) -> None:
    values = dict(HONEST, **{key: value})
    (writer_host / "drkit.toml").write_text(CONFIG.format(**values))
    name = {"lag": "max_lag_hours", "rto": "rto_minutes", "rpo": "rpo_hours"}[key]

    check = drkit("config", "check")
    assert check.exit_code == 2, check.stdout
    assert name in check.stdout and "ok" not in check.stdout.splitlines()[-1]

    status = drkit("status")
    assert status.exit_code == 2, status.stdout + status.stderr
    assert status.stdout == ""  # no status table that could read as "all within objectives"
    (line,) = status.stderr.strip().splitlines()
    assert line.startswith("drkit: error: ") and name in line
    assert "internal error" not in line


def test_honest_config_has_no_false_alarm(drkit, writer_host: Path) -> None:
    (writer_host / "drkit.toml").write_text(CONFIG.format(**HONEST))
    check = drkit("config", "check")
    assert check.exit_code == 0 and check.stdout.strip().endswith(": ok")
    status = drkit("status", "--json")
    # No snapshot yet: the alarms are live and say so (STALE, exit 1), with no error.
    assert status.exit_code == 1, status.stderr
    assert "drkit: error" not in status.stderr
