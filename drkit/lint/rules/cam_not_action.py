"""Tencent Cloud CAM: allow with NotAction grants every action not listed, including future ones."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint import checks
from drkit.lint.findings import Hit
from drkit.lint.model import Policy

ID = "cam_not_action"
CATEGORY = "not-action"
SEVERITY = "high"
CLOUDS = ("tencent",)
TITLE = (
    'Allow with NotAction grants every action not listed, including future ones'
)
REMEDIATION = (
    'Replace notAction with an explicit action list; use it only with deny.'
)


def check(policy: Policy) -> Iterator[Hit]:
    yield from checks.not_action(policy)
