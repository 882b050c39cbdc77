"""Progress reporting seam between the core (which never prints) and the CLI.

Core functions take a ``Progress`` and call ``task(...)`` / ``advance(...)``; the CLI
passes a rich progress bar on a terminal and ``NULL_PROGRESS`` under cron or ``--json``.
"""

from __future__ import annotations

from typing import Protocol


class ProgressTask(Protocol):
    def advance(self, amount: float = 1) -> None: ...

    def set_total(self, total: float | None) -> None: ...

    def close(self) -> None: ...


class Progress(Protocol):
    def task(self, description: str, total: float | None = None, unit: str = "") -> ProgressTask:
        ...


class _NullTask:
    def advance(self, amount: float = 1) -> None:
        pass

    def set_total(self, total: float | None) -> None:
        pass

    def close(self) -> None:
        pass


class NullProgress:
    def task(self, description: str, total: float | None = None, unit: str = "") -> ProgressTask:
        return _NullTask()


NULL_PROGRESS: Progress = NullProgress()
