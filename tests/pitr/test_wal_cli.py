"""``drkit wal push`` / ``wal fetch`` as PostgreSQL calls them, on files shaped like WAL
(no server needed): idempotent, never an overwrite, non-zero on failure, quiet miss."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from drkit.errors import InputError
from drkit.pitr.wal import describe_file, format_lsn, parse_lsn, segment_name
from drkit.repo.lock import boot_id, process_start_time

SEG = 16 << 20


@pytest.fixture
def project(tmp_path: Path, drkit: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRKIT_RECOVERY_PASSPHRASE", "correct horse battery staple")
    (tmp_path / "drkit.toml").write_text("""
[repository]
primary = "beijing"
keys = "keys"
cache = ".drkit/cache"

[regions.beijing]
url = "file:regions/beijing"

[sources.shop]
type = "postgres"
database = "shop"
""")
    assert drkit("keys", "init").exit_code == 0
    return tmp_path


def segment(folder: Path, name: str, fill: bytes) -> Path:
    path = folder / name
    path.write_bytes(fill * 4096 + bytes(SEG - 4096 * len(fill)))
    return path


def test_push_is_idempotent_refuses_other_bytes_and_fetch_round_trips(
        project: Path, drkit: Any) -> None:
    pg_wal = project / "pg_wal"
    pg_wal.mkdir()
    path = segment(pg_wal, "000000010000000000000003", os.urandom(64))
    res = drkit("--json", "wal", "push", str(path))
    assert res.exit_code == 0, res.stderr
    first = json.loads(res.stdout)
    assert first["written"] is True and first["name"] == path.name and first["size"] == SEG

    res = drkit("--json", "wal", "push", "--database", "shop", str(path))
    assert res.exit_code == 0 and json.loads(res.stdout)["written"] is False

    other = segment(project, "000000010000000000000003", b"other bytes")
    res = drkit("wal", "push", str(other))
    assert res.exit_code != 0
    assert "already archived with other content" in res.stderr

    out = project / "restored"
    res = drkit("wal", "fetch", "000000010000000000000003", str(out))
    assert res.exit_code == 0, res.stderr
    assert out.read_bytes() == path.read_bytes()
    # A file the archive does not hold: exit 1, nothing written (the end of the log).
    res = drkit("wal", "fetch", "000000010000000000000004", str(project / "none"))
    assert res.exit_code == 1 and not (project / "none").exists()


def test_push_failures_are_non_zero(project: Path, drkit: Any) -> None:
    res = drkit("wal", "push", str(project / "000000010000000000000009"))
    assert res.exit_code == 2 and "cannot read" in res.stderr
    bad = project / "000000010000000000000009"
    bad.write_bytes(b"short")
    res = drkit("wal", "push", str(bad))
    assert res.exit_code == 2 and "not a WAL segment size" in res.stderr
    res = drkit("wal", "push", "--database", "nope", str(bad))
    assert res.exit_code == 2 and "unknown source 'nope'" in res.stderr


def test_names_and_positions() -> None:
    assert parse_lsn("1/2000028") == (1 << 32) + 0x2000028
    assert format_lsn(parse_lsn("A/FF000000")) == "A/FF000000"
    assert segment_name(2, parse_lsn("1/2000028"), SEG) == "000000020000000100000002"
    info = describe_file("shop", "000000020000000100000002", bytes(SEG))
    assert info.lineage == "00000002" and info.start == ((1 << 32) + 2 * SEG,)
    assert info.end == (info.start[0] + SEG,)
    partial = describe_file("shop", "000000020000000100000002.partial",
                            b"\1" * 8192 * 3 + bytes(SEG - 8192 * 3), in_progress=True)
    assert partial.name == "000000020000000100000002" and partial.partial
    assert partial.end == (partial.start[0] + 3 * 8192,)
    assert describe_file("shop", "00000002.history", b"1\t0/3000000\tno recovery target\n"
                         ).start == ()
    assert describe_file("shop", "000000010000000000000002.00000028.backup", b"x").end == ()
    with pytest.raises(InputError, match="not a file PostgreSQL archives"):
        describe_file("shop", "pg_wal.tar", b"x")
    with pytest.raises(InputError, match="not an LSN"):
        parse_lsn("3000060")


def test_push_waits_for_a_live_lock_then_gives_up_non_zero(project: Path, drkit: Any) -> None:
    # archive_command runs while a snapshot holds the repository lock: the push waits for
    # it (--wait), and past the wait it fails non-zero so PostgreSQL retries later.
    repo_id = json.loads(drkit("keys", "show", "--json").stdout)["repository_id"]
    lock = project / ".drkit" / "cache" / f"lock-{repo_id}.json"
    lock.parent.mkdir(parents=True, exist_ok=True)
    me = {"owner": "cron", "host": socket.gethostname(), "boot_id": boot_id(),
          "pid": os.getpid(), "start_time": process_start_time(os.getpid()),
          "created": "2026-11-23T02:30:00Z"}
    lock.write_text(json.dumps(me))
    path = segment(project, "000000010000000000000005", os.urandom(64))
    res = drkit("wal", "push", "--wait", "0.5", str(path))
    assert res.exit_code != 0 and "still running on this host" in res.stderr
    releaser = threading.Timer(1.5, lock.unlink)
    releaser.start()
    try:
        res = drkit("--json", "wal", "push", "--wait", "60", str(path))
    finally:
        releaser.join()
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["written"] is True
