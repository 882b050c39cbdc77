"""``drkit binlog stream`` under the scheduler's supervisor, on a private MariaDB writing a
ROW binlog: the child follows the server, its state (last archived position and GTID,
lag) becomes metrics, and a stop makes it archive what it holds and exit 0 (run record
``binlog-stream:shop``, outcome ok)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from drkit.clock import SystemClock
from drkit.config import load_config
from drkit.pitr.stream import stream_state_dir
from drkit.schedule.spec import load_schedule
from drkit.schedule.state import RunStore
from drkit.schedule.streams import StreamSupervisor


def _state(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def test_supervised_binlog_stream_reports_position_gtid_and_lag(binlog_project: Any) -> None:
    p = binlog_project
    toml = p.root / "drkit.toml"
    toml.write_text(toml.read_text() + '\n[schedule]\nlog_stream = ["shop"]\n')
    config = load_config(toml)
    settings = load_schedule(config)
    assert settings.binlog_streams == ("shop",)
    p.sql("CREATE TABLE orders (id INT PRIMARY KEY, amount INT)")

    sup = StreamSupervisor(config, settings, SystemClock(), python=sys.executable)
    sup.start()
    state_file = stream_state_dir(config) / "shop.json"
    try:
        for n in range(1, 6):
            p.sql(f"INSERT INTO orders VALUES ({n}, {n})")
        (gtid,) = p.sql("SELECT @@gtid_binlog_pos")[0][0]
        deadline = time.monotonic() + 90
        while _state(state_file).get("last_gtid") != gtid:
            assert time.monotonic() < deadline, f"{gtid} not archived: {_state(state_file)}"
            assert sup.children["shop"].restarts == 0, "the stream failed"
            time.sleep(0.2)
    finally:
        sup.request_stop()
        sup.join(60)

    state = _state(state_file)
    assert state["kind"] == "mysql-binlog" and state["archive"] == "shop"
    number = int(state["last_file"].rsplit(".", 1)[1])
    assert state["last_position"][0] == number and state["last_position"][1] > 4
    assert state["partial_versions"] >= 1 and state["lag_seconds"] is not None
    assert 0 <= state["lag_seconds"] < 60
    last = RunStore(settings.state_dir).get("binlog-stream:shop", "last")
    assert last is not None and last.outcome == "ok" and last.exit_code == 0

    metrics = settings.metrics_file.read_text()
    seq = gtid.rsplit("-", 1)[1]
    assert f'drkit_binlog_stream_last_gtid_sequence{{domain="0",source="shop"}} {seq}' \
        in metrics
    assert f'drkit_binlog_stream_last_archived_file{{source="shop"}} {number}' in metrics
    assert 'drkit_binlog_stream_lag_seconds{source="shop"}' in metrics
