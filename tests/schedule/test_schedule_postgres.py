"""The daemon's job store on PostgreSQL (any SQLAlchemy URL works; SQLite is the default).

Uses the PostgreSQL server on 127.0.0.1:5432 (user postgres, database test, trust auth),
or $DRKIT_TEST_PG as a libpq URL; skipped with the reason when none is reachable. Each run
works in a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drkit.config import load_config
from drkit.schedule.spec import load_schedule

PG = os.environ.get("DRKIT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_schema() -> Iterator[tuple[str, str]]:
    psycopg = pytest.importorskip("psycopg")
    try:
        conn = psycopg.connect(PG, connect_timeout=3, autocommit=True)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG}: {type(exc).__name__}")
    schema = f"drkit_sched_{secrets.token_hex(4)}"
    conn.execute(f"CREATE SCHEMA {schema}")
    url = (PG.replace("postgresql://", "postgresql+psycopg://", 1)
           + f"?options=-csearch_path%3D{schema}")
    try:
        yield url, schema
    finally:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()


def test_jobs_persist_in_postgresql(make_config: Callable[..., Path], daemons: Any,
                                    poll: Any, pg_schema: tuple[str, str]) -> None:
    import psycopg

    url, schema = pg_schema
    path = make_config(f'jobstore = "{url}"\n')
    settings = load_schedule(load_config(path))
    assert settings.jobstore_url == url
    daemon = daemons(path)
    poll(lambda: "job prune-request scheduled" in daemon.output(), "jobs in PostgreSQL")
    assert "job store postgresql+psycopg://postgres@127.0.0.1" in daemon.output()
    assert daemon.stop() == 0
    with psycopg.connect(PG, autocommit=True) as conn:
        rows = conn.execute(f"SELECT id, next_run_time FROM {schema}.drkit_schedule_jobs "
                            "ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ["drill", "drill-all", "prune-request", "snapshot",
                                    "verify", "verify-read-data"]
    again = daemons(path)
    poll(lambda: "job snapshot kept from the job store" in again.output(), "jobs reloaded")
    assert again.stop() == 0
