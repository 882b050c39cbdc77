"""Tencent Cloud CAM: resource policy grants access to anyone."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint import checks
from drkit.lint.findings import Hit
from drkit.lint.model import Policy

ID = "cam_public_principal"
CATEGORY = "public-principal"
SEVERITY = "critical"
CLOUDS = ("tencent",)
TITLE = (
    'Resource policy grants access to anyone'
)
REMEDIATION = (
    'Replace qcs::cam::anyone with the sub-account or role (qcs::cam::uin/<owner>:uin/<sub>), or '
    'add a qcs:ip condition.'
)


def check(policy: Policy) -> Iterator[Hit]:
    yield from checks.public_principal(policy)
