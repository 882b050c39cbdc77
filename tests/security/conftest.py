"""Attack tests: a drkit project played through the real CLI, and the attacker's tools.

Self-contained on purpose (like tests/approval/conftest.py): a project with a local primary
region ``beijing``, a local cold copy ``shanghai`` (plus any extra regions a test passes,
such as an S3 bucket on the moto server), a files source, four enrolled approvers (alice,
bob, carol, dave) and a verifier state folder of its own, so "a verifier with state" is this
host. Everything a defender does goes through the ``drkit`` fixture (frozen clock); what an
attacker does is done with exactly what their role holds: files in a region's folder, a
bucket's API, one approver's key.
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

[verify]
state_dir = "verifier-state"

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

PEOPLE = ("alice", "bob", "carol", "dave")


@dataclass
class Project:
    root: Path
    drkit: Any
    clock: Any
    enrollments: dict[str, Path] = field(default_factory=dict)

    def region(self, name: str = "beijing") -> Path:
        return self.root / "regions" / name

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

    def json(self, *args: str, code: int = 0) -> Any:
        res = self.run("--json", *args, ok=False)
        assert res.exit_code == code, (args, res.stdout, res.stderr)
        return json.loads(res.stdout)

    def enroll(self, name: str) -> Path:
        doc = self.json("approvers", "enroll", name, "--passphrase-file",
                        str(self.passphrase_file(name)))
        path = Path(doc["enrollment"])
        self.enrollments.setdefault(name, path)
        return path

    def key_file(self, name: str) -> Path:
        return next((self.root / "keys" / "approvers").glob(f"{name}.*.key"))

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

    def objects(self, region: str = "beijing", prefix: str = "") -> dict[str, bytes]:
        """Every object of a local region (bytes by key), without drkit's own sidecars."""
        base = self.region(region)
        out = {}
        for path in base.rglob("*"):
            key = str(path.relative_to(base))
            if path.is_file() and not key.startswith(".drkit") and key.startswith(prefix):
                out[key] = path.read_bytes()
        return out

    def verify(self, *args: str) -> tuple[int, dict[str, Any]]:
        # The verifier's first run trusts what it finds (its state then catches rollbacks);
        # first contact itself is tested in test_trust_state.py.
        res = self.run("--json", "verify", "--accept-first-contact", *args, ok=False)
        assert res.stdout.strip(), res.stderr
        return res.exit_code, json.loads(res.stdout)


@pytest.fixture(scope="session")
def approver_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four people's keys, made once through the CLI (Argon2id is deliberately slow)
    and copied into each project: enrolment does not depend on the repository."""
    from click.testing import CliRunner

    from drkit.cli.common import AppContext
    from drkit.cli.main import cli
    from drkit.clock import FixedClock

    root = tmp_path_factory.mktemp("security-approver-keys")
    (root / "drkit.toml").write_text(CONFIG.replace("verifier-state", "state"))
    clock = FixedClock(datetime(2026, 11, 1, tzinfo=UTC))
    for name in PEOPLE:
        secret = root / f"{name}.pass"
        secret.write_text(f"passphrase of {name}\n")
        res = CliRunner().invoke(cli, ["--config", str(root / "drkit.toml"), "approvers",
                                       "enroll", name, "--passphrase-file", str(secret)],
                                 obj=AppContext(clock=clock), catch_exceptions=False)
        assert res.exit_code == 0, res.stderr
    return root / "keys" / "approvers"


MakeProject = Callable[..., Project]


@pytest.fixture
def make_project(drkit: Any, clock: Any, tmp_path: Path, approver_keys: Path) -> MakeProject:
    """``make_project(regions={name: toml lines}, bootstrap=True) -> Project``: run
    ``keys init``, copy the four approvers' keys in and (unless told not to) pin the first
    approver registry with all four."""

    def make(regions: dict[str, str] | None = None, *, bootstrap: bool = True) -> Project:
        extra = "".join(f"\n[regions.{name}]\n{body.strip()}\n"
                        for name, body in (regions or {}).items())
        (tmp_path / "drkit.toml").write_text(CONFIG + extra)
        (tmp_path / "data" / "uploads").mkdir(parents=True)
        proj = Project(tmp_path, drkit, clock)
        proj.run("keys", "init")
        shutil.copytree(approver_keys, tmp_path / "keys" / "approvers")
        for path in sorted((tmp_path / "keys" / "approvers").glob("*.enrollment.json")):
            proj.enrollments[path.name.split(".")[0]] = path
        if bootstrap:
            proj.run("approvers", "bootstrap", *(str(proj.enrollments[n]) for n in PEOPLE))
        return proj

    return make


@pytest.fixture
def project(make_project: MakeProject) -> Project:
    return make_project()
