"""Bucket guardrails for S3 and COS regions (``Store.bucket_settings()``).

A region's copy only survives an insider if the bucket itself refuses to shrink:
versioning on (an overwrite or delete leaves the old version), object lock with a
COMPLIANCE default retention of at least the region's lock period, no lifecycle rule that
expires or moves data away before the retention ends, no noncurrent-version expiration
shorter than it, nothing moving current or older versions to another class before it, no
public access, and no bucket policy granting another account (or anyone) a destructive
action (``drkit.verify.bucket_policy``).
"""

from __future__ import annotations

from drkit.config import RegionConfig
from drkit.storage.base import BucketSettings, LifecycleRule
from drkit.verify.bucket_policy import ANYONE, destructive_grants
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
        if rule.expiration_date:
            # A date rule expires every object once the day has come, however new it is.
            add("critical", "bucket-lifecycle-expiration",
                f"lifecycle {rid} expires objects on a fixed date, whatever their age",
                f"no expiration before {keep_days} days", f"on {rule.expiration_date}")
        for after, target in _transitions(rule):
            if (after is None or after < keep_days) \
                    and (target or "").upper() != region.storage_class:
                add("medium", "bucket-lifecycle-transition",
                    f"lifecycle {rid} moves objects to another storage class before the "
                    "retention ends", f"storage class {region.storage_class}",
                    f"{target} {_when(after, rule, target)}")
        for tr in rule.noncurrent_transitions:
            # Older versions are what is left after an overwrite or delete: moving them to
            # an archive class delays exactly the recovery they exist for.
            if (tr.storage_class or "").upper() != region.storage_class:
                add("medium", "bucket-lifecycle-noncurrent-transition",
                    f"lifecycle {rid} moves old versions to another storage class",
                    f"old versions stay in {region.storage_class}",
                    f"{tr.storage_class} after {tr.days} days" if tr.date is None
                    else f"{tr.storage_class} on {tr.date}")
    if settings.public_access:
        reasons = "; ".join(settings.public_reasons) or "public"
        add("critical", "bucket-public", "the bucket is publicly accessible", "private",
            reasons)
    if settings.policy:
        out.extend(_policy_findings(settings, region))
    return out


def _transitions(rule: LifecycleRule) -> list[tuple[int | None, str | None]]:
    """(days, class) of every transition; a date-based one has days None (it applies to
    objects of any age)."""
    if rule.transitions:
        return [(t.days, t.storage_class) for t in rule.transitions]
    if rule.transition_days is not None:
        return [(rule.transition_days, rule.transition_class)]
    return []


def _when(days: int | None, rule: LifecycleRule, target: str | None) -> str:
    if days is not None:
        return f"after {days} days"
    dates = [t.date for t in rule.transitions if t.storage_class == target and t.date]
    return f"on {dates[0]}" if dates else "on a fixed date"


def _policy_findings(settings: BucketSettings, region: RegionConfig) -> list[Finding]:
    assert settings.policy is not None
    cloud = "cos" if region.url.scheme == "cos" else "s3"
    try:
        grants = destructive_grants(settings.policy, owner_account=settings.owner_account,
                                    cloud=cloud)
    except (ValueError, TypeError, AttributeError) as exc:
        return [Finding("high", region.name, "bucket-policy-unreadable",
                        f"the bucket policy cannot be judged: {exc}", "", "a JSON policy",
                        "unparseable")]
    out = []
    for grant in grants:
        anyone = grant.principal == ANYONE
        condition = " (with a condition, not evaluated)" if grant.conditional else ""
        out.append(Finding(
            "critical" if anyone else "high", region.name, "bucket-policy-grant",
            f"bucket policy statement {grant.statement} lets "
            + ("anyone" if anyone else f"account {grant.principal}")
            + f" destroy or weaken the copy{condition}",
            "", f"destructive actions only for owner {settings.owner_account or '?'}",
            ", ".join(grant.actions)))
    return out
