"""Issue 24 item 2 / issue 13 item 4 from the attacker's side: a leftover of an interrupted
write is a low note, but nobody without the writer key can pass data off as a leftover.

Role: write access to the primary region's folder (a region admin), no writer key. Each
attack is played through the real CLI on real files after a real crash (DRKIT_FAULT).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from reliability.crashkit import PASSPHRASE, CrashProject, make_project

from drkit.repo.formats import Intent, content_key


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CrashProject:
    monkeypatch.setenv("DRKIT_RECOVERY_PASSPHRASE", PASSPHRASE)
    p = make_project(tmp_path / "project")
    assert p.run("snapshot").exit_code == 0
    return p


def _verify(p: CrashProject) -> tuple[int, dict[str, Any]]:
    res = p.run("verify", "--region", "beijing", "--json")
    return res.exit_code, json.loads(res.stdout)


def _unlogged(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["key"]: f for f in doc["findings"] if f["check"] == "object-unlogged"}


def _put(p: CrashProject, key: str, data: bytes) -> None:
    path = p.region() / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_clean_region_has_no_findings_and_no_leftovers(project: CrashProject) -> None:
    code, doc = _verify(project)
    assert code == 0 and doc["findings"] == []
    assert doc["regions"][0]["leftovers"] == []


def test_forged_intent_does_not_cover_injected_data(project: CrashProject) -> None:
    """The attacker writes data and an intent naming it, signed with a key of their own."""
    data = b"attacker's bytes" * 100
    key = f"packs/{hashlib.sha256(data).hexdigest()[:2]}/{hashlib.sha256(data).hexdigest()}"
    _put(project, key, data)
    rid = project.run("keys", "show", "--json").json()["repository_id"]
    forged = Intent(rid, "2026-11-30T00:00:00Z", "attacker",
                    ((key, len(data), hashlib.sha256(data).hexdigest()),)
                    ).encode(Ed25519PrivateKey.generate())
    _put(project, content_key("intents", forged), forged)
    code, doc = _verify(project)
    assert code == 1
    found = _unlogged(doc)
    assert set(found) == {key, content_key("intents", forged)}
    assert all(f["severity"] == "high" for f in found.values())
    assert doc["regions"][0]["leftovers"] == []
    # And the next snapshot does not adopt them: they stay injected data.
    res = project.run("snapshot", "--json")
    assert res.exit_code == 0 and res.json()["reused_leftovers"] == 0
    assert set(_unlogged(_verify(project)[1])) == set(found)


def test_other_bytes_under_a_key_a_real_intent_names_are_injected(project: CrashProject
                                                                  ) -> None:
    """After a real crash (a pack's intent stored, the pack not), the attacker puts their
    own bytes under the pack's key, hoping the genuine intent covers them."""
    (project.uploads / "new.bin").write_bytes(os.urandom(300_000))  # one pack
    project.crash("snapshot", fault="writer.put.after:3")  # session + the pack's intent
    code, doc = _verify(project)
    assert code == 0, doc["findings"]  # the genuine leftovers: a low note only
    intents = [x for x in doc["regions"][0]["leftovers"] if x["key"].startswith("intents/")]
    assert len(intents) == 2
    named = [k for x in intents for k, _n, _h in Intent.decode(
        (project.region() / x["key"]).read_bytes(), _trusted(project), name=x["key"]).objects]
    pack = next(k for k in named if k.startswith("packs/"))
    assert not (project.region() / pack).exists()
    _put(project, pack, b"not the writer's pack")
    code, doc = _verify(project)
    assert code == 1
    found = _unlogged(doc)
    assert set(found) == {pack}
    assert found[pack]["severity"] == "high" and "differ from what intent" in \
        found[pack]["message"]
    # The rerun adopts the genuine leftovers, never the attacker's object.
    res = project.run("snapshot", "--json")
    assert res.exit_code == 0, res.stderr
    assert "differs from its intent; not adopted" in res.stderr
    code, doc = _verify(project)
    assert set(_unlogged(doc)) == {pack} and doc["regions"][0]["leftovers"] == []


def _trusted(p: CrashProject) -> list[Any]:
    from drkit.config import load_config
    from drkit.repo.keys import load_trusted_writer_keys

    return load_trusted_writer_keys(load_config(p.root / "drkit.toml"))
