"""A drkit project in tmp_path: config with local regions, a files tree, a SQLite db, keys."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

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
exclude = ["*.tmp", ".cache/**"]
"""


@dataclass
class Project:
    root: Path
    uploads: Path
    db: Path

    @property
    def region(self) -> Path:
        return self.root / "regions" / "beijing"

    def snapshot_objects(self) -> list[str]:
        """Every object the snapshot writer owns (the audit log may add its own objects)."""
        return sorted(str(p.relative_to(self.region)) for prefix in
                      ("config", "packs", "index", "snapshots", "sessions")
                      for p in [self.region / prefix, *(self.region / prefix).rglob("*")]
                      if p.is_file())

    def packs(self) -> list[Path]:
        return sorted((self.region / "packs").rglob("*"))


def make_db(path: Path, rows: int = 5000) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, merchant TEXT, amount REAL, "
                "note BLOB)")
    con.execute("CREATE TABLE merchants (code TEXT PRIMARY KEY, name TEXT) WITHOUT ROWID")
    con.executemany("INSERT INTO orders (merchant, amount, note) VALUES (?, ?, ?)",
                    [(f"m{i % 97}", i * 1.25, os.urandom(8)) for i in range(rows)])
    con.executemany("INSERT INTO merchants VALUES (?, ?)",
                    [(f"m{i}", f"Merchant {i}") for i in range(97)])
    con.commit()
    con.close()


def make_tree(root: Path) -> None:
    (root / "docs" / "deep").mkdir(parents=True)
    (root / ".cache").mkdir()
    (root / "hello.txt").write_text("hello world\n")
    (root / "docs" / "readme.md").write_text("# readme\n" * 200)
    (root / "docs" / "deep" / "random.bin").write_bytes(os.urandom(2_500_000))
    (root / "docs" / "deep" / "text.log").write_bytes(os.urandom(2_000_000).hex().encode())
    (root / "empty").write_bytes(b"")
    (root / "skip.tmp").write_text("excluded")
    (root / ".cache" / "x").write_text("excluded")
    os.symlink("hello.txt", root / "link")
    os.chmod(root / "docs" / "readme.md", 0o640)
    os.chmod(root / "hello.txt", 0o755)
    os.utime(root / "hello.txt", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))


@pytest.fixture
def project(tmp_path: Path, drkit: object, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("DRKIT_RECOVERY_PASSPHRASE", PASSPHRASE)
    (tmp_path / "drkit.toml").write_text(CONFIG)
    uploads = tmp_path / "data" / "uploads"
    uploads.mkdir(parents=True)
    make_tree(uploads)
    db = tmp_path / "data" / "shop.db"
    make_db(db)
    res = drkit("keys", "init")  # type: ignore[operator]
    assert res.exit_code == 0, res.stderr
    return Project(tmp_path, uploads, db)
