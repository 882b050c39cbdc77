"""AWS IAM: allow with a wildcard action ("*" or "service:*")."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint import checks
from drkit.lint.findings import Hit
from drkit.lint.model import Policy

ID = "aws_wildcard_action"
CATEGORY = "wildcard-action"
SEVERITY = "high"
CLOUDS = ("aws",)
TITLE = (
    'Allow with a wildcard action ("*" or "service:*")'
)
REMEDIATION = (
    'List the exact actions the role needs (see the Service Authorization Reference).'
)


def check(policy: Policy) -> Iterator[Hit]:
    yield from checks.wildcard_action(policy)
