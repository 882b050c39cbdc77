"""``drkit audit verify`` and ``drkit audit report`` (docs/audit.md)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from drkit import audit as audit_log
from drkit.cli.common import emit, get_app, json_option


@click.group("audit")
def audit_group() -> None:
    """drkit's own tamper-evident audit log."""


region_option = click.option(
    "--region", default=None, metavar="NAME",
    help="Read the copy replicated to this region (default: the primary).")


@audit_group.command("verify")
@region_option
@json_option
def audit_verify(region: str | None) -> None:
    """Prove the audit log is intact and extends the last checkpoint this host trusted
    (exit 1 when an entry was edited, removed or reordered, or the log was truncated)."""
    app = get_app()
    result = audit_log.verify_log(app.config, app.clock, region=region)

    def text() -> str:
        lines = [f"{f.severity}: {f.message}" for f in result.findings]
        state = "intact" if result.ok else "NOT INTACT"
        lines.append(f"audit log {state}: {result.size} entries "
                     f"(trusted before: {result.trusted_size}), {len(result.hosts)} host key(s)")
        return "\n".join(lines)

    emit(result.to_dict(), text)
    audit_log.require_intact(result)


@audit_group.command("report")
@click.option("--since", required=True, metavar="DATE",
              help="YYYY-MM-DD (UTC), an ISO time with offset, or Nd for N days ago.")
@click.option("--format", "fmt", type=click.Choice(["md", "json", "html"]), default="md",
              show_default=True)
@click.option("--out", "-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report to this file instead of stdout.")
@region_option
@json_option
def audit_report(since: str, fmt: str, out: Path | None, region: str | None) -> None:
    """The security audit report: dangerous operations and who approved them, refusals,
    verify findings, drills, and days without a snapshot or a verify."""
    app = get_app()
    start = audit_log.parse_since(since, app.clock.now())
    report = audit_log.build_report(app.config, app.clock, since=start, region=region)
    if app.json or fmt == "json":
        text = json.dumps(report, indent=2)
    elif fmt == "html":
        text = audit_log.render_html(report)
    else:
        text = audit_log.render_markdown(report)
    if out is not None:
        out.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        emit({"report": str(out), "events": report["events"]}, f"wrote {out}")
        return
    click.echo(text)


COMMANDS = [audit_group]
