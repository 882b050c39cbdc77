"""``drkit binlog stream`` against a private MariaDB server: killed with SIGKILL in the
middle of a file and restarted, the archive holds every binlog file of the server, byte
for byte, with no gap and no file stored twice, and verify is clean. Plus the binlog file
reader (whole events, closed files) on the server's real files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from drkit.config import load_config
from drkit.errors import InputError
from drkit.pitr.binlog import describe_file, parse_name, parse_position, scan
from drkit.repo import keys as keyfiles
from drkit.repo.logarchive import LogCatalog, find_gaps, read_segment
from drkit.repo.repository import Repository
from drkit.storage.url import open_store

ROOT = Path(__file__).resolve().parents[2]
FLAGS_AT = 4 + 17  # the Format_description event's flags (after the magic number)


def open_repo(root: Path) -> tuple[Repository, Any]:
    config = load_config(root / "drkit.toml")
    store = open_store(config.primary_region.url, base_dir=config.base_dir)
    return Repository.open(store, keyfiles.load_trusted_writer_keys(config),
                           region=config.primary_region.name), config


def insert(project: Any, start: int, count: int) -> None:
    project.sql(*(f"INSERT INTO t VALUES ({i}, REPEAT('x', 200))"
                  for i in range(start, start + count)))


def reader_processes(spool: Path) -> list[int]:
    """Processes whose command line names the spool folder (the binlog reader)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"--read-from-remote-server" in cmd and str(spool).encode() in cmd:
            found.append(int(proc.name))
    return found


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_kill_9_mid_file_then_restart_no_gap_no_duplicate(binlog_project: Any,
                                                           drkit: Any) -> None:
    p = binlog_project
    p.sql("CREATE TABLE t (id INT PRIMARY KEY, pad VARCHAR(255))")
    insert(p, 1, 100)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "drkit", "--config", str(p.root / "drkit.toml"), "binlog",
           "stream", "--source", "shop", "--partial-every", "0.5"]
    stream = subprocess.Popen(cmd, cwd=p.root, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, start_new_session=True)
    spool = p.root / ".drkit" / "cache" / "binlog" / "shop"
    try:
        p.sql("FLUSH BINARY LOGS")
        insert(p, 101, 100)
        (current,) = p.sql("SHOW MASTER STATUS")[0][:1]
        name = str(current[0])

        def partial_held() -> bool:
            repo, _ = open_repo(p.root)
            versions = LogCatalog.from_entries(repo.visible.values()).versions("shop", name)
            return any(v.info.partial for v in versions)
        wait_for(partial_held, 60, f"a partial version of {name}")
        insert(p, 201, 100)  # the file grows past what is archived: killed mid-file
        time.sleep(0.3)
        assert reader_processes(spool), "the binlog reader should be running"
    finally:
        os.kill(stream.pid, signal.SIGKILL)
        stream.wait()
    # The reader dies with drkit (it must not keep writing into the spool).
    wait_for(lambda: not reader_processes(spool), 10, "the orphaned reader to exit")

    insert(p, 301, 100)
    p.sql("FLUSH BINARY LOGS")
    insert(p, 401, 50)
    reached = int(p.sql("SHOW MASTER STATUS")[0][0][1])
    res = drkit("--json", "binlog", "stream", "--source", "shop", "--once")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["started_from"] == name  # resumed at the partial file

    repo, config = open_repo(p.root)
    catalog = LogCatalog.from_entries(repo.visible.values())
    segments = catalog.of("shop")
    assert find_gaps(segments) == []
    on_server = [str(r[0]) for r in p.sql("SHOW BINARY LOGS")[0]]
    recovery = keyfiles.unlock_recovery_key(config.keys_dir / keyfiles.RECOVERY_KEY_FILE,
                                            "correct horse battery staple")
    for i, file in enumerate(on_server):
        versions = catalog.versions("shop", file)
        complete = [v for v in versions if not v.info.partial]
        data = (p.server.data / file).read_bytes()
        held = catalog.current("shop", file)
        assert held is not None, f"{file} not archived"
        if i + 1 < len(on_server):
            assert len(complete) == 1, f"{file}: {len(complete)} complete versions"
            assert read_segment(repo, held.key, recovery) == data
        else:
            # The server may append a checkpoint event after drkit read the file, and it
            # sends the file being written with its header's "in use" flag clear (the
            # one difference from the file on its disk).
            assert held.info.partial and held.info.end[0] == parse_name(file)[1]
            assert held.info.end[1] >= reached
            expected = data[:FLAGS_AT] + bytes([data[FLAGS_AT] & ~1]) + data[FLAGS_AT + 1:]
            assert read_segment(repo, held.key, recovery) == expected[:held.info.end[1]]
        partial_ends = [v.info.end for v in sorted(versions, key=lambda v: v.archived)
                        if v.info.partial]
        assert partial_ends == sorted(set(partial_ends)), f"{file}: a partial stored twice"
    # The file that was being written when drkit was killed is now complete, once.
    assert len([v for v in catalog.versions("shop", name) if not v.info.partial]) == 1

    res = drkit("--json", "verify", "--accept-first-contact")
    assert res.exit_code == 0, res.stdout
    report = json.loads(res.stdout)
    assert report["clean"] is True and report["findings"] == []
    # Once more: nothing stored again (only the in-progress file, if it grew since).
    last = catalog.current("shop", on_server[-1])
    assert last is not None
    res = drkit("--json", "binlog", "stream", "--source", "shop", "--once")
    assert res.exit_code == 0, res.stderr
    for again in json.loads(res.stdout)["files_archived"]:
        assert again["name"] == last.info.name and again["partial"]
        assert again["size"] > last.size


def test_binlog_files_are_read_event_by_event(binlog_project: Any) -> None:
    p = binlog_project
    p.sql("CREATE TABLE t (id INT PRIMARY KEY, pad VARCHAR(255))")
    insert(p, 1, 20)
    p.sql("FLUSH BINARY LOGS")
    closed, current = (str(r[0]) for r in p.sql("SHOW BINARY LOGS")[0][-2:])
    data = (p.server.data / closed).read_bytes()
    info, body = describe_file("shop", closed, data)
    number = parse_name(closed)[1]
    assert (info.start, info.end, info.partial, body) == ((number, 0), (number + 1, 0),
                                                          False, data)
    assert info.lineage == "mysql-bin" and info.first_time and info.last_time
    assert info.extra["gtid_last"] and info.extra["server_ids"] == [1]
    # Cut in the middle of an event: only whole events are archived.
    events = scan(data).events
    cut = events[-3].offset + 7
    info, body = describe_file("shop", closed, data[:cut])
    assert info.partial and info.end == (number, events[-3].offset)
    assert body == data[:events[-3].offset]
    live = (p.server.data / current).read_bytes()
    assert describe_file("shop", current, live)[0].partial
    with pytest.raises(InputError, match="not a binlog"):
        describe_file("shop", closed, b"garbage" * 10)
    assert parse_position("mysql-bin.000002:1234") == ("mysql-bin.000002", 1234)
    with pytest.raises(InputError, match="not a binlog position"):
        parse_position("mysql-bin.000002")
