"""Tencent Cloud CAM: allow with NotPrincipal grants access to everyone not listed."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint import checks
from drkit.lint.findings import Hit
from drkit.lint.model import Policy

ID = "cam_not_principal"
CATEGORY = "not-principal"
SEVERITY = "high"
CLOUDS = ("tencent",)
TITLE = (
    'Allow with NotPrincipal grants access to everyone not listed'
)
REMEDIATION = (
    'Name the principals (qcs::cam::uin/...) instead; use NotPrincipal only with deny.'
)


def check(policy: Policy) -> Iterator[Hit]:
    yield from checks.not_principal(policy)
