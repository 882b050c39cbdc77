"""AWS IAM: policy document is malformed or uses unknown keys, effects, versions or resources."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint import checks
from drkit.lint.findings import Hit
from drkit.lint.model import Policy

ID = "aws_syntax"
CATEGORY = "syntax"
SEVERITY = "high"
CLOUDS = ("aws",)
TITLE = (
    'Policy document is malformed or uses unknown keys, effects, versions or resources'
)
REMEDIATION = (
    'Fix the document: JSON object with Version "2012-10-17", a Statement list, Effect '
    'Allow/Deny, service:Action names and ARN resources.'
)


def check(policy: Policy) -> Iterator[Hit]:
    yield from checks.syntax(policy)
