"""A small drkit project driven through the real CLI in subprocesses, so that a crash
injected with DRKIT_FAULT (drkit/faults.py) ends the process as kill -9 would. Shared by
the reliability tests and bench/crash.py."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drkit.faults import FAULT_EXIT

PASSPHRASE = "correct horse battery staple"

CONFIG = """\
[repository]
primary = "beijing"
keys = "keys"
cache = ".drkit/cache"
pack_size_mib = 1

[regions.beijing]
url = "file:regions/beijing"
lock_days = 30

[regions.shanghai]
url = "file:regions/shanghai"
storage_class = "STANDARD_IA"

[sources.shop]
type = "sqlite"
path = "data/shop.db"

[sources.uploads]
type = "files"
path = "data/uploads"
"""


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class CrashProject:
    root: Path

    @property
    def uploads(self) -> Path:
        return self.root / "data" / "uploads"

    @property
    def db(self) -> Path:
        return self.root / "data" / "shop.db"

    def region(self, name: str = "beijing") -> Path:
        return self.root / "regions" / name

    def run(self, *args: str, fault: str | None = None, timeout: float = 120) -> Run:
        env = dict(os.environ, DRKIT_RECOVERY_PASSPHRASE=PASSPHRASE)
        env.pop("DRKIT_FAULT", None)
        if fault:
            env["DRKIT_FAULT"] = fault
        if args[:1] == ("verify",) or args[:2] == ("audit", "verify"):
            # The project's first verify is this host's first contact; these tests are about
            # crashes (first contact itself: tests/security/test_trust_state.py).
            args = (*args, "--accept-first-contact")
        proc = subprocess.run([sys.executable, "-m", "drkit", *args], cwd=self.root, env=env,
                              capture_output=True, text=True, timeout=timeout, check=False)
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def crash(self, *args: str, fault: str) -> Run:
        res = self.run(*args, fault=fault)
        assert res.exit_code == FAULT_EXIT, (fault, res.exit_code, res.stderr)
        return res

    def grow(self, tag: str, size: int = 1_500_000) -> None:
        """New data for the next snapshot (new packs) and a changed database."""
        if size:
            (self.uploads / f"new-{tag}.bin").write_bytes(os.urandom(size))
        con = sqlite3.connect(self.db)
        con.executemany("INSERT INTO orders (merchant, amount) VALUES (?, ?)",
                        [(f"m{tag}", float(i)) for i in range(200)])
        con.commit()
        con.close()

    def temp_files(self) -> list[Path]:
        return sorted(p for name in ("beijing", "shanghai")
                      for p in (self.region(name) / ".drkit-tmp").glob("*")
                      if not p.name.startswith("."))

    def lock_files(self) -> list[Path]:
        return sorted((self.root / ".drkit" / "cache").glob("lock-*.json"))


def tree_digest(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def table_digest(db: Path) -> list[Any]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT id, merchant, amount FROM orders ORDER BY id").fetchall()
    finally:
        con.close()


def make_project(root: Path) -> CrashProject:
    """A project with a files source, a SQLite source, two local regions and keys."""
    (root / "data" / "uploads").mkdir(parents=True)
    (root / "drkit.toml").write_text(CONFIG)
    project = CrashProject(root)
    (project.uploads / "hello.txt").write_text("hello\n")
    (project.uploads / "base.bin").write_bytes(os.urandom(1_200_000))
    con = sqlite3.connect(project.db)
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, merchant TEXT, amount REAL)")
    con.executemany("INSERT INTO orders (merchant, amount) VALUES (?, ?)",
                    [(f"m{i % 17}", i * 1.5) for i in range(2000)])
    con.commit()
    con.close()
    res = project.run("keys", "init")
    if res.exit_code != 0:
        raise RuntimeError(f"keys init failed: {res.stderr}")
    return project
