"""Approval policy from ``[approval]`` in drkit.toml: quorum per operation, expiry, skew.

``quorum`` is either a number (every operation) or a table with ``default`` and one key per
registered operation (``operations.OPERATIONS``). These functions read one table; the gate
(``gate.quorum_for``, ``gate.expiry``, ``gate.max_skew``) combines the pinned
configuration's table with the local one and never lets the local file weaken it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from drkit.config import Config
from drkit.errors import ConfigError
from drkit.numbers import number_problem

DEFAULT_QUORUM = 2
DEFAULT_EXPIRY_HOURS = 72.0
DEFAULT_SKEW_MINUTES = 5.0
#: More approvers than any team has: a quorum beyond it can never be met.
MAX_QUORUM = 100
_KEYS = {"quorum", "expiry_hours", "max_skew_minutes", "registry_file"}


def _approval_table(config: Config) -> dict[str, Any]:
    table = config.approval
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ConfigError("unknown key", file=str(config.path), key=f"approval.{unknown[0]}")
    return table


def quorum_from_raw(table: dict[str, Any], operation: str, *, where: str) -> int:
    value: Any = table.get("quorum", DEFAULT_QUORUM)
    if isinstance(value, dict):
        value = value.get(operation, value.get("default", DEFAULT_QUORUM))
    problem = number_problem(value, minimum=1, maximum=MAX_QUORUM, integer=True)
    if problem:
        raise ConfigError(f"quorum {problem}", file=where, key="approval.quorum")
    return int(value)


def approval_problems(table: dict[str, Any], operations: list[str]) -> list[tuple[str, str]]:
    """(key, reason) for everything in an ``[approval]`` table the gate could not use."""
    problems: list[tuple[str, str]] = []
    for name in sorted(set(table) - _KEYS):
        problems.append((f"approval.{name}", "unknown key"))
    value = table.get("quorum", DEFAULT_QUORUM)
    if isinstance(value, dict):
        for name in sorted(set(value) - {"default", *operations}):
            problems.append((f"approval.quorum.{name}", "not a registered operation (known: "
                             + ", ".join(["default", *operations]) + ")"))
    for op in operations:
        try:
            quorum_from_raw(table, op, where="")
        except ConfigError:
            problems.append(("approval.quorum", f"must be a whole number >= 1 for every "
                             f"operation (not for {op})"))
            break
    for key in ("expiry_hours", "max_skew_minutes"):
        number = table.get(key, 1)
        if isinstance(number, bool) or not isinstance(number, int | float) or number <= 0:
            problems.append((f"approval.{key}", f"must be a positive number, got {number!r}"))
    return problems


def quorum_for(config: Config, operation: str) -> int:
    return quorum_from_raw(_approval_table(config), operation, where=str(config.path))


def _number(config: Config, key: str, default: float, maximum: float) -> float:
    value = _approval_table(config).get(key, default)
    problem = number_problem(value, minimum=0, maximum=maximum, exclusive_minimum=True)
    if problem:
        raise ConfigError(problem, file=str(config.path), key=f"approval.{key}")
    return float(value)


def expiry(config: Config) -> timedelta:
    # A request that stays approvable for more than 30 days is no longer a decision made
    # together; an infinite one would overflow timedelta.
    return timedelta(hours=_number(config, "expiry_hours", DEFAULT_EXPIRY_HOURS, 30 * 24))


def max_skew(config: Config) -> timedelta:
    return timedelta(minutes=_number(config, "max_skew_minutes", DEFAULT_SKEW_MINUTES, 24 * 60))
