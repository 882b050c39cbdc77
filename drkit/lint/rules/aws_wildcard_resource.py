"""AWS IAM: write actions allowed on every resource ("*")."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint import checks
from drkit.lint.findings import Hit
from drkit.lint.model import Policy

ID = "aws_wildcard_resource"
CATEGORY = "wildcard-resource"
SEVERITY = "medium"
CLOUDS = ("aws",)
TITLE = (
    'Write actions allowed on every resource ("*")'
)
REMEDIATION = (
    'Name the ARNs (bucket, prefix, instance) the writes are for.'
)


def check(policy: Policy) -> Iterator[Hit]:
    yield from checks.wildcard_resource(policy)
