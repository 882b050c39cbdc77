"""AWS IAM: deleting or isolating databases, instances, disks, buckets, objects or snapshots."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint import checks
from drkit.lint.findings import Hit
from drkit.lint.model import Policy

ID = "aws_data_destruction"
CATEGORY = "data-destruction"
SEVERITY = "high"
CLOUDS = ("aws",)
TITLE = (
    'Deleting or isolating databases, instances, disks, buckets, objects or snapshots'
)
REMEDIATION = (
    "Remove delete/terminate actions from operational roles; route destruction through drkit's "
    'two-person approval.'
)


def check(policy: Policy) -> Iterator[Hit]:
    yield from checks.action_class(policy, "destructive", "data destruction")
