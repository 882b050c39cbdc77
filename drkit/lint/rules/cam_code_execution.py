"""Tencent Cloud CAM: running code on existing compute, which acts with its CAM role."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint import checks
from drkit.lint.findings import Hit
from drkit.lint.model import Policy

ID = "cam_code_execution"
CATEGORY = "privilege-escalation"
SEVERITY = "high"
CLOUDS = ("tencent",)
TITLE = (
    'Running code on existing compute, which then acts with the role that compute carries'
)
REMEDIATION = (
    'Limit tat:InvokeCommand, tat:RunCommand, scf:UpdateFunctionCode and the like to the named '
    'functions or instances the holder owns, and keep compute that carries powerful roles '
    'out of their reach.'
)


def check(policy: Policy) -> Iterator[Hit]:
    yield from checks.code_execution(policy)
