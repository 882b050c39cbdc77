"""The provider interface behind AWS and Tencent Cloud snapshots, and the shared waiting.

A provider knows one cloud's API; ``drkit.cloud.run`` drives every provider the same way:
discover the tagged resources, start one snapshot each, wait, start the cross-region
copies, wait, and return the records. Waiting polls with an injected ``sleep`` and
``monotonic`` so tests need not wait in real time.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from drkit.cloud.model import SnapshotRecord
from drkit.errors import DrkitError, ExitCode
from drkit.progress import Progress

log = logging.getLogger(__name__)


class CloudOperationFailed(DrkitError):
    """A cloud snapshot operation failed."""

    exit_code = ExitCode.FINDINGS


class CloudUnavailable(DrkitError):
    """The cloud API cannot be reached, or refused the credentials."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class Resource:
    """A volume, DB instance, disk or cdb instance selected by tag."""

    provider: str
    kind: str
    resource_id: str
    region: str
    size_gib: int = 0


@dataclass
class Pending:
    """A snapshot or copy that has been started and is not yet known to be complete."""

    record: SnapshotRecord
    handle: dict[str, Any]
    percent: float = 0.0
    done: bool = False


class Provider(ABC):
    name: str

    @abstractmethod
    def discover(self) -> list[Resource]:
        """Every resource of the enabled kinds that carries the selecting tag."""

    @abstractmethod
    def start_snapshot(self, resource: Resource, run_id: str) -> Pending: ...

    @abstractmethod
    def start_copies(self, record: SnapshotRecord, run_id: str) -> list[Pending]:
        """Start a copy of a completed snapshot to every configured target."""

    @abstractmethod
    def poll(self, pending: Pending) -> None:
        """Refresh ``pending.percent``/``done``; raise CloudOperationFailed on an error state."""

    @abstractmethod
    def snapshot_times(self, resource: Resource) -> dict[str, datetime | None]:
        """Region (or "region@account") -> newest complete snapshot of the resource there."""

    @abstractmethod
    def drkit_snapshots(self) -> list[SnapshotRecord]:
        """Every complete snapshot drkit made (tagged with a run id) in every region."""

    @abstractmethod
    def exists(self, record: SnapshotRecord, region: str) -> bool:
        """Whether the recorded snapshot id exists in ``region``."""

    @abstractmethod
    def regions(self) -> list[str]:
        """The source region and every copy region."""

    @abstractmethod
    def delete(self, record: SnapshotRecord) -> None:
        """Delete one snapshot. Only the approval gate and tests may call this."""


@dataclass
class Waiter:
    """Polls pending operations until all are done or ``timeout_s`` has passed."""

    timeout_s: float
    poll_s: float
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic

    def wait(self, provider: Provider, pending: Sequence[Pending], progress: Progress,
             what: str) -> None:
        if not pending:
            return
        task = progress.task(f"{provider.name}: {what}", total=100.0 * len(pending))
        shown = 0.0
        deadline = self.monotonic() + self.timeout_s
        try:
            while True:
                for item in pending:
                    if not item.done:
                        provider.poll(item)
                total = sum(100.0 if p.done else min(p.percent, 99.0) for p in pending)
                if total > shown:
                    task.advance(total - shown)
                    shown = total
                waiting = [p for p in pending if not p.done]
                if not waiting:
                    return
                if self.monotonic() >= deadline:
                    names = ", ".join(f"{p.record.snapshot_id} ({p.record.region}, "
                                      f"{p.percent:.0f}%)" for p in waiting[:5])
                    raise CloudOperationFailed(
                        f"{provider.name}: {what} not complete after "
                        f"{self.timeout_s / 60:g} minutes: {names}")
                self.sleep(self.poll_s)
        finally:
            task.close()


def parse_percent(value: Any) -> float:
    """'45%' / 45 / None -> 45.0 / 45.0 / 0.0."""
    if value is None:
        return 0.0
    try:
        return float(str(value).rstrip("%") or 0)
    except ValueError:
        return 0.0
