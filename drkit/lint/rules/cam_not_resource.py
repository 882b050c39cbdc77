"""Tencent Cloud CAM: allow with NotResource reaches every resource not listed."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint import checks
from drkit.lint.findings import Hit
from drkit.lint.model import Policy

ID = "cam_not_resource"
CATEGORY = "not-resource"
SEVERITY = "medium"
CLOUDS = ("tencent",)
TITLE = (
    'Allow with NotResource reaches every resource not listed'
)
REMEDIATION = (
    'Replace notResource with the exact qcs:: resources; use it only with deny.'
)


def check(policy: Policy) -> Iterator[Hit]:
    yield from checks.not_resource(policy)
