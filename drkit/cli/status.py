"""``drkit status``: age of the last snapshot, copy, verification and drill (docs/schedule.md)."""

from __future__ import annotations

import logging
from typing import Any

import click

from drkit.cli.common import emit, get_app, json_option
from drkit.errors import DrkitError, ExitCode
from drkit.schedule.spec import load_schedule
from drkit.schedule.status import compute_status, list_regions, log_archives

log = logging.getLogger(__name__)


def _fmt(value: Any, unit: str = "h") -> str:
    return "-" if value is None else f"{value:g} {unit}"


@click.command("status")
@json_option
def status_command() -> None:
    """Show how old the last snapshot, copy, verify and drill are; exit 1 if any is too old.

    Snapshots per source against objectives.rpo_hours, replication lag per region against
    regions.NAME.max_lag_hours, verification and drills against their schedule.
    """
    app = get_app()
    config = app.config
    settings = load_schedule(config)
    try:
        logs = log_archives(config, app.clock.now())
    except DrkitError as exc:  # the snapshot rows say why the primary cannot be read
        logs = []
        log.warning("archived logs not listed: %s", exc)
    status = compute_status(config, settings, clock=app.clock,
                            listings=list_regions(config, settings), logs=logs)

    def text() -> str:
        out = [f"status at {status.now}"]
        for r in status.snapshots:
            out.append(f"  snapshot  {r['source']:<14} last {r['last'] or 'never':<21} "
                       f"age {_fmt(r['age_hours']):<10} objective {r['objective_hours']:g} h"
                       f"  {'ok' if r['ok'] else 'STALE'}")
        for r in status.replication:
            out.append(f"  replica   {r['region']:<14} lag {_fmt(r['lag_hours']):<10} "
                       f"missing {r['missing'] if r['missing'] is not None else '-':<4} "
                       f"max {r['max_lag_hours']:g} h  {'ok' if r['ok'] else 'STALE'}")
        for r in status.verify:
            out.append(f"  {r['job']:<17} last {r['last'] or 'never':<21} "
                       f"{r['outcome'] or '':<9} allowed {r['allowance_hours']:g} h  "
                       f"{'ok' if r['ok'] else 'STALE'}")
        for r in status.logs:
            rpo = "-" if r["rpo_seconds"] is None else f"{r['rpo_seconds']:g} s"
            gaps = f"  {len(r['gaps'])} GAPS" if r["gaps"] else ""
            out.append(f"  log       {r['archive']:<14} newest {r['newest'] or '-':<24} "
                       f"rpo {rpo:<10} objective {r['objective_seconds']:g} s{gaps}"
                       f"  {'ok' if r['ok'] else 'STALE'}")
        for r in status.drills:
            out.append(f"  drill     {r['region']:<14} last {r['last'] or 'never':<21} "
                       f"{r['outcome'] or '':<9} allowed {r['allowance_hours']:g} h  "
                       f"{'ok' if r['ok'] else 'STALE'}")
        if status.problems:
            out.append(f"{len(status.problems)} problem(s):")
            out += [f"  {p}" for p in status.problems]
        else:
            out.append("all within objectives")
        return "\n".join(out)

    emit(status.to_dict(), text)
    if not status.ok:
        click.get_current_context().exit(int(ExitCode.FINDINGS))


COMMANDS = [status_command]
