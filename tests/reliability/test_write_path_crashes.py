"""Deterministic crashes at each step of the write path, each followed by the rerun.

Each test kills the real CLI (``DRKIT_FAULT``, exit as by kill -9) at one point of a
snapshot, replicate or verify, then asserts what a user must be able to count on:
verify and check stay clean (a leftover of the crashed run is at most a low note, never
"injected data"), the rerun adopts or removes what the crash left (no leftover note, no
temporary file, no lock file afterwards), and every snapshot restores bit for bit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from reliability.crashkit import CrashProject, table_digest, tree_digest


def _ok(p: CrashProject, *args: str) -> Any:
    res = p.run(*args, "--json")
    assert res.exit_code == 0, (args, res.stdout[-3000:], res.stderr[-3000:])
    return res.json()


def _verify(p: CrashProject) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """verify --all: returns (findings, leftovers); never an injected-data finding."""
    res = p.run("verify", "--all", "--json")
    doc = res.json()
    findings = doc["findings"]
    assert not [f for f in findings if f["check"] == "object-unlogged"], findings
    assert res.exit_code == 0, (findings, res.stderr[-2000:])
    return findings, [x for r in doc["regions"] for x in r["leftovers"]]


def _first_snapshot(p: CrashProject) -> dict[str, Any]:
    _ok(p, "snapshot")
    _ok(p, "replicate")
    _verify(p)
    return {"files": tree_digest(p.uploads), "rows": table_digest(p.db)}


def _after_rerun(p: CrashProject, states: list[dict[str, Any]], tmp_path: Path) -> None:
    assert p.temp_files() == [], "temporary files of the killed run are left"
    assert p.lock_files() == [], "a lock file is left after the rerun"
    _ok(p, "replicate")
    findings, leftovers = _verify(p)
    assert findings == [] and leftovers == []
    assert _ok(p, "check", "--read-data")["snapshots"] == len(states)
    snaps = _ok(p, "snapshots")["snapshots"]
    assert len(snaps) == len(states)
    for n, (snap, state) in enumerate(zip(snaps, states, strict=True)):
        out = tmp_path / f"restored-{n}"
        _ok(p, "restore", snap["id"], "--to", str(out))
        assert tree_digest(out / "uploads") == state["files"]
        assert table_digest(out / "shop" / "shop.db") == state["rows"]
    res = p.run("audit", "verify")
    assert res.exit_code == 0, res.stdout + res.stderr


#: New data that fits one pack, so the order of puts of the crashed run is fixed: the
#: session's intent and key, the pack's intent, the pack, its index, the manifest's intent
#: and the manifest (more upload threads would interleave packs).
SMALL = 300_000

SNAPSHOT_POINTS = [
    "writer.intent.before:1",   # nothing written yet
    "writer.intent.after:1",    # the session's intent, not the session
    "writer.put.after:2",       # the session key
    "writer.put.after:3",       # a pack's intent
    "writer.put.after:4",       # a pack without its index (the case of issue 24 item 2)
    "writer.put.after:5",       # a pack and its index
    "writer.put.before:6",
    "local.put.written:4",      # bytes in a temporary file, not linked
    "writer.journal.before:1",  # everything written, nothing journaled
    "journal.batch.after:1",    # the batch written, not its checkpoint
    "writer.journal.after:1",   # journaled, local state not updated
    "snapshot.state.before:1",  # before the files cache is saved
    "snapshot.state.after:1",
]


@pytest.mark.parametrize("fault", SNAPSHOT_POINTS)
def test_snapshot_killed_then_rerun(crash_project: CrashProject, tmp_path: Path,
                                    fault: str) -> None:
    p = crash_project
    states = [_first_snapshot(p)]
    p.grow("b", size=SMALL)
    p.crash("snapshot", fault=fault)

    _findings, leftovers = _verify(p)  # leftovers at most a low note
    assert p.run("check").exit_code == 0

    after_crash = _ok(p, "snapshot")
    states.append({"files": tree_digest(p.uploads), "rows": table_digest(p.db)})
    if fault.startswith(("writer.journal.after", "snapshot.state")):
        # The crashed run's snapshot was journaled: it counts, and the rerun is a third.
        states.insert(1, states[1])
    else:
        assert after_crash["reused_leftovers"] >= len(leftovers)
    if fault.startswith("writer.journal.before"):
        # Everything, manifest included, was written but not journaled: the rerun adopts
        # the crashed run's complete snapshot along with its own.
        assert any(x["key"].startswith("snapshots/") for x in leftovers)
        states.insert(1, states[1])
    if fault.startswith("journal.batch.after"):
        # The signed batch naming everything was written, its checkpoint was not: this
        # host's write-ahead record lets the rerun complete that append (drkit.journal.log),
        # so the crashed run's snapshot counts, and nothing was a leftover.
        states.insert(1, states[1])
    _after_rerun(p, states, tmp_path)


def test_pack_without_index_is_a_low_leftover_not_injected(crash_project: CrashProject,
                                                           tmp_path: Path) -> None:
    p = crash_project
    states = [_first_snapshot(p)]
    p.grow("b", size=SMALL)
    p.crash("snapshot", fault="writer.put.after:4")
    res = p.run("verify", "--json")
    assert res.exit_code == 0, res.stdout
    doc = res.json()
    region = doc["regions"][0]
    keys = {x["key"] for x in region["leftovers"]}
    assert any(k.startswith("packs/") for k in keys)
    assert any(k.startswith("sessions/") for k in keys)
    assert all(k.startswith(("packs/", "sessions/", "intents/")) for k in keys)
    assert all(x["age_hours"] >= 0 for x in region["leftovers"])
    assert any(n.startswith("low: leftover of an interrupted write") for n in region["notes"])
    text = p.run("verify")
    assert text.exit_code == 0 and "leftover of an interrupted write" in text.stdout
    assert "injected" not in text.stdout

    out = _ok(p, "snapshot")
    # Every leftover, plus the pack's index file re-created from the bytes its intent holds.
    assert out["reused_leftovers"] == len(keys) + 1
    states.append({"files": tree_digest(p.uploads), "rows": table_digest(p.db)})
    _after_rerun(p, states, tmp_path)


@pytest.mark.parametrize("fault", ["replicate.put.after:1", "replicate.put.after:3",
                                   "replicate.journal.after:1"])
def test_replicate_killed_then_rerun(crash_project: CrashProject, tmp_path: Path,
                                     fault: str) -> None:
    p = crash_project
    states = [_first_snapshot(p)]
    p.grow("b")
    _ok(p, "snapshot")
    states.append({"files": tree_digest(p.uploads), "rows": table_digest(p.db)})
    p.crash("replicate", fault=fault)
    # A half-copied region: replication in progress, nothing injected, and no leftover
    # (replicate copies journaled objects only; it writes no intents of its own).
    findings, leftovers = _verify(p)
    assert findings == [] and leftovers == []
    rerun = _ok(p, "replicate")
    regions = list(rerun["regions"].values())
    assert regions and all(r["findings"] == [] for r in regions), regions
    # The rerun completes what the crash left: every region's log reaches the primary's.
    assert all(r["log_size_after"] == r["primary_log_size"] and r["lag_entries"] == 0
               for r in regions), regions
    _after_rerun(p, states, tmp_path)


@pytest.mark.parametrize("fault", ["verify.state.before:1", "verify.state.written:1"])
def test_verify_killed_while_saving_its_state(crash_project: CrashProject, tmp_path: Path,
                                              fault: str) -> None:
    import os

    p = crash_project
    states = [_first_snapshot(p)]
    p.grow("b")
    _ok(p, "snapshot")
    states.append({"files": tree_digest(p.uploads), "rows": table_digest(p.db)})
    _ok(p, "replicate")
    p.crash("verify", "--all", fault=fault)
    state_dir = Path(os.environ["XDG_STATE_HOME"]) / "drkit"
    if fault.startswith("verify.state.written"):
        assert list(state_dir.glob(".state-*"))  # the killed save's temporary file
    _after_rerun(p, states, tmp_path)
    assert list(state_dir.glob(".state-*")) == []


def test_killed_put_leaves_a_temp_file_the_next_run_removes(crash_project: CrashProject,
                                                            tmp_path: Path) -> None:
    import os
    import socket

    p = crash_project
    _first_snapshot(p)
    p.grow("b", size=SMALL)
    p.crash("snapshot", fault="local.put.written:2")
    leaked = p.temp_files()
    assert leaked and all(x.name.startswith("put-") for x in leaked)
    # A live writer's temporary file (this test process: alive and older than the file)
    # and another host's fresh one must survive the cleanup.
    tmp_dir = p.region() / ".drkit-tmp"
    live = tmp_dir / f"put-{socket.gethostname()}-{os.getpid()}-{'0' * 16}"
    live.write_bytes(b"in progress")
    foreign = tmp_dir / f"put-otherhost-1-{'1' * 16}"
    foreign.write_bytes(b"another host")
    _ok(p, "snapshot")
    left = p.temp_files()
    assert sorted(left) == sorted([live, foreign])
    # Another host's file untouched for more than a day is removed.
    old = foreign.stat().st_mtime - 2 * 86400
    os.utime(foreign, (old, old))
    live.unlink()
    p.grow("c")
    _ok(p, "snapshot")
    assert p.temp_files() == []


def test_ctrl_c_of_a_large_snapshot_raises_no_false_alarm(crash_project: CrashProject,
                                                          tmp_path: Path) -> None:
    """Issue 13 item 4: Ctrl-C (SIGINT) half-way through a snapshot of several packs."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from reliability.crashkit import PASSPHRASE

    p = crash_project
    states = [_first_snapshot(p)]
    for i in range(12):
        (p.uploads / f"big-{i}.bin").write_bytes(os.urandom(1 << 20))
    before = len(list((p.region() / "packs").rglob("*")))
    env = dict(os.environ, DRKIT_RECOVERY_PASSPHRASE=PASSPHRASE)
    proc = subprocess.Popen([sys.executable, "-m", "drkit", "snapshot"], cwd=p.root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(list((p.region() / "packs").rglob("*"))) < before + 3 and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the snapshot finished before Ctrl-C reached it")
    assert proc.returncode == 130, err
    assert "Traceback" not in err

    res = p.run("verify", "--json")
    assert res.exit_code == 0, res.stdout
    region = res.json()["regions"][0]
    assert [f for f in region["findings"] if f["check"] == "object-unlogged"] == []
    assert any(x["key"].startswith("packs/") for x in region["leftovers"])

    _ok(p, "snapshot")
    states.append({"files": tree_digest(p.uploads), "rows": table_digest(p.db)})
    _after_rerun(p, states, tmp_path)
