"""Crash campaign: kill -9 the real CLI at random moments, then check nothing is lost.

    .venv/bin/python bench/crash.py [--kills 50] [--seed N] [--dir DIR] [--data-mib 12]

A project with a files source and a SQLite source, two local regions (``beijing``
primary, ``shanghai``), in a temporary folder. Each round picks ``snapshot`` (after adding
data), ``replicate`` or ``verify --all``, starts it as a subprocess (``python -m drkit``),
sends SIGKILL after a random delay within that command's usual duration, then:

1. reruns the same command (a lock left by the kill must not need a person);
2. ``check``, ``verify --all``, ``audit verify``;
3. restores the snapshot(s) the round made, bit for bit against the data they were taken of.

At the end every snapshot is restored again and ``check --read-data`` reads every pack.
Prints: kills, corrupt repositories (check or verify critical), lost snapshots, bad
restores, false findings after the rerun, leftover notes after the rerun, leaked bytes
(temporary files and unjournaled objects left after the rerun), locks needing a person,
audit failures. Goal: all zero (exit 0; 1 otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from reliability.crashkit import (  # noqa: E402
    PASSPHRASE,
    CrashProject,
    make_project,
    table_digest,
    tree_digest,
)


@dataclass
class Figures:
    kills: int = 0
    finished_before_kill: int = 0
    corrupt_repositories: int = 0
    lost_snapshots: int = 0
    bad_restores: int = 0
    false_findings: int = 0
    leftover_notes_after_rerun: int = 0
    leaked_bytes: int = 0
    locks_needing_a_person: int = 0
    failed_reruns: int = 0
    audit_failures: int = 0
    problems: list[str] = field(default_factory=list)

    def bad(self) -> int:
        return (self.corrupt_repositories + self.lost_snapshots + self.bad_restores
                + self.false_findings + self.leftover_notes_after_rerun
                + self.leaked_bytes + self.locks_needing_a_person + self.failed_reruns
                + self.audit_failures)


def _env() -> dict[str, str]:
    env = dict(os.environ, DRKIT_RECOVERY_PASSPHRASE=PASSPHRASE)
    env.pop("DRKIT_FAULT", None)
    return env


def _cmd(op: str) -> list[str]:
    args = {"snapshot": ["snapshot"], "replicate": ["replicate"],
            "verify": ["verify", "--all", "--accept-first-contact"]}[op]
    return [sys.executable, "-m", "drkit", *args, "--json"]


def _kill_at_random(p: CrashProject, op: str, delay: float) -> bool:
    """Start ``op`` and SIGKILL it after ``delay`` s; True if it was killed."""
    proc = subprocess.Popen(_cmd(op), cwd=p.root, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


def _leaked_bytes(p: CrashProject) -> int:
    total = sum(f.stat().st_size for f in p.temp_files())
    cache = p.root / ".drkit" / "cache"
    total += sum(f.stat().st_size for f in cache.glob("*.tmp"))
    return total


def _grow(p: CrashProject, rnd: random.Random, n: int) -> None:
    size = rnd.randint(200_000, 2_500_000)
    (p.uploads / f"round-{n}.bin").write_bytes(rnd.randbytes(size))
    p.grow(f"r{n}", size=0)  # database rows only


def _state(p: CrashProject) -> dict[str, Any]:
    return {"files": tree_digest(p.uploads), "rows": table_digest(p.db)}


def _restore_ok(p: CrashProject, snap_id: str, state: dict[str, Any], work: Path) -> bool:
    out = work / f"restore-{snap_id[:12]}"
    shutil.rmtree(out, ignore_errors=True)
    res = p.run("restore", snap_id, "--to", str(out), "--json")
    ok = (res.exit_code == 0 and tree_digest(out / "uploads") == state["files"]
          and table_digest(out / "shop" / "shop.db") == state["rows"])
    shutil.rmtree(out, ignore_errors=True)
    return ok


def _durations(p: CrashProject) -> dict[str, float]:
    out = {}
    for op in ("snapshot", "replicate", "verify"):
        started = time.monotonic()
        res = subprocess.run(_cmd(op), cwd=p.root, env=_env(), capture_output=True, check=False)
        if res.returncode != 0:
            raise SystemExit(f"{op} failed before the campaign: {res.stderr.decode()[-500:]}")
        out[op] = time.monotonic() - started
    return out


def campaign(p: CrashProject, kills: int, rnd: random.Random, work: Path) -> Figures:
    fig = Figures()
    expected: dict[str, dict[str, Any]] = {}
    for s in p.run("snapshots", "--json").json()["snapshots"]:
        expected[s["id"]] = _state(p)
    durations = _durations(p)
    for s in p.run("snapshots", "--json").json()["snapshots"]:
        expected.setdefault(s["id"], _state(p))
    n = 0
    while fig.kills < kills:
        n += 1
        op = rnd.choices(["snapshot", "replicate", "verify"], weights=[3, 1, 1])[0]
        if op == "snapshot":
            _grow(p, rnd, n)
        state = _state(p)
        if op == "replicate":
            # Give replicate something to copy.
            _grow(p, rnd, n * 1000)
            state = _state(p)
            if p.run("snapshot").exit_code != 0:
                fig.problems.append(f"round {n}: snapshot before replicate failed")
        killed = _kill_at_random(p, op, rnd.uniform(0.05, durations[op] * 1.1))
        if killed:
            fig.kills += 1
        else:
            fig.finished_before_kill += 1
        rerun = p.run(*_cmd(op)[3:])
        if rerun.exit_code != 0:
            if "locked by" in rerun.stderr:
                fig.locks_needing_a_person += 1
            else:
                fig.failed_reruns += 1
            fig.problems.append(f"round {n} ({op}): rerun exit {rerun.exit_code}: "
                                f"{rerun.stderr.strip()[-300:]}")
            continue
        if p.run("check").exit_code != 0:
            fig.corrupt_repositories += 1
            fig.problems.append(f"round {n} ({op}): check failed")
        ver = p.run("verify", "--all", "--json")
        doc = json.loads(ver.stdout) if ver.stdout.strip() else {"findings": [], "regions": []}
        findings = doc.get("findings", [])
        if any(f["severity"] == "critical" for f in findings):
            fig.corrupt_repositories += 1
        fig.false_findings += len(findings)
        for f in findings:
            fig.problems.append(f"round {n} ({op}): {f['severity']} {f['check']} {f['key']}")
        fig.leftover_notes_after_rerun += sum(len(r.get("leftovers", []))
                                              for r in doc.get("regions", []))
        fig.leaked_bytes += _leaked_bytes(p)
        if p.run("audit", "verify").exit_code != 0:
            fig.audit_failures += 1
            fig.problems.append(f"round {n} ({op}): audit verify failed")
        listed = {s["id"] for s in p.run("snapshots", "--json").json()["snapshots"]}
        lost = set(expected) - listed
        if lost:
            fig.lost_snapshots += len(lost)
            fig.problems.append(f"round {n} ({op}): lost {sorted(lost)}")
            for gone in lost:
                expected.pop(gone)
        for new in sorted(listed - set(expected)):
            expected[new] = state
            if not _restore_ok(p, new, state, work):
                fig.bad_restores += 1
                fig.problems.append(f"round {n} ({op}): snapshot {new[:12]} restores wrong")
        print(f"round {n:3d} {op:9s} {'killed' if killed else 'finished':8s} "
              f"kills {fig.kills}/{kills} snapshots {len(listed)} problems {fig.bad()}",
              flush=True)
    # Finally: every snapshot, and every pack read back.
    for snap_id, state in expected.items():
        if not _restore_ok(p, snap_id, state, work):
            fig.bad_restores += 1
            fig.problems.append(f"final: snapshot {snap_id[:12]} restores wrong")
    if p.run("check", "--read-data").exit_code != 0:
        fig.corrupt_repositories += 1
        fig.problems.append("final: check --read-data failed")
    return fig


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--dir", type=Path, default=None, help="work folder (kept)")
    parser.add_argument("--data-mib", type=int, default=12,
                        help="size of the files source at the start")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)
    rnd = random.Random(seed)
    work = args.dir or Path(tempfile.mkdtemp(prefix="drkit-crash-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["HOME"] = str(work / "home")
    os.environ["XDG_STATE_HOME"] = str(work / "home" / "state")
    os.environ["XDG_CACHE_HOME"] = str(work / "home" / "cache")
    os.environ["XDG_CONFIG_HOME"] = str(work / "home" / "config")
    started = time.monotonic()
    p = make_project(work / "project")
    for i in range(max(1, args.data_mib)):
        (p.uploads / f"data-{i}.bin").write_bytes(rnd.randbytes(1 << 20))
    fig = campaign(p, args.kills, rnd, work)
    print(f"\nseed {seed}, {time.monotonic() - started:.0f} s, work folder {work}")
    for name in ("kills", "finished_before_kill", "corrupt_repositories", "lost_snapshots",
                 "bad_restores", "false_findings", "leftover_notes_after_rerun",
                 "leaked_bytes", "locks_needing_a_person", "failed_reruns",
                 "audit_failures"):
        print(f"{name.replace('_', ' '):28s} {getattr(fig, name)}")
    for problem in fig.problems[:40]:
        print("  " + problem)
    if not args.dir:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if fig.bad() else 0


if __name__ == "__main__":
    sys.exit(main())
