"""Issue 12 item 8: a verifier that lost its trusted state says so loudly, and can check
against trust anchors that do not live on its host.

The attacker holds write access to every region's folder (here: local folders) and, for
the fork, the writer host's keys; the verifier host's state folder is deleted (``rm -rf``).
The verifier holds only what it was sent: checkpoint fingerprints from a drill report, an
audit report or a notification. Everything runs through the CLI.
"""

from __future__ import annotations

import json
import shutil
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

[regions.shanghai]
url = "file:regions/shanghai"

[sources.uploads]
type = "files"
path = "data/uploads"

[verify]
state_dir = "state"
"""


@dataclass
class Site:
    root: Path
    drkit: Any

    @property
    def config(self) -> Config:
        return load_config(self.root / "drkit.toml")

    def run(self, *args: str) -> Any:
        return self.drkit(*args, env={"DRKIT_RECOVERY_PASSPHRASE": "pw"})

    def json(self, *args: str) -> tuple[int, dict[str, Any], str]:
        res = self.run("--json", *args)
        assert res.stdout.strip(), res.stderr
        return res.exit_code, json.loads(res.stdout), res.stderr

    def add_file(self, name: str, text: str) -> None:
        (self.root / "data/uploads" / name).write_text(text)

    def save_regions(self, where: str) -> None:
        shutil.copytree(self.root / "regions", self.root / where)

    def roll_back_every_region(self, saved: str) -> None:
        """The attack: every region's folder put back as it was (objects written since
        deleted, the journals' newer batches and checkpoints gone)."""
        shutil.rmtree(self.root / "regions")
        shutil.copytree(self.root / saved, self.root / "regions")

    def lose_state(self) -> None:
        shutil.rmtree(self.root / "state")


@pytest.fixture
def site(drkit: Any, clock: Any, tmp_path: Path) -> Site:
    (tmp_path / "drkit.toml").write_text(CONFIG)
    (tmp_path / "data" / "uploads").mkdir(parents=True)
    s = Site(tmp_path, drkit)
    s.add_file("a.txt", "merchant 1\n")
    config = s.config
    keys = init_keys(config.keys_dir, "pw", kdf=FAST_KDF)
    initialise_repository(open_store(config.primary_region.url), config.primary_region, keys,
                          now=clock.now(), cache_dir=config.cache_dir)
    assert s.run("snapshot").exit_code == 0
    assert s.run("replicate").exit_code == 0
    s.save_regions("saved-old")
    s.add_file("b.txt", "merchant 2 (the data the attacker wants gone)\n")
    assert s.run("snapshot").exit_code == 0
    assert s.run("replicate").exit_code == 0
    code, doc, _err = s.json("verify", "--accept-first-contact")
    assert code == 0 and doc["clean"], doc
    code, doc, _err = s.json("audit", "verify", "--accept-first-contact")
    assert code == 0 and doc["ok"], doc
    return s


def repo_anchor(site: Site) -> str:
    """The repository journal's fingerprint, as the audit report prints it."""
    code, report, _err = site.json("audit", "report", "--since", "1d", "--format", "json")
    assert code == 0
    [anchor] = [a for a in report["anchors"] if a.startswith("drkit:")]
    return str(anchor)


def checks(doc: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in doc["findings"]:
        out.setdefault(f["region"], set()).add(f"{f['severity']} {f['check']}")
    return out


def test_first_verify_of_a_new_host_is_first_contact(site: Site) -> None:
    site.lose_state()
    code, doc, err = site.json("verify")
    assert code == 4 and doc["first_contact"] is True and doc["findings"] == []
    assert "FIRST-CONTACT" in err and "--accept-first-contact" in err
    # Nothing was pinned: the next run is still a first contact.
    assert not (site.root / "state").exists() or not any((site.root / "state").glob("*.json"))
    assert site.json("verify")[0] == 4


def test_lost_state_then_rollback_of_every_region_is_loud(site: Site) -> None:
    site.roll_back_every_region("saved-old")
    site.lose_state()
    code, doc, err = site.json("verify")
    # Nothing in the regions betrays the rollback; the exit status and the warning do.
    assert code == 4, doc
    assert doc["findings"] == [] and doc["first_contact"] is True
    assert "FIRST-CONTACT: this host holds no trusted state" in err
    code, doc, err = site.json("verify", "--accept-first-contact")
    assert code == 0 and doc["findings"] == []
    assert "FIRST-CONTACT" in err and "accepted" in err
    # Accepted: the state starts now, and the next verify is an ordinary one.
    code, doc, err = site.json("verify")
    assert code == 0 and doc["first_contact"] is False and "FIRST-CONTACT" not in err


def test_rollback_below_an_anchor_from_the_audit_report_is_critical(site: Site) -> None:
    anchor = repo_anchor(site)
    site.roll_back_every_region("saved-old")
    site.lose_state()
    code, doc, _err = site.json("verify", "--expect", anchor, "--accept-first-contact")
    assert code == 1, doc
    assert checks(doc) == {"beijing": {"critical journal-below-anchor"},
                           "shanghai": {"critical journal-below-anchor"}}
    # A critical journal finding pins nothing: the rolled-back log never becomes trusted.
    code, doc, _err = site.json("verify")
    assert code == 4


def test_rollback_below_an_anchor_file_is_critical_for_verify_and_audit_verify(
        site: Site) -> None:
    code, report, _err = site.json("audit", "report", "--since", "1d", "--format", "json")
    assert code == 0 and len(report["anchors"]) == 2
    anchor_file = site.root / "anchors.txt"  # e.g. kept in another team's repository
    anchor_file.write_text("# pinned from the audit report\n" + "\n".join(report["anchors"])
                           + "\n")
    site.roll_back_every_region("saved-old")
    site.lose_state()
    code, doc, _err = site.json("verify", "--anchor", str(anchor_file))
    assert code == 1
    assert {f["check"] for f in doc["findings"]} == {"journal-below-anchor"}
    code, doc, _err = site.json("audit", "verify", "--anchor", str(anchor_file))
    assert code == 1 and not doc["ok"], doc
    assert [f["kind"] for f in doc["findings"] if f["severity"] == "error"] == ["below-anchor"]
    # The same file pinned in drkit.toml (verify.anchor_file) works without the option.
    cfg = site.root / "drkit.toml"
    cfg.write_text(cfg.read_text() + 'anchor_file = "anchors.txt"\n')
    code, doc, _err = site.json("verify", "--accept-first-contact")
    assert code == 1 and {f["check"] for f in doc["findings"]} == {"journal-below-anchor"}


def test_writer_key_fork_that_drops_a_pack_is_critical_against_the_anchor(
        site: Site) -> None:
    anchor = repo_anchor(site)
    # With the writer host's keys: put the regions back, then write a different history
    # (the second snapshot's pack is no longer logged) at least as long as the anchor.
    site.roll_back_every_region("saved-old")
    for name in ("c.txt", "d.txt"):
        site.add_file(name, f"{name}: something else\n")
        assert site.run("snapshot").exit_code == 0
    assert site.run("replicate").exit_code == 0
    site.lose_state()
    code, doc, err = site.json("verify")
    assert code == 4 and doc["findings"] == [], doc  # silent but for the first contact
    code, doc, _err = site.json("verify", "--expect", anchor, "--accept-first-contact")
    assert code == 1
    assert checks(doc) == {"beijing": {"critical journal-fork"},
                           "shanghai": {"critical journal-fork"}}


def test_clean_regions_pass_every_anchor_with_no_finding(site: Site) -> None:
    code, report, _err = site.json("audit", "report", "--since", "1d", "--format", "json")
    anchors = report["anchors"]
    args = [a for anchor in anchors for a in ("--expect", anchor)]
    code, doc, err = site.json("verify", *args)
    assert code == 0 and doc["findings"] == [] and doc["first_contact"] is False, doc
    assert "FIRST-CONTACT" not in err and sorted(doc["anchors"]) == sorted(
        a for a in anchors if a.startswith("drkit:"))
    code, doc, _err = site.json("audit", "verify", *args)
    assert code == 0 and doc["ok"] and doc["findings"] == [], doc
    # After more snapshots the old anchors still hold (the log only grew).
    site.add_file("e.txt", "merchant 5\n")
    assert site.run("snapshot").exit_code == 0
    assert site.run("replicate").exit_code == 0
    code, doc, _err = site.json("verify", *args)
    assert code == 0 and doc["findings"] == [], doc


def test_an_anchor_of_another_repository_or_malformed_is_a_usage_error(site: Site) -> None:
    res = site.run("verify", "--expect", "drkit:" + "ab" * 16 + "@3:" + "00" * 32)
    assert res.exit_code == 2 and "is for drkit:abab" in res.stderr
    res = site.run("verify", "--expect", "not-a-fingerprint")
    assert res.exit_code == 2 and "not a checkpoint fingerprint" in res.stderr


def test_audit_log_first_contact_and_rollback_below_its_anchor(site: Site) -> None:
    code, doc, _err = site.json("audit", "verify")
    audit_anchor = doc["fingerprint"]
    assert code == 0 and audit_anchor.startswith("drkit-audit:")
    site.roll_back_every_region("saved-old")
    site.lose_state()
    code, doc, err = site.json("audit", "verify")
    assert code == 4 and doc["ok"] and doc["first_contact"], doc  # silently "intact"
    assert "FIRST-CONTACT" in err
    code, doc, _err = site.json("audit", "verify", "--expect", audit_anchor,
                                "--accept-first-contact")
    assert code == 1 and not doc["ok"]
    [finding] = [f for f in doc["findings"] if f["severity"] == "error"]
    assert finding["kind"] == "below-anchor" and "rolled back" in finding["message"]


def test_rollback_below_the_anchor_of_a_drill_report_is_critical(site: Site) -> None:
    code, drill, _err = site.json("drill", "--region", "shanghai")
    assert code == 0, drill
    anchor = drill["checkpoint"]["fingerprint"]
    markdown = next(Path(p) for p in drill["report_files"] if p.endswith(".md"))
    assert anchor in markdown.read_text()  # the report kept off the host carries it whole
    site.roll_back_every_region("saved-old")
    site.lose_state()
    code, doc, _err = site.json("verify", "--expect", anchor, "--accept-first-contact")
    assert code == 1
    assert checks(doc) == {"beijing": {"critical journal-below-anchor"},
                           "shanghai": {"critical journal-below-anchor"}}


class Hook:
    """A webhook receiver on 127.0.0.1 recording every POSTed JSON document."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.received: list[Any] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hook.received.append(json.loads(raw or b"null"))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/drkit"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_rollback_below_the_anchor_of_a_notification_is_critical(site: Site) -> None:
    hook = Hook()
    try:
        cfg = site.root / "drkit.toml"
        cfg.write_text(cfg.read_text() + f'\n[schedule.webhook]\nurl = "{hook.url}"\n')
        # A scheduled verify that is not clean (here: a new verifier host, first contact)
        # notifies, and the notification carries the newest checkpoint fingerprints.
        site.lose_state()
        res = site.run("--json", "schedule", "run-job", "verify")
        assert hook.received, res.stdout + res.stderr
    finally:
        hook.close()
    event = hook.received[-1]
    assert event["outcome"] == "findings"
    [anchor] = [a for a in event["anchors"] if a.startswith("drkit:")]
    site.roll_back_every_region("saved-old")
    shutil.rmtree(site.root / "state", ignore_errors=True)
    code, doc, _err = site.json("verify", "--expect", anchor, "--accept-first-contact")
    assert code == 1
    assert checks(doc) == {"beijing": {"critical journal-below-anchor"},
                           "shanghai": {"critical journal-below-anchor"}}
