"""Tencent Cloud CAM: write actions allowed on every resource ("*")."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint import checks
from drkit.lint.findings import Hit
from drkit.lint.model import Policy

ID = "cam_wildcard_resource"
CATEGORY = "wildcard-resource"
SEVERITY = "medium"
CLOUDS = ("tencent",)
TITLE = (
    'Write actions allowed on every resource ("*")'
)
REMEDIATION = (
    'Name the qcs:: resources (bucket-appid/prefix, instance) the writes are for.'
)


def check(policy: Policy) -> Iterator[Hit]:
    yield from checks.wildcard_resource(policy)
