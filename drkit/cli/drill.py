"""``drkit drill``: restore from one region and prove the data is complete and correct."""

from __future__ import annotations

from pathlib import Path

import click

from drkit.cli.common import emit, get_app, info, json_option
from drkit.cli.keys import passphrase_file_option
from drkit.cli.snapshot import recovery_key_option, unlock
from drkit.clock import utc_iso
from drkit.drill import DrillOptions, DrillReport, run_drill
from drkit.errors import ExitCode, InputError
from drkit.numbers import THAW_SECONDS

REPORT_SUFFIXES = (".md", ".html", ".json")


def write_reports(report: DrillReport, base: Path) -> list[Path]:
    """Write the Markdown, HTML and JSON forms next to each other."""
    import json

    if base.suffix in REPORT_SUFFIXES:
        base = base.with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix, text in ((".md", report.to_markdown()), (".html", report.to_html()),
                         (".json", json.dumps(report.to_dict(), indent=2) + "\n")):
        path = base.with_name(base.name + suffix)
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        except OSError as exc:
            raise InputError(f"{path}: cannot write the drill report: {exc.strerror}") from None
        written.append(path)
    return written


@click.command("drill")
@click.option("--region", required=True, metavar="NAME",
              help="The region to restore from (only this region is read).")
@click.option("--snapshot", default="latest", show_default=True, metavar="ID|latest",
              help="Snapshot to restore.")
@click.option("--scratch", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Empty folder to restore into (default: a temporary folder).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Report path; .md, .html and .json are written "
                                 "(default: drill-reports/TIME-REGION next to drkit.toml).")
@click.option("--keep", is_flag=True, help="Keep the restored data in the scratch folder.")
@click.option("--accept-findings", is_flag=True,
              help="Go on even if verify finds problems in the region (recorded in the "
                   "report).")
@click.option("--thaw-timeout", type=THAW_SECONDS, default=6 * 3600.0,
              show_default=True, help="Seconds to wait for archived objects to thaw.")
@click.option("--ledger-source", default=None, metavar="NAME",
              help="The SQLite source the ledger is built from (default: [ledger] source, "
                   "or the only SQLite source).")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="This host's verify state (default: verify.state_dir or the user state "
                   "folder).")
@click.option("--to-time", "to_time", default=None, metavar="TIME",
              help="Point-in-time drill of a PostgreSQL source: its base backup plus the "
                   "archived WAL up to TIME (ISO 8601), from this region alone.")
@click.option("--database", "database", default=None, metavar="NAME",
              help="With --to-time: the PostgreSQL source (default: the only one).")
@recovery_key_option
@passphrase_file_option
@json_option
def drill_command(region: str, snapshot: str, scratch: Path | None, report_path: Path | None,
                  keep: bool, accept_findings: bool, thaw_timeout: float,
                  ledger_source: str | None, state_dir: Path | None, to_time: str | None,
                  database: str | None, recovery_key: Path | None,
                  passphrase_file: Path | None) -> None:
    """Restore a snapshot from one region's copy and reconcile every merchant.

    Verifies the region, thaws archived objects, restores into a scratch folder checking
    every hash, checks database control totals, recomputes the compensation ledger from
    the restored data and reconciles it with the stored ledger, and measures RTO and RPO.
    With --to-time: restore a PostgreSQL source's base backup plus its archived WAL up to
    that moment, from this region's copy alone, into a private scratch server.
    Exit 0 when everything reconciles, 1 when anything does not, 2 on error.
    """
    app = get_app()
    config = app.config
    config.region(region)
    when = None
    source = None
    if to_time is not None:
        from drkit.cli.incident import parse_time
        from drkit.pitr.wal import wal_source

        when = parse_time(to_time, "--to-time")
        source = wal_source(config, database)
    elif database is not None:
        raise InputError("--database is for a point-in-time drill: give --to-time too")
    recovery = unlock(config, recovery_key, passphrase_file)
    options = DrillOptions(region=region, snapshot=snapshot, scratch=scratch, keep=keep,
                           accept_findings=accept_findings, thaw_timeout=thaw_timeout,
                           state_dir=state_dir, ledger_source=ledger_source)
    if when is not None and source is not None:
        from drkit.drill.runner import run_pitr_drill

        report = run_pitr_drill(config, options, recovery, source=source, target_time=when,
                                clock=app.clock, progress=app.progress())
    else:
        report = run_drill(config, options, recovery, clock=app.clock,
                           progress=app.progress())
    stamp = utc_iso(app.clock.now()).replace(":", "").replace("-", "")
    base = report_path or config.base_dir / "drill-reports" / f"{stamp}-{region}"
    written = write_reports(report, base)
    data = report.to_dict()
    data["report_files"] = [str(p) for p in written]
    emit(data, report.to_text, summary=lambda: None if report.passed else
         f"drkit drill {region}: FAILED ({report.error or 'see ' + str(written[0])})")
    info(f"report: {', '.join(str(p) for p in written)}")
    if report.error:
        click.get_current_context().exit(int(ExitCode.USAGE))
    if not report.passed:
        click.get_current_context().exit(int(ExitCode.FINDINGS))


COMMANDS = [drill_command]
