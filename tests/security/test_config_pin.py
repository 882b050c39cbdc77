"""Attacks on the configuration that counts (issue 12, items 2, 6 and 7).

The roles: the writer host (its drkit.toml, its keys folder with the writer key, and the
primary folder it writes), or write access to the primary region's folder alone. Each
attack is played through the real CLI on local-folder regions and must be refused (exit 3
for want of approval, exit 1 for a pinned history that does not verify) or ignored loudly;
a clean apply, replicate and verify give no false alarm.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drkit.approval.operations import OPERATIONS
from drkit.canonical import canonical_json

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

[sources.shop]
type = "files"
path = "data/shop"
production = true

[verify]
state_dir = "state"
"""


@dataclass
class Project:
    root: Path
    drkit: Any
    clock: Any
    enrollments: dict[str, Path] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.root / "drkit.toml"

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

    def signer(self, name: str) -> list[str]:
        return ["--as", name, "--passphrase-file", str(self.passphrase_file(name))]

    def request(self, *args: str, as_name: str = "alice") -> str:
        return str(self.json("request", *args, "--reason", "tests need it",
                             *self.signer(as_name))["id"])

    def approve(self, request_id: str, name: str) -> Any:
        return self.run("approve", request_id, *self.signer(name))

    def snapshot(self, content: str) -> str:
        uploads = self.root / "data" / "uploads"
        (uploads / f"{content}.txt").write_text(content * 1000)
        return str(self.json("snapshot")["snapshot_id"])

    def variant(self, name: str, edit: Callable[[str], str]) -> Path:
        """A copy of the live drkit.toml with one edit, as an insider would write it."""
        path = self.root / f"{name}.toml"
        path.write_text(edit(self.config.read_text()))
        return path

    def pinned(self) -> list[str]:
        folder = self.region / "approval" / "config"
        return sorted(p.name for p in folder.glob("*.json")) if folder.exists() else []


@pytest.fixture(scope="session")
def approver_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four people's approver keys, made once (Argon2id is deliberately slow)."""
    from click.testing import CliRunner

    from drkit.cli.common import AppContext
    from drkit.cli.main import cli
    from drkit.clock import FixedClock

    root = tmp_path_factory.mktemp("pin-approver-keys")
    (root / "drkit.toml").write_text(CONFIG)
    clock = FixedClock(datetime(2026, 11, 1, tzinfo=UTC))
    for name in ("alice", "bob", "carol", "dave"):
        secret = root / f"{name}.pass"
        secret.write_text(f"passphrase of {name}\n")
        res = CliRunner().invoke(cli, ["--config", str(root / "drkit.toml"), "approvers",
                                       "enroll", name, "--passphrase-file", str(secret)],
                                 obj=AppContext(clock=clock), catch_exceptions=False)
        assert res.exit_code == 0, res.stderr
    return root / "keys" / "approvers"


def _new_project(drkit: Any, clock: Any, root: Path, approver_keys: Path, *,
                 bootstrap: bool = True) -> Project:
    (root / "drkit.toml").write_text(CONFIG)
    (root / "data" / "uploads").mkdir(parents=True)
    (root / "data" / "shop").mkdir(parents=True)
    (root / "data" / "shop" / "orders.csv").write_text("id,total\n1,100\n")
    proj = Project(root, drkit, clock)
    out = proj.json("keys", "init")
    assert out["pinned_config"] == 1  # keys init pins the initial config
    shutil.copytree(approver_keys, root / "keys" / "approvers")
    for path in sorted((root / "keys" / "approvers").glob("*.enrollment.json")):
        proj.enrollments[path.name.split(".")[0]] = path
    if bootstrap:
        proj.run("approvers", "bootstrap", *(str(proj.enrollments[n])
                                             for n in ("alice", "bob", "carol", "dave")))
    return proj


@pytest.fixture
def project(drkit: Any, clock: Any, tmp_path: Path, approver_keys: Path) -> Project:
    return _new_project(drkit, clock, tmp_path, approver_keys)


def _old_and_new_snapshots(project: Project) -> None:
    project.snapshot("old")
    (project.root / "data" / "uploads" / "old.txt").unlink()
    project.clock.advance(timedelta(days=40))
    project.snapshot("new")


# -- item 2: the config pinned at keys init is the one that counts -------------------------------
def test_keys_init_pins_the_config_in_the_journal(project: Project) -> None:
    assert project.pinned() == ["000001.json"]
    doc = json.loads((project.region / "approval" / "config" / "000001.json").read_bytes())
    assert doc["toml"] == project.config.read_text() and doc["request"] is None
    # A clean repository: the pinned config is a journaled object, replicated and verified
    # in every region without a finding.
    project.snapshot("a")
    project.run("replicate")
    out = project.json("verify", "--all", "--accept-first-contact")
    findings = [f for r in out["regions"] for f in r["findings"]]
    assert findings == []
    assert (project.root / "regions" / "shanghai" / "approval" / "config"
            / "000001.json").exists()


def test_pinned_config_deleted_in_a_cold_region_is_critical(project: Project) -> None:
    """Write access to one region: delete its copy of the pinned config (so a restore from
    there would see no production source)."""
    project.snapshot("a")
    project.run("replicate")
    copy = project.root / "regions" / "shanghai" / "approval" / "config" / "000001.json"
    copy.unlink()
    res = project.run("--json", "verify", "--all", "--accept-first-contact", ok=False)
    assert res.exit_code == 1
    regions = {r["region"]: r for r in json.loads(res.stdout)["regions"]}
    assert regions["beijing"]["findings"] == []  # the untouched region stays clean
    assert [(f["severity"], f["check"], f["key"]) for f in regions["shanghai"]["findings"]] \
        == [("critical", "object-missing", "approval/config/000001.json")]


def test_local_quorum_one_lets_no_single_approver_prune(project: Project) -> None:
    """Writer host: edit the local drkit.toml to quorum = 1 (no config apply) and prune
    with one approval."""
    _old_and_new_snapshots(project)
    project.config.write_text(project.config.read_text()
                              + "\n[approval]\nquorum = 1\nexpiry_hours = 500\n")
    data = sorted(p for p in project.region.rglob("*") if p.is_file()
                  and p.relative_to(project.region).parts[0] in ("packs", "snapshots"))
    rid = project.request("prune")
    project.approve(rid, "bob")
    res = project.run("execute", rid, ok=False)
    assert res.exit_code == 3 and "1 of 2 approvals" in res.stderr
    assert "approval.quorum for prune is 1, lower than the pinned 2: ignored" in res.stderr
    res = project.run("prune", "--approval", rid, ok=False)
    assert res.exit_code == 3
    assert data and all(p.exists() for p in data)  # nothing was deleted
    requests = project.json("requests")["requests"]
    # The request was filed with the pinned quorum and expiry, not the local ones.
    assert requests[0]["quorum"] == 2
    assert requests[0]["expires"] == "2027-01-05T02:30:00Z"  # 72 h after filing


def test_first_apply_of_a_weakened_copy_needs_approval(project: Project) -> None:
    """Writer host: write a weakened drkit.toml over the live one, then 'config apply' it as
    the first apply (today's baseline would be the edited live file)."""
    weak = project.variant("weak", lambda t: t.replace(
        '[regions.shanghai]\nurl = "file:regions/shanghai"\nstorage_class = "STANDARD_IA"\n'
        "retention_days = 365\n", "") + "\n[approval]\nquorum = 1\nexpiry_hours = 500\n")
    shutil.copy(weak, project.config)  # the live file already says the same
    res = project.run("config", "apply", str(weak), ok=False)
    assert res.exit_code == 3
    assert "over pinned config 1" in res.stderr
    for change in ("region-removed (region=shanghai", "quorum-lowered (operation=prune, "
                   "from=2, to=1)", "expiry-lengthened (from=72.0, to=500.0)"):
        assert change in res.stderr
    assert project.pinned() == ["000001.json"]


def test_weakened_pin_written_with_the_writer_key_is_rejected(project: Project) -> None:
    """Writer host with the writer key: write a weaker pinned config and its journal leaf
    directly (not through drkit's gate), then prune with one approval."""
    from drkit.approval.configpin import pin
    from drkit.config import load_config
    from drkit.storage.local import LocalStore

    _old_and_new_snapshots(project)
    weak = project.config.read_text() + "\n[approval]\nquorum = 1\n"
    pin(load_config(project.config), LocalStore(project.region), weak, now=project.clock.now(),
        request_id=None, actor={"os_user": "mallory", "host": "writer"})
    project.config.write_text(weak)
    rid_res = project.run("request", "prune", "--reason", "x", *project.signer("alice"),
                          ok=False)
    assert rid_res.exit_code == 1
    assert ("pinned config 2: weakens pinned config 1 (quorum-lowered" in rid_res.stderr
            and "names no approved request" in rid_res.stderr)
    res = project.run("prune", ok=False)
    assert res.exit_code == 1 and "names no approved request" in res.stderr


def test_pinned_config_object_dropped_in_by_hand_is_ignored(project: Project) -> None:
    """Write access to the primary folder: add approval/config/000002.json saying quorum 1
    (well-formed and chained, but not journaled)."""
    _old_and_new_snapshots(project)
    first = json.loads((project.region / "approval" / "config" / "000001.json").read_bytes())
    text = first["toml"] + "\n[approval]\nquorum = 1\n"
    doc = {**first, "number": 2, "toml": text,
           "sha256": hashlib.sha256(text.encode()).hexdigest(), "previous": first["sha256"]}
    (project.region / "approval" / "config" / "000002.json").write_bytes(canonical_json(doc))
    project.config.write_text(text)
    rid = project.request("prune")
    project.approve(rid, "bob")
    res = project.run("execute", rid, ok=False)
    assert res.exit_code == 3 and "1 of 2 approvals" in res.stderr
    assert "approval/config/000002.json not in the journal: never pinned, ignored" in res.stderr


def test_journaled_pinned_config_deleted_is_detected(project: Project) -> None:
    """Write access to the primary folder: delete the pinned config, hoping the gate falls
    back to the local file."""
    (project.region / "approval" / "config" / "000001.json").unlink()
    project.config.write_text(project.config.read_text() + "\n[approval]\nquorum = 1\n")
    res = project.run("request", "prune", "--reason", "x", *project.signer("alice"),
                      ok=False)
    assert res.exit_code == 1
    assert "approval/config/000001.json: journaled pinned config is missing" in res.stderr


def test_repository_without_a_pinned_config_says_so_and_uses_defaults(
        drkit: Any, clock: Any, tmp_path: Path, approver_keys: Path) -> None:
    """A repository made before keys init pinned the config (made here with the old
    initialisation path: keys and the repository config object only)."""
    from drkit.config import load_config
    from drkit.repo import keys as keyfiles
    from drkit.repo.writer import initialise_repository
    from drkit.storage.local import LocalStore

    (tmp_path / "drkit.toml").write_text(CONFIG + "\n[approval]\nquorum = 1\n")
    (tmp_path / "data" / "uploads").mkdir(parents=True)
    (tmp_path / "data" / "shop").mkdir(parents=True)
    config = load_config(tmp_path / "drkit.toml")
    made = keyfiles.init_keys(config.keys_dir, RECOVERY)
    (tmp_path / "regions" / "beijing").mkdir(parents=True)
    initialise_repository(LocalStore(tmp_path / "regions" / "beijing"), config.primary_region,
                          made, now=clock.now(), cache_dir=config.cache_dir)
    proj = Project(tmp_path, drkit, clock)
    shutil.copytree(approver_keys, tmp_path / "keys" / "approvers")
    names = ("alice", "bob", "carol", "dave")
    proj.run("approvers", "bootstrap", *(str(tmp_path / "keys" / "approvers" / p.name)
                                         for p in sorted((tmp_path / "keys" / "approvers")
                                                         .glob("*.enrollment.json"))
                                         if p.name.split(".")[0] in names))
    _old_and_new_snapshots(proj)
    rid = proj.request("prune")
    proj.approve(rid, "bob")
    res = proj.run("execute", rid, ok=False)
    assert res.exit_code == 3 and "1 of 2 approvals" in res.stderr
    assert "NO CONFIGURATION IS PINNED" in res.stderr
    # Even applying the live file unchanged needs an approval: there is no baseline.
    res = proj.run("config", "apply", str(proj.config), ok=False)
    assert res.exit_code == 3 and "nothing-pinned" in res.stderr
    assert "quorum-lowered (operation=prune, from=2, to=1)" in res.stderr


# -- item 6: production protection ---------------------------------------------------------------
def test_removing_the_production_flag_needs_approval(project: Project) -> None:
    no_flag = project.variant("noprod", lambda t: t.replace("production = true\n", ""))
    res = project.run("config", "apply", str(no_flag), ok=False)
    assert res.exit_code == 3 and "production-removed (source=shop)" in res.stderr
    moved = project.variant("moved", lambda t: t.replace('"data/shop"', '"data/shop-old"'))
    res = project.run("config", "apply", str(moved), ok=False)
    assert res.exit_code == 3
    assert "production-path-changed (source=shop, from=data/shop, to=data/shop-old)" \
        in res.stderr
    assert project.pinned() == ["000001.json"]


def test_restore_over_production_stays_gated_after_a_local_edit(project: Project) -> None:
    """Writer host: drop 'production = true' from the local drkit.toml, then restore an old
    snapshot over the production folder with --force."""
    snap = project.snapshot("a")
    shop = project.root / "data" / "shop"
    project.config.write_text(project.config.read_text().replace("production = true\n", ""))
    res = project.run("restore", snap, "--to", str(shop), "--force", ok=False)
    assert res.exit_code == 3
    assert "restore-production is a dangerous operation" in res.stderr
    assert "the pinned configuration protects it" in res.stderr
    assert (shop / "orders.csv").read_text() == "id,total\n1,100\n"
    assert not (shop / "a.txt").exists()
    # Restoring somewhere that is no production location still works (no false alarm).
    scratch = project.root / "scratch"
    out = project.json("restore", snap, "--to", str(scratch))
    assert out["files"] >= 1 and any(p.name == "a.txt" for p in scratch.rglob("*"))


# -- item 7: one registry of operations ----------------------------------------------------------
def _cli_project(root: Path, approver_keys: Path) -> Project:
    from click.testing import CliRunner

    from drkit.cli.common import AppContext
    from drkit.cli.main import cli
    from drkit.clock import FixedClock

    clock = FixedClock(datetime(2026, 11, 23, 2, 30, tzinfo=UTC))

    def run(*args: str, env: dict[str, str] | None = None) -> Any:
        return CliRunner().invoke(cli, ["--config", str(root / "drkit.toml"), *args],
                                  obj=AppContext(clock=clock), env=env,
                                  catch_exceptions=False)

    return _new_project(run, clock, root, approver_keys, bootstrap=False)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, approver_keys: Path) -> Project:
    return _cli_project(tmp_path_factory.mktemp("pinned"), approver_keys)


def _with_approval(text: str, table: str) -> str:
    return text + "\n[approval]\n" + table + "\n"


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_lowering_the_quorum_of_any_operation_needs_approval(shared: Project,
                                                             operation: str) -> None:
    lowered = shared.variant(f"q-{operation}", lambda t: _with_approval(
        t, f'quorum = {{ default = 2, "{operation}" = 1 }}'))
    res = shared.run("config", "apply", str(lowered), ok=False)
    assert res.exit_code == 3, res.stderr
    assert f"quorum-lowered (operation={operation}, from=2, to=1)" in res.stderr
    others = [op for op in OPERATIONS if op != operation]
    assert not any(f"operation={op}," in res.stderr for op in others)
    assert shared.pinned() == ["000001.json"]


WEAKENINGS = {
    "expiry": (lambda t: _with_approval(t, "expiry_hours = 500"), "expiry-lengthened"),
    "skew": (lambda t: _with_approval(t, "max_skew_minutes = 600"), "max_skew-raised"),
    "default-quorum": (lambda t: _with_approval(t, "quorum = 1"), "quorum-lowered"),
    "region-removed": (lambda t: t.replace('[regions.shanghai]\nurl = "file:regions/shanghai"\n'
                                           'storage_class = "STANDARD_IA"\n'
                                           "retention_days = 365\n", ""), "region-removed"),
    "region-moved": (lambda t: t.replace('"file:regions/shanghai"', '"file:regions/elsewhere"'),
                     "region-moved"),
    "retention": (lambda t: t.replace("retention_days = 365", "retention_days = 7"),
                  "retention_days-shortened"),
    "max-lag": (lambda t: t.replace("retention_days = 365",
                                    "retention_days = 365\nmax_lag_hours = 1000"),
                "max_lag_hours-raised"),
    "storage-class": (lambda t: t.replace('"STANDARD_IA"', '"ONEZONE_IA"'),
                      "storage-class-downgraded"),
    "primary": (lambda t: t.replace('primary = "beijing"', 'primary = "shanghai"'),
                "primary-changed"),
    "source-removed": (lambda t: t.replace('[sources.uploads]\ntype = "files"\n'
                                           'path = "data/uploads"\n', ""), "source-removed"),
    "exclude": (lambda t: t.replace('path = "data/uploads"\n',
                                    'path = "data/uploads"\nexclude = ["*"]\n'), "exclude-added"),
    "writer-key-added": (lambda t: t.replace('state_dir = "state"\n', 'state_dir = "state"\n'
                                             'writer_keys = ["drkit-ed25519:AAAA"]\n'),
                         "writer-key-added"),
    "state-dir": (lambda t: t.replace('state_dir = "state"', 'state_dir = "fresh"'),
                  "verify-state-moved"),
    "objectives": (lambda t: t + "\n[objectives]\nrpo_hours = 1000\n", "objective-relaxed"),
}


@pytest.mark.parametrize("name", sorted(WEAKENINGS))
def test_every_weakening_needs_approval(shared: Project, name: str) -> None:
    edit, change = WEAKENINGS[name]
    weak = shared.variant(f"w-{name}", edit)
    res = shared.run("config", "apply", str(weak), ok=False)
    assert res.exit_code == 3, res.stderr
    assert change in res.stderr
    assert shared.pinned() == ["000001.json"]


def test_an_unknown_operation_in_the_quorum_table_is_refused(shared: Project) -> None:
    typo = shared.variant("typo", lambda t: _with_approval(
        t, 'quorum = { default = 2, cloud_expire = 1 }'))
    res = shared.run("config", "apply", str(typo), ok=False)
    assert res.exit_code == 2
    assert "approval.quorum.cloud_expire: not a registered operation" in res.stderr


def test_docs_list_every_registered_operation() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "approval.md").read_text()
    table = docs[docs.index("## Dangerous operations"):docs.index("## The pinned config")]
    for name in OPERATIONS:
        assert f"| `{name}` |" in table


def test_a_clean_change_applies_without_approval(project: Project) -> None:
    """Adding a region, lengthening retention and raising a quorum weaken nothing."""
    stronger = project.variant("stronger", lambda t: t.replace(
        "retention_days = 365", "retention_days = 400") + '\n[regions.nanjing]\n'
        'url = "file:regions/nanjing"\nretention_days = 365\n'
        '\n[approval]\nquorum = { default = 2, prune = 3 }\n')
    out = project.json("config", "apply", str(stronger))
    assert out["pinned"] == 2 and out["changes"] == []
    assert project.pinned() == ["000001.json", "000002.json"]
    # The new pinned config is in force: a prune now needs three approvals.
    _old_and_new_snapshots(project)
    rid = project.request("prune")
    project.approve(rid, "bob")
    project.approve(rid, "carol")
    res = project.run("execute", rid, ok=False)
    assert res.exit_code == 3 and "2 of 3 approvals" in res.stderr
    project.approve(rid, "dave")
    assert project.json("execute", rid)["result"]["forgotten"] == 1


def test_an_approved_weakening_is_pinned_and_verifies(project: Project) -> None:
    """The legitimate way: two other people approve the exact change."""
    lowered = project.variant("lowered", lambda t: _with_approval(
        t, 'quorum = { default = 2, "cloud-expire" = 1 }'))
    rid = project.request("config-apply", str(lowered))
    project.approve(rid, "bob")
    project.approve(rid, "carol")
    out = project.json("config", "apply", str(lowered), "--approval", rid)
    assert out["result"]["pinned"] == 2
    assert out["result"]["changes"] == [{"change": "quorum-lowered",
                                         "operation": "cloud-expire", "from": 2, "to": 1}]
    # The chain (pin 2 proven by the request) verifies: gated commands run without error.
    assert project.run("requests").exit_code == 0


def test_replayed_approval_does_not_prove_another_pin(project: Project) -> None:
    """Writer host with the writer key: after one approved weakening, pin a further one by
    hand that cites the same (executed) request."""
    from drkit.approval.configpin import pin
    from drkit.config import load_config
    from drkit.storage.local import LocalStore

    lowered = project.variant("lowered", lambda t: _with_approval(
        t, 'quorum = { default = 2, "cloud-expire" = 1 }'))
    rid = project.request("config-apply", str(lowered))
    project.approve(rid, "bob")
    project.approve(rid, "carol")
    project.run("config", "apply", str(lowered), "--approval", rid)
    weaker = lowered.read_text().replace('"cloud-expire" = 1', 'prune = 1, "cloud-expire" = 1')
    pin(load_config(project.config), LocalStore(project.region), weaker,
        now=project.clock.now(), request_id=rid, actor={"os_user": "mallory", "host": "w"})
    res = project.run("requests", ok=False)
    assert res.exit_code == 1
    assert f"pinned config 3: differs from what request {rid[:12]} approved" in res.stderr
