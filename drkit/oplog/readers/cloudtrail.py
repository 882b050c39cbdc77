"""AWS CloudTrail: trail log files (``{"Records": [...]}``, gzip JSON) and LookupEvents.

A record's ``eventSource`` (``s3.amazonaws.com``) and ``eventName`` (``DeleteBucket``) make
the IAM action ``s3:DeleteBucket``, the spelling the linter's catalogue classes use. A few
API names differ from the IAM action that authorises them; ``EVENT_ACTIONS`` maps those.
Insight events (``eventCategory: Insight``) describe call rates, not calls, and are skipped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from drkit.clock import parse_iso
from drkit.errors import InputError
from drkit.oplog.model import Actor, OpEvent
from drkit.oplog.readers.compressed import maybe_gunzip

log = logging.getLogger(__name__)

#: (service, eventName) -> the IAM action name, where CloudTrail's differs.
EVENT_ACTIONS = {
    ("s3", "DeleteObjects"): "DeleteObject",
    ("s3", "PutBucketLifecycle"): "PutLifecycleConfiguration",
    ("s3", "DeleteBucketLifecycle"): "PutLifecycleConfiguration",
    ("s3", "PutObjectLockConfiguration"): "PutBucketObjectLockConfiguration",
    ("s3", "PutBucketReplication"): "PutReplicationConfiguration",
    ("s3", "DeleteBucketReplication"): "PutReplicationConfiguration",
    ("s3", "PutBucketEncryption"): "PutEncryptionConfiguration",
    ("s3", "DeleteBucketEncryption"): "PutEncryptionConfiguration",
}


def iam_action(event_source: str, event_name: str) -> tuple[str, str]:
    """(service, ``service:Action``) for a record's eventSource and eventName."""
    service = event_source.split(".", 1)[0].lower() if event_source else "unknown"
    name = EVENT_ACTIONS.get((service, event_name), event_name)
    return service, f"{service}:{name}"


def _actor(identity: dict[str, Any], source_ip: str | None) -> Actor:
    kind = identity.get("type")
    arn = str(identity.get("arn") or "")
    user = identity.get("userName")
    role = session_user = None
    issuer = ((identity.get("sessionContext") or {}).get("sessionIssuer") or {})
    if kind == "AssumedRole":
        # arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION: the session name is usually the
        # person (SSO, a bastion's role session), the role is what they acted as.
        parts = arn.split(":assumed-role/", 1)[-1].split("/")
        role = issuer.get("userName") or (parts[0] if parts and parts[0] else None)
        session_user = parts[1] if len(parts) > 1 else None
        user = None
    elif kind == "Root":
        user = user or "root"
    elif kind == "AWSService":
        user = str(identity.get("invokedBy") or "aws-service")
    return Actor(user=str(user) if user else None, role=str(role) if role else None,
                 access_key=identity.get("accessKeyId") or None,
                 session_user=str(session_user) if session_user else None,
                 source_ip=source_ip or None, account=identity.get("accountId") or None)


def _resources(record: dict[str, Any]) -> tuple[str, ...]:
    out: list[str] = []
    for res in record.get("resources") or ():
        arn = res.get("ARN") or res.get("arn")
        if arn:
            out.append(str(arn))
    params = record.get("requestParameters") or {}
    if isinstance(params, dict):
        bucket = params.get("bucketName")
        if bucket:
            key = params.get("key")
            arn = f"arn:aws:s3:::{bucket}" + (f"/{key}" if key else "")
            if arn not in out:
                out.append(arn)
        for name in ("name", "trailName", "snapshotId", "dBInstanceIdentifier",
                     "dBSnapshotIdentifier", "dBClusterSnapshotIdentifier", "userName",
                     "roleName", "groupName", "policyArn", "instanceId", "volumeId"):
            value = params.get(name)
            if isinstance(value, str) and value and value not in out:
                out.append(value)
        items = ((params.get("instancesSet") or {}).get("items")
                 if isinstance(params.get("instancesSet"), dict) else None)
        for item in items or ():
            if isinstance(item, dict) and item.get("instanceId"):
                out.append(str(item["instanceId"]))
    return tuple(dict.fromkeys(out))


def record_event(record: dict[str, Any], *, origin: str) -> OpEvent | None:
    """One CloudTrail record as an event, or None for records that are not calls."""
    if record.get("eventCategory") == "Insight" or record.get("eventType") == \
            "AwsCloudTrailInsight":
        return None
    try:
        time: datetime = parse_iso(str(record["eventTime"]))
        event_name = str(record["eventName"])
    except (KeyError, ValueError):
        log.warning("%s: a CloudTrail record without eventTime/eventName was skipped", origin)
        return None
    service, action = iam_action(str(record.get("eventSource") or ""), event_name)
    error = record.get("errorCode")
    identity = record.get("userIdentity") or {}
    return OpEvent(
        time=time, actor=_actor(identity if isinstance(identity, dict) else {},
                                record.get("sourceIPAddress")),
        cloud="aws", region=record.get("awsRegion"), service=service, action=action,
        resources=_resources(record), result="ok" if not error else f"error: {error}",
        record_id=str(record.get("eventID") or record.get("requestID") or ""),
        source="cloudtrail", origin=origin,
        extra={"user_agent": record.get("userAgent"), "event_type": record.get("eventType"),
               "read_only": record.get("readOnly")})


def parse_log_file(data: bytes, *, origin: str) -> list[OpEvent]:
    """A trail log file as CloudTrail delivers it (gzip or plain JSON)."""
    data = maybe_gunzip(data, origin)
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise InputError(f"{origin}: not a CloudTrail log file (not JSON)") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("Records"), list):
        raise InputError(f"{origin}: not a CloudTrail log file (no \"Records\" list)")
    out = []
    for record in doc["Records"]:
        if isinstance(record, dict):
            event = record_event(record, origin=origin)
            if event is not None:
                out.append(event)
    return out


def is_log_file(name: str) -> bool:
    """Trail log files, not the digest files CloudTrail writes beside them."""
    return (name.endswith((".json.gz", ".json")) and "CloudTrail-Digest" not in name
            and "/CloudTrail-Digest/" not in name)


def lookup_events(client: Any, *, start: datetime | None, end: datetime | None,
                  origin: str) -> Iterator[OpEvent]:
    """Events from a boto3 CloudTrail client's ``LookupEvents`` (management events of the
    last 90 days), page by page."""
    kwargs: dict[str, Any] = {}
    if start is not None:
        kwargs["StartTime"] = start
    if end is not None:
        kwargs["EndTime"] = end
    token = None
    while True:
        page = client.lookup_events(**kwargs, **({"NextToken": token} if token else {}))
        for item in page.get("Events", ()):
            raw = item.get("CloudTrailEvent")
            try:
                record = json.loads(raw) if raw else None
            except ValueError:
                record = None
            if not isinstance(record, dict):
                log.warning("%s: event %s has no readable CloudTrailEvent", origin,
                            item.get("EventId"))
                continue
            event = record_event(record, origin=origin)
            if event is not None:
                yield event
        token = page.get("NextToken")
        if not token:
            return


def events_of(files: Iterable[tuple[str, bytes]]) -> Iterator[OpEvent]:
    for name, data in files:
        yield from parse_log_file(data, origin=name)
