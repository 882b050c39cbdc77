"""The scheduler's supervised binlog streams: ``[schedule] log_stream`` names PostgreSQL and
MySQL/MariaDB sources alike (the source's type picks ``wal stream`` or ``binlog
stream``), ``wal_stream`` keeps working beside it; a ``drkit binlog stream`` child that
fails is recorded, measured and restarted with a doubling backoff; ``drkit schedule
crontab`` prints the systemd unit for each kind.

The child is the real ``drkit binlog stream`` against a MySQL source whose server is not
there (port 1 of 127.0.0.1, where nothing listens), so it fails the same way every time.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drkit.clock import SystemClock
from drkit.config import load_config
from drkit.errors import ConfigError
from drkit.metrics import write_textfile
from drkit.pitr.stream import STREAMS_DIR
from drkit.schedule.runner import stream_families
from drkit.schedule.spec import load_schedule
from drkit.schedule.state import RunStore
from drkit.schedule.streams import StreamSupervisor

SOURCES = """
[sources.pg]
type = "postgres"
host = "{nowhere}"
port = 1
user = "drkit"
database = "shop"

[sources.my]
type = "mysql"
host = "127.0.0.1"
port = 1
user = "drkit"
database = "shop"
"""


def config_with_streams(make_config: Callable[..., Path], tmp_path: Path,
                        schedule: str) -> Path:
    path = make_config(schedule)
    text = path.read_text().replace(
        "\n[schedule]\n", SOURCES.format(nowhere=tmp_path / "nosuch") + "\n[schedule]\n")
    path.write_text(text)
    return path


def test_log_stream_names_both_kinds_and_wal_stream_still_counts(
        tmp_path: Path, make_config: Callable[..., Path]) -> None:
    path = config_with_streams(make_config, tmp_path,
                               'log_stream = ["my", "pg"]\nwal_stream = ["pg"]\n')
    settings = load_schedule(load_config(path))
    assert settings.wal_streams == ("pg",) and settings.binlog_streams == ("my",)
    assert sorted(settings.streams) == [("binlog", "my"), ("wal", "pg")]


def test_log_stream_refuses_a_source_without_a_log(
        tmp_path: Path, make_config: Callable[..., Path]) -> None:
    path = config_with_streams(make_config, tmp_path, 'log_stream = ["shop"]\n')
    with pytest.raises(ConfigError, match="'shop' is not a PostgreSQL or MySQL/MariaDB"):
        load_schedule(load_config(path))
    path = config_with_streams(make_config, tmp_path, 'wal_stream = ["my"]\n')
    with pytest.raises(ConfigError, match="'my' is not a PostgreSQL source"):
        load_schedule(load_config(path))
    path = config_with_streams(make_config, tmp_path, 'log_stream = "my"\n')
    with pytest.raises(ConfigError, match="schedule.log_stream"):
        load_schedule(load_config(path))


def test_a_failing_binlog_stream_is_recorded_and_restarted_with_backoff(
        tmp_path: Path, make_config: Callable[..., Path], drkit: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = config_with_streams(make_config, tmp_path, 'log_stream = ["my"]\n')
    monkeypatch.setenv("DRKIT_RECOVERY_PASSPHRASE", "correct horse battery staple")
    assert drkit("keys", "init").exit_code == 0
    config = load_config(path)
    settings = load_schedule(config)
    sup = StreamSupervisor(config, settings, SystemClock(), base_delay=0.1, max_delay=0.4,
                           python=sys.executable)
    assert [(c.task, c.command) for c in sup.children.values()] == [
        ("binlog-stream", ["binlog", "stream", "--source", "my"])]
    sup.start()
    deadline = time.monotonic() + 120
    while sup.children["my"].restarts < 4:
        assert time.monotonic() < deadline, "the stream was not restarted"
        time.sleep(0.1)
    sup.request_stop()
    sup.join(60)
    assert sup.children["my"].delays[:4] == [0.1, 0.2, 0.4, 0.4]  # doubling, capped

    last = RunStore(settings.state_dir).get("binlog-stream:my", "last")
    assert last is not None and last.outcome == "error" and last.exit_code == 2
    assert last.command == ["binlog", "stream", "--source", "my"]
    assert "source 'my'" in last.message and "Connection refused" in last.message
    metrics = settings.metrics_file.read_text()
    assert 'drkit_job_last_exit_code{target="my",task="binlog-stream"} 2' in metrics


def test_binlog_stream_state_becomes_metrics(tmp_path: Path) -> None:
    """The state file a binlog stream writes (see tests/pitr/test_binlog_stream.py for one
    written by a real stream) is exported per source, the GTID by domain."""
    folder = tmp_path / STREAMS_DIR
    folder.mkdir()
    (folder / "my.json").write_text(json.dumps({
        "archive": "my", "kind": "mysql-binlog", "last_file": "mysql-bin.000007",
        "last_position": [7, 4242], "last_gtid": "0-1-8812",
        "last_archived": "2026-11-23T02:30:05Z", "last_commit": "2026-11-23T02:30:03Z",
        "lag_seconds": 2.0, "restarts": 3}))
    (folder / "pg.json").write_text(json.dumps({
        "archive": "pg", "last_lsn_bytes": 50331648, "last_archived": "2026-11-23T02:30:05Z",
        "restarts": 1}))
    out = tmp_path / "drkit.prom"
    write_textfile(out, stream_families(tmp_path))
    text = out.read_text()
    for line in ('drkit_binlog_stream_last_archived_file{source="my"} 7',
                 'drkit_binlog_stream_last_archived_offset{source="my"} 4242',
                 'drkit_binlog_stream_last_gtid_sequence{domain="0",source="my"} 8812',
                 'drkit_binlog_stream_lag_seconds{source="my"} 2',
                 'drkit_binlog_stream_restarts{source="my"} 3',
                 'drkit_binlog_stream_last_archived_timestamp_seconds{source="my"} 1795401005',
                 'drkit_wal_stream_last_archived_lsn{source="pg"} 50331648',
                 'drkit_wal_stream_restarts{source="pg"} 1'):
        assert line in text, line
    assert 'drkit_wal_stream_restarts{source="my"}' not in text


def test_crontab_explains_both_kinds_under_systemd(
        tmp_path: Path, make_config: Callable[..., Path], drkit: Any) -> None:
    config_with_streams(make_config, tmp_path, 'log_stream = ["my", "pg"]\n')
    res = drkit("--json", "schedule", "crontab")
    assert res.exit_code == 0, res.stderr
    text = json.loads(res.stdout)["crontab"]
    assert "/etc/systemd/system/drkit-binlog-stream@.service" in text
    assert "binlog stream --source %i" in text and "wal stream --source %i" in text
    assert "systemctl enable --now drkit-binlog-stream@my.service" in text
    assert "systemctl enable --now drkit-wal-stream@pg.service" in text
    assert text.count("Restart=always") == 2
    assert not [ln for ln in text.splitlines() if "stream --source" in ln
                and not ln.startswith("#")]
