"""``drkit oplog ingest``: read sources, assess every event, keep them, raise findings.

Each dangerous event (``rules.dangers``) gets an approval status (``approvals``). Approved
ones are kept and reported, never raised. The others become findings, grouped so that
repeats of one act (the same operator, rule and status) are one finding with a count, the
sessions, commands and resources involved. An unapproved success in a critical class
(destruction, tampering) is CRITICAL and is announced at once through the notifier
(``drkit.notify``: the generic webhook and the WeCom robot of ``[schedule.webhook]``, or
``--webhook``); the rest are HIGH (escalation, credentials, code execution, or a critical
act that failed).

This host remembers which records it has stored (``<state dir>/oplog/<repo id>.seen``),
so reading the same log files again adds nothing and announces nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drkit.clock import Clock, utc_iso
from drkit.config import Config
from drkit.errors import DrkitError
from drkit.notify import Delivery, send_notification
from drkit.oplog.approvals import APPROVED, ExecutedRequest, approval_status, load_executed
from drkit.oplog.model import OpEvent
from drkit.oplog.readers import SourceSpec, read_source
from drkit.oplog.rules import CRITICAL_CLASSES, Danger, dangers
from drkit.oplog.settings import OplogSettings, load_settings
from drkit.redact import redact_text

log = logging.getLogger(__name__)

CRITICAL = "critical"
HIGH = "high"
_PASSWORD_ARGS = re.compile(r"(?<=\s)(-p|--password=)(?!\s)\S+")


def redact_command(command: str) -> str:
    """A command line fit for a message: passwords given on it (``mysql -pSECRET``,
    ``--password=...``) and anything drkit.redact knows are masked."""
    return redact_text(_PASSWORD_ARGS.sub(r"\1***", " " + command)[1:])


@dataclass
class Assessed:
    event: OpEvent
    danger: Danger
    status: str
    request: ExecutedRequest | None

    @property
    def severity(self) -> str:
        return CRITICAL if (self.danger.action_class in CRITICAL_CLASSES and self.event.ok) \
            else HIGH

    def to_dict(self) -> dict[str, Any]:
        return {"danger": self.danger.to_dict(), "status": self.status,
                "severity": None if self.status == APPROVED else self.severity,
                "request": self.request.to_dict() if self.request else None}


@dataclass
class IngestResult:
    sources: list[str]
    read: int = 0
    new: int = 0
    stored: str | None = None
    approved: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def critical(self) -> list[dict[str, Any]]:
        return [f for f in self.findings if f["severity"] == CRITICAL]

    def to_dict(self) -> dict[str, Any]:
        return {"sources": self.sources, "read": self.read, "new": self.new,
                "stored": self.stored, "approved": self.approved, "findings": self.findings,
                "notifications": [d.to_dict() for d in self.deliveries]}


def group_findings(assessed: Sequence[Assessed]) -> list[dict[str, Any]]:
    """One finding per (operator, rule, status): repeats are counted, not repeated."""
    groups: dict[tuple[str, str, str], list[Assessed]] = {}
    for a in assessed:
        if a.status != APPROVED:
            groups.setdefault((a.event.operator, a.danger.rule, a.status), []).append(a)
    out = []
    for (operator, rule, status), items in groups.items():
        items.sort(key=lambda a: a.event.time)
        severity = CRITICAL if any(a.severity == CRITICAL for a in items) else HIGH
        ids = sorted(a.event.id for a in items)
        fid = hashlib.sha256("\x1f".join([operator, rule, status, *ids]).encode()
                             ).hexdigest()[:16]
        first = items[0]
        out.append({
            "id": fid, "severity": severity, "operator": operator, "rule": rule,
            "class": first.danger.action_class, "what": first.danger.what, "status": status,
            "count": len(items), "first": utc_iso(items[0].event.time),
            "last": utc_iso(items[-1].event.time),
            "actions": sorted({a.event.action for a in items}),
            "sessions": sorted({a.event.session for a in items if a.event.session}),
            "hosts": sorted({a.event.host for a in items if a.event.host}),
            "commands": [redact_command(a.event.command) for a in items if a.event.command],
            "resources": sorted({r for a in items for r in a.event.resources}),
            "source_ips": sorted({a.event.actor.source_ip for a in items
                                  if a.event.actor.source_ip}),
            "identities": sorted({json.dumps(a.event.actor.to_dict(), sort_keys=True)
                                  for a in items}),
            "results": sorted({a.event.result for a in items}),
            "sources": sorted({a.event.source for a in items}),
            "events": ids,
        })
    out.sort(key=lambda f: (f["severity"] != CRITICAL, f["first"], f["operator"]))
    return out


def assess(events: Sequence[OpEvent], executed: Sequence[ExecutedRequest],
           settings: OplogSettings) -> list[Assessed]:
    out = []
    for event in events:
        found = dangers(event, data_paths=settings.data_paths)
        if not found:
            continue
        status, request = approval_status(event, list(executed), slack=settings.slack)
        out.append(Assessed(event, found[0], status, request))
    return out


# -- this host's memory of what it stored ----------------------------------------------------
def _seen_path(config: Config, repository_id: str) -> Path:
    from drkit.audit import state_dir

    return state_dir(config) / "oplog" / f"{repository_id}.seen"


def _load_seen(path: Path) -> set[str]:
    try:
        return set(path.read_text().split())
    except FileNotFoundError:
        return set()


def _add_seen(path: Path, ids: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write("".join(f"{i}\n" for i in ids))
        fh.flush()
        os.fsync(fh.fileno())


# -- notification ------------------------------------------------------------------------------
def notify_critical(config: Config, findings: Sequence[dict[str, Any]], *,
                    webhook: str | None, wecom: str | None, now_text: str) -> list[Delivery]:
    url, robot, timeout = webhook, wecom, 10.0
    if url is None and robot is None:
        from drkit.schedule.spec import load_schedule

        hook = load_schedule(config).webhook
        url, robot, timeout = hook.url, hook.wecom, hook.timeout_seconds
    if not url and not robot:
        log.warning("%d CRITICAL operation finding(s) and no webhook configured "
                    "([schedule.webhook] or --webhook)", len(findings))
        return []
    lines = []
    for f in findings:
        lines.append(f"{f['operator']}: {f['what']} ({f['status']}, {f['count']}x, "
                     f"{f['first']})")
        if f["sessions"]:
            lines.append(f"  sessions: {', '.join(f['sessions'])}")
        lines += [f"  `{c}`" for c in f["commands"][:5]]
        if f["resources"]:
            lines.append(f"  resources: {', '.join(f['resources'][:5])}")
    event = {"source": "drkit", "event": "oplog_critical", "at": now_text,
             "repository": config.primary, "findings": list(findings)}
    return send_notification(url=url, wecom=robot, event=event,
                             title=f"drkit: {len(findings)} CRITICAL operation finding(s)",
                             lines=lines, timeout=timeout)


# -- the command ------------------------------------------------------------------------------
def ingest(config: Config, clock: Clock, specs: Sequence[SourceSpec], *,
           store: bool = True, notify: bool = True, webhook: str | None = None,
           wecom: str | None = None) -> IngestResult:
    from drkit.repo.keys import load_trusted_writer_keys, read_repository_id
    from drkit.storage.url import open_store

    settings = load_settings(config)
    now = clock.now()
    result = IngestResult([str(s) for s in specs])
    events: dict[str, OpEvent] = {}
    for spec in specs:
        for event in read_source(spec, clock=clock):
            events.setdefault(event.id, event)
    result.read = len(events)
    primary = open_store(config.primary_region.url, base_dir=config.base_dir, clock=clock)
    repository_id = read_repository_id(primary, load_trusted_writer_keys(config, primary))
    seen_path = _seen_path(config, repository_id)
    seen = _load_seen(seen_path)
    new = sorted((e for i, e in events.items() if i not in seen), key=lambda e: e.time)
    result.new = len(new)
    if not new:
        return result
    executed = load_executed(config, clock) if any(
        dangers(e, data_paths=settings.data_paths) for e in new) else []
    assessed = assess(new, executed, settings)
    by_id = {a.event.id: a for a in assessed}
    result.approved = [{"event": a.event.to_dict(), **a.to_dict()}
                       for a in assessed if a.status == APPROVED]
    result.findings = group_findings(assessed)
    failure: DrkitError | None = None
    if store:
        records = []
        for e in new:
            doc = e.to_dict()
            if e.id in by_id:
                doc["assessment"] = by_id[e.id].to_dict()
            records.append(doc)
        try:
            result.stored = store_batch_for(config, records, result.findings, result.sources,
                                            now)
            _add_seen(seen_path, [e.id for e in new])
        except DrkitError as exc:
            # The alarm matters more than the archive: announce first, then fail.
            failure = exc
    if notify and result.critical:
        result.deliveries = notify_critical(config, result.critical, webhook=webhook,
                                            wecom=wecom, now_text=utc_iso(now))
    if failure is not None:
        raise failure
    return result


def store_batch_for(config: Config, records: list[dict[str, Any]],
                    findings: list[dict[str, Any]], sources: list[str], now: Any) -> str:
    from drkit.oplog.store import store_batch

    return store_batch(config, events=records, findings=findings, sources=sources,
                       now=now).key
