"""Daily cloud-disk and cloud-database snapshots on AWS (EBS, RDS) and Tencent Cloud (CBS,
TencentDB for MySQL), their cross-region copies, status, expiry plans and verification.

Public API (see docs/cloud.md)::

    load_cloud_config(config) -> CloudConfig
    take_snapshots(cfg, run_id, now=...) -> CloudRunResult
    journal_entries(result) / record_in_journal(journal, result, signer, now=...)
    status(cfg, now=...) -> (rows, stale)
    plan_expiry(cfg, now=...) -> [ExpiryCandidate]   # execution: approval gate only
    expire_approved(cfg, candidates)                  # called by drkit.approval only
    find_missing(cfg, recorded) -> [MissingSnapshot]  # verify findings
"""

from drkit.cloud.base import CloudOperationFailed, CloudUnavailable
from drkit.cloud.config import CloudConfig, load_cloud_config, parse_cloud_config
from drkit.cloud.model import (
    CloudRunResult,
    ExpiryCandidate,
    MissingSnapshot,
    SnapshotRecord,
    StaleResource,
)
from drkit.cloud.run import (
    expire_approved,
    find_missing,
    journal_entries,
    plan_expiry,
    providers_for,
    record_in_journal,
    status,
    take_snapshots,
)

__all__ = [
    "CloudConfig", "CloudOperationFailed", "CloudRunResult", "CloudUnavailable",
    "ExpiryCandidate", "MissingSnapshot", "SnapshotRecord", "StaleResource",
    "expire_approved", "find_missing", "journal_entries", "load_cloud_config",
    "parse_cloud_config", "plan_expiry", "providers_for", "record_in_journal", "status",
    "take_snapshots",
]
