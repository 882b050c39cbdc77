"""AWS IAM: resource policy grants access to anyone."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint import checks
from drkit.lint.findings import Hit
from drkit.lint.model import Policy

ID = "aws_public_principal"
CATEGORY = "public-principal"
SEVERITY = "critical"
CLOUDS = ("aws",)
TITLE = (
    'Resource policy grants access to anyone'
)
REMEDIATION = (
    'Replace "*" with the account or role ARNs that need access, or add an '
    'aws:PrincipalOrgID/aws:SourceArn condition.'
)


def check(policy: Policy) -> Iterator[Hit]:
    yield from checks.public_principal(policy)
