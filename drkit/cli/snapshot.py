"""``drkit snapshot``, ``drkit snapshots``, ``drkit restore`` and ``drkit check``."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import click

from drkit.cli.common import emit, get_app, human_bytes, json_option
from drkit.cli.keys import passphrase_file_option, read_passphrase
from drkit.config import Config
from drkit.errors import CheckFailed, ExitCode, InputError, IntegrityError, UsageError
from drkit.repo import keys as keyfiles
from drkit.repo.check import check_repository
from drkit.repo.region_identity import check_identity
from drkit.repo.repository import Repository
from drkit.repo.restore import restore_snapshot
from drkit.repo.snapshot import take_snapshot
from drkit.storage.url import open_store

log = logging.getLogger(__name__)


def open_repository(config: Config, region: str | None, *, read_primary_copy: bool = False
                    ) -> Repository:
    app = get_app()
    reg = config.region(region) if region else config.primary_region
    store = open_store(reg.url, base_dir=config.base_dir, clock=app.clock)
    trusted = keyfiles.load_trusted_writer_keys(config)
    repo = Repository.open(store, trusted, region=reg.name)
    # Which tombstones apply depends on the region. Reading stays possible from a store
    # that says it is another region (a byte copy made in an emergency), but not silently.
    try:
        check_identity(store, trusted, region=reg.name, repository_id=repo.repository_id)
    except IntegrityError as exc:
        log.warning("%s", exc)
    if read_primary_copy and not reg.primary:
        # Listing an archive-class region reads the primary's identical copy of its
        # metadata (checked against this region's journal), so it needs no thaw. Restores
        # and checks never do this: they prove the region's own bytes.
        repo.fallback = open_store(config.primary_region.url, base_dir=config.base_dir,
                                   clock=app.clock)
    return repo


recovery_key_option = click.option(
    "--recovery-key", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="The passphrase-protected recovery key file (default: keys folder/recovery.key).")
region_option = click.option("--region", default=None, metavar="NAME",
                             help="Read from this region (default: the primary).")


def unlock(config: Config, recovery_key: Path | None, passphrase_file: Path | None
           ) -> keyfiles.X25519PrivateKey:
    path = recovery_key or config.keys_dir / keyfiles.RECOVERY_KEY_FILE
    if not path.exists():
        raise InputError(f"{path}: recovery key not found (pass --recovery-key)")
    return keyfiles.unlock_recovery_key(path, read_passphrase(passphrase_file))


@click.command("snapshot")
@click.option("--source", "sources", multiple=True, metavar="NAME",
              help="Only this source (repeatable; default: every source in drkit.toml).")
@json_option
def snapshot_command(sources: tuple[str, ...]) -> None:
    """Take an encrypted, deduplicated snapshot of the configured sources."""
    app = get_app()
    result = take_snapshot(app.config, clock=app.clock, progress=app.progress(),
                           source_names=list(sources) or None)
    rate = result.bytes_read / result.duration_s if result.duration_s > 0 else 0
    emit(result.to_dict(),
         f"snapshot {result.snapshot_id[:12]}: {result.files} files, "
         f"{human_bytes(result.bytes_total)} in sources, {human_bytes(result.bytes_read)} read, "
         f"{human_bytes(result.bytes_new)} new, {human_bytes(result.bytes_stored)} stored, "
         f"{result.duration_s:.1f} s ({human_bytes(rate)}/s)"
         + (f"\n{len(result.skipped)} entries skipped with a warning (unreadable, FIFO, "
            "socket or device); the snapshot was taken without them" if result.skipped
            else ""),
         summary=lambda: (f"drkit snapshot {result.snapshot_id[:12]}: {len(result.skipped)} "
                          "entries skipped" if result.skipped else None))
    if result.skipped:
        # Taken, with warnings: exit 1 so cron and CI notice (restic's exit 3 convention
        # mapped onto drkit's "findings" code).
        click.get_current_context().exit(int(ExitCode.FINDINGS))


@click.command("snapshots")
@region_option
@json_option
def snapshots_command(region: str | None) -> None:
    """List the snapshots (id, time, sources, size, new data)."""
    repo = open_repository(get_app().config, region, read_primary_copy=True)
    snaps = repo.snapshots()

    def text() -> str:
        if not snaps:
            return "no snapshots"
        lines = [f"{'ID':<12}  {'TIME':<20}  {'SIZE':>10}  {'NEW':>10}  SOURCES"]
        for s in snaps:
            st = s.manifest.stats
            lines.append(f"{s.short_id:<12}  {s.manifest.time:<20}  "
                         f"{human_bytes(st.get('bytes_total', 0)):>10}  "
                         f"{human_bytes(st.get('bytes_new', 0)):>10}  "
                         + ", ".join(x.name for x in s.manifest.sources))
        return "\n".join(lines)

    emit({"store": repo.store.url, "snapshots": [s.to_dict() for s in snaps]}, text)


@click.command("restore")
@click.argument("snapshot", required=False)
@click.option("--to", "target", type=click.Path(path_type=Path),
              help="Folder to restore into (must be empty unless --force; with --database "
                   "the scratch folder, default a new temporary one).")
@click.option("--path", "paths", multiple=True, metavar="GLOB",
              help="Only entries matching this glob (SOURCE/PATH or PATH; repeatable).")
@click.option("--force", is_flag=True, help="Restore into a non-empty folder.")
@click.option("--into-database", "into_database", metavar="NAME", default=None,
              help="Also load each restored PostgreSQL/MySQL dump into this scratch database "
                   "(drkit_scratch_*; never a production database) and check its control "
                   "totals there.")
@click.option("--approval", "approval_id", metavar="ID", default=None,
              help="An approved 'restore-production' request (needed when --to is, holds or "
                   "lies inside a production source).")
@click.option("--database", "pitr_source", metavar="NAME", default=None,
              help="Point-in-time recovery of this PostgreSQL or MySQL/MariaDB source into a "
                   "private scratch server (with --to-time, --to-lsn, --to-position or "
                   "--to-gtid; docs/pitr.md).")
@click.option("--to-time", "to_time", metavar="TIME", default=None,
              help="With --database: everything committed before TIME (ISO 8601 with offset).")
@click.option("--to-lsn", "to_lsn", metavar="LSN", default=None,
              help="With --database: replay up to, not including, this WAL position.")
@click.option("--to-position", "to_position", metavar="FILE:OFFSET", default=None,
              help="With --database (MySQL): replay the binlog up to, not including, the "
                   "event at OFFSET of FILE.")
@click.option("--to-gtid", "to_gtid", metavar="GTID", default=None,
              help="With --database (MySQL): replay up to, not including, this transaction.")
@click.option("--keep-running", is_flag=True,
              help="With --database: leave the scratch server running.")
@region_option
@recovery_key_option
@passphrase_file_option
@json_option
def restore_command(snapshot: str | None, target: Path | None, paths: tuple[str, ...],
                    force: bool, into_database: str | None, approval_id: str | None,
                    pitr_source: str | None, to_time: str | None, to_lsn: str | None,
                    to_position: str | None, to_gtid: str | None, keep_running: bool,
                    region: str | None, recovery_key: Path | None,
                    passphrase_file: Path | None) -> None:
    """Restore SNAPSHOT (an id prefix or 'latest') bit for bit into --to.

    Restoring into a target marked production needs two other people's approval
    ('drkit request restore-production SNAPSHOT --to TARGET --source NAME --reason TEXT');
    exit 3 without it.

    With --database NAME --to-time T (or --to-lsn): the newest base backup before T plus
    the archived WAL up to T, replayed by a private scratch server; its row counts are
    reported. For a MySQL/MariaDB source the base is the newest snapshot whose dump
    records its binlog position, and --to-position FILE:OFFSET / --to-gtid are exact.
    """
    from drkit.approval import require_restore_approval

    app = get_app()
    config = app.config
    if pitr_source is not None and (to_position or to_gtid or
                                    config.source(pitr_source).type == "mysql"):
        from drkit.cli.binlog import restore_binlog_point

        if snapshot is not None:
            raise UsageError("--database restores to a point in time: give no SNAPSHOT")
        if to_lsn:
            raise UsageError("--to-lsn is for PostgreSQL; use --to-position or --to-gtid")
        restore_binlog_point(config, pitr_source, to_time, to_position, to_gtid, target,
                             keep_running, region, recovery_key, passphrase_file)
        return
    if to_position or to_gtid:
        raise UsageError("--to-position/--to-gtid need --database NAME (a MySQL source)")
    if pitr_source is not None or to_time or to_lsn:
        _restore_point_in_time(config, snapshot, pitr_source, to_time, to_lsn, target,
                               keep_running, region, recovery_key, passphrase_file)
        return
    if snapshot is None or target is None:
        raise UsageError("give SNAPSHOT and --to (or --database with --to-time/--to-lsn)")
    repo = open_repository(config, region)
    snap = repo.find_snapshot(snapshot)
    if target.exists() and not target.is_dir():
        raise InputError(f"{target}: exists and is not a directory")
    if target.exists() and any(target.iterdir()) and not force:
        raise InputError(f"{target}: is not empty (use --force to restore into it)")
    # Overwriting production is dangerous: the gate refuses (exit 3) before anything is
    # read or written unless an approved request for exactly this snapshot and target
    # exists. It does nothing for other targets.
    # Production sources come from the pinned configuration (read from the region this
    # restore reads) as well as the local file, so unmarking one locally protects nothing.
    require_restore_approval(config, snapshot_id=snap.id, target=target, clock=app.clock,
                             approval_id=approval_id, store=repo.store)
    recovery = unlock(config, recovery_key, passphrase_file)
    result = restore_snapshot(repo, snap, target, recovery, paths=list(paths) or None,
                              force=force, progress=app.progress())
    if paths and not result.files and not result.symlinks:
        raise CheckFailed(f"--path {' '.join(paths)}: no file in snapshot {snap.short_id} "
                          "matches; nothing was restored")
    data = result.to_dict()
    loaded = (_load_databases(config, snap, target, into_database, result.control_totals)
              if into_database else [])
    if loaded:
        data["databases_loaded"] = loaded
    emit(data,
         f"restored snapshot {snap.short_id} to {target}: {result.files} files, "
         f"{result.dirs} folders, {result.symlinks} symlinks, {human_bytes(result.bytes)}; "
         "every chunk authenticated and every file hash verified"
         + "".join(f"\nloaded {d['source']}/{d['database']} into {d['into']}; control totals "
                   "match" for d in loaded))


def _restore_point_in_time(config: Config, snapshot: str | None, source: str | None,
                           to_time: str | None, to_lsn: str | None, target: Path | None,
                           keep_running: bool, region: str | None, recovery_key: Path | None,
                           passphrase_file: Path | None) -> None:
    import tempfile

    from drkit.cli.incident import parse_time
    from drkit.pitr.postgres import restore_to_point
    from drkit.pitr.wal import parse_lsn, wal_source

    if snapshot is not None:
        raise UsageError("--database restores to a point in time: give no SNAPSHOT")
    if bool(to_time) == bool(to_lsn):
        raise UsageError("--database needs exactly one of --to-time and --to-lsn")
    archive = wal_source(config, source)
    when = parse_time(to_time, "--to-time") if to_time else None
    lsn = parse_lsn(to_lsn) if to_lsn else None
    scratch = target or Path(tempfile.mkdtemp(prefix="drkit-pitr-"))
    repo = open_repository(config, region)
    recovery = unlock(config, recovery_key, passphrase_file)
    result = restore_to_point(config, archive, target_time=when, target_lsn=lsn,
                              scratch=scratch, recovery=recovery, repo=repo,
                              keep_running=keep_running)
    data = result.to_dict()

    def text() -> str:
        out = [f"restored {archive} to {to_time or to_lsn} from base backup "
               f"{result.base_backup[:12]} + {result.segments_fetched} WAL files in "
               f"{result.data_dir}"]
        if result.stopped_at:
            out.append(f"  {result.stopped_at}")
        for db, info in result.databases.items():
            out.append(f"  {db}: {info['rows']} rows in {len(info['tables'])} tables")
        if result.running:
            out.append(f"  running: psql -h {result.socket_dir} -p {result.port}")
        return "\n".join(out)
    emit(data, text)


def _load_databases(config: Config, snap: Any, target: Path, into: str,
                    control: dict[str, Any]) -> list[dict[str, str]]:
    """Load the restored dumps of database sources into the scratch database ``into``."""
    from drkit.sources.base import DATABASE_TYPES, database_module

    sources = [s for s in snap.manifest.sources if s.type in DATABASE_TYPES]
    if not sources:
        raise InputError(f"snapshot {snap.short_id} has no PostgreSQL or MySQL source to load "
                         "with --into-database")
    dumps = [(s, d) for s in sources for d in sorted((target / s.name).glob("*.sql"))]
    if len(dumps) != 1:
        raise InputError(f"--into-database loads one dump, but {len(dumps)} were restored; "
                         "pick one with --path SOURCE/DATABASE.sql")
    src, dump = dumps[0]
    source_cfg = config.source(src.name)
    module = database_module(src.type)
    expected = (control.get(src.name) or {}).get("databases", {}).get(dump.stem)
    if expected is None:
        raise InputError(f"snapshot {snap.short_id}: no control totals recorded for "
                         f"{src.name}/{dump.stem}")
    with dump.open("rb") as fh:
        module.load_dump(source_cfg, fh, into, config=config)
    module.check_restored(source_cfg, into, expected)
    return [{"source": src.name, "database": dump.stem, "into": into}]


def _default_key(config: Config) -> Path:
    return config.keys_dir / keyfiles.RECOVERY_KEY_FILE


def _fraction(value: str | None) -> float:
    if value is None:
        return 0.0
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%?\s*", value)
    if not m or not 0 < float(m.group(1)) <= 100:
        raise InputError(f"--read-data: expected a percentage between 0 and 100 like 10%, "
                         f"got {value!r}")
    return float(m.group(1)) / 100


@click.command("check")
@click.option("--read-data", "read_data", is_flag=False, flag_value="100%", default=None,
              metavar="[N%]", help="Read, hash and decrypt every pack, or a random N% of them "
                                   "(the same spelling as verify --read-data).")
@click.option("--read-data-subset", metavar="N%", default=None, hidden=True,
              help="Old spelling of --read-data N%.")
@region_option
@recovery_key_option
@passphrase_file_option
@json_option
def check_command(read_data: str | None, read_data_subset: str | None, region: str | None,
                  recovery_key: Path | None, passphrase_file: Path | None) -> None:
    """Check the repository structure and, with --read-data, every byte of it."""
    app = get_app()
    config = app.config
    fraction = _fraction(read_data if read_data is not None else read_data_subset)
    repo = open_repository(config, region)
    # A batch this host recorded write-ahead and then crashed before checkpointing is its
    # own interrupted append, which its next snapshot completes: not a problem of the
    # repository (a batch nobody here wrote stays one).
    from drkit.journal.log import AppendIntents

    own = AppendIntents(config.cache_dir, repo.store.url, "drkit:" + repo.repository_id
                        ).batches()
    for problem in list(repo.journal_problems):
        if any(problem.startswith(f"journal: {key}:") for key in own):
            repo.journal_problems.remove(problem)
            log.info("%s (this host's interrupted append; the next snapshot completes it)",
                     problem)
    # The recovery key is needed to read data; when it can be had without a prompt it also
    # lets the structure check read every snapshot tree.
    can_unlock = passphrase_file is not None or bool(os.environ.get(keyfiles.PASSPHRASE_ENV))
    recovery = unlock(config, recovery_key, passphrase_file) \
        if fraction > 0 or (can_unlock and (recovery_key or _default_key(config).exists())) \
        else None
    report = check_repository(repo, read_fraction=fraction, recovery=recovery,
                              progress=app.progress())

    def text() -> str:
        lines = list(report.problems)
        what = (f"{report.snapshots} snapshots, {report.index_files} index files, "
                f"{report.packs} packs")
        if fraction > 0:
            what += f"; read {report.packs_read} packs ({human_bytes(report.bytes_read)}), " \
                    f"{report.chunks_read} chunks authenticated"
        lines.append(f"{repo.store.url}: {'ok' if report.ok else 'FAILED'}: {what}"
                     + ("" if report.ok else f"; {len(report.problems)} problem(s)"))
        return "\n".join(lines)

    emit(report.to_dict(), text, summary=None)
    if not report.ok:
        if app.json:
            click.get_current_context().exit(int(ExitCode.FINDINGS))
        raise CheckFailed(f"check found {len(report.problems)} problem(s) in {repo.store.url}")


COMMANDS = [snapshot_command, snapshots_command, restore_command, check_command]

