"""A repository on a local-folder region, for the audit log tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from drkit.config import Config, load_config
from drkit.repo.keys import init_keys
from drkit.repo.writer import initialise_repository
from drkit.storage.url import open_store

FAST_KDF = {"name": "argon2id", "iterations": 1, "lanes": 1, "memory_cost": 8192}

CONFIG = """\
[repository]
primary = "beijing"
keys = "keys"

[regions.beijing]
url = "file:regions/beijing"

[sources.uploads]
type = "files"
path = "data/uploads"
"""


@dataclass
class AuditProject:
    root: Path
    drkit: Any
    clock: Any

    @property
    def config(self) -> Config:
        return load_config(self.root / "drkit.toml")

    @property
    def log_dir(self) -> Path:
        return self.root / "regions" / "beijing" / "audit" / "journal"

    def batches(self) -> list[Path]:
        return sorted((self.log_dir / "batch").iterdir())

    def checkpoints(self) -> list[Path]:
        return sorted((self.log_dir / "checkpoint").iterdir())

    def run(self, *args: str) -> Any:
        return self.drkit(*args, env={"DRKIT_RECOVERY_PASSPHRASE": "pw"})

    def verify(self) -> Any:
        # A test's fresh host is a first contact (exit 4 without the flag; covered by
        # tests/security/test_trust_state.py); with it, behaviour is as before.
        return self.run("--json", "audit", "verify", "--accept-first-contact")

    def report(self, *args: str) -> Any:
        res = self.run("audit", "report", *args)
        assert res.exit_code == 0, res.stderr
        return res.stdout

    def report_json(self, since: str) -> dict[str, Any]:
        return json.loads(self.report("--since", since, "--format", "json"))


@pytest.fixture
def audit_project(drkit: Any, clock: Any, tmp_path: Path) -> AuditProject:
    (tmp_path / "drkit.toml").write_text(CONFIG)
    (tmp_path / "data" / "uploads").mkdir(parents=True)
    proj = AuditProject(tmp_path, drkit, clock)
    # Keys and repository made through the library, not 'drkit keys init', so that the log
    # starts empty and each test counts only its own events.
    config = proj.config
    keys = init_keys(config.keys_dir, "pw", kdf=FAST_KDF)
    initialise_repository(open_store(config.primary_region.url), config.primary_region, keys,
                          now=clock.now(), cache_dir=config.cache_dir)
    return proj
