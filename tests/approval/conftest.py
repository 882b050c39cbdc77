"""A drkit project with a repository, snapshots and four enrolled approvers.

Everything goes through the real CLI (the ``drkit`` fixture with its frozen clock) on
local-folder regions; approver keys use the default Argon2id parameters.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

RECOVERY = "recovery passphrase for tests"

CONFIG = """\
[repository]
primary = "beijing"
keys = "keys"
cache = ".drkit/cache"
pack_size_mib = 1

[regions.beijing]
url = "file:regions/beijing"
retention_days = 30

[regions.shanghai]
url = "file:regions/shanghai"
storage_class = "STANDARD_IA"
retention_days = 365

[sources.uploads]
type = "files"
path = "data/uploads"
"""


@dataclass
class Project:
    root: Path
    drkit: Any
    clock: Any
    enrollments: dict[str, Path] = field(default_factory=dict)

    @property
    def region(self) -> Path:
        return self.root / "regions" / "beijing"

    def passphrase_file(self, name: str) -> Path:
        path = self.root / "secrets" / name
        path.parent.mkdir(exist_ok=True)
        if not path.exists():
            path.write_text(f"passphrase of {name}\n")
        return path

    def run(self, *args: str, ok: bool = True) -> Any:
        res = self.drkit(*args, env={"DRKIT_RECOVERY_PASSPHRASE": RECOVERY})
        if ok:
            assert res.exit_code == 0, (args, res.stdout, res.stderr)
        return res

    def json(self, *args: str) -> Any:
        return json.loads(self.run("--json", *args).stdout)

    def enroll(self, name: str) -> Path:
        doc = self.json("approvers", "enroll", name, "--passphrase-file",
                        str(self.passphrase_file(name)))
        path = Path(doc["enrollment"])
        self.enrollments.setdefault(name, path)
        return path

    def signer(self, name: str, key: Path | None = None) -> list[str]:
        args = ["--as", name, "--passphrase-file", str(self.passphrase_file(name))]
        return args + (["--key", str(key)] if key else [])

    def request(self, *args: str, as_name: str = "alice") -> str:
        return str(self.json("request", *args, "--reason", "tests need it",
                             *self.signer(as_name))["id"])

    def approve(self, request_id: str, name: str, ok: bool = True) -> Any:
        return self.run("approve", request_id, *self.signer(name), ok=ok)

    def snapshot(self, content: str) -> str:
        uploads = self.root / "data" / "uploads"
        (uploads / f"{content}.txt").write_text(content * 1000)
        return str(self.json("snapshot")["snapshot_id"])

    def snapshots(self) -> list[str]:
        doc = self.json("snapshots")
        items = doc["snapshots"] if isinstance(doc, dict) else doc
        return [s["id"] for s in items]

    def objects(self, prefix: str = "") -> set[str]:
        base = self.region
        return {str(p.relative_to(base)) for p in base.rglob("*")
                if p.is_file() and not str(p.relative_to(base)).startswith(".drkit")
                and str(p.relative_to(base)).startswith(prefix)}


@pytest.fixture(scope="session")
def approver_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four people's keys, made once through the CLI (Argon2id is deliberately slow)
    and copied into each project: enrolment does not depend on the repository."""
    from click.testing import CliRunner

    from drkit.cli.common import AppContext
    from drkit.cli.main import cli
    from drkit.clock import FixedClock

    root = tmp_path_factory.mktemp("approver-keys")
    # Its own state folder: a session fixture runs before the per-test home isolation.
    (root / "drkit.toml").write_text(CONFIG + '\n[verify]\nstate_dir = "state"\n')
    clock = FixedClock(datetime(2026, 11, 1, tzinfo=UTC))
    for name in ("alice", "bob", "carol", "dave"):
        secret = root / f"{name}.pass"
        secret.write_text(f"passphrase of {name}\n")
        res = CliRunner().invoke(cli, ["--config", str(root / "drkit.toml"), "approvers",
                                       "enroll", name, "--passphrase-file", str(secret)],
                                 obj=AppContext(clock=clock), catch_exceptions=False)
        assert res.exit_code == 0, res.stderr
    return root / "keys" / "approvers"


@pytest.fixture
def project(drkit: Any, clock: Any, tmp_path: Path, approver_keys: Path) -> Project:
    (tmp_path / "drkit.toml").write_text(CONFIG)
    (tmp_path / "data" / "uploads").mkdir(parents=True)
    proj = Project(tmp_path, drkit, clock)
    proj.run("keys", "init")
    shutil.copytree(approver_keys, tmp_path / "keys" / "approvers")
    for path in sorted((tmp_path / "keys" / "approvers").glob("*.enrollment.json")):
        proj.enrollments[path.name.split(".")[0]] = path
    proj.run("approvers", "bootstrap", *(str(proj.enrollments[n])
                                         for n in ("alice", "bob", "carol", "dave")))
    return proj


MakeProject = Callable[[], Project]
