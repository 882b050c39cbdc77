"""``drkit oplog ingest|report|check|summary``: cloud operation logs and bastion sessions against
approvals (docs/oplog.md)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from drkit.cli.common import emit, get_app, json_option
from drkit.cli.keys import passphrase_file_option
from drkit.cli.snapshot import recovery_key_option, unlock
from drkit.errors import DrkitError, ExitCode, InputError


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
    history:PATH?user=NAME&host=HOST, bh:FILE|FOLDER, bh-api:REGION, sudoio:FOLDER.
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


@oplog_group.command("check")
@click.argument("targets", nargs=-1, metavar="KIND:REGION...")
@click.option("--since", default="7d", show_default=True, metavar="DATE",
              help="Report bastion log gaps that end after this (YYYY-MM-DD or Nd).")
@click.option("--no-gaps", is_flag=True, help="Check the trails only, not the bastion logs.")
@json_option
def check_command(targets: tuple[str, ...], since: str, no_gaps: bool) -> None:
    """The audit trail is a guardrail: trails and tracking sets that are off, not
    multi-region, or deliver to a bucket without versioning and lock; bastion log gaps.
    Targets: cloudtrail:REGION, cloudaudit:REGION (default: [oplog] trails).
    Exit 1 on findings."""
    from drkit.audit import parse_since
    from drkit.oplog.check import parse_target, run_check
    from drkit.oplog.settings import load_settings

    app = get_app()
    texts = targets or load_settings(app.config).trails
    parsed = [parse_target(t) for t in texts]
    start = parse_since(since, app.clock.now())
    result = run_check(None if no_gaps else app.config, app.clock, parsed, since=start)

    def text() -> str:
        checked = ", ".join(result.targets) or "no trails"
        head = (f"checked {checked}"
                + ("" if no_gaps else f"; bastion logs from {result.summaries} ingest(s)"))
        if not result.findings:
            return head + ": no findings"
        return "\n".join([head] + [f.line() for f in result.findings])

    emit(result.to_dict(), text,
         summary=lambda: f"drkit oplog check: {len(result.findings)} finding(s)"
         if result.findings else None)
    if result.findings:
        click.get_current_context().exit(int(ExitCode.FINDINGS))


@oplog_group.command("summary")
@click.option("--since", default="7d", show_default=True, metavar="DATE",
              help="YYYY-MM-DD (UTC), an ISO time with offset, or Nd for N days ago.")
@click.option("--until", "until", default=None, metavar="DATE",
              help="End of the period (default: now).")
@click.option("--out", "-o", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the Markdown summary to this file.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write it to oplog-summary-<date>.md in this folder.")
@click.option("--send", is_flag=True,
              help="Send it through the notifier ([schedule.webhook], or --webhook/--wecom).")
@click.option("--webhook", default=None, metavar="URL", help="Send to this webhook.")
@click.option("--wecom", default=None, metavar="URL", help="Send to this WeCom group robot.")
@json_option
def summary_command(since: str, until: str | None, out: Path | None, out_dir: Path | None,
                    send: bool, webhook: str | None, wecom: str | None) -> None:
    """The weekly security audit summary: findings per operator and bastion log gaps,
    from the ingest summaries (no recovery key needed); written to a file and sent."""
    from drkit.audit import parse_since
    from drkit.oplog.settings import load_settings
    from drkit.oplog.store import read_summaries
    from drkit.oplog.summary import build_summary, render_summary, send_summary

    app = get_app()
    now = app.clock.now()
    start = parse_since(since, now)
    end = parse_since(until, now) if until else now
    if end <= start:
        raise InputError(f"--until {until!r} is not after --since {since!r}")
    if out is not None and out_dir is not None:
        raise InputError("give --out or --out-dir, not both")
    for url in (webhook, wecom):
        if url is not None and not url.startswith(("http://", "https://")):
            raise InputError(f"{url!r}: a webhook must be an http:// or https:// URL")
    settings = load_settings(app.config)
    doc = build_summary(read_summaries(app.config, app.clock), settings, since=start,
                        until=end)
    text = render_summary(doc)
    path = out if out is not None else (
        out_dir / f"oplog-summary-{end:%Y-%m-%d}.md" if out_dir is not None else None)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{path}: cannot write the summary: {exc.strerror}") from None
    deliveries = (send_summary(app.config, doc, text=text,
                               path=str(path.resolve()) if path else None,
                               webhook=webhook, wecom=wecom) if send else [])
    result = {**doc, "report": str(path) if path else None,
              "notifications": [d.to_dict() for d in deliveries]}

    def lines() -> str:
        if path is None and not send:
            return text
        parts = [f"wrote {path}"] if path else []
        parts += [f"sent to {d.target} {d.url}" if d.ok else
                  f"notification to {d.target} {d.url} FAILED ({d.error})" for d in deliveries]
        if send and not deliveries:
            parts.append("nothing sent: no webhook configured ([schedule.webhook])")
        return "\n".join(parts)

    emit(result, lines)
    if send and (not deliveries or not all(d.ok for d in deliveries)):
        # A report that was meant to go out and did not is a failed run, so the scheduler
        # records it and says so.
        raise DrkitError("the security audit summary was not delivered"
                         + ("" if deliveries else ": no webhook configured"))


COMMANDS = [oplog_group]
