"""AWS IAM: changes that shrink or unprotect backups (lifecycle, versioning, replication, lock,
policy, keys).
"""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint import checks
from drkit.lint.findings import Hit
from drkit.lint.model import Policy

ID = "aws_backup_tampering"
CATEGORY = "backup-tampering"
SEVERITY = "high"
CLOUDS = ("aws",)
TITLE = (
    'Changes that shrink or unprotect backups (lifecycle, versioning, replication, lock, policy, '
    'keys)'
)
REMEDIATION = (
    'Remove lifecycle, versioning, replication, object-lock, bucket-policy/ACL, KMS-deletion and '
    'backup-vault changes from roles that write or read backups.'
)


def check(policy: Policy) -> Iterator[Hit]:
    yield from checks.action_class(policy, "tampering", "backup tampering")
