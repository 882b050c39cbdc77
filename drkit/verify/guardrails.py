"""Bucket guardrails for S3 and COS regions (``Store.bucket_settings()``).

A region's copy only survives an insider if the bucket itself refuses to shrink:
versioning on (an overwrite or delete leaves the old version), object lock with a
COMPLIANCE default retention of at least the region's lock period, no lifecycle rule that
expires or moves data away before the retention ends, no noncurrent-version expiration
shorter than it, and no public access.
"""

from __future__ import annotations

from drkit.config import RegionConfig
from drkit.storage.base import BucketSettings
from drkit.verify.findings import Finding


def check_bucket(settings: BucketSettings, region: RegionConfig) -> list[Finding]:
    out: list[Finding] = []
    name = region.name
    keep_days = max(region.retention_days, region.lock_days)

    def add(severity: str, check: str, message: str, expected: str, found: str) -> None:
        out.append(Finding(severity, name, check, message, "", expected, found))

    if settings.versioning != "Enabled":
        add("high", "bucket-versioning",
            "versioning is not enabled: an overwrite or delete destroys the only version",
            "Enabled", settings.versioning)
    if not settings.object_lock_enabled:
        add("high", "bucket-object-lock", "object lock is not enabled on the bucket",
            "enabled", "disabled")
    else:
        if settings.object_lock_mode != "COMPLIANCE":
            add("high" if settings.object_lock_mode is None else "medium",
                "bucket-object-lock-mode",
                "default retention is not COMPLIANCE (GOVERNANCE can be bypassed)",
                "COMPLIANCE", str(settings.object_lock_mode))
        days = settings.default_retention_days or 0
        if days < region.lock_days:
            add("high", "bucket-retention",
                "default retention is shorter than the configured lock period",
                f">= {region.lock_days} days", f"{days} days")
    for rule in settings.lifecycle_rules:
        if not rule.enabled:
            continue
        rid = f"rule {rule.id!r}" + (f" (prefix {rule.prefix!r})" if rule.prefix else "")
        if rule.expiration_days is not None and rule.expiration_days < keep_days:
            add("critical", "bucket-lifecycle-expiration",
                f"lifecycle {rid} expires objects before the retention ends",
                f"no expiration before {keep_days} days", f"{rule.expiration_days} days")
        if rule.noncurrent_expiration_days is not None and \
                rule.noncurrent_expiration_days < keep_days:
            add("critical", "bucket-lifecycle-noncurrent",
                f"lifecycle {rid} deletes old versions before the retention ends",
                f"no noncurrent expiration before {keep_days} days",
                f"{rule.noncurrent_expiration_days} days")
        if (rule.transition_days is not None and rule.transition_days < keep_days
                and (rule.transition_class or "").upper() != region.storage_class):
            add("medium", "bucket-lifecycle-transition",
                f"lifecycle {rid} moves objects to another storage class before the "
                "retention ends",
                f"storage class {region.storage_class}",
                f"{rule.transition_class} after {rule.transition_days} days")
    if settings.public_access:
        reasons = "; ".join(settings.public_reasons) or "public"
        add("critical", "bucket-public", "the bucket is publicly accessible", "private",
            reasons)
    return out
