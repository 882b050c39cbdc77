"""The scheduler's supervised WAL streams: a ``drkit wal stream`` child that fails is
recorded, measured and restarted with a doubling backoff; ``schedule.wal_stream`` is
validated; ``drkit schedule crontab`` explains how to run streams under systemd.

The child is the real ``drkit wal stream`` against a PostgreSQL source whose server is
not there (a socket folder with no server), so it fails the same way every time.
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
from drkit.schedule.spec import load_schedule
from drkit.schedule.state import RunStore
from drkit.schedule.streams import StreamSupervisor

PG = """
[sources.pg]
type = "postgres"
host = "{host}"
port = 1
user = "drkit"
database = "shop"
"""


def config_with_stream(make_config: Callable[..., Path], tmp_path: Path,
                       streams: str = '["pg"]') -> Path:
    path = make_config(f"wal_stream = {streams}\n")
    text = path.read_text().replace("\n[schedule]\n", PG.format(host=tmp_path / "nosuch")
                                    + "\n[schedule]\n")
    path.write_text(text)
    return path


def test_a_failing_stream_is_recorded_and_restarted_with_backoff(
        tmp_path: Path, make_config: Callable[..., Path]) -> None:
    path = config_with_stream(make_config, tmp_path)
    config = load_config(path)
    settings = load_schedule(config)
    assert settings.wal_streams == ("pg",)
    sup = StreamSupervisor(config, settings, SystemClock(), base_delay=0.1, max_delay=0.4,
                           python=sys.executable)
    sup.start()
    deadline = time.monotonic() + 90
    while sup.children["pg"].restarts < 4:
        assert time.monotonic() < deadline, "the stream was not restarted"
        time.sleep(0.1)
    sup.request_stop()
    sup.join(60)
    child = sup.children["pg"]
    assert child.delays[:4] == [0.1, 0.2, 0.4, 0.4]  # doubling, capped

    last = RunStore(settings.state_dir).get("wal-stream:pg", "last")
    assert last is not None and last.outcome == "error" and last.exit_code == 2
    assert "cannot create replication slot" in last.message
    metrics = settings.metrics_file.read_text()
    assert 'drkit_job_last_exit_code{target="pg",task="wal-stream"} 2' in metrics


def test_wal_stream_setting_names_postgres_sources(
        tmp_path: Path, make_config: Callable[..., Path]) -> None:
    path = config_with_stream(make_config, tmp_path, '["shop"]')  # shop is the SQLite source
    with pytest.raises(ConfigError, match="'shop' is not a PostgreSQL source"):
        load_schedule(load_config(path))


def test_crontab_explains_streams_under_systemd(
        tmp_path: Path, make_config: Callable[..., Path], drkit: Any) -> None:
    config_with_stream(make_config, tmp_path)
    res = drkit("--json", "schedule", "crontab")
    assert res.exit_code == 0, res.stderr
    text = json.loads(res.stdout)["crontab"]
    assert "wal stream --source %i" in text and "Restart=always" in text
    assert "systemctl enable --now drkit-wal-stream@pg.service" in text
    # Streams are no crontab lines (every non-comment line is a scheduled job).
    assert not [ln for ln in text.splitlines() if "wal stream" in ln
                and not ln.startswith("#")]
