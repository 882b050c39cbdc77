"""Suppressions: accepted findings, each with a reason, an owner and an expiry date.

An expired suppression stops suppressing (the finding comes back) and is itself reported,
so an exception granted "until the migration is done" cannot quietly become permanent.
Expiry is judged against the injected clock: a suppression expiring on D is valid through D.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from drkit.errors import InputError
from drkit.lint.findings import Finding

_KEYS = {"rule", "file", "statement", "principal", "reason", "owner", "expires"}


@dataclass(frozen=True)
class Suppression:
    rule: str
    reason: str
    owner: str
    expires: date
    file: str | None = None  # glob on the finding's file path
    statement: str | None = None  # Sid or index
    principal: str | None = None
    index: int = 0
    line: int = 1

    def expired(self, now: datetime) -> bool:
        return now.date() > self.expires

    def matches(self, finding: Finding) -> bool:
        if self.rule != finding.rule:
            return False
        if self.file is not None and not (fnmatchcase(finding.file, self.file)
                                          or finding.file.endswith("/" + self.file)
                                          or finding.file == self.file):
            return False
        if self.statement is not None and str(finding.statement) != self.statement:
            return False
        return self.principal is None or self.principal == finding.principal

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "file": self.file, "statement": self.statement,
                "principal": self.principal, "reason": self.reason, "owner": self.owner,
                "expires": self.expires.isoformat()}


def load_suppressions(path: Path, shown: str) -> list[Suppression]:
    """Parse a suppressions file; an entry without reason, owner or expiry is an input error."""
    try:
        text = path.read_text("utf-8")
        data = tomllib.loads(text)
    except OSError as exc:
        raise InputError(f"{shown}: cannot read suppressions file: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{shown}: not valid TOML: {exc}") from exc
    entries = data.get("suppress", [])
    unknown_top = set(data) - {"suppress", "version"}
    if unknown_top or not isinstance(entries, list):
        raise InputError(f"{shown}: expected [[suppress]] entries only")
    lines = [n for n, line in enumerate(text.splitlines(), start=1)
             if line.strip() == "[[suppress]]"]
    out = []
    for i, raw in enumerate(entries):
        where = f"{shown}: suppress[{i}]"
        if not isinstance(raw, dict):
            raise InputError(f"{where}: must be a table")
        unknown = set(raw) - _KEYS
        if unknown:
            raise InputError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        for key in ("rule", "reason", "owner"):
            if not isinstance(raw.get(key), str) or not raw[key].strip():
                raise InputError(f"{where}: '{key}' is required")
        expires = raw.get("expires")
        if isinstance(expires, str):
            try:
                expires = date.fromisoformat(expires)
            except ValueError as exc:
                raise InputError(f"{where}: 'expires' must be a date (YYYY-MM-DD)") from exc
        if isinstance(expires, datetime):
            expires = expires.date()
        if not isinstance(expires, date):
            raise InputError(f"{where}: 'expires' is required (a date, YYYY-MM-DD)")
        statement = raw.get("statement")
        out.append(Suppression(
            rule=raw["rule"], reason=raw["reason"], owner=raw["owner"], expires=expires,
            file=raw.get("file"), statement=str(statement) if statement is not None else None,
            principal=raw.get("principal"), index=i,
            line=lines[i] if i < len(lines) else 1))
    return out
