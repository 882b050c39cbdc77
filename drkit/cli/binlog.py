"""``drkit binlog``: archive a MySQL/MariaDB server's binlog for point-in-time recovery
(docs/pitr.md)."""

from __future__ import annotations

import signal
from pathlib import Path

import click

from drkit.cli.common import emit, get_app, json_option
from drkit.config import Config
from drkit.numbers import count


@click.group("binlog")
def binlog_group() -> None:
    """Archive MySQL/MariaDB binlogs for point-in-time recovery."""


@binlog_group.command("stream")
@click.option("--source", "source", metavar="NAME", default=None,
              help="The MySQL/MariaDB source ([sources.NAME]); default: the only one.")
@click.option("--once", is_flag=True,
              help="Archive everything up to the server's current position, then exit "
                   "(for cron and tests).")
@click.option("--from", "start", metavar="FILE", default=None,
              help="Start at this binlog file instead of where the archive ends (default: "
                   "after the newest file held; with an empty archive the oldest file the "
                   "server has).")
@click.option("--partial-every", type=click.FloatRange(0.5, 3600), default=5.0,
              show_default=True,
              help="Seconds between archived versions of the file being written (the RPO "
                   "while it is written; each version is one writer run).")
@json_option
def stream_command(source: str | None, once: bool, start: str | None,
                   partial_every: float) -> None:
    """Follow the server's binlog (mysqlbinlog --read-from-remote-server --raw) and
    archive closed files and the one being written.

    Runs until SIGTERM/SIGINT; a restart resumes from what the repository holds. The
    account needs REPLICATION SLAVE (to read the binlog) and BINLOG MONITOR / REPLICATION
    CLIENT (to list it).
    """
    from drkit.cli.snapshot import open_repository
    from drkit.pitr.binlog import BinlogStreamer, binlog_source

    app = get_app()
    config = app.config
    archive = binlog_source(config, source)
    streamer = BinlogStreamer(config, archive, clock=app.clock, partial_every=partial_every,
                              open_repo=lambda: open_repository(config, None))
    if not once:
        signal.signal(signal.SIGTERM, streamer.request_stop)
        signal.signal(signal.SIGINT, streamer.request_stop)
    result = streamer.run(once=once, start=start)
    data = result.to_dict()
    emit(data, f"{archive}: streamed from {result.started_from}; archived "
               f"{data['complete']} complete and {count(data['partial'], 'in-progress version')}")


def restore_binlog_point(config: Config, source: str, to_time: str | None,
                         to_position: str | None, to_gtid: str | None, target: Path | None,
                         keep_running: bool, region: str | None, recovery_key: Path | None,
                         passphrase_file: Path | None) -> None:
    """``drkit restore --database NAME`` for a MySQL/MariaDB source."""
    import tempfile

    from drkit.cli.incident import parse_time
    from drkit.cli.snapshot import open_repository, unlock
    from drkit.errors import UsageError
    from drkit.pitr.binlog import binlog_source, parse_position
    from drkit.pitr.mysql import restore_to_point

    if sum(1 for t in (to_time, to_position, to_gtid) if t) != 1:
        raise UsageError("--database needs exactly one of --to-time, --to-position and "
                         "--to-gtid")
    archive = binlog_source(config, source)
    when = parse_time(to_time, "--to-time") if to_time else None
    position = parse_position(to_position) if to_position else None
    scratch = target or Path(tempfile.mkdtemp(prefix="drkit-pitr-"))
    repo = open_repository(config, region)
    recovery = unlock(config, recovery_key, passphrase_file)
    result = restore_to_point(config, archive, target_time=when, target_position=position,
                              target_gtid=to_gtid, scratch=scratch, recovery=recovery,
                              repo=repo, keep_running=keep_running)

    def text() -> str:
        out = [f"restored {archive} to just before {to_time or to_position or to_gtid} from "
               f"snapshot {result.base_snapshot[:12]} + {len(result.files_replayed)} binlog "
               f"files in {result.data_dir}"]
        for db, info in result.databases.items():
            out.append(f"  {db}: {info['rows']} rows in {len(info['tables'])} tables"
                       + (" (base dump's control totals match)"
                          if info["base_totals_checked"] else ""))
        if result.running:
            out.append(f"  running: mariadb --socket={result.socket} --user=root")
        return "\n".join(out)
    emit(result.to_dict(), text)


def find_binlog_incidents(config: Config, source: str, since: str | None, min_rows: int,
                          min_share: float, region: str | None,
                          passphrase_file: Path | None) -> None:
    """``drkit incident find --database NAME`` for a MySQL/MariaDB source."""
    from drkit.cli.incident import emit_incidents, parse_time
    from drkit.cli.snapshot import open_repository, unlock
    from drkit.pitr.mysql import find_incidents

    start = parse_time(since, "--since") if since else None
    repo = open_repository(config, region)
    recovery = unlock(config, None, passphrase_file)
    report = find_incidents(config, source, repo=repo, recovery=recovery, since=start,
                            min_rows=min_rows, min_share=min_share)

    def lines() -> list[str]:
        out = [f"{source}: read {count(report['files_read'], 'binlog file')} from "
               f"{report['from_position']}"]
        for i in report["incidents"]:
            rows = f" ({i['rows']} rows)" if i["rows"] is not None else ""
            who = f"thread {i['thread_id']}" if i["thread_id"] is not None else "thread ?"
            out.append(f"  {i['time']}  {i['position']}  gtid {i['gtid']}  server "
                       f"{i['server_id']}  {who}  {i['kind']} {i['relation']}{rows}")
            if i["statement"]:
                out.append(f"      {i['statement'][:160]}")
        return out
    emit_incidents(report, lines, "recover to {why}:")


COMMANDS = [binlog_group]
