"""AWS IAM: allow with NotResource reaches every resource not listed."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint import checks
from drkit.lint.findings import Hit
from drkit.lint.model import Policy

ID = "aws_not_resource"
CATEGORY = "not-resource"
SEVERITY = "medium"
CLOUDS = ("aws",)
TITLE = (
    'Allow with NotResource reaches every resource not listed'
)
REMEDIATION = (
    'Replace NotResource with the exact Resource ARNs; use NotResource only with Deny.'
)


def check(policy: Policy) -> Iterator[Hit]:
    yield from checks.not_resource(policy)
