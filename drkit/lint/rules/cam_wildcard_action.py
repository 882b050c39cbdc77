"""Tencent Cloud CAM: allow with a wildcard action ("*" or "service:*")."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint import checks
from drkit.lint.findings import Hit
from drkit.lint.model import Policy

ID = "cam_wildcard_action"
CATEGORY = "wildcard-action"
SEVERITY = "high"
CLOUDS = ("tencent",)
TITLE = (
    'Allow with a wildcard action ("*" or "service:*")'
)
REMEDIATION = (
    "List the exact CAM actions the role needs (see the product's CAM-enabled API table)."
)


def check(policy: Policy) -> Iterator[Hit]:
    yield from checks.wildcard_action(policy)
