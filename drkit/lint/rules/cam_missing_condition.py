"""Tencent Cloud CAM: sensitive actions allowed without an MFA, source-IP or similar condition."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint import checks
from drkit.lint.findings import Hit
from drkit.lint.model import Policy

ID = "cam_missing_condition"
CATEGORY = "missing-condition"
SEVERITY = "medium"
CLOUDS = ("tencent",)
TITLE = (
    'Sensitive actions allowed without an MFA, source-IP or similar condition'
)
REMEDIATION = (
    'Add a condition such as ip_equal qcs:ip or an MFA condition.'
)


def check(policy: Policy) -> Iterator[Hit]:
    yield from checks.missing_condition(policy)
