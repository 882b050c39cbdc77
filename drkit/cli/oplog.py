"""``drkit oplog ingest|report``: cloud operation logs and bastion sessions against
approvals (docs/oplog.md)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from drkit.cli.common import emit, get_app, json_option
from drkit.cli.keys import passphrase_file_option
from drkit.cli.snapshot import recovery_key_option, unlock
from drkit.errors import ExitCode, InputError


@click.group("oplog")
def oplog_group() -> None:
    """Watch the operators: cloud operation logs and bastion sessions against approvals."""


@oplog_group.command("ingest")
@click.argument("sources", nargs=-1, required=True, metavar="KIND:WHERE...")
@click.option("--no-store", is_flag=True,
              help="Assess and report only; keep nothing in the repository.")
@click.option("--no-notify", is_flag=True, help="Send no notification.")
@click.option("--webhook", default=None, metavar="URL",
              help="Send CRITICAL findings here (default: [schedule.webhook]).")
@click.option("--wecom", default=None, metavar="URL",
              help="WeCom group robot for CRITICAL findings (default: [schedule.webhook]).")
@json_option
def ingest_command(sources: tuple[str, ...], no_store: bool, no_notify: bool,
                   webhook: str | None, wecom: str | None) -> None:
    """Read operation events, match dangerous ones against approvals, keep them in the
    repository and announce CRITICAL findings at once. Exit 1 when there are findings.

    Sources: cloudtrail:FOLDER|FILE|s3://..., cloudtrail-api:REGION, cloudaudit:FOLDER|
    FILE|cos://..., cloudaudit-api:REGION, auditd:PATH, transcript:PATH,
    history:PATH?user=NAME&host=HOST.
    """
    from drkit.oplog.ingest import ingest
    from drkit.oplog.readers import parse_spec

    app = get_app()
    specs = [parse_spec(s) for s in sources]
    for url in (webhook, wecom):
        if url is not None and not url.startswith(("http://", "https://")):
            raise InputError(f"{url!r}: a webhook must be an http:// or https:// URL")
    result = ingest(app.config, app.clock, specs, store=not no_store, notify=not no_notify,
                    webhook=webhook, wecom=wecom)

    def text() -> str:
        lines = [f"{result.read} events read, {result.new} new"
                 + (f", stored as {result.stored}" if result.stored else "")]
        for a in result.approved:
            req = a["request"]
            lines.append(f"approved: {a['event']['actor']} {a['danger']['what']} "
                         f"(request {req['id'][:12]}, approved by "
                         f"{', '.join(req['approved_by'])})")
        for f in result.findings:
            lines.append(f"{f['severity'].upper()}: {f['operator']}: {f['what']} "
                         f"[{f['status']}] x{f['count']} {f['first']}"
                         + (f" sessions {', '.join(f['sessions'])}" if f["sessions"] else ""))
            lines += [f"    {c}" for c in f["commands"][:5]]
        for d in result.deliveries:
            lines.append(f"notification to {d.target} {d.url}: "
                         + ("sent" if d.ok else f"FAILED ({d.error})"))
        return "\n".join(lines)

    emit(result.to_dict(), text,
         summary=lambda: f"drkit oplog: {len(result.findings)} finding(s), "
                         f"{len(result.critical)} critical" if result.findings else None)
    if result.findings:
        click.get_current_context().exit(int(ExitCode.FINDINGS))


@oplog_group.command("report")
@click.option("--since", required=True, metavar="DATE",
              help="YYYY-MM-DD (UTC), an ISO time with offset, or Nd for N days ago.")
@click.option("--until", "until", default=None, metavar="DATE",
              help="End of the period (default: now); same forms as --since.")
@click.option("--format", "fmt", type=click.Choice(["md", "json", "html"]), default="md",
              show_default=True)
@click.option("--out", "-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report to this file instead of stdout.")
@click.option("--region", default=None, metavar="NAME",
              help="Read the copy in this region (default: the primary).")
@recovery_key_option
@passphrase_file_option
@json_option
def report_command(since: str, until: str | None, fmt: str, out: Path | None,
                   region: str | None, recovery_key: Path | None,
                   passphrase_file: Path | None) -> None:
    """The operations audit report: per operator, dangerous actions with their approval
    status, sessions and their risky commands, first-time actions, off-hours activity.
    Reads the stored events with the recovery key."""
    from drkit.audit import parse_since
    from drkit.oplog.report import build_report, render_html, render_markdown
    from drkit.oplog.settings import load_settings
    from drkit.oplog.store import read_batches

    app = get_app()
    config = app.config
    now = app.clock.now()
    start = parse_since(since, now)
    end = parse_since(until, now) if until else now
    if end <= start:
        raise InputError(f"--until {until!r} is not after --since {since!r}")
    settings = load_settings(config)
    recovery = unlock(config, recovery_key, passphrase_file)
    batches = read_batches(config, app.clock, recovery, region=region)
    report = build_report(batches, since=start, until=end, settings=settings)
    if app.json or fmt == "json":
        text = json.dumps(report, indent=2)
    elif fmt == "html":
        text = render_html(report)
    else:
        text = render_markdown(report)
    if out is not None:
        try:
            out.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{out}: cannot write the report: {exc.strerror}") from None
        emit({"report": str(out), "findings": len(report["findings"])}, f"wrote {out}")
        return
    click.echo(text)


COMMANDS = [oplog_group]
