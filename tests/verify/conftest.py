"""A repository with a local primary and replica regions (local, S3 on moto, COS through
the SDK), built with the real key files and the real Journal.

Objects are written to the primary and journaled exactly as the repository writer does
(create-only puts, then one ``Journal.append``), so replicate and verify see what they
would see after ``drkit snapshot``.
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
from drkit.storage.local import LocalStore

FAST_KDF = {"name": "argon2id", "iterations": 1, "lanes": 1, "memory_cost": 8}
#: Long enough that retain-until dates computed from the frozen test clock stay in the
#: future on the moto server (which uses the real clock) for years.
LOCK_DAYS = 3650


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

    @property
    def primary(self) -> LocalStore:
        return LocalStore(self.root / "regions" / "beijing")

    def snapshot(self, n: int, *, tag: str = "") -> list[JournalEntry]:
        """Write ``n`` new objects to the primary and journal them in one append."""
        store = self.primary
        entries = []
        base = len(self.written)
        for i in range(n):
            data = os.urandom(700 + 37 * (base + i)) + f"{tag}{base + i}".encode()
            digest = hashlib.sha256(data).hexdigest()
            prefix = "packs" if i % 3 else "index"
            entries.append(JournalEntry.from_info(store.put(f"{prefix}/{digest[:2]}/{digest}",
                                                            data)))
        Journal(store, self.origin).append(entries, self.keys.signing_key,
                                           now=self.clock.now())
        self.written += entries
        return entries


def write_config(root: Path, regions: dict[str, str], classes: dict[str, str]) -> Path:
    lines = ['[repository]', 'primary = "beijing"', 'keys = "keys"', "",
             "[verify]", 'state_dir = "verify-state"', ""]
    for name, url in regions.items():
        lines += [f"[regions.{name}]", f'url = "{url}"']
        if name != "beijing":
            lines += [f'storage_class = "{classes.get(name, "STANDARD")}"',
                      f"lock_days = {LOCK_DAYS}", f"retention_days = {LOCK_DAYS}"]
        lines.append("")
    path = root / "drkit.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def make_repo(tmp_path: Path, clock: FixedClock) -> Callable[..., Repo]:
    """``make_repo(regions={name: url}, classes={name: class}) -> Repo``; region
    ``beijing`` (a local folder) is always the primary."""

    def make(regions: dict[str, str] | None = None,
             classes: dict[str, str] | None = None) -> Repo:
        all_regions = {"beijing": "file:regions/beijing", **(regions or {})}
        write_config(tmp_path, all_regions, classes or {})
        keys = init_keys(tmp_path / "keys", "correct horse", kdf=FAST_KDF)
        repo = Repo(tmp_path, keys, clock, all_regions)
        store = repo.primary
        info = store.put(CONFIG_KEY, encode_repository_config(keys, now=clock.now()))
        Journal(store, repo.origin).append([JournalEntry.from_info(info)], keys.signing_key,
                                           now=clock.now())
        repo.written.append(JournalEntry.from_info(info))
        # As 'drkit keys init' does: the primary carries its region identity.
        ensure_identity(store, keys.signing_key, [keys.signing_key.public_key()],
                        region="beijing", repository_id=keys.repository_id, now=clock.now())
        return repo

    return make
