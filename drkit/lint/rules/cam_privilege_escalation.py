"""Tencent Cloud CAM: actions that let the holder grant itself more permissions."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint import checks
from drkit.lint.findings import Hit
from drkit.lint.model import Policy

ID = "cam_privilege_escalation"
CATEGORY = "privilege-escalation"
SEVERITY = "critical"
CLOUDS = ("tencent",)
TITLE = (
    'Actions that let the holder grant itself more permissions'
)
REMEDIATION = (
    'Remove cam:Attach*Policy, CreatePolicyVersion, SetDefaultPolicyVersion, AddUserToGroup and '
    'cam:PassRole-with-compute from operational roles.'
)


def check(policy: Policy) -> Iterator[Hit]:
    yield from checks.privilege_escalation(policy)
