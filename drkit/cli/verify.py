"""``drkit verify``: append-only verification of every region and its bucket guardrails."""

from __future__ import annotations

import functools
import gc
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from drkit.cli.common import emit, get_app, json_option
from drkit.clock import Clock
from drkit.config import Config, RegionConfig
from drkit.errors import DrkitError, ExitCode, StorageError, UsageError
from drkit.storage.base import Store
from drkit.storage.local import LocalStore
from drkit.storage.url import open_store
from drkit.verify.anchors import collect_anchors, for_origin
from drkit.verify.context import repository_origin, trusted_writer_keys
from drkit.verify.core import RegionReport, verify_regions
from drkit.verify.records import RecordsCheck
from drkit.verify.state import TrustedState, default_state_dir


def open_region(region: RegionConfig, base_dir: Path, clock: Clock) -> Store:
    """Open a region's store without creating anything: a local region whose folder has
    gone is reported as unavailable, not silently recreated empty."""
    if region.url.scheme == "file" and region.url.path is not None:
        return LocalStore(region.url.path, clock=clock, create=False)
    return open_store(region.url, base_dir=base_dir, clock=clock)


F = TypeVar("F", bound=Callable[..., Any])


def cyclic_gc_paused(func: F) -> F:
    """Run ``func`` with Python's cyclic garbage collector paused.

    A verify of 100,000 objects keeps about ten objects per logged object alive until it
    ends (journal entries, listings, sidecars); as that heap grows the collector walks all
    of it again and again, which was a fifth of the command's CPU time. Those objects hold
    no reference cycles (reference counting frees them), so nothing accumulates; the
    collector runs again as soon as the command is done."""

    @functools.wraps(func)
    def paused(*args: Any, **kwargs: Any) -> Any:
        if not gc.isenabled():
            return func(*args, **kwargs)
        gc.disable()
        try:
            return func(*args, **kwargs)
        finally:
            gc.enable()

    return paused  # type: ignore[return-value]


def parse_read_data(value: str | None) -> float | None:
    """``--read-data`` -> 1.0, ``--read-data=10%`` -> 0.1; None when not given."""
    if value is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%?\s*", value)
    if not m or not 0 < float(m.group(1)) <= 100:
        raise UsageError(f"--read-data={value}: give a percentage between 0 and 100, "
                         "e.g. --read-data=10%")
    return float(m.group(1)) / 100


@click.command("verify")
@click.option("--region", "region_names", multiple=True, metavar="NAME",
              help="Only this region (repeatable).")
@click.option("--all", "all_regions", is_flag=True,
              help="Every configured region (the default).")
@click.option("--read-data", "read_data", is_flag=False, flag_value="100%", default=None,
              metavar="[N%]", help="Also read and hash the data: all of it, or a random N%.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where this host keeps its trusted state (default: verify.state_dir, "
                   "else the user state folder).")
@click.option("--accept-first-contact", is_flag=True,
              help="This host has no trusted state for the repository (new host, or the "
                   "state was lost): verify anyway, exit 0 when clean, and start the state.")
@click.option("--expect", "expect", multiple=True, metavar="FINGERPRINT",
              help="A checkpoint fingerprint held off this host (ORIGIN@SIZE:ROOT, from a "
                   "notification, drill report or audit report); a log below it or "
                   "disagreeing with it is CRITICAL. Repeatable.")
@click.option("--anchor", "anchor_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="A file of such fingerprints (default: verify.anchor_file).")
@json_option
@cyclic_gc_paused
def verify_command(region_names: tuple[str, ...], all_regions: bool, read_data: str | None,
                   state_dir: Path | None, accept_first_contact: bool,
                   expect: tuple[str, ...], anchor_file: Path | None) -> None:
    """Prove every region still holds everything ever logged, unchanged.

    Checks checkpoint signatures, consistency with this host's trusted state and the
    primary (rollback, truncation, fork), every logged object's size and checksum,
    injected objects, replication lag and bucket guardrails. Exit 0 clean, 1 findings,
    2 error, 4 first contact (no trusted state on this host; see --accept-first-contact).
    """
    if region_names and all_regions:
        raise UsageError("give --region or --all, not both")
    fraction = parse_read_data(read_data)
    app = get_app()
    config = app.config
    anchors = collect_anchors(expect, anchor_file or config.verify_anchor_file)
    now = app.clock.now()
    names = region_names or tuple(config.regions)
    selected = [config.region(n) for n in names]
    trusted = trusted_writer_keys(config)

    stores: dict[str, Store] = {}
    unavailable: list[RegionReport] = []
    ordered = [config.primary_region] + [r for r in config.regions.values() if not r.primary]
    for region in ordered:
        try:
            stores[region.name] = open_region(region, config.base_dir, app.clock)
        except StorageError as exc:
            if region in selected:
                report = RegionReport(region=region.name, url=str(region.url),
                                      primary=region.primary)
                report.add("critical", "region-unavailable", f"cannot open the region: {exc}")
                unavailable.append(report)
    origin = repository_origin([(r.name, stores[r.name]) for r in ordered if r.name in stores],
                               trusted)
    state = TrustedState(state_dir or config.verify_state_dir or default_state_dir(), origin)
    primary_cfg = config.primary_region
    primary = ((primary_cfg, stores[primary_cfg.name]) if primary_cfg.name in stores
               else None)
    targets: list[tuple[RegionConfig, Store]] = [(r, stores[r.name]) for r in selected
                                                 if r.name in stores]
    foreign = [a for a in anchors if a.origin != origin
                 and not a.origin.startswith("drkit-audit:")]
    if foreign:
        raise UsageError(f"trust anchor {foreign[0]} is for {foreign[0].origin}, not this "
                         f"repository ({origin})")
    anchors = for_origin(anchors, origin)
    first_contact = state.first_contact
    records = RecordsCheck(config, app.clock, repository_id=origin.split(":", 1)[1],
                           state_dir=state.path.parent, origin=origin, primary=primary,
                           accept_first_contact=accept_first_contact)
    result = verify_regions(targets, origin=origin, trusted=trusted, state=state, now=now,
                            primary=primary, read_fraction=fraction, progress=app.progress(),
                            records=records, anchors=anchors,
                            save_state=accept_first_contact or not first_contact,
                            own_batches=_own_batches(config, primary, origin))
    result.regions += unavailable
    if primary is not None:
        _check_rotations(config, app.clock, primary[1], origin, trusted,
                         [r for r in result.regions if r.region == primary_cfg.name])
    if not region_names:
        cloud = _cloud_snapshot_report(config, [stores[r.name] for r in ordered
                                                if r.name in stores], origin, trusted)
        if cloud is not None:
            result.regions.append(cloud)
    findings = result.findings
    data = result.to_dict()
    data["state_file"] = str(state.path)
    data["first_contact"] = first_contact
    data["anchors"] = [str(a) for a in anchors]
    warning = first_contact_warning(state.path if first_contact else None, origin,
                                    accepted=accept_first_contact, anchors=len(anchors))
    if warning:
        click.echo(warning, err=True)
        data["warnings"] = [warning]

    def text() -> str:
        lines = []
        for r in result.regions:
            n = len(r.findings)
            status = "clean" if r.clean else f"{n} finding{'s' if n != 1 else ''}"
            lines.append(f"{r.region}: {status}; log size {r.log_size}, "
                         f"{r.objects_logged} objects ({r.objects_checked_by_listing} by "
                         f"listing, {r.objects_hashed} hashed, {r.objects_read} read)")
            lines += [f"  note: {n}" for n in r.notes]
        lines += [f.line() for f in findings]
        lines.append("clean" if not findings else
                     f"{len(findings)} finding{'s' if len(findings) != 1 else ''}")
        return "\n".join(lines)

    emit(data, text, summary=lambda: (
        f"drkit verify: {len(findings)} finding{'s' if len(findings) != 1 else ''} "
        f"({', '.join(sorted({f.region for f in findings}))})" if findings else None))
    for store in stores.values():
        store.close()
    if findings:
        click.get_current_context().exit(int(ExitCode.FINDINGS))
    if first_contact and not accept_first_contact:
        click.get_current_context().exit(int(ExitCode.FIRST_CONTACT))


def _own_batches(config: Config, primary: tuple[RegionConfig, Store] | None, origin: str
                 ) -> frozenset[str]:
    """Batches of the primary's journal that this host (if it is the writer host) recorded
    write-ahead: a crash between one of them and its checkpoint is its own interrupted
    append, which its next snapshot completes."""
    from drkit.journal.log import AppendIntents

    if primary is None:
        return frozenset()
    return frozenset(AppendIntents(config.cache_dir, primary[1].url, origin).batches())


def first_contact_warning(state_path: Path | None, origin: str, *, accepted: bool,
                          anchors: int) -> str:
    """The FIRST-CONTACT line ('' when there was trusted state), shared with audit verify."""
    if state_path is None:
        return ""
    checked = (f"{anchors} trust anchor(s) were checked" if anchors else
               "no trust anchor was given (--expect, --anchor)")
    then = ("accepted: the state starts now" if accepted else
            "nothing was recorded; exit 4 (give --accept-first-contact to start the state)")
    return (f"FIRST-CONTACT: this host holds no trusted state for {origin} ({state_path} "
            "is missing: a new host, or the state was deleted), so a rolled-back or forked "
            f"log cannot be told from a good one; {checked}; {then}")


def _check_rotations(config: Config, clock: Clock, store: Store, origin: str,
                     trusted: list[Any], reports: list[RegionReport]) -> None:
    """Every journaled writer key rotation must carry its approval proof (a CRITICAL
    finding on the primary otherwise): the key history trusts rotations signed by the old
    key, and this is what shows one was made without two other people."""
    if not reports:
        return
    from drkit.approval.gate import ApprovalContext, rotation_problems
    from drkit.journal import read_log

    view = read_log(store, origin, trusted)
    ctx = ApprovalContext(config, clock, store, origin.split(":", 1)[1], trusted=trusted)
    for key, problem in rotation_problems(ctx, view.entries):
        reports[0].add("critical", "writer-key-rotation-unapproved",
                       f"writer key rotation without its approval proof: {problem}", key)


def _cloud_snapshot_report(config: Config, stores: list[Store], origin: str,
                           trusted: list[Any]) -> RegionReport | None:
    """Cloud disk/database snapshots drkit recorded (journal entries of kind "external",
    less approved expiries) that exist in no region any more: findings, exactly like a
    deleted object. None when no cloud is configured or nothing was recorded."""
    if "cloud" not in config.raw:
        return None
    from drkit.approval.proof import live_objects
    from drkit.cloud.config import load_cloud_config
    from drkit.cloud.run import find_missing
    from drkit.journal import JournalEntry, read_log

    live: dict[str, JournalEntry] = {}
    for store in stores:  # the primary first; a replica's copy when it is gone
        try:
            view = read_log(store, origin, trusted)
        except DrkitError:
            continue
        if view.checkpoint is None:
            continue
        # Only a proven expiry excuses a vanished snapshot (the tombstone findings
        # themselves are reported with the region's verify).
        live = live_objects(store, origin.removeprefix("drkit:"), view.entries, region=None,
                            kind="external")
        break
    if not live:
        return None
    report = RegionReport(region="cloud", url="cloud snapshots")
    report.objects_logged = len(live)
    try:
        missing = find_missing(load_cloud_config(config), live.values())
    except DrkitError as exc:
        report.add("high", "cloud-unavailable", f"cannot look up cloud snapshots: {exc}")
        return report
    for item in missing:
        report.add("critical", "cloud-snapshot-missing", str(item), item.record.journal_key)
    return report


COMMANDS = [verify_command]
