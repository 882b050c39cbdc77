"""AWS IAM: actions that create or reveal credentials."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint import checks
from drkit.lint.findings import Hit
from drkit.lint.model import Policy

ID = "aws_credentials_exposure"
CATEGORY = "credentials-exposure"
SEVERITY = "high"
CLOUDS = ("aws",)
TITLE = (
    'Actions that create or reveal credentials'
)
REMEDIATION = (
    'Scope iam:CreateAccessKey/LoginProfile to ${aws:username}, and secret reads to named '
    'secrets.'
)


def check(policy: Policy) -> Iterator[Hit]:
    yield from checks.credentials_exposure(policy)
