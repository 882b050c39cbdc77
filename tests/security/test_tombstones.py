"""Attacks on deletion: forged tombstones, a tombstone spreading to other regions, and an
approval redirected to another region by editing drkit.toml (issue 12, items 1, 3, 5 and
"one writer of the journal").

Every attack is played through the real CLI on local-folder regions, with exactly what
the attacker's role holds: the writer host's key files and config (forged tombstone, URL
swap) or write access to the regions' folders (deleting by hand).
"""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drkit.clock import FixedClock
from drkit.config import load_config
from drkit.errors import IntegrityError
from drkit.journal import Journal, JournalEntry
from drkit.repo.journal_writer import append_to_primary
from drkit.repo.keys import load_trusted_writer_keys, load_writer_signing_key, read_repository_id
from drkit.storage.url import open_store

RECOVERY = "recovery passphrase for tests"
REGIONS = ("beijing", "shanghai", "nanjing")
PEOPLE = ("alice", "bob", "carol", "dave")

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
retention_days = 365

[regions.nanjing]
url = "file:regions/nanjing"
retention_days = 365

[sources.uploads]
type = "files"
path = "data/uploads"

[verify]
state_dir = "state"
"""


class Project:
    """A repository with three regions and four enrolled approvers, driven by the CLI."""

    def __init__(self, root: Path, drkit: Any, clock: FixedClock) -> None:
        self.root = root
        self.drkit = drkit
        self.clock = clock

    def run(self, *args: str, ok: bool = True) -> Any:
        res = self.drkit(*args, env={"DRKIT_RECOVERY_PASSPHRASE": RECOVERY})
        if ok:
            assert res.exit_code == 0, (args, res.stdout, res.stderr)
        return res

    def json(self, *args: str, ok: bool = True) -> Any:
        return json.loads(self.run("--json", *args, ok=ok).stdout)

    def signer(self, name: str) -> list[str]:
        return ["--as", name, "--passphrase-file", str(self.root / "secrets" / f"{name}.pass")]

    def request(self, *args: str, as_name: str = "alice") -> str:
        return str(self.json("request", *args, "--reason", "attack test",
                             *self.signer(as_name))["id"])

    def approve(self, request_id: str, *names: str) -> None:
        for name in names:
            self.run("approve", request_id, *self.signer(name))

    def region(self, name: str) -> Path:
        return self.root / "regions" / name

    def snapshot(self, content: str) -> str:
        (self.root / "data" / "uploads" / f"{content}.txt").write_text(content * 2000)
        return str(self.json("snapshot")["snapshot_id"])

    def verify(self) -> dict[str, Any]:
        res = self.run("--json", "verify", "--all", "--accept-first-contact", ok=False)
        assert res.exit_code in (0, 1), res.stderr
        doc: dict[str, Any] = json.loads(res.stdout)
        doc["exit_code"] = res.exit_code
        return doc

    def restore(self, snapshot: str, region: str, target: str) -> Any:
        return self.run("restore", snapshot, "--to", str(self.root / target),
                        "--region", region, ok=False)


@pytest.fixture(scope="module")
def approver_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four people's keys, made once (Argon2id is deliberately slow) through the CLI."""
    from click.testing import CliRunner

    from drkit.cli.common import AppContext
    from drkit.cli.main import cli

    root = tmp_path_factory.mktemp("tombstone-approvers")
    (root / "drkit.toml").write_text(CONFIG)
    clock = FixedClock(datetime(2026, 11, 1, tzinfo=UTC))
    for name in PEOPLE:
        secret = root / f"{name}.pass"
        secret.write_text(f"passphrase of {name}\n")
        res = CliRunner().invoke(cli, ["--config", str(root / "drkit.toml"), "approvers",
                                       "enroll", name, "--passphrase-file", str(secret)],
                                 obj=AppContext(clock=clock), catch_exceptions=False)
        assert res.exit_code == 0, res.stderr
    return root


@pytest.fixture
def project(drkit: Any, clock: FixedClock, tmp_path: Path, approver_keys: Path
            ) -> Iterator[Project]:
    (tmp_path / "drkit.toml").write_text(CONFIG)
    (tmp_path / "data" / "uploads").mkdir(parents=True)
    (tmp_path / "secrets").mkdir()
    for name in PEOPLE:
        shutil.copy(approver_keys / f"{name}.pass", tmp_path / "secrets" / f"{name}.pass")
    proj = Project(tmp_path, drkit, clock)
    proj.run("keys", "init")
    shutil.copytree(approver_keys / "keys" / "approvers", tmp_path / "keys" / "approvers")
    proj.run("approvers", "bootstrap", *(
        str(p) for p in sorted((tmp_path / "keys" / "approvers").glob("*.enrollment.json"))))
    yield proj


def _packs(region: Path) -> list[str]:
    return sorted(str(p.relative_to(region)) for p in (region / "packs").rglob("*")
                  if p.is_file() and not p.name.startswith("."))


def _checks(doc: dict[str, Any], region: str | None = None) -> list[tuple[str, str, str]]:
    return sorted((f["severity"], f["check"], f["key"]) for f in doc["findings"]
                  if region is None or f["region"] == region)


def _forge_tombstone(project: Project, key: str) -> None:
    """What the writer host can do with its own key files: append a tombstone citing an
    approval that does not exist, for every region, straight through the journal API."""
    config = load_config(project.root / "drkit.toml")
    signer = load_writer_signing_key(config)
    trusted = load_trusted_writer_keys(config)
    store = open_store(config.primary_region.url, base_dir=config.base_dir)
    journal = Journal(store, "drkit:" + read_repository_id(store, trusted))
    _cp, entries = journal.entries(trusted)
    logged = next(e for e in entries if e.key == key and e.kind == "object")
    journal.append([JournalEntry(kind="tombstone", key=key, size=logged.size,
                                 sha256=logged.sha256,
                                 note={"approval": "0" * 64, "operation": "delete-object",
                                       "request": "0" * 64, "regions": list(REGIONS)})],
                   signer, now=project.clock.now(), trusted=trusted)


def test_forged_tombstone_is_critical_and_ignored(project: Project) -> None:
    snap = project.snapshot("orders")
    project.run("replicate")
    assert project.verify()["exit_code"] == 0
    pack = _packs(project.region("beijing"))[0]

    _forge_tombstone(project, pack)
    project.run("replicate")
    # Before anything is deleted the forged tombstone is already a finding, in every
    # region (each checks the proof against its own copy of the approval records).
    doc = project.verify()
    assert doc["exit_code"] == 1
    for region in REGIONS:
        assert _checks(doc, region) == [("critical", "tombstone-unproven", pack)]
    # Restore and drill ignore it: the pack is still part of the snapshot.
    assert project.restore(snap, "beijing", "out-beijing").exit_code == 0

    # The insider (with write access to the folders) deletes the pack by hand, first in
    # two regions: the third still restores.
    for region in ("beijing", "nanjing"):
        (project.region(region) / pack).unlink()
    res = project.restore(snap, "shanghai", "out-shanghai")
    assert res.exit_code == 0, res.stderr
    assert (project.root / "out-shanghai" / "uploads" / "orders.txt").read_text() == "orders" * 2000

    (project.region("shanghai") / pack).unlink()
    doc = project.verify()
    assert doc["exit_code"] == 1
    for region in REGIONS:
        assert _checks(doc, region) == [("critical", "object-missing", pack),
                                        ("critical", "tombstone-unproven", pack)]


def test_drkit_refuses_to_journal_an_unproven_tombstone(project: Project) -> None:
    project.snapshot("orders")
    project.run("replicate")
    pack = _packs(project.region("beijing"))[0]
    config = load_config(project.root / "drkit.toml")
    data = (project.region("beijing") / pack).read_bytes()
    forged = JournalEntry(kind="tombstone", key=pack, size=len(data),
                          sha256=hashlib.sha256(data).hexdigest(),
                          note={"request": "0" * 64, "operation": "prune",
                                "regions": ["beijing"]})
    with pytest.raises(IntegrityError, match="refusing to journal the deletion"):
        append_to_primary(config, [forged], now=project.clock.now())
    # Nothing was written: the repository verifies clean.
    doc = project.verify()
    assert doc["exit_code"] == 0, doc["findings"]


def test_approved_delete_object_covers_one_region(project: Project) -> None:
    snap = project.snapshot("orders")
    project.run("replicate")
    pack = _packs(project.region("beijing"))[0]
    rid = project.request("delete-object", "nanjing", pack)
    project.approve(rid, "bob", "carol")
    out = project.json("execute", rid)
    assert out["result"]["tombstone"] is True
    assert not (project.region("nanjing") / pack).exists()
    project.run("replicate")

    # The approval named nanjing's copy only: nanjing is clean, the others still owe it.
    doc = project.verify()
    assert doc["exit_code"] == 0, doc["findings"]
    res = project.restore(snap, "shanghai", "out-shanghai")
    assert res.exit_code == 0, res.stderr
    assert project.restore(snap, "beijing", "out-beijing").exit_code == 0

    # Deleting the other copies by hand is found, in each region it happens in.
    (project.region("shanghai") / pack).unlink()
    doc = project.verify()
    assert doc["exit_code"] == 1
    assert _checks(doc) == [("critical", "object-missing", pack)]
    assert doc["findings"][0]["region"] == "shanghai"


def _approved_nanjing_deletion(project: Project) -> tuple[str, JournalEntry]:
    """Approve and execute ``delete-object nanjing PACK``; return the pack and its proven
    tombstone as journaled."""
    project.snapshot("orders")
    project.snapshot("invoices")
    project.run("replicate")
    pack = _packs(project.region("beijing"))[0]
    rid = project.request("delete-object", "nanjing", pack)
    project.approve(rid, "bob", "carol")
    project.run("execute", rid)
    config = load_config(project.root / "drkit.toml")
    store = open_store(config.primary_region.url, base_dir=config.base_dir)
    trusted = load_trusted_writer_keys(config)
    _cp, entries = Journal(store, "drkit:" + read_repository_id(store, trusted)).entries(
        trusted)
    return pack, next(e for e in entries if e.kind == "tombstone")


def _append_as_writer(project: Project, entry: JournalEntry) -> None:
    config = load_config(project.root / "drkit.toml")
    store = open_store(config.primary_region.url, base_dir=config.base_dir)
    trusted = load_trusted_writer_keys(config)
    Journal(store, "drkit:" + read_repository_id(store, trusted)).append(
        [entry], load_writer_signing_key(config), now=project.clock.now(), trusted=trusted)


def test_real_proof_does_not_spread_to_other_regions(project: Project) -> None:
    """The writer copies a genuine proof into a tombstone naming every region."""
    pack, real = _approved_nanjing_deletion(project)
    _append_as_writer(project, JournalEntry(
        kind="tombstone", key=real.key, size=real.size, sha256=real.sha256,
        note={**(real.note or {}), "regions": list(REGIONS)}))
    project.run("replicate")
    (project.region("shanghai") / pack).unlink()
    doc = project.verify()
    assert doc["exit_code"] == 1
    for region in REGIONS:
        checks = _checks(doc, region)
        assert ("critical", "tombstone-unproven", pack) in checks
    assert ("critical", "object-missing", pack) in _checks(doc, "shanghai")
    assert ("critical", "object-missing", pack) not in _checks(doc, "nanjing")


def test_real_proof_does_not_cover_another_object(project: Project) -> None:
    """The writer reuses a genuine proof for another pack (a replayed approval)."""
    pack, real = _approved_nanjing_deletion(project)
    other = next(p for p in _packs(project.region("beijing")) if p != pack)
    data = (project.region("beijing") / other).read_bytes()
    _append_as_writer(project, JournalEntry(
        kind="tombstone", key=other, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
        note=real.note))
    project.run("replicate")
    (project.region("nanjing") / other).unlink()
    doc = project.verify()
    assert doc["exit_code"] == 1
    assert _checks(doc, "nanjing") == [("critical", "object-missing", other),
                                       ("critical", "tombstone-unproven", other)]
    assert _checks(doc, "shanghai") == [("critical", "tombstone-unproven", other)]


def test_url_swap_after_approval_is_refused(project: Project) -> None:
    project.snapshot("orders")
    project.run("replicate")
    pack = _packs(project.region("beijing"))[0]
    rid = project.request("delete-object", "nanjing", pack)
    project.approve(rid, "bob", "carol")

    # The insider on the writer host swaps the two regions' URLs in drkit.toml.
    cfg = project.root / "drkit.toml"
    text = cfg.read_text()
    cfg.write_text(text.replace("file:regions/shanghai", "file:regions/SWAP")
                   .replace("file:regions/nanjing", "file:regions/shanghai")
                   .replace("file:regions/SWAP", "file:regions/nanjing"))
    res = project.run("execute", rid, ok=False)
    assert res.exit_code == 3, (res.stdout, res.stderr)
    assert "region 'shanghai'" in res.stderr and "not region 'nanjing'" in res.stderr
    for region in REGIONS:
        assert (project.region(region) / pack).exists()

    cfg.write_text(text)
    assert project.verify()["exit_code"] == 0


def test_region_identity_missing_or_foreign_is_reported(project: Project) -> None:
    project.snapshot("orders")
    project.run("replicate")
    for region in REGIONS:
        assert (project.region(region) / "region-identity").is_file()
    # A region admin deletes nanjing's identity and copies shanghai's in its place.
    (project.region("nanjing") / "region-identity").unlink()
    doc = project.verify()
    assert _checks(doc) == [("high", "region-identity", "region-identity")]
    assert doc["findings"][0]["region"] == "nanjing"
    shutil.copy(project.region("shanghai") / "region-identity",
                project.region("nanjing") / "region-identity")
    doc = project.verify()
    assert _checks(doc) == [("high", "region-identity", "region-identity")]
    assert "region 'shanghai'" in doc["findings"][0]["message"]


def test_approved_prune_verifies_clean(project: Project) -> None:
    old = project.snapshot("old")
    project.clock.advance(timedelta(days=40))
    (project.root / "data" / "uploads" / "old.txt").unlink()
    new = project.snapshot("new")
    project.run("replicate")
    rid = project.request("prune", "--older-than-days", "30")
    project.approve(rid, "bob", "dave")
    out = project.json("execute", rid)
    assert out["result"]["deleted"] > 0
    project.run("replicate")
    doc = project.verify()
    assert doc["exit_code"] == 0, doc["findings"]
    assert doc["findings"] == []
    # The prune named the primary: the old snapshot is gone there, kept in the copies.
    ids = [s["id"] for s in project.json("snapshots")["snapshots"]]
    assert ids == [new]
    kept = [s["id"] for s in project.json("snapshots", "--region", "shanghai")["snapshots"]]
    assert kept == [old, new]


def test_only_the_journal_writer_appends_to_the_repository_journal() -> None:
    """No module but drkit/repo/journal_writer.py calls ``Journal(...).append`` (directly or
    through a name bound to ``Journal(...)``); the audit log has its own journal object."""
    import drkit

    root = Path(drkit.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("journal/") or rel == "repo/journal_writer.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        bound: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and _is_journal_call(node.value):
                bound.update(t.id for t in node.targets if isinstance(t, ast.Name))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "append":
                target = node.func.value
                if _is_journal_call(target) or (isinstance(target, ast.Name)
                                                and target.id in bound):
                    offenders.append(f"{rel}:{node.lineno}")
    assert offenders == []
    assert "Journal(" in (root / "repo" / "journal_writer.py").read_text()


def _is_journal_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and (
        (isinstance(node.func, ast.Name) and node.func.id == "Journal")
        or (isinstance(node.func, ast.Attribute) and node.func.attr == "Journal"))
