"""Findings: what ``drkit verify`` and ``drkit replicate`` report.

A finding is something a person must look at (tampering, loss, a weakened guardrail); it
makes the command exit 1. Severities, from worst: critical (data or log destroyed or
forged), high (a protection is off or data is missing its copy), medium (a weaker
setting), low (worth a look). Facts that are expected in normal operation (replication
still catching up within its allowance) are notes, not findings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SEVERITIES = ("critical", "high", "medium", "low")


@dataclass(frozen=True)
class Finding:
    severity: str
    region: str
    check: str
    message: str
    key: str = ""
    expected: str = ""
    found: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"severity": self.severity, "region": self.region, "check": self.check,
                "key": self.key, "message": self.message, "expected": self.expected,
                "found": self.found}

    def line(self) -> str:
        where = f" {self.key}" if self.key else ""
        detail = ""
        if self.expected or self.found:
            detail = f" (expected {self.expected or '-'}, found {self.found or '-'})"
        return f"{self.severity.upper():8} {self.region}{where}: {self.message}{detail}"


def sort_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (SEVERITIES.index(f.severity), f.region, f.check,
                                           f.key))
