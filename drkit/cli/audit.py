"""``drkit audit verify`` and ``drkit audit report`` (docs/audit.md)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from drkit import audit as audit_log
from drkit.cli.common import emit, get_app, json_option
from drkit.errors import ExitCode


@click.group("audit")
def audit_group() -> None:
    """drkit's own tamper-evident audit log."""


region_option = click.option(
    "--region", default=None, metavar="NAME",
    help="Read the copy replicated to this region (default: the primary).")


@audit_group.command("verify")
@region_option
@click.option("--accept-first-contact", is_flag=True,
              help="This host has no trusted audit checkpoint (new host, or the state was "
                   "lost): verify anyway, exit 0 when intact, and start the state.")
@click.option("--expect", "expect", multiple=True, metavar="FINGERPRINT",
              help="An audit checkpoint fingerprint held off this host (from an audit "
                   "report); a log below it or disagreeing with it is a finding. Repeatable.")
@click.option("--anchor", "anchor_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="A file of fingerprints (default: verify.anchor_file).")
@json_option
def audit_verify(region: str | None, accept_first_contact: bool, expect: tuple[str, ...],
                 anchor_file: Path | None) -> None:
    """Prove the audit log is intact and extends the last checkpoint this host trusted
    (exit 1 when an entry was edited, removed or reordered, a checkpoint deleted, or the
    log was truncated; 4 on first contact without --accept-first-contact)."""
    from drkit.verify.anchors import collect_anchors

    app = get_app()
    anchors = collect_anchors(expect, anchor_file or app.config.verify_anchor_file)
    result = audit_log.verify_log(app.config, app.clock, region=region,
                                  accept_first_contact=accept_first_contact, anchors=anchors)

    def text() -> str:
        lines = [f"{f.severity}: {f.message}" for f in result.findings]
        state = "intact" if result.ok else "NOT INTACT"
        lines.append(f"audit log {state}: {result.size} entries "
                     f"(trusted before: {result.trusted_size}), {len(result.hosts)} host key(s)")
        if result.fingerprint:
            lines.append(f"newest checkpoint: {result.fingerprint}")
        return "\n".join(lines)

    if result.first_contact:
        click.echo(next(f.message for f in result.findings if f.kind == "first-contact"),
                   err=True)
    emit(result.to_dict(), text)
    audit_log.require_intact(result)
    if result.first_contact and not accept_first_contact:
        click.get_current_context().exit(int(ExitCode.FIRST_CONTACT))


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
