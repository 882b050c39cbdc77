"""AWS IAM: sensitive actions allowed without an MFA, source-IP or similar condition."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint import checks
from drkit.lint.findings import Hit
from drkit.lint.model import Policy

ID = "aws_missing_condition"
CATEGORY = "missing-condition"
SEVERITY = "medium"
CLOUDS = ("aws",)
TITLE = (
    'Sensitive actions allowed without an MFA, source-IP or similar condition'
)
REMEDIATION = (
    'Add a Condition such as aws:MultiFactorAuthPresent, aws:SourceIp or aws:SourceVpce (and '
    'sts:ExternalId in trust policies).'
)


def check(policy: Policy) -> Iterator[Hit]:
    yield from checks.missing_condition(policy)
