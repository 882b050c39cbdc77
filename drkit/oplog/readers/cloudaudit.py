"""Tencent Cloud CloudAudit: ``LookUpEvents`` results and the log files it delivers to COS.

A CloudAudit event (the ``CloudAuditEvent`` JSON of a LookUpEvents result, or one record
of a delivered log file) carries ``userIdentity`` (principalId, accountId, secretId,
sessionContext), ``eventTime`` (Unix seconds), ``eventRegion``, ``resourceType`` (the
service: ``cos``, ``cvm``, ``cdb``), ``eventName`` (the API name), ``errorCode`` (0 when it
succeeded), ``requestID``, ``sourceIPAddress`` and ``resourceName``. ``resourceType`` and
``eventName`` make the CAM action (``cos:DeleteBucket``) the linter's classes use.

Delivered files are gzip text, one JSON event per line (or a JSON list, or
``{"Records": [...]}``); all three are read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from drkit.errors import InputError
from drkit.oplog.model import Actor, OpEvent
from drkit.oplog.readers.compressed import maybe_gunzip

log = logging.getLogger(__name__)


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(str(value)), UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _first(*values: Any) -> Any:
    for v in values:
        if v not in (None, ""):
            return v
    return None


def event_from(item: dict[str, Any], *, origin: str) -> OpEvent | None:
    """One CloudAudit event: a LookUpEvents ``Events`` item or a delivered record."""
    inner: dict[str, Any] = {}
    raw = item.get("CloudAuditEvent")
    if isinstance(raw, str) and raw:
        try:
            loaded = json.loads(raw)
            inner = loaded if isinstance(loaded, dict) else {}
        except ValueError:
            inner = {}
    elif "eventName" in item:
        inner = item
    identity = inner.get("userIdentity") or {}
    if not isinstance(identity, dict):
        identity = {}
    time = _time(_first(inner.get("eventTime"), item.get("EventTime")))
    name = _first(inner.get("eventName"), item.get("EventName"))
    service = _first(inner.get("resourceType"),
                     (item.get("Resources") or {}).get("ResourceType")
                     if isinstance(item.get("Resources"), dict) else None,
                     str(_first(inner.get("eventSource"), item.get("EventSource"), "")
                         ).split(".", 1)[0] or None)
    if time is None or not name or not service:
        log.warning("%s: a CloudAudit event without time, name or service was skipped",
                    origin)
        return None
    service = str(service).lower()
    error = _first(inner.get("errorCode"), item.get("ErrorCode"))
    result = "ok" if error in (None, 0, "0", "") else f"error: {error}"
    username = _first(item.get("Username"), identity.get("userName"))
    session = identity.get("sessionContext")
    resources = []
    resource = _first(inner.get("resourceName"),
                      (item.get("Resources") or {}).get("ResourceName")
                      if isinstance(item.get("Resources"), dict) else None)
    if resource:
        resources.append(str(resource))
    region = _first(inner.get("eventRegion"), item.get("EventRegion"),
                    item.get("ResourceRegion"))
    identity_type = str(identity.get("type") or "")
    role = str(username) if identity_type.lower() in ("assumedrole", "role") else None
    return OpEvent(
        time=time,
        actor=Actor(user=None if role else (str(username) if username else
                                            _principal(identity)),
                    role=role,
                    access_key=_first(identity.get("secretId"), item.get("SecretId")),
                    session_user=str(session) if isinstance(session, str) and session
                    else None,
                    source_ip=_first(inner.get("sourceIPAddress"), item.get("SourceIPAddress")),
                    account=_first(identity.get("accountId"), item.get("AccountID"))),
        cloud="tencent", region=str(region) if region else None, service=service,
        action=f"{service}:{name}", resources=tuple(resources), result=result,
        record_id=str(_first(item.get("EventId"), inner.get("eventId"), inner.get("requestID"),
                             item.get("RequestID"), "")),
        source="cloudaudit", origin=origin,
        extra={"event_type": inner.get("eventType"), "action_type": inner.get("actionType")})


def _principal(identity: dict[str, Any]) -> str | None:
    value = identity.get("principalId")
    return str(value) if value else None


def parse_log_file(data: bytes, *, origin: str) -> list[OpEvent]:
    data = maybe_gunzip(data, origin)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{origin}: not a CloudAudit log file (not UTF-8 text)") from None
    records: list[Any]
    stripped = text.strip()
    try:
        doc = json.loads(stripped) if stripped else []
        records = (doc.get("Records") or doc.get("Events") or [] if isinstance(doc, dict)
                   else doc if isinstance(doc, list) else [])
    except ValueError:
        records = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                raise InputError(f"{origin}:{number}: not a CloudAudit event (not JSON)"
                                 ) from None
    out = []
    for record in records:
        if isinstance(record, dict):
            event = event_from(record, origin=origin)
            if event is not None:
                out.append(event)
    return out


def lookup_events(client: Any, models: Any, *, start: datetime, end: datetime,
                  origin: str) -> Iterator[OpEvent]:
    """Events from a ``tencentcloud.cloudaudit`` client's ``LookUpEvents``, page by page
    (``models`` is the SDK's ``cloudaudit.v20190319.models``)."""
    token = None
    while True:
        request = models.LookUpEventsRequest()
        params: dict[str, Any] = {"StartTime": int(start.timestamp()),
                                  "EndTime": int(end.timestamp()), "MaxResults": 50}
        if token:
            params["NextToken"] = token
        request.from_json_string(json.dumps(params))
        response = json.loads(client.LookUpEvents(request).to_json_string())
        for item in response.get("Events") or ():
            event = event_from(item, origin=origin)
            if event is not None:
                yield event
        token = response.get("NextToken")
        if response.get("ListOver", True) or not token:
            return
