"""``drkit prune``: forget snapshots beyond retention and delete what nothing needs.

Pruning shrinks the backups, so it never runs without an approved request; see
docs/approval.md."""

from __future__ import annotations

import click

from drkit.approval import operations
from drkit.cli.approval import refuse_without_approval, run_approved
from drkit.cli.common import get_app, json_option
from drkit.numbers import AGE_DAYS, KEEP_LAST


@click.command("prune")
@click.option("--keep-last", type=KEEP_LAST, default=None, help="Always keep the newest N (1).")
@click.option("--older-than-days", type=AGE_DAYS, default=None,
              help="Forget snapshots older than this (default: the primary's retention_days).")
@click.option("--approval", "approval_id", metavar="ID", help="An approved prune request.")
@json_option
def prune_command(keep_last: int | None, older_than_days: float | None,
                  approval_id: str | None) -> None:
    """Forget snapshots beyond retention and delete objects no remaining snapshot needs
    (needs an approved request; exit 3 without one)."""
    app = get_app()
    params = operations.prune_params(app.config.primary_region.retention_days,
                                     keep_last=keep_last, older_than_days=older_than_days)
    if approval_id is None:
        refuse_without_approval("prune", params)
    else:
        run_approved(approval_id, expect=("prune", params))


COMMANDS = [prune_command]
