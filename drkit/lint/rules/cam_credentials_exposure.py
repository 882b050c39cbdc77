"""Tencent Cloud CAM: actions that create or reveal credentials."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint import checks
from drkit.lint.findings import Hit
from drkit.lint.model import Policy

ID = "cam_credentials_exposure"
CATEGORY = "credentials-exposure"
SEVERITY = "high"
CLOUDS = ("tencent",)
TITLE = (
    'Actions that create or reveal credentials'
)
REMEDIATION = (
    'Scope cam:CreateAccessKey and ssm:GetSecretValue to named resources, or remove them.'
)


def check(policy: Policy) -> Iterator[Hit]:
    yield from checks.credentials_exposure(policy)
