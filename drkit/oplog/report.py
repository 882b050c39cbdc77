"""``drkit oplog report``: per operator, what they did that matters.

From every stored batch (read with the recovery key): for each operator in the period,
the dangerous actions with their approval status, the sessions with their risky commands,
the actions they had never taken before the period (first-time actions), and activity
outside working hours (``[oplog]`` work_hours / work_days / timezone). Findings raised at
ingest are listed first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from drkit.clock import parse_iso, utc_iso
from drkit.oplog.approvals import APPROVED
from drkit.oplog.ingest import redact_command
from drkit.oplog.model import HOST, OpEvent
from drkit.oplog.settings import OplogSettings

REPORT_FORMAT = "drkit-oplog-report"
_LIST_LIMIT = 50


def _action_name(event: OpEvent) -> str:
    return f"shell:{event.action}" if event.cloud == HOST else event.action


def build_report(batches: Sequence[dict[str, Any]], *, since: datetime, until: datetime,
                 settings: OplogSettings) -> dict[str, Any]:
    records: dict[str, dict[str, Any]] = {}
    for batch in batches:
        for doc in batch.get("events", ()):
            records.setdefault(str(doc.get("id")), doc)
    events = sorted(((OpEvent.from_dict(d), d) for d in records.values()),
                    key=lambda pair: pair[0].time)
    before: dict[str, set[str]] = {}
    for event, _doc in events:
        if event.time < since:
            before.setdefault(event.operator, set()).add(_action_name(event))
    operators: dict[str, dict[str, Any]] = {}

    def slot(name: str) -> dict[str, Any]:
        return operators.setdefault(name, {
            "operator": name, "events": 0, "dangerous": {}, "sessions": {},
            "first_time": {}, "off_hours": [], "off_hours_count": 0, "identities": set()})

    for event, doc in events:
        if not since <= event.time < until:
            continue
        op = slot(event.operator)
        op["events"] += 1
        actor = event.actor
        op["identities"].update(x for x in (actor.role and f"role {actor.role}",
                                            actor.access_key and f"key {actor.access_key}",
                                            actor.session_user and f"as {actor.session_user}",
                                            actor.source_ip and f"from {actor.source_ip}")
                                if x)
        name = _action_name(event)
        if name not in before.get(event.operator, set()) and name not in op["first_time"]:
            op["first_time"][name] = utc_iso(event.time)
        if settings.off_hours(event.time):
            op["off_hours_count"] += 1
            if len(op["off_hours"]) < _LIST_LIMIT:
                op["off_hours"].append({
                    "time": event.time.astimezone(settings.zone).isoformat(),
                    "action": name, "command": redact_command(event.command)
                    if event.command else None, "session": event.session})
        assessment = doc.get("assessment")
        if event.session:
            session = op["sessions"].setdefault(event.session, {
                "session": event.session, "host": event.host, "source": event.source,
                "first": utc_iso(event.time), "last": utc_iso(event.time), "commands": 0,
                "risky": []})
            session["last"] = utc_iso(event.time)
            session["commands"] += 1
            if assessment and len(session["risky"]) < _LIST_LIMIT:
                session["risky"].append({"time": utc_iso(event.time),
                                         "command": redact_command(event.command or ""),
                                         "rule": assessment["danger"]["rule"],
                                         "status": assessment["status"]})
        if assessment:
            key = f"{assessment['danger']['rule']}|{assessment['status']}"
            request = assessment.get("request") or {}
            item = op["dangerous"].setdefault(key, {
                "what": assessment["danger"]["what"], "rule": assessment["danger"]["rule"],
                "class": assessment["danger"]["class"], "status": assessment["status"],
                "severity": assessment.get("severity"), "count": 0,
                "first": utc_iso(event.time), "last": utc_iso(event.time),
                "requests": [], "approved_by": [], "resources": [], "sessions": []})
            item["count"] += 1
            item["last"] = utc_iso(event.time)
            if request and request.get("id") not in item["requests"]:
                item["requests"].append(request.get("id"))
                item["approved_by"] = sorted(set(item["approved_by"])
                                             | set(request.get("approved_by", [])))
            for r in event.resources:
                if r not in item["resources"] and len(item["resources"]) < _LIST_LIMIT:
                    item["resources"].append(r)
            if event.session and event.session not in item["sessions"]:
                item["sessions"].append(event.session)
    findings: dict[str, dict[str, Any]] = {}
    for batch in batches:
        for f in batch.get("findings", ()):
            if parse_iso(f["last"]) >= since and parse_iso(f["first"]) < until:
                findings.setdefault(f["id"], f)
    out_ops = []
    for name in sorted(operators):
        op = operators[name]
        out_ops.append({
            "operator": name, "events": op["events"], "identities": sorted(op["identities"]),
            "dangerous": sorted(op["dangerous"].values(),
                                key=lambda d: (d["status"] == APPROVED, d["first"])),
            "sessions": list(op["sessions"].values()),
            "first_time": [{"action": a, "first": t} for a, t in op["first_time"].items()],
            "off_hours_count": op["off_hours_count"], "off_hours": op["off_hours"]})
    ordered = sorted(findings.values(), key=lambda f: (f["severity"] != "critical", f["first"]))
    return {"format": REPORT_FORMAT, "version": 1, "since": utc_iso(since),
            "until": utc_iso(until), "settings": settings.to_dict(),
            "events": sum(o["events"] for o in out_ops), "batches": len(batches),
            "findings": ordered, "operators": out_ops}


def _cell(value: Any) -> str:
    if isinstance(value, list | tuple):
        value = ", ".join(str(v) for v in value)
    return str(value if value is not None else "").replace("|", "\\|").replace("\n", " ")


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[str]:
    if not rows:
        return ["None.", ""]
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return out + [""]


def render_markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    lines = ["# drkit operations audit report", "",
             f"Period: {report['since']} to {report['until']} · {report['events']} events "
             f"from {report['batches']} stored batch(es) · working hours {s['work_hours']} "
             f"{', '.join(s['work_days'])} ({s['timezone']})", "",
             "## Findings", ""]
    lines += _table([{**f, "commands": [f"`{c}`" for c in f["commands"][:5]]}
                     for f in report["findings"]],
                    ["severity", "operator", "what", "status", "count", "first", "sessions",
                     "commands", "resources"])
    for op in report["operators"]:
        lines += [f"## Operator {op['operator']}", "",
                  f"{op['events']} events; " + (", ".join(op["identities"]) or "no identity "
                                               "details"), "",
                  "### Dangerous actions", ""]
        lines += _table(op["dangerous"], ["status", "severity", "what", "count", "first",
                                          "last", "requests", "approved_by", "sessions",
                                          "resources"])
        lines += ["### Sessions", ""]
        lines += _table([{**x, "risky": [f"`{r['command']}` ({r['status']})"
                                         for r in x["risky"]]} for x in op["sessions"]],
                        ["session", "host", "first", "last", "commands", "risky"])
        lines += ["### First-time actions", ""]
        lines += _table(op["first_time"], ["action", "first"])
        lines += [f"### Off-hours activity ({op['off_hours_count']})", ""]
        lines += _table(op["off_hours"], ["time", "action", "command", "session"])
    return "\n".join(lines)


def render_html(report: dict[str, Any]) -> str:
    """A self-contained HTML page (no scripts, every value escaped)."""
    from drkit.htmlpage import markdown_page

    return markdown_page(render_markdown(report), "drkit operations audit report", max_width_em=80)
