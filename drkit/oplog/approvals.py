"""Matching dangerous events against drkit's approval records.

An event is **approved** when a request that was approved by its quorum (no denial) and
executed through drkit covers it: the request's operation performs that kind of action
(``COVERAGE``), on that region's bucket (and, where the event names an object, on an
object of the plan), at a time within the execution window (the execution claim's
``started`` to the result's ``finished``, widened by ``slack`` for clock skew and log
delivery). It is **unapproved** when a drkit request type exists for that kind of action
but none covers it, and **outside drkit** when drkit has no request type for it at all
(dropping a database, deleting a bucket, stopping the trail): nobody could have approved it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from drkit.clock import Clock, parse_iso
from drkit.config import Config
from drkit.oplog.model import OpEvent
from drkit.oplog.rules import cloud_actions

log = logging.getLogger(__name__)

APPROVED = "approved"
UNAPPROVED = "unapproved"
OUTSIDE = "outside-drkit"
STATUSES = (APPROVED, UNAPPROVED, OUTSIDE)

_OBJECT_DELETES = frozenset({"s3:DeleteObject", "s3:DeleteObjectVersion", "cos:DeleteObject",
                             "cos:DeleteMultipleObjects"})
#: Which cloud actions each drkit operation performs when it runs.
COVERAGE: dict[str, frozenset[str]] = {
    "prune": _OBJECT_DELETES,
    "delete-object": _OBJECT_DELETES,
    "cloud-expire": frozenset({"ec2:DeleteSnapshot", "rds:DeleteDBSnapshot",
                               "rds:DeleteDBClusterSnapshot", "cbs:DeleteSnapshots",
                               "cdb:DeleteBackup"}),
}
_COVERED_LOWER = {a.lower() for actions in COVERAGE.values() for a in actions}
DEFAULT_SLACK = timedelta(minutes=15)
#: When an execution left no result (it crashed), its window is this long.
UNFINISHED_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class ExecutedRequest:
    """An approved request drkit executed: what it was allowed to do, and when."""

    id: str
    operation: str
    approved_by: tuple[str, ...]
    requester: str | None
    started: datetime
    finished: datetime
    buckets: tuple[str, ...]  # the buckets it acted on ("" for a local folder)
    names: frozenset[str]  # object keys / snapshot ids its plan names

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "operation": self.operation,
                "approved_by": list(self.approved_by), "requester": self.requester,
                "started": self.started.isoformat(), "finished": self.finished.isoformat()}


def _strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return {s for v in value.values() for s in _strings(v)}
    if isinstance(value, list | tuple):
        return {s for v in value for s in _strings(v)}
    return set()


def _bucket_of(config: Config, region: str | None) -> tuple[str, str]:
    """(bucket, key prefix) of a configured region; ("", "") for a local folder."""
    from drkit.errors import InputError

    if region is None:
        return "", ""
    try:
        url = config.region(region).url
    except InputError:  # a region removed since: binds to nothing
        return "", ""
    return url.bucket, url.prefix.strip("/")


def load_executed(config: Config, clock: Clock) -> list[ExecutedRequest]:
    """Every request executed through drkit with its quorum of approvals and no denial."""
    from drkit.approval.gate import ApprovalContext, list_requests
    from drkit.approval.requests import load_result

    ctx = ApprovalContext.open(config, clock)
    out = []
    for ev in list_requests(ctx):
        if ev.state != "executed" or ev.denials or len(ev.approvers) < ev.quorum:
            continue
        started_text = (ev.executed or {}).get("started")
        if not started_text:
            continue
        started = parse_iso(str(started_text))
        result = load_result(ctx.store, ev.request.id) or {}
        finished = (parse_iso(str(result["finished"])) if result.get("finished")
                    else started + UNFINISHED_WINDOW)
        plan = ev.request.plan if isinstance(ev.request.plan, dict) else {}
        region = plan.get("region") or ev.request.params.get("region")
        bucket, prefix = _bucket_of(config, str(region) if region else None)
        names: set[str] = set()
        for item in plan.get("delete", ()) if isinstance(plan.get("delete"), list) else ():
            if isinstance(item, dict) and item.get("key"):
                key = str(item["key"])
                names.add(f"{prefix}/{key}" if prefix else key)
        if isinstance(plan.get("key"), str):
            names.add(f"{prefix}/{plan['key']}" if prefix else str(plan["key"]))
        if ev.request.operation == "cloud-expire":
            names |= _strings(plan)
        out.append(ExecutedRequest(ev.request.id, ev.request.operation,
                                   tuple(sorted(ev.approvers)), ev.request.requester_name,
                                   started, finished, (bucket,), frozenset(names)))
    log.debug("%d executed request(s) with approvals", len(out))
    return out


def _object_of(resource: str) -> tuple[str, str]:
    """(bucket, key) of an S3 ARN or a ``bucket/key`` name."""
    text = resource.removeprefix("arn:aws:s3:::")
    if text.startswith("qcs::cos:"):
        text = text.split(":", 5)[-1].removeprefix("uid/").split("/", 1)[-1]
    bucket, _, key = text.partition("/")
    return bucket, key


def _covers(req: ExecutedRequest, event: OpEvent, actions: list[tuple[str, str]],
            slack: timedelta) -> bool:
    if not (req.started - slack <= event.time <= req.finished + slack):
        return False
    allowed = {a.lower() for a in COVERAGE.get(req.operation, ())}
    if not any(action.lower() in allowed for _cloud, action in actions):
        return False
    if req.operation in ("prune", "delete-object"):
        bucket = req.buckets[0] if req.buckets else ""
        objects = [_object_of(r) for r in event.resources]
        if not objects:
            return False
        for b, key in objects:
            if bucket and b != bucket:
                return False
            if key and key not in req.names:
                return False
        return True
    # cloud-expire: every snapshot the event names must be in the plan.
    named = [r for r in event.resources if r]
    return bool(named) and all(r in req.names or r.rsplit("/", 1)[-1] in req.names
                               for r in named)


def approval_status(event: OpEvent, executed: list[ExecutedRequest], *,
                    slack: timedelta = DEFAULT_SLACK) -> tuple[str, ExecutedRequest | None]:
    """(status, the request that covers it) for one dangerous event."""
    actions = cloud_actions(event)
    for req in executed:
        if _covers(req, event, actions, slack):
            return APPROVED, req
    if any(action.lower() in _COVERED_LOWER for _cloud, action in actions):
        return UNAPPROVED, None
    return OUTSIDE, None
