"""Tencent Cloud CAM: policy document is malformed or uses unknown keys, effects, versions or
resources.
"""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint import checks
from drkit.lint.findings import Hit
from drkit.lint.model import Policy

ID = "cam_syntax"
CATEGORY = "syntax"
SEVERITY = "high"
CLOUDS = ("tencent",)
TITLE = (
    'Policy document is malformed or uses unknown keys, effects, versions or resources'
)
REMEDIATION = (
    'Fix the document: JSON object with version "2.0", a statement list, effect allow/deny, '
    'service:Action names and qcs::service:region:account:resource resources.'
)


def check(policy: Policy) -> Iterator[Hit]:
    yield from checks.syntax(policy)
