"""Insider attacks on who approves and who writes (issue 12, items 4 and 9).

Item 4, registry takeover: someone with write access to the file:// primary (and the
set-up host's drkit) deletes ``approval/registry/`` and bootstraps sock-puppet approvers.
Item 9, writer key swapped by hand: someone on the writer host moves ``writer.next.*`` into
place without ``drkit keys rotate``.

Everything runs through the real CLI on local-folder regions (the approval project of
tests/approval/conftest.py, copied here); a second "verifier host" has its own config,
no keys folder and its own state.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from drkit.audit import AuditLog
from drkit.config import load_config

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

    @property
    def keys(self) -> Path:
        return self.root / "keys"

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
        return Path(doc["enrollment"])

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

    def files(self, folder: str) -> dict[str, bytes]:
        base = self.region / folder
        if not base.exists():
            return {}
        return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*"))
                if p.is_file()}

    def audit_events(self) -> list[dict[str, Any]]:
        config = load_config(self.root / "drkit.toml")
        return [e.note for e in AuditLog.open(config, self.clock).read().entries]

    def verify(self, *args: str, config: Path | None = None) -> tuple[int, dict[str, Any]]:
        extra = ["--config", str(config)] if config else []
        res = self.run(*extra, "--json", "verify", "--accept-first-contact", *args, ok=False)
        assert res.exit_code in (0, 1), res.stderr
        return res.exit_code, json.loads(res.stdout)

    def verifier_host(self, name: str, writer_keys: list[str] | None = None) -> Path:
        """A host that verifies only: its own config and state, no keys folder."""
        host = self.root / name
        host.mkdir()
        keys_line = (f"writer_keys = {json.dumps(writer_keys)}\n"
                     if writer_keys is not None else "")
        (host / "drkit.toml").write_text(
            '[repository]\nprimary = "beijing"\nkeys = "no-keys-here"\n'
            f'[regions.beijing]\nurl = "file:{self.root}/regions/beijing"\n'
            "retention_days = 30\n"
            f'[regions.shanghai]\nurl = "file:{self.root}/regions/shanghai"\n'
            'storage_class = "STANDARD_IA"\nretention_days = 365\n'
            f'[verify]\nstate_dir = "state"\n{keys_line}')
        return host / "drkit.toml"


@pytest.fixture(scope="module")
def approver_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four real people and three sock puppets, enrolled once through the CLI (Argon2id
    is deliberately slow) and copied into each project."""
    from click.testing import CliRunner

    from drkit.cli.common import AppContext
    from drkit.cli.main import cli
    from drkit.clock import FixedClock

    root = tmp_path_factory.mktemp("security-approver-keys")
    (root / "drkit.toml").write_text(CONFIG + '\n[verify]\nstate_dir = "state"\n')
    clock = FixedClock(datetime(2026, 11, 1, tzinfo=UTC))
    for name in ("alice", "bob", "carol", "dave", "puppet1", "puppet2", "puppet3"):
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
    # Approvers hold their own keys; the puppets' enrolment files are the attacker's.
    shutil.copytree(approver_keys, tmp_path / "keys" / "approvers")
    for path in sorted((tmp_path / "keys" / "approvers").glob("*.enrollment.json")):
        proj.enrollments[path.name.split(".")[0]] = path
    proj.run("approvers", "bootstrap", *(str(proj.enrollments[n])
                                         for n in ("alice", "bob", "carol", "dave")))
    proj.snapshot("first")
    proj.run("replicate")
    return proj


MakeProject = Callable[[], Project]


def _findings(doc: dict[str, Any], region: str) -> list[dict[str, Any]]:
    return [f for f in doc["findings"] if f["region"] == region]


def _bootstrap_puppets(project: Project) -> Any:
    return project.run("approvers", "bootstrap",
                       *(str(project.enrollments[n]) for n in ("puppet1", "puppet2", "puppet3")),
                       ok=False)


def _registry_state(project: Project) -> Path:
    return Path(os.environ["XDG_STATE_HOME"]) / "drkit" / "approval"


# -- item 4: registry takeover ------------------------------------------------------------
def test_registry_takeover_with_host_state_intact_is_refused_before_writing(project) -> None:
    assert _registry_state(project).is_dir()  # this host has seen version 1
    shutil.rmtree(project.region / "approval" / "registry")
    journal_before = project.files("journal")

    res = _bootstrap_puppets(project)

    assert res.exit_code == 3, res.stderr
    assert "the repository journal anchors approver registry version(s) 1..1" in res.stderr
    assert "bootstrap is one-time" in res.stderr
    assert project.files("approval/registry") == {}  # nothing was written
    assert project.files("journal") == journal_before
    refusals = [e for e in project.audit_events() if e["action"] == "approvers.bootstrap"]
    assert refusals[-1]["result"] == "refused"
    assert "anchors approver registry" in refusals[-1]["details"]["reason"]
    # verify names the deleted registry version; the untouched region stays clean.
    code, doc = project.verify()
    assert code == 1
    beijing = _findings(doc, "beijing")
    assert [(f["severity"], f["check"], f["key"]) for f in beijing] == [
        ("critical", "approver-registry-missing", "approval/registry/000001.json")]
    assert _findings(doc, "shanghai") == []


def test_registry_takeover_with_host_state_deleted_is_refused_and_puppets_cannot_approve(
        project) -> None:
    shutil.rmtree(_registry_state(project))  # the host forgot which registry it saw
    shutil.rmtree(project.region / "approval" / "registry")

    res = _bootstrap_puppets(project)

    assert res.exit_code == 3, res.stderr
    assert "anchors approver registry version(s) 1..1" in res.stderr
    assert project.files("approval/registry") == {}
    assert [e["result"] for e in project.audit_events()
            if e["action"] == "approvers.bootstrap"][-1] == "refused"
    # The real registry comes back from the journal; a puppet is nobody.
    show = project.json("approvers", "show")
    assert [a["name"] for a in show["current"]["approvers"]] == ["alice", "bob", "carol",
                                                                "dave"]
    rid = project.request("prune", "--older-than-days", "0")
    for puppet in ("puppet2", "puppet3"):
        vote = project.run("approve", rid, *project.signer(puppet), ok=False)
        assert vote.exit_code == 3 and "is not enrolled in approver registry version 1" \
            in vote.stderr
    executed = project.run("execute", rid, ok=False)
    assert executed.exit_code == 3 and "needs 2 approvals" in executed.stderr
    code, doc = project.verify()
    assert code == 0 and doc["findings"] == []  # the registry is back, nothing else moved


@pytest.mark.parametrize("how", ["journal-emptied", "journal-rolled-back"])
def test_registry_takeover_after_rewinding_the_primary_journal_is_refused(project,
                                                                          how: str) -> None:
    """The takeover with the primary's journal also rewound (file:// primary: its
    objects are files), so that it no longer shows the anchor."""
    journal = project.region / "journal"
    if how == "journal-emptied":
        shutil.rmtree(journal)
    else:  # back to the first checkpoint (the repository config only)
        for path in (journal / "checkpoint").iterdir():
            if path.name != f"{1:016d}":
                path.unlink()
        for path in (journal / "batch").iterdir():
            if not path.name.startswith(f"{0:016d}-{1:016d}-"):
                path.unlink()
    shutil.rmtree(_registry_state(project))
    shutil.rmtree(project.region / "approval" / "registry")
    journal_before = project.files("journal")

    res = _bootstrap_puppets(project)

    assert res.exit_code == 3, res.stderr
    expected = {"journal-emptied": "does not log the repository config",
                "journal-rolled-back": "anchors approver registry version(s) 1..1"}[how]
    assert expected in res.stderr
    assert project.files("approval/registry") == {}
    assert project.files("journal") == journal_before


def test_registry_put_by_hand_is_critical_in_verify_and_trusted_by_nobody(project) -> None:
    """The takeover without drkit: replace version 1 with a puppet registry by hand."""
    from drkit.approval.keys import Enrollment
    from drkit.approval.registry import registry_content
    from drkit.canonical import canonical_json

    pinned = project.region / "approval" / "registry" / "000001.json"
    real = json.loads(pinned.read_bytes())
    puppets = [Enrollment.from_dict(json.loads(project.enrollments[n].read_text()), where=n)
               for n in ("puppet1", "puppet2", "puppet3")]
    forged = {**registry_content(1, None, real["repository"], puppets),
              "created": real["created"], "authorized_by": real["authorized_by"]}
    shutil.rmtree(_registry_state(project))
    pinned.unlink()
    pinned.write_bytes(canonical_json(forged))
    (project.root / "approvers.json").write_bytes(canonical_json(forged))

    refused = project.run("approvers", "show", ok=False)
    assert refused.exit_code == 1
    assert "differs from approver registry version 1 anchored in the repository journal" \
        in refused.stderr
    request = project.run("request", "prune", "--older-than-days", "0", "--reason", "x",
                          *project.signer("puppet1"), ok=False)
    assert request.exit_code == 1 and "replaced by hand" in request.stderr
    code, doc = project.verify()
    assert code == 1
    assert [(f["severity"], f["check"]) for f in _findings(doc, "beijing")] == [
        ("critical", "approver-registry-replaced")]
    assert _findings(doc, "shanghai") == []


def test_unanchored_registry_version_is_critical_in_verify(project) -> None:
    """A version 2 dropped into the primary by hand, next to the anchored version 1."""
    import hashlib

    from drkit.approval.keys import Enrollment
    from drkit.approval.registry import registry_content
    from drkit.canonical import canonical_json

    v1 = (project.region / "approval" / "registry" / "000001.json").read_bytes()
    real = json.loads(v1)
    people = [Enrollment.from_dict(a, where="v1") for a in real["approvers"]]
    puppet = Enrollment.from_dict(json.loads(project.enrollments["puppet1"].read_text()),
                                  where="p")
    content = registry_content(2, hashlib.sha256(v1).hexdigest(), real["repository"],
                               [*people, puppet])
    (project.region / "approval" / "registry" / "000002.json").write_bytes(canonical_json(
        {**content, "created": real["created"], "authorized_by": {"request": "00" * 32}}))

    assert project.run("approvers", "show", ok=False).exit_code == 1
    code, doc = project.verify()
    assert code == 1
    assert [(f["severity"], f["check"], f["key"]) for f in _findings(doc, "beijing")] == [
        ("critical", "approver-registry-unanchored", "approval/registry/000002.json")]
    assert _findings(doc, "shanghai") == []


def test_registry_is_anchored_and_replicated_with_verify_clean(project) -> None:
    """No false alarm: an untouched repository with its anchored registry verifies clean
    in both regions, the anchor is a journal leaf, and the replica holds the registry."""
    code, doc = project.verify()
    assert code == 0 and doc["findings"] == []
    replica = project.root / "regions" / "shanghai" / "approval" / "registry" / "000001.json"
    assert replica.read_bytes() == (project.region / "approval" / "registry" /
                                    "000001.json").read_bytes()


# -- item 9: writer key swapped by hand ----------------------------------------------------
def _swap_writer_key_by_hand(project: Project) -> str:
    new_pub = project.json("keys", "rotate", "--prepare")["prepared"]
    os.replace(project.keys / "writer.next.key", project.keys / "writer.key")
    os.replace(project.keys / "writer.next.pub", project.keys / "writer.pub")
    return str(new_pub)


def test_hand_swapped_writer_key_cannot_snapshot(project) -> None:
    journal_before = project.files("journal")
    new_pub = _swap_writer_key_by_hand(project)
    (project.root / "data" / "uploads" / "second.txt").write_text("second" * 1000)

    res = project.run("snapshot", ok=False)

    assert res.exit_code == 2, res.stderr
    assert "is not in the repository's journaled key history" in res.stderr
    assert "drkit keys rotate" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert project.files("journal") == journal_before
    snapshot_events = [e for e in project.audit_events() if e["action"] == "snapshot"]
    assert snapshot_events[-1]["result"] == "error"
    code, doc = project.verify()  # nothing was written: no false alarm anywhere
    assert code == 0 and doc["findings"] == []
    # Trusting the swapped key in the local config does not make it a writer either.
    with (project.root / "drkit.toml").open("a") as fh:
        fh.write(f'\n[verify]\nwriter_keys = ["{new_pub}"]\n')
    again = project.run("snapshot", ok=False)
    assert again.exit_code == 2 and "journaled key history" in again.stderr
    assert project.files("journal") == journal_before


def test_log_signed_by_a_swapped_key_is_critical_in_verify(project) -> None:
    """The insider skips drkit's refusal (the key files are theirs, so they can run any
    code) and appends a tombstone for a pack under a checkpoint signed by the swapped key."""
    from drkit.journal import Journal, JournalEntry
    from drkit.repo.keyhistory import peek_repository_config
    from drkit.repo.keys import load_writer_signing_key, read_repository_id
    from drkit.storage.local import LocalStore

    old_pub = (project.keys / "writer.pub").read_text().strip()
    _swap_writer_key_by_hand(project)
    config = load_config(project.root / "drkit.toml")
    store = LocalStore(project.region)
    _rid, first, _data = peek_repository_config(store)
    journal = Journal(store, "drkit:" + read_repository_id(store, [first]))
    _cp, entries = journal.entries([first])
    pack = next(e for e in entries if e.key.startswith("packs/"))
    journal.append([JournalEntry(kind="tombstone", key=pack.key, size=pack.size,
                                 sha256=pack.sha256, note={"approval": "00" * 32})],
                   load_writer_signing_key(config), now=project.clock.now(), trusted=[first])

    for host in (None, project.verifier_host("verifier"),
                 project.verifier_host("pinned-verifier", writer_keys=[old_pub])):
        code, doc = project.verify(config=host)
        assert code == 1
        beijing = _findings(doc, "beijing")
        assert [(f["severity"], f["check"]) for f in beijing] == [
            ("critical", "journal-checkpoint-invalid")], beijing
        assert "untrusted" in beijing[0]["message"] or "trusted" in beijing[0]["message"]
        assert _findings(doc, "shanghai") == []


def test_approved_rotation_is_journaled_and_verifies_everywhere(project) -> None:
    keys = project.keys
    old_pub = (keys / "writer.pub").read_text().strip()
    new_pub = project.json("keys", "rotate", "--prepare")["prepared"]
    rid = project.request("keys", "rotate", "--public-key", new_pub)
    project.approve(rid, "bob")
    project.approve(rid, "carol")
    done = project.json("keys", "rotate", "--approval", rid)
    assert done["new"] == new_pub and (keys / "writer.pub").read_text().strip() == new_pub
    # The journal carries the rotation: signed by the old key, naming the approval.
    from drkit.journal import Journal
    from drkit.repo.keyhistory import ROTATION_PREFIX, read_rotation
    from drkit.repo.keys import load_trusted_writer_keys
    from drkit.storage.local import LocalStore

    config = load_config(project.root / "drkit.toml")
    store = LocalStore(project.region)
    repository_id = config_repository_id(project)
    _cp, entries = Journal(store, "drkit:" + repository_id).entries(
        load_trusted_writer_keys(config))
    rotations = [e for e in entries if e.key.startswith(ROTATION_PREFIX)]
    assert len(rotations) == 1
    _old, _new, body = read_rotation(rotations[0], repository_id)
    assert (body["old"], body["new"], body["approval"]) == (old_pub, new_pub, rid)

    project.snapshot("after")
    project.run("replicate")
    for host in (None, project.verifier_host("verifier"),
                 project.verifier_host("pinned-verifier", writer_keys=[old_pub])):
        code, doc = project.verify(config=host)
        assert code == 0 and doc["findings"] == [], doc["findings"]
    assert json.loads(project.run("--json", "check").stdout)["ok"] is True


def config_repository_id(project: Project) -> str:
    return str(project.json("keys", "show")["repository_id"])


def test_rotation_journaled_without_approval_is_critical_in_verify(project) -> None:
    """The writer-key holder journals a rotation to a key of their own (signed by the real
    key, so the history accepts it) citing an approval that does not exist."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from drkit.repo.journal_writer import append_to_primary
    from drkit.repo.keyhistory import rotation_entry
    from drkit.repo.keys import load_writer_signing_key

    config = load_config(project.root / "drkit.toml")
    entry = rotation_entry(config_repository_id(project), load_writer_signing_key(config),
                           Ed25519PrivateKey.generate().public_key(), approval="00" * 32,
                           now=project.clock.now())
    append_to_primary(config, [entry], now=project.clock.now())
    project.run("replicate")

    code, doc = project.verify()
    assert code == 1
    assert [(f["severity"], f["check"], f["key"]) for f in _findings(doc, "beijing")] == [
        ("critical", "writer-key-rotation-unapproved", entry.key)]
    assert _findings(doc, "shanghai") == []
