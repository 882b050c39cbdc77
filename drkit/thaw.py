"""Thawing archive-class objects of a region: ask for each, then wait until all are readable.

Shared by ``drkit thaw`` and the drill's "thaw and open" step. Archive classes (S3
GLACIER/DEEP_ARCHIVE, COS ARCHIVE/DEEP_ARCHIVE, and the local stand-in) keep an object's
bytes unreadable until a restore request completes, which takes minutes to hours; the
journal and the ``config`` object are always written in a readable class, so what to thaw
is known without thawing anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from drkit.errors import DrkitError, ExitCode
from drkit.progress import NULL_PROGRESS, Progress
from drkit.storage.base import ARCHIVE_CLASSES, Store


class ThawTimeout(DrkitError):
    """Objects were still frozen when the time allowed for thawing ran out."""

    exit_code = ExitCode.FINDINGS


@dataclass
class ThawResult:
    requested: list[str] = field(default_factory=list)  # archive-class objects asked for
    ready: list[str] = field(default_factory=list)       # readable now
    waiting: list[str] = field(default_factory=list)     # thaw requested, not done yet

    def to_dict(self) -> dict[str, object]:
        return {"requested": len(self.requested), "ready": len(self.ready),
                "waiting": len(self.waiting), "waiting_keys": self.waiting[:20]}


def cold_keys(store: Store, keys: Iterable[str]) -> list[str]:
    """Those of ``keys`` that are in an archive class (one listing per top-level prefix)."""
    wanted = set(keys)
    return [info.key for prefix in sorted({k.split("/", 1)[0] + "/" for k in wanted})
            for info in store.list(prefix)
            if info.key in wanted and (info.needs_thaw or info.storage_class in ARCHIVE_CLASSES)]


def thaw_objects(store: Store, keys: Iterable[str], *, what: str, timeout: float,
                 poll: float = 30.0, wait: bool = True, progress: Progress = NULL_PROGRESS,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> ThawResult:
    """Request a thaw of every archive-class object among ``keys``; with ``wait``, poll
    until all are readable or raise ThawTimeout after ``timeout`` seconds."""
    result = ThawResult(requested=cold_keys(store, keys))
    if not result.requested:
        return result
    task = progress.task(f"thaw {what}", len(result.requested))
    waiting = []
    try:
        for key in result.requested:
            if store.thaw(key):
                result.ready.append(key)
                task.advance()
            else:
                waiting.append(key)
        deadline = monotonic() + timeout
        while waiting and wait:
            if monotonic() >= deadline:
                raise ThawTimeout(f"{store.url}: {len(waiting)} {what} objects still frozen "
                                  f"after {timeout:.0f}s, e.g. {waiting[0]}")
            sleep(min(poll, max(0.0, deadline - monotonic())))
            still = []
            for key in waiting:
                if store.thaw(key):
                    result.ready.append(key)
                    task.advance()
                else:
                    still.append(key)
            waiting = still
    finally:
        task.close()
    result.waiting = waiting
    return result
