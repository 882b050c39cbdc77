"""A repository built with the real key files and Journal, on any primary backend.

Objects are put create-only on the primary and journaled in one ``Journal.append`` per
"snapshot", as the repository writer does.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from drkit.clock import FixedClock
from drkit.journal import Journal, JournalEntry
from drkit.repo.keys import CONFIG_KEY, WriterKeys, encode_repository_config, init_keys
from drkit.repo.region_identity import ensure_identity
from drkit.storage.base import Store
from drkit.storage.url import open_store, parse_store_url

FAST_KDF = {"name": "argon2id", "iterations": 1, "lanes": 1, "memory_cost": 8}
LOCK_DAYS = 3650  # retain-until from the frozen clock stays in the future on moto


@dataclass
class Repo:
    root: Path
    keys: WriterKeys
    clock: FixedClock
    regions: dict[str, str]
    written: list[JournalEntry] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return "drkit:" + self.keys.repository_id

    def store(self, name: str) -> Store:
        return open_store(parse_store_url(self.regions[name], base_dir=self.root),
                          clock=self.clock)

    @property
    def primary(self) -> Store:
        return self.store("beijing")

    def append(self, entries: list[JournalEntry]) -> None:
        Journal(self.primary, self.origin).append(entries, self.keys.signing_key,
                                                  now=self.clock.now())
        self.written += [e for e in entries if e.kind == "object"]

    def snapshot(self, n: int, *, size: int = 600, tag: str = "") -> list[JournalEntry]:
        store = self.primary
        entries = []
        base = len(self.written)
        for i in range(n):
            data = os.urandom(size) + f"{tag}{base + i}".encode()
            digest = hashlib.sha256(data).hexdigest()
            entries.append(JournalEntry.from_info(store.put(f"packs/{digest[:2]}/{digest}",
                                                            data)))
        self.append(entries)
        return entries


@pytest.fixture
def make_repo(tmp_path: Path, clock: FixedClock) -> Callable[..., Repo]:
    """``make_repo(regions, primary="file:regions/beijing", classes=None) -> Repo``."""

    def make(regions: dict[str, str], primary: str = "file:regions/beijing",
             classes: dict[str, str] | None = None, lock_days: int = LOCK_DAYS) -> Repo:
        all_regions = {"beijing": primary, **regions}
        lines = ['[repository]', 'primary = "beijing"', 'keys = "keys"', "",
                 "[verify]", 'state_dir = "verify-state"', ""]
        for name, url in all_regions.items():
            lines += [f"[regions.{name}]", f'url = "{url}"']
            if name != "beijing":
                lines += [f'storage_class = "{(classes or {}).get(name, "STANDARD")}"',
                          f"lock_days = {lock_days}", f"retention_days = {lock_days}"]
            lines.append("")
        (tmp_path / "drkit.toml").write_text("\n".join(lines), encoding="utf-8")
        keys = init_keys(tmp_path / "keys", "correct horse", kdf=FAST_KDF)
        repo = Repo(tmp_path, keys, clock, all_regions)
        info = repo.primary.put(CONFIG_KEY, encode_repository_config(keys, now=clock.now()))
        repo.append([JournalEntry.from_info(info)])
        # As 'drkit keys init' does: the primary carries its region identity.
        ensure_identity(repo.primary, keys.signing_key, [keys.signing_key.public_key()],
                        region="beijing", repository_id=keys.repository_id, now=clock.now())
        return repo

    return make
