"""Findings, severities and the metadata every rule carries."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("info", "low", "medium", "high", "critical")
CATEGORIES = ("syntax", "wildcard-action", "wildcard-resource", "not-action", "not-resource",
              "not-principal", "public-principal", "privilege-escalation",
              "credentials-exposure", "data-destruction", "backup-tampering",
              "missing-condition", "separation-of-duties")
# Categories of the network rules (drkit/lint/network/rules/); separation of duties is shared.
NETWORK_CATEGORIES = ("network-isolation", "network-exposure")
LINTER_ERROR = "linter-error"
INPUT_ERROR = "input-error"
SUPPRESSION_EXPIRED = "suppression-expired"


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)


@dataclass
class Hit:
    """What a rule function yields; the engine turns it into a :class:`Finding`."""

    message: str
    statement: int | str | None = None  # statement index in the policy; a network resource
    actions: tuple[str, ...] = ()
    principal: str | None = None
    severity: str | None = None  # overrides the rule's default severity
    file: str | None = None  # for rules over several files (separation of duties)
    line: int | None = None
    cloud: str | None = None
    evidence: tuple[dict[str, Any], ...] = ()


@dataclass
class Rule:
    """A loaded rule module: its metadata and its one function."""

    id: str
    category: str
    severity: str
    title: str
    remediation: str
    clouds: tuple[str, ...]
    # "policy" (check(Policy)), "principals" (check(PrincipalModel)) or "network"
    # (check(NetworkModel), the rules under drkit/lint/network/rules/)
    scope: str
    check: Callable[[Any], Iterable[Hit]]


@dataclass
class Finding:
    rule: str
    category: str
    severity: str
    cloud: str
    file: str
    statement: int | str | None
    line: int
    actions: list[str]
    message: str
    principal: str | None = None
    evidence: list[dict[str, Any]] = field(default_factory=list)
    suppressed_by: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule, "category": self.category, "severity": self.severity,
            "cloud": self.cloud, "file": self.file, "line": self.line,
            "statement": self.statement, "actions": self.actions, "message": self.message,
            "principal": self.principal,
        }
        if self.evidence:
            out["evidence"] = self.evidence
        if self.suppressed_by is not None:
            out["suppressed_by"] = self.suppressed_by
        return out
