"""The drill report: one model, rendered as JSON (machines), Markdown and HTML (people)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

MAX_LISTED_MISMATCHES = 100


@dataclass
class StepResult:
    """One step of a drill with its outcome and how long it took."""

    name: str
    ok: bool
    seconds: float
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "seconds": round(self.seconds, 3),
                "detail": self.detail, **({"data": self.data} if self.data else {})}


@dataclass
class DrillReport:
    region: str
    started_at: str
    snapshot: str | None = None
    snapshot_time: str | None = None
    checkpoint: dict[str, Any] | None = None
    steps: list[StepResult] = field(default_factory=list)
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    rto_objective_seconds: float | None = None
    rpo_objective_seconds: float | None = None
    reconciled: int = 0
    mismatched: list[dict[str, Any]] = field(default_factory=list)
    accepted_findings: list[dict[str, Any]] = field(default_factory=list)
    ledger: dict[str, Any] | None = None
    error: str | None = None
    # A point-in-time drill (``--to-time``): source, target, base backup, WAL, rows.
    point_in_time: dict[str, Any] | None = None

    @property
    def rto_ok(self) -> bool:
        return (self.rto_seconds is not None and self.rto_objective_seconds is not None
                and self.rto_seconds <= self.rto_objective_seconds)

    @property
    def rpo_ok(self) -> bool:
        return (self.rpo_seconds is not None and self.rpo_objective_seconds is not None
                and self.rpo_seconds <= self.rpo_objective_seconds)

    @property
    def passed(self) -> bool:
        return (self.error is None and bool(self.steps) and all(s.ok for s in self.steps)
                and not self.mismatched and self.rto_ok and self.rpo_ok)

    def add(self, step: StepResult) -> StepResult:
        self.steps.append(step)
        return step

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "drkit-drill-report/1",
            "passed": self.passed,
            "region": self.region,
            "snapshot": self.snapshot,
            "snapshot_time": self.snapshot_time,
            "checkpoint": self.checkpoint,
            "started_at": self.started_at,
            "rto_seconds": None if self.rto_seconds is None else round(self.rto_seconds, 3),
            "rpo_seconds": None if self.rpo_seconds is None else round(self.rpo_seconds, 3),
            "rto_objective_seconds": self.rto_objective_seconds,
            "rpo_objective_seconds": self.rpo_objective_seconds,
            "rto_ok": self.rto_ok,
            "rpo_ok": self.rpo_ok,
            "reconciled": self.reconciled,
            "mismatched_count": len(self.mismatched),
            "mismatched": self.mismatched[:MAX_LISTED_MISMATCHES],
            "accepted_findings": self.accepted_findings,
            "ledger": self.ledger,
            "point_in_time": self.point_in_time,
            "steps": [s.to_dict() for s in self.steps],
            "error": self.error,
        }

    # -- people ----------------------------------------------------------------------------
    def summary_line(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        parts = [f"drill {verdict}: region {self.region}"]
        if self.snapshot:
            parts.append(f"snapshot {self.snapshot[:12]}")
        if self.rto_seconds is not None:
            parts.append(f"RTO {_duration(self.rto_seconds)}")
        if self.rpo_seconds is not None:
            parts.append(f"RPO {_duration(self.rpo_seconds)}")
        if self.point_in_time is not None:
            pit = self.point_in_time
            parts.append(f"{pit['source']} as of {pit['target']}: {pit.get('rows', '?')} rows")
        elif self.ledger is not None:
            parts.append(f"{self.reconciled} merchants reconciled, {len(self.mismatched)} not")
        else:
            failed = next((s.name for s in self.steps if not s.ok), None)
            parts.append(f"stopped at {failed}" if failed else "ledger not reconciled")
        return ", ".join(parts)

    def to_text(self) -> str:
        lines = []
        for step in self.steps:
            mark = "ok  " if step.ok else "FAIL"
            lines.append(f"  [{mark}] {step.name:<22} {step.seconds:8.2f}s  {step.detail}")
        if self.error:
            lines.append(f"  error: {self.error}")
        for m in self.mismatched[:10]:
            lines.append(f"  merchant {m.get('merchant_id')}: {m.get('summary', '')}")
        if len(self.mismatched) > 10:
            lines.append(f"  … and {len(self.mismatched) - 10} more merchants (see the report)")
        if self.rto_seconds is not None and self.rto_objective_seconds is not None:
            lines.append(f"  RTO {_duration(self.rto_seconds)} "
                         f"(objective {_duration(self.rto_objective_seconds)}) "
                         f"{'ok' if self.rto_ok else 'MISSED'}")
        if self.rpo_seconds is not None and self.rpo_objective_seconds is not None:
            lines.append(f"  RPO {_duration(self.rpo_seconds)} "
                         f"(objective {_duration(self.rpo_objective_seconds)}) "
                         f"{'ok' if self.rpo_ok else 'MISSED'}")
        if self.ledger:
            lines.append(f"  compensation: {_yuan(self.ledger.get('cash_fen'))} CNY cash to "
                         f"{self.ledger.get('cash_merchants', '?')} merchants, "
                         f"{self.ledger.get('traffic_merchants', '?')} on the traffic plan")
        lines.append(self.summary_line())
        return "\n".join(lines)

    def to_markdown(self) -> str:
        d = self.to_dict()
        out = [f"# Restore drill: region {self.region} — {'PASSED' if self.passed else 'FAILED'}",
               "",
               f"- started: {self.started_at}",
               f"- snapshot: `{self.snapshot}` taken {self.snapshot_time}",
               f"- checkpoint: {_checkpoint(self.checkpoint)}",
               f"- RTO: {_duration(self.rto_seconds)} (objective "
               f"{_duration(self.rto_objective_seconds)}) — {'ok' if self.rto_ok else 'MISSED'}",
               f"- RPO: {_duration(self.rpo_seconds)} (objective "
               f"{_duration(self.rpo_objective_seconds)}) — {'ok' if self.rpo_ok else 'MISSED'}",
               f"- merchants reconciled: {self.reconciled}; not reconciled: "
               f"{len(self.mismatched)}"]
        if self.ledger:
            out.append(f"- compensation: {_yuan(self.ledger.get('cash_fen'))} CNY cash")
        if self.accepted_findings:
            out.append(f"- **verify findings accepted with --accept-findings: "
                       f"{len(self.accepted_findings)}**")
        if self.error:
            out.append(f"- error: {self.error}")
        out += ["", "## Steps", "", "| step | result | seconds | detail |",
                "| --- | --- | ---: | --- |"]
        for s in self.steps:
            out.append(f"| {s.name} | {'ok' if s.ok else 'FAILED'} | {s.seconds:.2f} | "
                       f"{_md(s.detail)} |")
        if self.mismatched:
            out += ["", f"## Merchants that do not reconcile ({len(self.mismatched)}"
                        f"{', first 100 listed' if len(self.mismatched) > 100 else ''})", "",
                    "| merchant | what differs |", "| --- | --- |"]
            for m in d["mismatched"]:
                out.append(f"| {m.get('merchant_id')} | {_md(str(m.get('summary', '')))} |")
        if self.accepted_findings:
            out += ["", "## Accepted verify findings", ""]
            for f in self.accepted_findings:
                out.append(f"- {f.get('severity', '')} {f.get('key', '')}: "
                           f"{_md(str(f.get('message', '')))}")
        return "\n".join(out) + "\n"

    def to_html(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        colour = "#1a7f37" if self.passed else "#cf222e"
        rows = "".join(
            f"<tr><td>{html.escape(s.name)}</td><td>{'ok' if s.ok else 'FAILED'}</td>"
            f"<td style='text-align:right'>{s.seconds:.2f}</td>"
            f"<td>{html.escape(s.detail)}</td></tr>" for s in self.steps)
        mism = "".join(
            f"<tr><td>{html.escape(str(m.get('merchant_id')))}</td>"
            f"<td>{html.escape(str(m.get('summary', '')))}</td></tr>"
            for m in self.mismatched[:MAX_LISTED_MISMATCHES])
        facts = [
            ("snapshot", f"{self.snapshot} ({self.snapshot_time})"),
            ("checkpoint", _checkpoint(self.checkpoint)),
            ("RTO", f"{_duration(self.rto_seconds)} (objective "
                    f"{_duration(self.rto_objective_seconds)})"),
            ("RPO", f"{_duration(self.rpo_seconds)} (objective "
                    f"{_duration(self.rpo_objective_seconds)})"),
            ("reconciled", f"{self.reconciled} merchants; {len(self.mismatched)} not"),
        ]
        if self.error:
            facts.append(("error", self.error))
        fact_rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                            for k, v in facts)
        mism_table = (f"<h2>Merchants that do not reconcile ({len(self.mismatched)})</h2>"
                      f"<table><tr><th>merchant</th><th>what differs</th></tr>{mism}</table>"
                      if self.mismatched else "")
        return (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>drkit drill {html.escape(self.region)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style></head><body>"
            f"<h1>Restore drill: region {html.escape(self.region)} "
            f"<span style='color:{colour}'>{verdict}</span></h1>"
            f"<table>{fact_rows}</table><h2>Steps</h2>"
            "<table><tr><th>step</th><th>result</th><th>seconds</th><th>detail</th></tr>"
            f"{rows}</table>{mism_table}</body></html>\n"
        )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def _yuan(fen: Any) -> str:
    if fen is None:
        return "n/a"
    value = int(fen)
    sign = "-" if value < 0 else ""
    value = abs(value)
    return f"{sign}{value // 100:,}.{value % 100:02d}"


def _checkpoint(cp: dict[str, Any] | None) -> str:
    if not cp:
        return "n/a"
    if cp.get("fingerprint"):  # the full form, so it can be given to verify --expect
        return f"size {cp.get('size')}, fingerprint {cp['fingerprint']}"
    return f"size {cp.get('size')}, root {str(cp.get('root', ''))[:16]}…"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
