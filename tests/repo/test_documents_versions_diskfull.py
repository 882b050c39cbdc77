"""put_document for other modules, a repository of a newer format, a full disk on restore,
and the keys commands."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from drkit.canonical import canonical_json
from drkit.config import load_config
from drkit.journal import Journal
from drkit.repo import keys
from drkit.repo.crypto import decrypt_document
from drkit.repo.documents import sign_document
from drkit.repo.repository import Repository
from drkit.repo.writer import put_document
from drkit.storage.local import LocalStore

from .conftest import PASSPHRASE  # noqa: TID252 - the folder's own conftest


def _one_error_line(stderr: str) -> bool:
    """One 'drkit: error:' line and no traceback (other modules may log beside it)."""
    return sum(line.startswith("drkit: error:") for line in stderr.splitlines()) == 1 \
        and "Traceback" not in stderr


def test_put_document_is_journaled_and_sealed(project, clock) -> None:
    config = load_config(project.root / "drkit.toml")
    store = LocalStore(project.region)
    plain = put_document(config, "ledger", b'{"merchant": "m1", "cny": "12.50"}',
                         encrypt=False, now=clock.now(), store=store)
    sealed = put_document(config, "audit", b"secret audit text", encrypt=True,
                          now=clock.now(), store=store)
    assert plain.key.startswith("ledger/") and sealed.key.startswith("audit/")
    trusted = keys.load_trusted_writer_keys(config)
    repo = Repository.open(store, trusted)
    assert repo.get_verified(plain.key) == b'{"merchant": "m1", "cny": "12.50"}'
    assert b"secret" not in repo.get_verified(sealed.key)
    recovery = keys.unlock_recovery_key(config.keys_dir / keys.RECOVERY_KEY_FILE, PASSPHRASE)
    assert decrypt_document(repo.get_verified(sealed.key), recovery, name="x") == \
        b"secret audit text"
    # Retention of the primary region applies to documents too.
    assert store.head(plain.key).retain_until is not None


def test_newer_repository_format_is_refused_untouched(project, drkit, clock) -> None:
    config = load_config(project.root / "drkit.toml")
    writer_keys = keys.load_writer_keys(config)
    body = keys.repository_config_body(writer_keys, now=clock.now())
    body["format_version"] = 2
    store = LocalStore(project.region, clock=_Later())
    store.delete("config")
    store.put("config", sign_document("repository-config", body, writer_keys.signing_key))
    before = project.snapshot_objects()
    for args in (("snapshot",), ("snapshots",), ("check",)):
        res = drkit(*args)
        assert res.exit_code == 2, args
        assert "format version 2 is newer" in res.stderr and _one_error_line(res.stderr)
    assert project.snapshot_objects() == before


class _Later:
    def now(self) -> datetime:
        return datetime(2100, 1, 1).astimezone()


def test_disk_full_during_restore(project, drkit, tmp_path: Path) -> None:
    assert drkit("snapshot").exit_code == 0
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(tiny)],
            capture_output=True).returncode != 0:
        pytest.skip("needs permission to mount a 1 MiB tmpfs")
    try:
        res = drkit("restore", "latest", "--to", str(tiny / "out"))
        assert res.exit_code == 2
        assert "no space left on device" in res.stderr and _one_error_line(res.stderr)
        # Nothing under a final name differs from the snapshot, and no temporary file stays:
        # every file is written under a temporary name and renamed only once hash-checked.
        left = [p for p in (tiny / "out").rglob("*") if p.is_file()]
        assert not [p for p in left if p.name.startswith(".drkit-restore-")]
        # Compared with a complete restore elsewhere (the database is the source's consistent
        # copy, which need not be byte-identical to the live file).
        full = tmp_path / "full"
        assert drkit("restore", "latest", "--to", str(full)).exit_code == 0
        for path in left:
            rel = path.relative_to(tiny / "out")
            assert path.read_bytes() == (full / rel).read_bytes(), rel
    finally:
        subprocess.run(["umount", str(tiny)], check=True)


def test_keys_cli(tmp_path: Path, drkit, monkeypatch) -> None:
    (tmp_path / "drkit.toml").write_text(
        '[repository]\nprimary = "a"\n[regions.a]\nurl = "file:regions/a"\n')
    res = drkit("keys", "init")
    assert res.exit_code == 2 and "DRKIT_RECOVERY_PASSPHRASE" in res.stderr
    (tmp_path / "pass").write_text("passphrase read from a file\n")
    res = drkit("keys", "init", "--passphrase-file", "pass", "--json")
    assert res.exit_code == 0, res.stderr
    made = json.loads(res.stdout)
    assert made["writer"].startswith("SHA256:") and made["recovery"].startswith("SHA256:")
    shown = json.loads(drkit("keys", "show", "--json").stdout)
    assert shown["repository_id"] == made["repository_id"]
    assert shown["recovery_private_key_present"] is True
    assert drkit("keys", "init", "--passphrase-file", "pass").exit_code == 2  # never replaced
    # The config object in the store is journaled and names the same keys.
    config = load_config(tmp_path / "drkit.toml")
    store = LocalStore(tmp_path / "regions" / "a")
    trusted = keys.load_trusted_writer_keys(config)
    repo_cfg = keys.read_repository_config(store, trusted)
    assert repo_cfg.repository_id == made["repository_id"]
    _cp, entries = Journal(store, repo_cfg.origin).entries(trusted)
    # keys init also pins drkit.toml as the next leaf (docs/approval.md, pinned config).
    assert [e.key for e in entries] == ["config", "approval/config/000001.json"]
    # A corrupted recovery key file: one line, exit 2.
    (tmp_path / "keys" / "recovery.key").write_bytes(canonical_json({"format": "drkit-key"}))
    monkeypatch.setenv("DRKIT_RECOVERY_PASSPHRASE", "passphrase read from a file")
    res = drkit("restore", "latest", "--to", "out")
    assert res.exit_code == 2
