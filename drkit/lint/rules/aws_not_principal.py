"""AWS IAM: allow with NotPrincipal grants access to everyone not listed."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint import checks
from drkit.lint.findings import Hit
from drkit.lint.model import Policy

ID = "aws_not_principal"
CATEGORY = "not-principal"
SEVERITY = "high"
CLOUDS = ("aws",)
TITLE = (
    'Allow with NotPrincipal grants access to everyone not listed'
)
REMEDIATION = (
    'Name the principals in Principal instead; use NotPrincipal only with Deny.'
)


def check(policy: Policy) -> Iterator[Hit]:
    yield from checks.not_principal(policy)
