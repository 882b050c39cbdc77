"""The weekly security audit summary, built without the recovery key.

``drkit oplog summary`` (the scheduler's ``oplog-report`` job) reads the unsealed ingest
summaries (``drkit.oplog.store.read_summaries``): the findings of the period per operator,
the bastion log gaps, and how many ingests read which sources. It writes the summary as
Markdown to a file and sends it through the notifier: the generic webhook gets the whole
document as JSON (with the Markdown text), the WeCom robot a short message naming the file.
The full report with commands, addresses and sessions (``drkit oplog report``) still needs
the recovery key and is read where that key is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from drkit.clock import parse_iso, utc_iso
from drkit.config import Config
from drkit.notify import Delivery, send_notification
from drkit.oplog.check import log_gaps
from drkit.oplog.settings import OplogSettings

SUMMARY_FORMAT = "drkit-oplog-summary"


def build_summary(summaries: Sequence[dict[str, Any]], settings: OplogSettings, *,
                  since: datetime, until: datetime) -> dict[str, Any]:
    findings: dict[str, dict[str, Any]] = {}
    ingests = 0
    sources: set[str] = set()
    events = 0
    for summary in summaries:
        ingested = parse_iso(str(summary["ingested"]))
        if since <= ingested < until:
            ingests += 1
            events += int(summary.get("new") or 0)
            sources.update(summary.get("sources") or ())
        for f in summary.get("findings") or ():
            if parse_iso(f["last"]) >= since and parse_iso(f["first"]) < until:
                findings.setdefault(f["id"], f)
    ordered = sorted(findings.values(),
                     key=lambda f: (f["severity"] != "critical", f["first"], f["operator"]))
    operators: dict[str, dict[str, Any]] = {}
    for f in ordered:
        op = operators.setdefault(f["operator"], {"operator": f["operator"], "critical": 0,
                                                  "high": 0, "acts": 0})
        op[f["severity"]] = op.get(f["severity"], 0) + 1
        op["acts"] += int(f["count"])
    gaps = log_gaps(summaries, settings, since=since, until=until)
    return {"format": SUMMARY_FORMAT, "version": 1, "since": utc_iso(since),
            "until": utc_iso(until), "settings": settings.to_dict(), "ingests": ingests,
            "new_events": events, "sources": sorted(sources), "findings": ordered,
            "critical": sum(1 for f in ordered if f["severity"] == "critical"),
            "operators": sorted(operators.values(),
                                key=lambda o: (-o["critical"], -o["high"], o["operator"])),
            "gaps": gaps}


def _cell(value: Any) -> str:
    if isinstance(value, list | tuple):
        value = ", ".join(str(v) for v in value)
    return str(value if value is not None else "").replace("|", "\\|").replace("\n", " ")


def render_summary(doc: dict[str, Any]) -> str:
    s = doc["settings"]
    lines = ["# drkit weekly security audit summary", "",
             f"Period: {doc['since']} to {doc['until']} · {doc['ingests']} ingest(s), "
             f"{doc['new_events']} new event(s) · {len(doc['findings'])} finding(s), "
             f"{doc['critical']} critical · working hours {s['work_hours']} "
             f"{', '.join(s['work_days'])} ({s['timezone']})", "",
             "Commands, addresses and resources are in the full report "
             "(`drkit oplog report`, with the recovery key).", "", "## Findings", ""]
    if doc["findings"]:
        columns = ["severity", "operator", "what", "status", "count", "first", "last",
                   "sessions", "hosts"]
        lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(_cell(f.get(c)) for c in columns) + " |"
                  for f in doc["findings"]]
    else:
        lines.append("None.")
    lines += ["", "## Operators", ""]
    if doc["operators"]:
        lines += ["| operator | critical | high | acts |", "|---|---|---|---|"]
        lines += [f"| {_cell(o['operator'])} | {o['critical']} | {o['high']} | {o['acts']} |"
                  for o in doc["operators"]]
    else:
        lines.append("None.")
    lines += ["", f"## Bastion log gaps (over {s['max_log_gap_minutes']:.0f} working "
                  "minutes)", ""]
    if doc["gaps"]:
        lines += ["| source | from | to | working minutes | still silent |",
                  "|---|---|---|---|---|"]
        lines += [f"| {_cell(g['source'])} | {g['from']} | {g['to']} | {g['working_minutes']} "
                  f"| {'yes' if g['still_silent'] else 'no'} |" for g in doc["gaps"]]
    else:
        lines.append("None.")
    lines += ["", "## Sources read", ""]
    lines += [f"- `{x}`" for x in doc["sources"]] or ["None: nothing was ingested in the "
                                                      "period."]
    return "\n".join(lines) + "\n"


def send_summary(config: Config, doc: dict[str, Any], *, text: str, path: str | None,
                 webhook: str | None, wecom: str | None) -> list[Delivery]:
    """POST the summary: the whole document and its Markdown to the webhook, a short
    Markdown message (counts, critical findings, gaps, the file) to the WeCom robot."""
    url, robot, timeout = webhook, wecom, 10.0
    if url is None and robot is None:
        from drkit.schedule.spec import load_schedule

        hook = load_schedule(config).webhook
        url, robot, timeout = hook.url, hook.wecom, hook.timeout_seconds
    if not url and not robot:
        return []
    lines = [f"period: {doc['since']} to {doc['until']}",
             f"findings: {len(doc['findings'])} ({doc['critical']} critical)",
             f"log gaps: {len(doc['gaps'])}"]
    for f in doc["findings"][:10]:
        lines.append(f"{f['severity']}: {f['operator']}: {f['what']} ({f['status']}, "
                     f"{f['count']}x)")
    for g in doc["gaps"][:5]:
        lines.append(f"gap: {g['source']} {g['from']} to {g['to']}")
    if path:
        lines.append(f"report: `{path}`")
    event = {"source": "drkit", "event": "oplog_weekly_report",
             "repository": config.primary, "report_file": path, "report_markdown": text,
             "summary": doc}
    color = "warning" if doc["critical"] or doc["gaps"] else "info"
    title = (f"drkit security audit {doc['since'][:10]} to {doc['until'][:10]}: "
             f"{len(doc['findings'])} finding(s)")
    return send_notification(url=url, wecom=robot, event=event,
                             title=f"<font color=\"{color}\">{title}</font>", lines=lines,
                             timeout=timeout)
