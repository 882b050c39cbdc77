"""Gaps in an archived database log (``drkit.repo.logarchive``): a HIGH ``log-gap``
finding per hole, read from the region's verified journal. A hole means point-in-time
recovery cannot cross it: everything after it is reachable only from a later base backup.
"""

from __future__ import annotations

from typing import Protocol

from drkit.journal import JournalEntry
from drkit.repo.logarchive import LogCatalog, find_gaps


class _Report(Protocol):
    def add(self, severity: str, check: str, message: str, key: str = "", expected: str = "",
            found: str = "") -> None: ...


def check_log_gaps(report: _Report, live: dict[str, JournalEntry]) -> int:
    """Add a ``log-gap`` finding for every hole in every archive; return the count."""
    catalog = LogCatalog.from_entries(live.values())
    gaps = find_gaps(catalog.segments)
    for gap in gaps:
        report.add("high", "log-gap", gap.describe(), gap.before,
                   f"log from {list(gap.missing_from)}", f"next at {list(gap.missing_to)}")
    return len(gaps)
