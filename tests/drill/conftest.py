"""A small site for drills: generated merchant database, keys, snapshot, ledger, replicas."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from drkit.demo_data import generate_shop_db

PASSPHRASE = "correct horse battery staple"


def site_config(regions: dict[str, tuple[str, str]]) -> str:
    lines = ['[repository]', 'primary = "beijing"', 'keys = "keys"', '',
             '[regions.beijing]', 'url = "file:regions/beijing"', '']
    for name, (url, storage_class) in regions.items():
        lines += [f"[regions.{name}]", f'url = "{url}"', f'storage_class = "{storage_class}"',
                  "lock_days = 30", "retention_days = 30", ""]
    lines += ['[sources.shop]', 'type = "sqlite"', 'path = "data/shop.db"', 'production = true',
              '', '[sources.uploads]', 'type = "files"', 'path = "data/uploads"', '',
              '[verify]', 'state_dir = "verify-state"', '']
    return "\n".join(lines)


@dataclass
class Site:
    root: Path
    drkit: Callable[..., object]

    @property
    def db(self) -> Path:
        return self.root / "data/shop.db"

    def run(self, *args: str, expect: int | None = 0) -> object:
        res = self.drkit(*args)
        if expect is not None:
            assert res.exit_code == expect, (args, res.exit_code, res.stdout, res.stderr)
        return res

    def json(self, *args: str, expect: int | None = 0) -> dict:
        res = self.run("--json", *args, expect=expect)
        return json.loads(res.stdout)  # type: ignore[attr-defined]

    def pw(self) -> tuple[str, str]:
        return ("--passphrase-file", str(self.root / "pass.txt"))


@pytest.fixture
def make_site(drkit, tmp_path: Path) -> Callable[..., Site]:
    """``make_site(regions={"shanghai": ("file:regions/shanghai", "ARCHIVE")})`` builds a
    repository with a snapshot, a stored ledger and replicas, through the real CLI."""

    def make(regions: dict[str, tuple[str, str]] | None = None) -> Site:
        regions = regions or {"shanghai": ("file:regions/shanghai", "ARCHIVE"),
                              "nanjing": ("file:regions/nanjing", "STANDARD_IA")}
        (tmp_path / "drkit.toml").write_text(site_config(regions))
        (tmp_path / "data/uploads").mkdir(parents=True)
        (tmp_path / "data/uploads/readme.txt").write_text("uploaded file\n" * 100)
        (tmp_path / "pass.txt").write_text(PASSPHRASE)
        generate_shop_db(tmp_path / "data/shop.db", scale=1)
        site = Site(tmp_path, drkit)
        site.run("keys", "init", *site.pw())
        site.run("snapshot")
        site.run("ledger", "build", "--source", "shop")
        site.run("replicate")
        return site

    return make
