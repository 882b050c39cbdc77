"""AWS IAM: allow with NotAction grants every action not listed, including future ones."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint import checks
from drkit.lint.findings import Hit
from drkit.lint.model import Policy

ID = "aws_not_action"
CATEGORY = "not-action"
SEVERITY = "high"
CLOUDS = ("aws",)
TITLE = (
    'Allow with NotAction grants every action not listed, including future ones'
)
REMEDIATION = (
    'Replace NotAction with an explicit Action list; use NotAction only with Deny.'
)


def check(policy: Policy) -> Iterator[Hit]:
    yield from checks.not_action(policy)
