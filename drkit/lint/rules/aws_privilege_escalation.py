"""AWS IAM: actions that let the holder grant itself more permissions."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint import checks
from drkit.lint.findings import Hit
from drkit.lint.model import Policy

ID = "aws_privilege_escalation"
CATEGORY = "privilege-escalation"
SEVERITY = "critical"
CLOUDS = ("aws",)
TITLE = (
    'Actions that let the holder grant itself more permissions'
)
REMEDIATION = (
    'Remove iam:Attach*/Put*Policy, CreatePolicyVersion, SetDefaultPolicyVersion, AddUserToGroup '
    'and PassRole-with-compute from operational roles; give them to an approved admin path only.'
)


def check(policy: Policy) -> Iterator[Hit]:
    yield from checks.privilege_escalation(policy)
