"""sudo I/O logs: session folders as sudo writes them (``log``, ``log.json``, gzip'd
``timing``/``ttyin``/``ttyout``), the command sudo ran and the lines typed into a shell."""

from __future__ import annotations

import gzip
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drkit.clock import FixedClock
from drkit.errors import InputError
from drkit.oplog.readers import parse_spec, read_source
from drkit.oplog.readers.sudoio import typed_lines
from drkit.oplog.rules import dangers

FIXTURES = Path(__file__).parent / "fixtures" / "sudo-io"
CLOCK = FixedClock(datetime(2026, 11, 23, 3, 0, tzinfo=UTC))


def test_sudo_sessions_and_the_lines_typed_into_a_root_shell() -> None:
    events = read_source(parse_spec(f"sudoio:{FIXTURES}?host=bastion-1&ip=10.0.8.15"),
                         clock=CLOCK)
    assert [e.command for e in events] == [
        "/usr/bin/systemctl stop auditd", "/bin/bash", "ls /var/lib/mysql",
        "mysql -uroot -p -e 'drop database shop'", "rm -rf /var/lib/mysql/shop", "exit"]
    stop, shell, listing, drop, rm, _exit = events
    # The legacy `log` file: its time, user and run-as user; the host from ?host=.
    assert stop.time == datetime(2026, 11, 23, 2, 22, tzinfo=UTC)
    assert (stop.operator, stop.actor.session_user, stop.host) == ("wang", "root", "bastion-1")
    assert stop.session == "sudo:bastion-1:00/00/01"
    assert [d.rule for d in dangers(stop)] == ["shell:audit-off"]
    # log.json names the host itself and has the sub-second start time.
    start = datetime(2026, 11, 23, 2, 35, 0, 250000, tzinfo=UTC)
    assert (shell.time, shell.host, shell.session) == (start, "db-prod-1",
                                                        "sudo:db-prod-1:00/00/02")
    assert shell.extra == {"tty": "/dev/pts/3", "cwd": "/home/wang"}
    # Typed lines: times from the timing file, backspace applied, pasted line read whole.
    assert listing.time == start + timedelta(seconds=2.957)
    assert drop.time == start + timedelta(seconds=5.681)
    assert rm.time > drop.time and rm.actor.source_ip == "10.0.8.15"
    assert (drop.operator, drop.actor.session_user) == ("wang", "root")
    assert [d.rule for d in dangers(drop)] == ["shell:drop-database"]
    assert [d.rule for d in dangers(rm)] == ["shell:rm-rf-data"]
    # The password typed at mysql's prompt (no echo) is not among the events.
    assert all("S3cret" not in (e.command or "") for e in events)
    # Stable ids: the same folder read twice adds nothing.
    again = read_source(parse_spec(f"sudoio:{FIXTURES}?host=bastion-1"), clock=CLOCK)
    assert [e.id for e in again] == [e.id for e in events]


def test_one_session_folder_and_uncompressed_streams(tmp_path: Path) -> None:
    session = tmp_path / "02"
    shutil.copytree(FIXTURES / "00" / "00" / "02", session)
    (session / "log.json").unlink()  # an older sudo: the legacy log file only
    for name in ("timing", "ttyin", "ttyout"):  # compress_io off
        (session / name).write_bytes(gzip.decompress((session / name).read_bytes()))
    events = read_source(parse_spec(f"sudoio:{session}"), clock=CLOCK)
    assert [e.command for e in events][1:3] == [
        "ls /var/lib/mysql", "mysql -uroot -p -e 'drop database shop'"]
    assert events[0].time == datetime(2026, 11, 23, 2, 35, tzinfo=UTC)
    assert events[0].host is None and events[0].session == "sudo:host:02"


def test_typed_lines_follow_line_editing_and_echo() -> None:
    timing = b"4 0.1 2\n3 0.5 3\n4 0.01 3\n3 0.2 1\n4 0.01 2\n3 0.3 4\n4 0.01 2\n7 0.1 SIGTSTP\n"
    ttyin = b"lx\x7f" + b"\r" + b"pw\x15\r"
    ttyout = b"$ " + b"lx\b" + b"\r\n" + b"\r\n"
    lines, hidden = typed_lines(timing, ttyin, ttyout)
    assert lines == [(pytest.approx(0.81), "l")]
    assert hidden == 0  # Ctrl-U dropped the second line before Enter


def test_not_a_sudo_log_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "00").mkdir()
    (tmp_path / "00" / "log").write_text("hello world\n")
    with pytest.raises(InputError, match=r"00/log: not a sudo I/O log"):
        read_source(parse_spec(f"sudoio:{tmp_path}"), clock=CLOCK)
    with pytest.raises(InputError, match="no such folder"):
        read_source(parse_spec(f"sudoio:{tmp_path / 'missing'}"), clock=CLOCK)
