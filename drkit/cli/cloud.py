"""``drkit cloud``: daily cloud-disk and cloud-database snapshots (AWS, Tencent Cloud)."""

from __future__ import annotations

import logging
import secrets

import click

from drkit.cli.common import emit, get_app, json_option
from drkit.clock import utc_iso
from drkit.cloud import load_cloud_config, plan_expiry, status, take_snapshots
from drkit.cloud.config import CloudConfig
from drkit.cloud.journal import record_run, writer_key_available
from drkit.errors import CheckFailed, ConfigError

log = logging.getLogger(__name__)


def _cloud_config() -> CloudConfig:
    app = get_app()
    cfg = load_cloud_config(app.config)
    if not cfg.configured:
        raise ConfigError("no cloud configured: add a [cloud.aws] or [cloud.tencent] table",
                          file=str(app.config.path), key="cloud")
    return cfg


@click.group("cloud")
def cloud_group() -> None:
    """Daily snapshots of tagged cloud disks and databases, copied to other regions."""


@cloud_group.command("snapshot")
@json_option
def snapshot_command() -> None:
    """Snapshot every tagged EBS volume, RDS instance, CBS disk and TencentDB instance,
    copy each to the backup regions, wait, and record every snapshot id in the journal."""
    app = get_app()
    cfg = _cloud_config()
    now = app.clock.now()
    run_id = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(4)}"
    result = take_snapshots(cfg, run_id, now=now, progress=app.progress())
    journal: dict[str, object]
    if writer_key_available(app.config):
        checkpoint = record_run(app.config, result, now=now, clock=app.clock)
        journal = {"recorded": True, "size": checkpoint.size}
    else:
        journal = {"recorded": False,
                   "reason": f"no writer key in {app.config.keys_dir} (run 'drkit keys init')"}
        # A warning even under --json and cron: snapshots that are not journalled are not
        # counted as backups by verify.
        log.warning("snapshots not recorded in the journal: %s", journal["reason"])
    data = {**result.to_dict(), "journal": journal}

    def text() -> str:
        lines = [f"run {run_id}: {len(result.records)} snapshots"]
        for r in result.records:
            what = f"copy of {r.copy_of}" if r.copy_of else "snapshot"
            lines.append(f"  {r.provider} {r.kind} {r.resource_id} -> {r.snapshot_id} "
                         f"({r.region}{'@' + r.account if r.account else ''}, {what})")
        if journal["recorded"]:
            lines.append(f"recorded in the journal (size {journal['size']})")
        return "\n".join(lines)

    emit(data, text)


@cloud_group.command("status")
@json_option
def status_command() -> None:
    """Newest snapshot of every tagged resource in each region; exit 1 if any is stale."""
    app = get_app()
    cfg = _cloud_config()
    now = app.clock.now()
    rows, stale = status(cfg, now=now)
    expiring = plan_expiry(cfg, now=now)
    data = {"checked_at": utc_iso(now), "max_age_hours": cfg.max_age_hours,
            "resources": rows, "stale": [s.to_dict() for s in stale],
            "expiry_plan": [c.to_dict() for c in expiring]}

    def text() -> str:
        lines = [f"{len(rows)} resources checked, {len(stale)} without a snapshot in the last "
                 f"{cfg.max_age_hours:g} h"]
        lines += [f"  STALE {s}" for s in stale]
        if expiring:
            lines.append(f"{len(expiring)} drkit snapshots past retention (expiry needs "
                         "approval)")
        return "\n".join(lines)

    emit(data, text)
    if stale:
        raise CheckFailed(f"{len(stale)} cloud resources have no recent snapshot")


@cloud_group.command("expire")
@click.option("--as-of", "as_of", metavar="TIME", default=None,
              help="Apply retention as of this UTC time (ISO 8601; default: now). Part of "
                   "the approved request, so the plan does not drift.")
@click.option("--approval", "approval_id", metavar="ID", default=None,
              help="The approved request to use (default: any matching approved request).")
@click.option("--dry-run", is_flag=True, help="Only show the plan.")
@json_option
def expire_command(as_of: str | None, approval_id: str | None, dry_run: bool) -> None:
    """Delete drkit's cloud snapshots past retention: a dangerous operation that needs a
    second approval ('drkit request cloud-expire --as-of TIME --reason TEXT'); exit 3
    without one."""
    from drkit.approval.gate import require_approval
    from drkit.clock import parse_iso
    from drkit.cloud.model import ExpiryCandidate, SnapshotRecord
    from drkit.cloud.run import EXPIRY_OPERATION, expire_approved, expiry_plan_document
    from drkit.errors import UsageError

    app = get_app()
    cfg = _cloud_config()
    try:
        when = parse_iso(as_of) if as_of else app.clock.now().replace(microsecond=0)
    except ValueError as exc:
        raise UsageError(f"--as-of: {exc}") from None
    plan = expiry_plan_document(cfg, as_of=when)
    if dry_run or not plan["snapshots"]:
        emit({"plan": plan, "deleted": []},
             f"{len(plan['snapshots'])} cloud snapshots past retention as of {utc_iso(when)}")
        return
    grant = require_approval(EXPIRY_OPERATION, {"as_of": utc_iso(when)}, plan,
                             config=app.config, clock=app.clock, approval_id=approval_id)
    records = [SnapshotRecord.from_dict(d) for d in plan["snapshots"]]
    from drkit.cloud.journal import record_expiry

    # Tombstones first: a crash between the two leaves the log saying "expired" rather
    # than an unexplained disappearance.
    record_expiry(app.config, records, now=app.clock.now(), grant=grant,
                  clock=app.clock)
    done = expire_approved(cfg, [ExpiryCandidate(r, "approved") for r in records])
    emit({"plan": plan, "deleted": [r.to_dict() for r in done]},
         f"deleted {len(done)} cloud snapshots past retention (approved)")


COMMANDS = [cloud_group]
