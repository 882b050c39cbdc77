"""``drkit wal``: PostgreSQL WAL archiving (``push`` as archive_command, ``fetch`` as
restore_command), base backups, and the archive's state (docs/pitr.md)."""

from __future__ import annotations

from pathlib import Path

import click

from drkit.cli.common import emit, get_app, json_option
from drkit.cli.keys import passphrase_file_option

database_option = click.option(
    "--database", "database", metavar="NAME", default=None,
    help="The PostgreSQL source ([sources.NAME]); default: the only one configured.")


@click.group("wal")
def wal_group() -> None:
    """Archive PostgreSQL's write-ahead log for point-in-time recovery."""


@wal_group.command("push")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@database_option
@click.option("--partial", "in_progress", is_flag=True,
              help="PATH is a segment still being written (pg_receivewal's .partial).")
@click.option("--wait", type=click.FloatRange(0, 3600), default=60.0, show_default=True,
              help="Seconds to wait for the repository lock (a snapshot or another push).")
@json_option
def push_command(path: Path, database: str | None, in_progress: bool, wait: float) -> None:
    """Archive one WAL file: archive_command = 'drkit wal push --database NAME %p'.

    Exit 0 when it is archived or was already held with the same bytes; non-zero on any
    failure (PostgreSQL then keeps the file and retries), including a different file
    already archived under the same name (never overwritten).
    """
    from drkit.pitr.wal import push, wal_source

    app = get_app()
    config = app.config
    archive = wal_source(config, database)
    result = push(config, archive, path, now=app.clock.now(), wait=wait,
                  in_progress=in_progress)
    emit(result.to_dict(), f"{archive}: {result.name} "
                           f"{'archived' if result.written else 'already archived'}")


@wal_group.command("fetch")
@click.argument("name")
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@database_option
@click.option("--spool", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A folder of segments already fetched (drkit restore fills one).")
@click.option("--region", default=None, metavar="NAME",
              help="Read from this region (default: the primary).")
@passphrase_file_option
def fetch_command(name: str, dest: Path, database: str | None, spool: Path | None,
                  region: str | None, passphrase_file: Path | None) -> None:
    """Write archived WAL file NAME to DEST: restore_command = 'drkit wal fetch %f %p'.

    Exit 1 (quietly) when the archive does not hold NAME: that is how recovery learns
    where the log ends.
    """
    import shutil

    from drkit.pitr.wal import fetch, wal_source

    if spool is not None and (spool / name).is_file():
        shutil.copyfile(spool / name, dest)
        return
    from drkit.cli.snapshot import open_repository, unlock

    app = get_app()
    config = app.config
    archive = wal_source(config, database)
    repo = open_repository(config, region)
    from drkit.repo.logarchive import LogCatalog

    if LogCatalog.from_entries(repo.visible.values()).current(archive, name) is None:
        click.get_current_context().exit(1)
    recovery = unlock(config, None, passphrase_file)
    if not fetch(repo, archive, name, dest, recovery):
        click.get_current_context().exit(1)


@wal_group.command("basebackup")
@database_option
@json_option
def basebackup_command(database: str | None) -> None:
    """Take a base backup (pg_basebackup, streamed into the repository as a snapshot).

    One a day anchors the archived WAL: a restore starts from the newest base backup
    before its target and replays the log from there.
    """
    from drkit.pitr.postgres import take_base_backup
    from drkit.pitr.wal import wal_source

    app = get_app()
    config = app.config
    archive = wal_source(config, database)
    result = take_base_backup(config, archive, clock=app.clock, progress=app.progress())
    emit(result.to_dict(), f"base backup of {archive}: snapshot {result.snapshot_id[:12]}, "
                           f"{result.bytes_total} bytes")


@wal_group.command("stream")
@click.option("--source", "--database", "database", metavar="NAME", default=None,
              help="The PostgreSQL source ([sources.NAME]); default: the only one configured.")
@click.option("--spool", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder pg_receivewal writes into (default: cache/wal-stream/NAME).")
@click.option("--slot", default=None, metavar="SLOT",
              help="Physical replication slot, created if absent (default: drkit_NAME).")
@click.option("--interval", type=click.FloatRange(0.2, 3600), default=2.0, show_default=True,
              help="Seconds between archived versions of the growing .partial segment.")
@click.option("--once", is_flag=True,
              help="Stream up to the server's current WAL position, archive it, and exit "
                   "(for cron and tests).")
@json_option
def stream_command(database: str | None, spool: Path | None, slot: str | None,
                   interval: float, once: bool) -> None:
    """Stream WAL with pg_receivewal and archive it continuously (sub-minute RPO).

    Runs until SIGTERM/SIGINT (then archives what was received and exits 0); exit 1 when
    pg_receivewal stops on its own (the supervisor or systemd restarts it). Resumes after
    a restart from the spool, or from where the repository's archive ends.
    """
    import signal
    import threading
    from types import FrameType

    from drkit.pitr.stream import WalStream
    from drkit.pitr.wal import wal_source

    app = get_app()
    config = app.config
    archive = wal_source(config, database)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        stream = WalStream(config, archive, clock=app.clock, spool=spool, slot=slot,
                           interval=interval, once=once, stop=stop)
        state = stream.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    data = state.to_dict()
    emit(data, f"{archive}: {state.segments} segments and {state.partial_versions} partial "
               f"versions archived; last LSN {data['last_lsn'] or 'none'}")


@wal_group.command("status")
@json_option
def status_command() -> None:
    """Each archived log of the primary region: newest segment, achieved RPO, gaps."""
    from drkit.schedule.status import log_archives

    app = get_app()
    rows = [a.to_dict() for a in log_archives(app.config, app.clock.now())]

    def text() -> str:
        if not rows:
            return "no archived logs"
        return "\n".join(f"{r['archive']}: {r['segments']} segments, newest {r['newest']}, "
                         f"archived {r['newest_archived']}, RPO {r['rpo_seconds']} s, "
                         f"{len(r['gaps'])} gaps" for r in rows)
    emit({"archives": rows}, text)
    if any(r["gaps"] for r in rows):
        click.get_current_context().exit(1)


COMMANDS = [wal_group]
