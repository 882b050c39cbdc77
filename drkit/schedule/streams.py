"""Long-lived streaming jobs of ``drkit schedule run``: one supervised child per source in
``schedule.wal_stream`` (``drkit wal stream --source NAME``).

A stream never "finishes" the way a cron job does, so it is not an APScheduler job: a
thread per source starts the child, waits for it, records its end like any run (run
record ``wal-stream:<source>``, audit event, metrics, a webhook when it failed) and starts
it again after a backoff that doubles from ``base_delay`` up to ``max_delay`` seconds and
starts over once a child has run ``healthy_after`` seconds. The child writes its own
progress (last archived LSN, lag) to ``<state_dir>/streams/<source>.json`` and the
metrics file; the supervisor passes it the restart count.

Stopping (SIGTERM/SIGINT to the daemon): each child gets SIGTERM, archives what it has
received and exits; the supervisor waits for it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field

from drkit.clock import Clock, utc_iso
from drkit.config import Config
from drkit.schedule.runner import JobResult, _last_line, child_argv, report
from drkit.schedule.spec import ScheduleSettings
from drkit.schedule.state import SCHEDULED_ENV, RunRecord, RunStore, outcome_for_exit

log = logging.getLogger(__name__)
TASK = "wal-stream"


@dataclass
class StreamChild:
    source: str
    restarts: int = 0
    delays: list[float] = field(default_factory=list)  # backoff waits so far
    proc: subprocess.Popen[bytes] | None = None


class StreamSupervisor:
    """Runs and restarts ``drkit wal stream`` for every source of ``settings.wal_streams``."""

    def __init__(self, config: Config, settings: ScheduleSettings, clock: Clock, *,
                 base_delay: float = 1.0, max_delay: float = 60.0,
                 healthy_after: float = 60.0, python: str | None = None) -> None:
        self.config = config
        self.settings = settings
        self.clock = clock
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.healthy_after = healthy_after
        self.python = python
        self.stopping = threading.Event()
        self.children = {name: StreamChild(name) for name in settings.wal_streams}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        for child in self.children.values():
            thread = threading.Thread(target=self._supervise, args=(child,),
                                      name=f"wal-stream-{child.source}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def request_stop(self) -> None:
        """SIGTERM every child (they archive what they received, then exit)."""
        self.stopping.set()
        with self._lock:
            procs = [c.proc for c in self.children.values() if c.proc is not None]
        for proc in procs:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)

    def join(self, timeout: float | None = None) -> None:
        for thread in self._threads:
            thread.join(timeout)

    def _supervise(self, child: StreamChild) -> None:
        failures = 0
        store = RunStore(self.settings.state_dir)
        argv = child_argv(self.settings.config_file,
                          ("wal", "stream", "--source", child.source), self.python)
        while not self.stopping.is_set():
            started = self.clock.now()
            t0 = time.monotonic()
            env = {**os.environ, SCHEDULED_ENV: "1",
                   "DRKIT_STREAM_RESTARTS": str(child.restarts)}
            stderr = b""
            code: int | None = None
            try:
                with self._lock:
                    if self.stopping.is_set():
                        break
                    child.proc = subprocess.Popen(
                        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE, cwd=self.config.base_dir,
                        start_new_session=True, env=env)
                log.info("wal stream %s started (pid %d)", child.source, child.proc.pid)
                _out, stderr = child.proc.communicate()
                code = child.proc.returncode
            except OSError as exc:
                stderr = f"cannot start {argv[0]}: {exc.strerror}".encode()
            finally:
                with self._lock:
                    child.proc = None
            ran = time.monotonic() - t0
            stopped = self.stopping.is_set()
            # Stopped on purpose and exited cleanly (after archiving what it had): ok.
            outcome = "ok" if stopped and code == 0 else outcome_for_exit(code,
                                                                           terminated=stopped)
            message = _last_line(stderr.decode("utf-8", "replace"))
            if code is not None and code < 0 and not message:
                message = f"killed by signal {-code}"
            rec = RunRecord(task=TASK, target=child.source,
                            command=["wal", "stream", "--source", child.source],
                            origin="daemon", started=utc_iso(started),
                            finished=utc_iso(self.clock.now()),
                            duration_seconds=round(ran, 3), exit_code=code,
                            outcome=outcome, message=message)
            report(self.config, self.settings, store, rec, clock=self.clock,
                   result=JobResult(TASK))
            if stopped:
                break
            failures = 1 if ran >= self.healthy_after else failures + 1
            delay = min(self.max_delay, self.base_delay * 2 ** (failures - 1))
            child.delays.append(delay)
            child.restarts += 1
            log.warning("wal stream %s ended (%s); restarting in %.0f s", child.source,
                        outcome, delay)
            self.stopping.wait(delay)
