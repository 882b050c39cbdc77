"""``drkit incident find``: destructive events in an archived database log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from drkit.cli.common import emit, get_app, json_option
from drkit.cli.keys import passphrase_file_option
from drkit.errors import InputError


def parse_time(text: str, option: str) -> datetime:
    from drkit.clock import parse_iso

    try:
        return parse_iso(text)
    except ValueError:
        raise InputError(f"{option} {text!r}: not a time with an offset "
                         "(e.g. 2026-11-23T19:00:00+08:00 or ...Z)") from None


@click.group("incident")
def incident_group() -> None:
    """Look for what destroyed data, in the archived log."""


@incident_group.command("find")
@click.option("--database", "database", metavar="NAME", default=None,
              help="The PostgreSQL or MySQL/MariaDB source ([sources.NAME]).")
@click.option("--since", default=None, metavar="TIME",
              help="Only events from this time on (ISO 8601 with offset).")
@click.option("--min-rows", type=click.IntRange(1), default=1000, show_default=True,
              help="A DELETE or UPDATE touching this many rows of one table in one "
                   "transaction is destructive.")
@click.option("--min-share", type=click.FloatRange(0, 1, min_open=True), default=0.5,
              show_default=True,
              help="MySQL: so is one touching this share of the table's rows.")
@click.option("--region", default=None, metavar="NAME",
              help="Read from this region (default: the primary).")
@passphrase_file_option
@json_option
def find_command(database: str | None, since: str | None, min_rows: int, min_share: float,
                 region: str | None, passphrase_file: Path | None) -> None:
    """List DROP/TRUNCATE and large DELETE/UPDATE transactions with time, xid and LSN,
    and propose the recovery target just before the first. Exit 1 if any is found."""
    from drkit.cli.snapshot import open_repository, unlock
    from drkit.pitr.postgres import find_incidents
    from drkit.pitr.wal import wal_source

    app = get_app()
    config = app.config
    if database is not None and config.source(database).type == "mysql":
        from drkit.cli.binlog import find_binlog_incidents

        find_binlog_incidents(config, database, since, min_rows, min_share, region,
                              passphrase_file)
        return
    archive = wal_source(config, database)
    start = parse_time(since, "--since") if since else None
    repo = open_repository(config, region)
    recovery = unlock(config, None, passphrase_file)
    report = find_incidents(config, archive, repo=repo, recovery=recovery, since=start,
                            min_rows=min_rows)

    def lines() -> list[str]:
        out = [f"{archive}: read {report['segments_read']} WAL files from "
               f"{report['from_segment']}"]
        for i in report["incidents"]:
            rows = f" ({i['rows']} rows)" if i["rows"] else ""
            out.append(f"  {i['time']}  xid {i['xid']}  lsn {i['lsn']}  {i['kind']} "
                       f"{i['relation']}{rows}")
        return out
    emit_incidents(report, lines, "recover to just before {to_lsn}, {why}:")


def emit_incidents(report: dict[str, Any], lines: Callable[[], list[str]],
                   recover_to: str) -> None:
    """Print an incident report (``lines`` then the proposed recovery, ``recover_to``
    formatted with the proposal's fields) and exit 1 when it found any incident."""

    def text() -> str:
        out = lines()
        proposal = report["proposal"]
        if proposal:
            out.append(recover_to.format(**proposal))
            out.append(f"  {proposal['command']}")
        else:
            out.append("no destructive event found")
        return "\n".join(out)
    emit(report, text)
    if report["incidents"]:
        click.get_current_context().exit(1)


COMMANDS = [incident_group]
