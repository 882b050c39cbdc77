"""``drkit oplog check``: the audit trail is itself a guardrail.

Targets, named like sources (``KIND:REGION?options``, or ``[oplog] trails``):

- ``cloudtrail:REGION`` — every trail CloudTrail lists in the region (``?trail=NAME`` for
  one): it must be logging, multi-region, validate its log files, and deliver to a bucket
  with versioning and Object Lock (COMPLIANCE mode). Options: ``endpoint=URL`` (the
  CloudTrail API and the bucket), ``bucket_region=R``, ``credentials=env:NAME`` for the
  bucket (as in a region URL); the API uses boto3's credential chain.
- ``cloudaudit:REGION`` — every CloudAudit tracking set (``?audit=NAME`` for one): it must
  be on, record write operations, and deliver to a COS bucket with versioning (and object
  lock, where the bucket's region offers it). Options: ``endpoint=URL`` (the API),
  ``cos_endpoint=URL``, ``credentials=env:NAME`` for the bucket, ``appid=N`` when the
  tracking set names its bucket without the APPID. The API uses ``TENCENTCLOUD_SECRET_ID``
  and ``_KEY``.

A target whose state cannot be read is a finding, never a pass: a guardrail check that
cannot see reports that it cannot see.

Bastion log gaps come from the ingest summaries (``drkit.oplog.store``), so they need no
recovery key: for each bastion source, consecutive minutes with events, and the last time
the source was read, may not be further apart than ``[oplog] max_log_gap`` counted in
working hours only (a quiet night is not a gap; a silent working afternoon is).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, quote

from drkit.clock import Clock, parse_iso, utc_iso
from drkit.config import Config
from drkit.errors import DrkitError, InputError
from drkit.oplog.readers import SourceSpec, cloudaudit_client
from drkit.oplog.settings import OplogSettings
from drkit.storage.base import BucketSettings
from drkit.verify.findings import Finding

log = logging.getLogger(__name__)

KINDS = ("cloudtrail", "cloudaudit")
GAP_CHECK = "bastion-log-gap"


#: A trail to check is named like a source: ``KIND:REGION?options``.
CheckTarget = SourceSpec


def parse_target(text: str) -> CheckTarget:
    kind, colon, rest = text.partition(":")
    where, _, query = rest.partition("?")
    if not colon or kind not in KINDS or not where:
        raise InputError(f"{text!r}: a trail to check is cloudtrail:REGION or "
                         "cloudaudit:REGION (with ?options)")
    options = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    return CheckTarget(kind, where, options, text)


def _unreadable(target: CheckTarget, what: str, exc: BaseException | str) -> Finding:
    reason = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return Finding("high", str(target), "trail-unreadable",
                   f"cannot read {what}, so it cannot be checked ({reason})")


def _bucket_findings(target: CheckTarget, owner: str, url: str, *, cloud: str,
                     clock: Clock) -> list[Finding]:
    """Versioning and lock of the bucket a trail or tracking set delivers to."""
    from drkit.storage.url import open_store

    bucket = url.split("://", 1)[1].split("?", 1)[0]
    try:
        store = open_store(url, clock=clock)
        try:
            settings: BucketSettings = store.bucket_settings()
        finally:
            store.close()
    except DrkitError as exc:
        return [_unreadable(target, f"the settings of bucket {bucket} ({owner})", str(exc))]
    out = []
    if settings.versioning != "Enabled":
        out.append(Finding("high", str(target), "trail-bucket-versioning",
                           f"{owner} delivers to bucket {bucket} without versioning: an "
                           "overwritten or deleted log file is gone",
                           key=bucket, expected="Enabled", found=settings.versioning))
    if not settings.object_lock_enabled:
        note = ("" if cloud == "aws" else
                " (COS object lock is not offered in every region; where it is not, "
                "deliver to a bucket in another account)")
        out.append(Finding("high" if cloud == "aws" else "medium", str(target),
                           "trail-bucket-lock",
                           f"{owner} delivers to bucket {bucket} without object lock: whoever "
                           f"may delete in the bucket can delete the evidence{note}",
                           key=bucket, expected="object lock (COMPLIANCE)", found="none"))
    elif settings.object_lock_mode and settings.object_lock_mode != "COMPLIANCE":
        out.append(Finding("medium", str(target), "trail-bucket-lock",
                           f"{owner} delivers to bucket {bucket} whose object lock is in "
                           f"{settings.object_lock_mode} mode, which a privileged user can "
                           "bypass", key=bucket, expected="COMPLIANCE",
                           found=settings.object_lock_mode))
    return out


def _bucket_url(scheme: str, bucket: str, region: str, *, endpoint: str | None,
                credentials: str | None) -> str:
    query = [f"region={quote(region)}"]
    if endpoint:
        query.append(f"endpoint={endpoint}")
    if credentials:
        query.append(f"credentials={credentials}")
    return f"{scheme}://{bucket}?{'&'.join(query)}"


# -- AWS CloudTrail ----------------------------------------------------------------------------
def check_cloudtrail(target: CheckTarget, *, clock: Clock) -> list[Finding]:
    import boto3
    import botocore.exceptions

    errors = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)
    endpoint = target.options.get("endpoint") or None
    client = boto3.client("cloudtrail", region_name=target.where, endpoint_url=endpoint)
    try:
        trails = list(client.describe_trails(includeShadowTrails=True).get("trailList", []))
    except errors as exc:
        return [_unreadable(target, "the region's trails", exc)]
    wanted = target.options.get("trail")
    if wanted:
        trails = [t for t in trails if wanted in (t.get("Name"), t.get("TrailARN"))]
    if not trails:
        what = f"trail {wanted!r}" if wanted else "a trail"
        return [Finding("critical", str(target), "trail-missing",
                        f"there is no {what} recording calls in {target.where}: what an "
                        "operator does with the API is not written down anywhere",
                        key=wanted or "", expected="a multi-region trail", found="none")]
    out: list[Finding] = []
    for trail in trails:
        name = str(trail.get("Name"))
        arn = str(trail.get("TrailARN") or name)
        try:
            status = client.get_trail_status(Name=arn)
        except errors as exc:
            out.append(_unreadable(target, f"the status of trail {name}", exc))
            continue
        if not status.get("IsLogging"):
            out.append(Finding("critical", str(target), "trail-off",
                               f"trail {name} is not logging: calls are not recorded",
                               key=name, expected="logging", found="stopped"))
        if not trail.get("IsMultiRegionTrail"):
            out.append(Finding("high", str(target), "trail-single-region",
                               f"trail {name} records only {trail.get('HomeRegion')}: calls "
                               "in every other region go unrecorded", key=name,
                               expected="multi-region", found="single region"))
        if not trail.get("LogFileValidationEnabled"):
            out.append(Finding("medium", str(target), "trail-validation",
                               f"trail {name} writes no digest files: an edited log file "
                               "cannot be told from a true one", key=name,
                               expected="log file validation", found="off"))
        bucket = trail.get("S3BucketName")
        if not bucket:
            out.append(Finding("high", str(target), "trail-bucket-missing",
                               f"trail {name} delivers to no bucket", key=name))
            continue
        region = target.options.get("bucket_region") or str(trail.get("HomeRegion")
                                                            or target.where)
        url = _bucket_url("s3", str(bucket), region, endpoint=endpoint,
                          credentials=target.options.get("credentials"))
        out += _bucket_findings(target, f"trail {name}", url, cloud="aws", clock=clock)
    return out


# -- Tencent Cloud CloudAudit ----------------------------------------------------------------
def _call(client: Any, models: Any, action: str, params: dict[str, Any]) -> dict[str, Any]:
    request = getattr(models, f"{action}Request")()
    request.from_json_string(json.dumps(params))
    answer: dict[str, Any] = json.loads(getattr(client, action)(request).to_json_string())
    return answer


def check_cloudaudit(target: CheckTarget, *, clock: Clock) -> list[Finding]:
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
        TencentCloudSDKException,
    )

    client, models = cloudaudit_client(target)
    try:
        audits = _call(client, models, "ListAudits", {}).get("AuditSummarys") or []
    except TencentCloudSDKException as exc:
        return [_unreadable(target, "the tracking sets", f"{exc.code}: {exc.message}")]
    wanted = target.options.get("audit")
    names = [str(a.get("AuditName")) for a in audits
             if not wanted or a.get("AuditName") == wanted]
    if not names:
        what = f"tracking set {wanted!r}" if wanted else "a tracking set"
        return [Finding("critical", str(target), "trail-missing",
                        f"there is no {what}: CloudAudit keeps events for 90 days only and "
                        "delivers them nowhere an insider cannot reach", key=wanted or "",
                        expected="a tracking set delivering to COS", found="none")]
    out: list[Finding] = []
    for name in names:
        try:
            audit = _call(client, models, "DescribeAudit", {"AuditName": name})
        except TencentCloudSDKException as exc:
            out.append(_unreadable(target, f"tracking set {name}", f"{exc.code}: "
                                                                   f"{exc.message}"))
            continue
        if audit.get("AuditStatus") != 1:
            out.append(Finding("critical", str(target), "trail-off",
                               f"tracking set {name} is stopped: events are not delivered",
                               key=name, expected="on", found="off"))
        if audit.get("ReadWriteAttribute") not in (2, 3):
            out.append(Finding("high", str(target), "trail-scope",
                               f"tracking set {name} does not record write operations "
                               "(ReadWriteAttribute "
                               f"{audit.get('ReadWriteAttribute')}): deletions go unrecorded",
                               key=name, expected="2 (writes) or 3 (all)",
                               found=str(audit.get("ReadWriteAttribute"))))
        bucket = str(audit.get("CosBucketName") or "")
        if not bucket:
            out.append(Finding("high", str(target), "trail-bucket-missing",
                               f"tracking set {name} delivers to no COS bucket", key=name))
            continue
        appid = target.options.get("appid")
        if appid and not bucket.rsplit("-", 1)[-1].isdigit():
            bucket = f"{bucket}-{appid}"
        url = _bucket_url("cos", bucket, str(audit.get("CosRegion") or target.where),
                          endpoint=target.options.get("cos_endpoint"),
                          credentials=target.options.get("credentials"))
        out += _bucket_findings(target, f"tracking set {name}", url, cloud="tencent",
                                clock=clock)
    return out


def check_trails(targets: Sequence[CheckTarget], *, clock: Clock) -> list[Finding]:
    out: list[Finding] = []
    for target in targets:
        if target.kind == "cloudtrail":
            out += check_cloudtrail(target, clock=clock)
        else:
            out += check_cloudaudit(target, clock=clock)
    return out


# -- bastion log gaps --------------------------------------------------------------------------
def log_gaps(summaries: Sequence[dict[str, Any]], settings: OplogSettings, *,
             since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Silences of each bastion source longer than ``max_log_gap`` in working hours that
    end inside ``since``..``until``. A source's timeline is the minutes it had events and,
    at its end, the last time it was read (so a source that went quiet and stayed quiet is
    a gap up to the last ingest that read it)."""
    minutes: dict[str, set[datetime]] = {}
    reads: dict[str, list[datetime]] = {}
    for summary in summaries:
        ingested = parse_iso(str(summary["ingested"]))
        for source, slot in (summary.get("activity") or {}).items():
            minutes.setdefault(source, set()).update(parse_iso(m) for m in slot["minutes"])
            reads.setdefault(source, []).append(ingested)
    out = []
    for source in sorted(reads):
        first_read, last_read = min(reads[source]), max(reads[source])
        points = sorted(minutes.get(source, ()))
        if not points:
            points = [first_read]  # read again and again, never anything in it
        spans = [(points[i], points[i + 1], False) for i in range(len(points) - 1)]
        if last_read > points[-1]:
            spans.append((points[-1], last_read, True))
        for start, end, trailing in spans:
            if not (since < end and start < until):
                continue
            quiet = settings.working_time(start, end)
            if quiet > settings.max_log_gap:
                out.append({"source": source, "from": utc_iso(start), "to": utc_iso(end),
                            "working_minutes": round(quiet.total_seconds() / 60),
                            "still_silent": trailing})
    return out


def gap_findings(gaps: Sequence[dict[str, Any]], settings: OplogSettings) -> list[Finding]:
    limit = round(settings.max_log_gap.total_seconds() / 60)
    out = []
    for gap in gaps:
        tail = (" and nothing since (to the last ingest that read it)"
                if gap["still_silent"] else "")
        out.append(Finding(
            "high", gap["source"], GAP_CHECK,
            f"no events from {gap['from']} to {gap['to']}{tail}: "
            f"{gap['working_minutes']} minutes of working hours without a log line",
            expected=f"at most {limit} working minutes", found=f"{gap['working_minutes']}"))
    return out


@dataclass
class CheckResult:
    targets: list[str]
    findings: list[Finding]
    gaps: list[dict[str, Any]]
    summaries: int
    since: datetime
    until: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"targets": self.targets, "since": utc_iso(self.since),
                "until": utc_iso(self.until), "summaries": self.summaries,
                "gaps": self.gaps, "findings": [f.to_dict() for f in self.findings]}


def run_check(config: Config | None, clock: Clock, targets: Sequence[CheckTarget], *,
              since: datetime) -> CheckResult:
    """Check ``targets``; with a ``config``, also the bastion log gaps of its repository."""
    from drkit.oplog.settings import load_settings
    from drkit.oplog.store import read_summaries

    until = clock.now()
    findings = check_trails(targets, clock=clock)
    found_gaps: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    if config is not None:
        settings = load_settings(config)
        summaries = read_summaries(config, clock)
        found_gaps = log_gaps(summaries, settings, since=since, until=until)
        findings += gap_findings(found_gaps, settings)
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    findings.sort(key=lambda f: (order[f.severity], f.region, f.check, f.key))
    return CheckResult([str(t) for t in targets], findings, found_gaps, len(summaries),
                       since, until)


__all__ = ["CheckResult", "CheckTarget", "check_trails", "gap_findings", "log_gaps",
           "parse_target", "run_check"]
