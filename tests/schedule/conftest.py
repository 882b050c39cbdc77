"""Fixtures for the schedule tests: a drkit.toml with a [schedule] table, a local webhook
receiver on 127.0.0.1, helpers to start the daemon as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from drkit.cli.setup import CONFIG_TEMPLATE
from drkit.config import load_config
from drkit.schedule.spec import ScheduleSettings, load_schedule


def write_config(directory: Path, schedule: str = "") -> Path:
    """The `drkit init` template plus a [schedule] table (TOML text)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "drkit.toml"
    path.write_text(CONFIG_TEMPLATE + "\n[schedule]\n" + schedule, encoding="utf-8")
    (directory / "data/uploads").mkdir(parents=True, exist_ok=True)
    # The sources must exist for 'config check' (an empty file is an empty SQLite database).
    (directory / "data/shop.db").touch()
    return path


def settings_for(path: Path) -> ScheduleSettings:
    return load_schedule(load_config(path))


class Hook:
    """A webhook receiver: records every POST; answers with ``status`` and ``body``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.body: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                hook.requests.append({"path": self.path, "json": json.loads(raw or b"null"),
                                      "content_type": self.headers.get("Content-Type")})
                payload = json.dumps(hook.body).encode()
                self.send_response(hook.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll until ``predicate()`` is truthy (for real processes; not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Daemon:
    """``drkit schedule run`` as a real child process."""

    def __init__(self, config: Path, *extra: str) -> None:
        self.log = config.parent / f"daemon-{os.getpid()}-{time.monotonic_ns()}.log"
        self._fh = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "drkit", "--config", str(config), "-v", *extra,
             "schedule", "run"],
            stdout=self._fh, stderr=subprocess.STDOUT, cwd=config.parent)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._fh.close()
        return code


@pytest.fixture
def daemons() -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(config: Path, *extra: str) -> Daemon:
        d = Daemon(config, *extra)
        started.append(d)
        return d

    yield start
    for d in started:
        if d.proc.poll() is None:
            d.stop(signal.SIGKILL)


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Path]:
    """make_config(schedule_toml, directory=tmp_path) -> path of drkit.toml."""

    def make(schedule: str = "", directory: Path | None = None) -> Path:
        return write_config(directory or tmp_path, schedule)

    return make


@pytest.fixture
def poll() -> Callable[..., Any]:
    return wait_for


def seed_job(settings: ScheduleSettings, name: str, next_run_time: Any) -> None:
    """Put job ``name`` in the daemon's job store as a daemon that went down would have
    left it: defined exactly as ``drkit schedule run`` defines it, due at ``next_run_time``."""
    from apscheduler.job import Job
    from apscheduler.schedulers.background import BackgroundScheduler

    from drkit.schedule.daemon import job_definitions, make_jobstore

    # The job store alone (no scheduler thread that could run the job right here).
    store = make_jobstore(settings)
    store.start(BackgroundScheduler(timezone=settings.timezone), "default")
    args = dict(job_definitions(settings)[name])
    del args["replace_existing"]
    job = Job(store._scheduler, executor="default", args=(), next_run_time=next_run_time,
              **args)
    store.add_job(job)
    store.shutdown()


def stored_jobs(settings: ScheduleSettings) -> dict[str, Any]:
    """id -> next_run_time, read from the job store with APScheduler's own API."""
    from drkit.schedule.daemon import make_jobstore

    store = make_jobstore(settings)
    try:
        return {job_id: when for job_id, when in store.engine.connect().execute(
            store.jobs_t.select().with_only_columns(store.jobs_t.c.id,
                                                    store.jobs_t.c.next_run_time))}
    finally:
        store.engine.dispose()


ONLY = ('snapshot = "off"\nreplicate = "off"\nverify = "off"\nverify_read_data = "off"\n'
        'drill = "off"\ndrill_all = "off"\nprune_request = "off"\n')


def only(**jobs: str) -> str:
    """A [schedule] body with every job off except ``jobs`` (key=crontab expression)."""
    lines = []
    for line in ONLY.splitlines():
        key = line.split(" = ")[0]
        lines.append(f'{key} = "{jobs[key]}"' if key in jobs else line)
    return "\n".join(lines) + "\n"


@pytest.fixture
def seed() -> Callable[..., None]:
    return seed_job


@pytest.fixture
def stored() -> Callable[..., dict[str, Any]]:
    return stored_jobs


@pytest.fixture
def only_jobs() -> Callable[..., str]:
    return only


@pytest.fixture
def repository(drkit: Any, make_config: Callable[..., Path], tmp_path: Path
               ) -> Callable[..., Path]:
    """repository(schedule_toml, upload_bytes=...) -> drkit.toml of an initialised
    repository (keys created with `drkit keys init`) with a sqlite and a files source."""
    import sqlite3

    def make(schedule: str = "", upload_bytes: int = 100_000) -> Path:
        path = make_config(schedule)
        with sqlite3.connect(tmp_path / "data/shop.db") as db:
            db.execute("create table merchants(id integer primary key, revenue integer)")
            db.executemany("insert into merchants(revenue) values (?)",
                           [(i * 10,) for i in range(100)])
        with open(tmp_path / "data/uploads/blob.bin", "wb") as fh:
            left = upload_bytes
            while left > 0:
                n = min(left, 8 << 20)
                fh.write(os.urandom(n))
                left -= n
        (tmp_path / "pass.txt").write_text("correct horse battery staple\n")
        res = drkit("keys", "init", "--passphrase-file", "pass.txt")
        assert res.exit_code == 0, res.stderr
        return path

    return make
