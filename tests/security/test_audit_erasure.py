"""Issue 24 items 1 and 7: no audit event or journal checkpoint can be erased by deleting
one object. The attacker holds write (delete) access to the primary's folder, nothing
else: not the writer key, not the verifier host's state. Everything runs through the CLI.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from drkit.config import Config, load_config
from drkit.errors import BackendUnavailable
from drkit.repo.keys import init_keys
from drkit.repo.writer import initialise_repository
from drkit.storage.local import LocalStore
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
class Project:
    root: Path
    drkit: Any

    @property
    def config(self) -> Config:
        return load_config(self.root / "drkit.toml")

    def run(self, *args: str) -> Any:
        return self.drkit(*args, env={"DRKIT_RECOVERY_PASSPHRASE": "pw"})

    def json(self, *args: str) -> tuple[int, dict[str, Any]]:
        res = self.run("--json", *args)
        assert res.stdout.strip(), res.stderr
        return res.exit_code, json.loads(res.stdout)

    def checkpoints(self, log: str) -> list[Path]:
        return sorted((self.root / "regions/beijing" / log / "checkpoint").iterdir())


@pytest.fixture
def project(drkit: Any, clock: Any, tmp_path: Path) -> Project:
    (tmp_path / "drkit.toml").write_text(CONFIG)
    uploads = tmp_path / "data" / "uploads"
    uploads.mkdir(parents=True)
    (uploads / "invoice.txt").write_text("merchant 42 owes 1,000 CNY\n")
    proj = Project(tmp_path, drkit)
    config = proj.config
    keys = init_keys(config.keys_dir, "pw", kdf=FAST_KDF)
    initialise_repository(open_store(config.primary_region.url), config.primary_region, keys,
                          now=clock.now(), cache_dir=config.cache_dir)
    return proj


def events_named(doc: dict[str, Any], kind: str) -> list[str]:
    return [f["message"] for f in doc["findings"] if f["kind"] == kind]


def test_deleting_the_newest_audit_checkpoint_is_reported_and_the_event_kept(
        project: Project) -> None:
    assert project.run("snapshot").exit_code == 0
    code, doc = project.json("audit", "verify", "--accept-first-contact")
    assert code == 0 and doc["ok"], doc
    assert project.run("check", "--read-data").exit_code == 0  # the event to erase
    newest = project.checkpoints("audit/journal")[-1]
    newest.unlink()  # the attack: one object deleted in the primary
    assert project.run("check").exit_code == 0  # the next audited action

    code, doc = project.json("audit", "verify")
    assert code == 1 and not doc["ok"], doc
    [message] = events_named(doc, "checkpoint-deleted")
    # The erased event is named (it is evidence) and still in the log.
    assert "event check at" in message and "its entries are kept" in message
    report = json.loads(project.run("audit", "report", "--since", "1d", "--format",
                                    "json").stdout)
    assert report["events"] == 3  # snapshot, check --read-data, check: none lost
    assert not report["log"]["ok"] and doc["size"] == 3
    # The erased 'check --read-data' event is in the verified chain, in the batch named.
    batch = message.split("batch ")[1].split(" ")[0]
    assert b'"--read-data"' in (project.root / "regions/beijing/audit" / batch).read_bytes()
    # No position was taken twice: every batch is in the chain, none stray.
    assert not events_named(doc, "stray-batch")


def test_deleting_the_newest_audit_checkpoint_is_reported_before_the_next_append(
        project: Project) -> None:
    assert project.run("snapshot").exit_code == 0
    assert project.run("audit", "verify", "--accept-first-contact").exit_code == 0
    assert project.run("check", "--read-data").exit_code == 0
    project.checkpoints("audit/journal")[-1].unlink()
    code, doc = project.json("audit", "verify")
    assert code == 1, doc
    [message] = events_named(doc, "batch-uncovered")
    assert "event check at" in message and "(ok, by" in message


def test_deleting_a_superseded_audit_checkpoint_is_a_finding(project: Project) -> None:
    assert project.run("snapshot").exit_code == 0
    assert project.run("check").exit_code == 0
    assert project.run("check").exit_code == 0
    checkpoints = project.checkpoints("audit/journal")
    assert len(checkpoints) >= 3
    code, doc = project.json("audit", "verify", "--accept-first-contact")
    assert code == 0 and doc["ok"], doc
    assert [f["kind"] for f in doc["findings"]] == ["first-contact"]  # no false alarm
    checkpoints[1].unlink()  # older, covered by the newest: still a logged object
    code, doc = project.json("audit", "verify")
    assert code == 1, doc
    [message] = events_named(doc, "checkpoint-deleted")
    assert f"checkpoint of size {int(checkpoints[1].name)}" in message


def test_deleting_a_superseded_journal_checkpoint_fails_check_and_verify(
        project: Project) -> None:
    (project.root / "data/uploads/more.txt").write_text("merchant 43\n")
    assert project.run("snapshot").exit_code == 0
    (project.root / "data/uploads/even-more.txt").write_text("merchant 44\n")
    assert project.run("snapshot").exit_code == 0
    code, doc = project.json("verify", "--accept-first-contact")
    assert code == 0 and doc["clean"], doc
    code, doc = project.json("check")
    assert code == 0, doc
    checkpoints = project.checkpoints("journal")
    assert len(checkpoints) >= 3
    checkpoints[1].unlink()

    code, doc = project.json("check")
    assert code == 1, doc
    assert any("checkpoint" in p and "gone" in p for p in doc["problems"]), doc
    code, doc = project.json("verify")
    assert code == 1, doc
    assert [f["severity"] for f in doc["findings"]
            if f["check"] == "journal-checkpoint-deleted"] == ["critical"], doc
    # Snapshots and restores keep working: the content is proven by the newest checkpoint.
    assert project.run("snapshot").exit_code == 0


def test_an_interrupted_audit_append_of_this_host_leaves_no_finding(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    assert project.run("snapshot").exit_code == 0
    assert project.run("audit", "verify", "--accept-first-contact").exit_code == 0
    before = len(project.checkpoints("audit/journal"))
    real_put = LocalStore.put
    failed: list[str] = []

    def put_then_fail_on_checkpoint(self: LocalStore, key: str, data: bytes,
                                    **kw: Any) -> Any:
        # The fault: the batch is stored, the connection drops before its checkpoint.
        if key.startswith("audit/journal/checkpoint/") and not failed:
            failed.append(key)
            raise BackendUnavailable("injected fault between batch put and checkpoint put")
        return real_put(self, key, data, **kw)

    monkeypatch.setattr(LocalStore, "put", put_then_fail_on_checkpoint)
    assert project.run("check").exit_code == 0  # the command's own outcome is unchanged
    monkeypatch.setattr(LocalStore, "put", real_put)
    assert failed and len(project.checkpoints("audit/journal")) == before
    batch_dir = project.root / "regions/beijing/audit/journal/batch"
    dangling = sorted(batch_dir.iterdir())[-1]
    nonce = json.loads(dangling.read_bytes().split(b"\n")[1])["note"]["nonce"]

    # Before the next append: this host knows the batch as its own, so only a warning.
    code, doc = project.json("audit", "verify")
    assert code == 0, doc
    assert [f["kind"] for f in doc["findings"]
            if f["severity"] == "error"] == [], doc
    assert "interrupted-append" in {f["kind"] for f in doc["findings"]}

    assert project.run("check").exit_code == 0  # the next run completes it
    code, doc = project.json("audit", "verify")
    assert code == 0 and doc["ok"], doc
    assert [f for f in doc["findings"] if f["kind"] != "spooled"] == [], doc
    # The interrupted event (also spooled) is in the log exactly once.
    raw = b"".join(p.read_bytes() for p in batch_dir.iterdir())
    assert raw.count(nonce.encode()) == 1


def test_an_unsigned_leftover_batch_is_not_adopted(project: Project) -> None:
    """An attacker without any key plants a batch that extends the log: it stays an
    untrusted stray (a warning) and the next append does not take it into the chain."""
    from drkit.journal import JournalEntry
    from drkit.journal.log import batch_key, encode_batch

    assert project.run("snapshot").exit_code == 0
    code, doc = project.json("audit", "verify", "--accept-first-contact")
    assert code == 0
    batches = sorted((project.root / "regions/beijing/audit/journal/batch").iterdir())
    head = "journal/batch/" + batches[-1].name
    size = doc["size"]
    fake = JournalEntry(kind="external", key="audit-event/" + "0" * 32, size=2,
                        sha256="0" * 64, note={"action": "forged"})
    data = encode_batch(doc["fingerprint"].rsplit("@", 1)[0], size, [fake], head)
    key = batch_key(size, size + 1, data)
    (project.root / "regions/beijing/audit" / key).write_bytes(data)
    assert project.run("check").exit_code == 0
    code, doc = project.json("audit", "verify")
    assert code == 0, doc
    assert {f["kind"] for f in doc["findings"]} == {"stray-batch"}
    report = project.run("audit", "report", "--since", "1d", "--format", "json").stdout
    assert '"forged"' not in report


def test_an_interrupted_journal_append_of_the_writer_host_leaves_no_finding(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    assert project.run("snapshot").exit_code == 0
    code, doc = project.json("verify", "--accept-first-contact")
    assert code == 0 and doc["clean"], doc
    real_put = LocalStore.put
    failed: list[str] = []

    def put_then_fail_on_checkpoint(self: LocalStore, key: str, data: bytes,
                                    **kw: Any) -> Any:
        if key.startswith("journal/checkpoint/") and not failed:
            failed.append(key)
            raise BackendUnavailable("injected fault between batch put and checkpoint put")
        return real_put(self, key, data, **kw)

    (project.root / "data/uploads/new.txt").write_text("merchant 45\n")
    monkeypatch.setattr(LocalStore, "put", put_then_fail_on_checkpoint)
    assert project.run("snapshot").exit_code != 0
    monkeypatch.setattr(LocalStore, "put", real_put)
    assert failed
    # Verify on the writer host knows the batch as its own: a note, not a finding.
    code, doc = project.json("verify")
    assert code == 0 and doc["clean"], doc
    assert any("interrupted" in n for r in doc["regions"] for n in r["notes"]), doc
    assert project.run("snapshot").exit_code == 0  # the rerun completes it
    code, doc = project.json("verify")
    assert code == 0 and doc["clean"], doc
    assert not any("interrupted" in n for r in doc["regions"] for n in r["notes"])
    code, doc = project.json("check")
    assert code == 0 and doc["problems"] == [], doc
