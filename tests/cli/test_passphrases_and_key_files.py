"""New passphrases must be strong; private key files must be private (as ssh insists)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CONFIG = """\
[repository]
primary = "beijing"
keys = "keys"

[regions.beijing]
url = "file:regions/beijing"

[sources.uploads]
type = "files"
path = "data"
"""
STRONG = "a long passphrase for the key file tests"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "drkit.toml").write_text(CONFIG)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a\n")
    return tmp_path


@pytest.mark.parametrize(("weak", "why"), [
    ("x", "too short (1 characters"),
    ("password1234", "too weak"),
    ("qwertyuiopas", "too weak"),
    ("aaaaaaaaaaaaaaaa", "too weak"),
])
def test_weak_recovery_passphrase_is_refused_with_the_reason(drkit, folder: Path, weak: str,
                                                             why: str) -> None:
    res = drkit("keys", "init", env={"DRKIT_RECOVERY_PASSPHRASE": weak})
    assert res.exit_code == 2
    assert why in res.stderr and "recovery passphrase" in res.stderr
    assert len(weak) == 1 or weak not in res.stderr  # the passphrase is never echoed
    assert res.stderr.count("\n") == 1
    assert not (folder / "keys" / "writer.key").exists()  # nothing was created
    assert not (folder / "regions").exists()


def test_weak_approver_passphrase_is_refused(drkit, folder: Path) -> None:
    assert drkit("keys", "init", env={"DRKIT_RECOVERY_PASSPHRASE": STRONG}).exit_code == 0
    res = drkit("approvers", "enroll", "erin", env={"DRKIT_APPROVER_PASSPHRASE": "erin"})
    assert res.exit_code == 2 and "approver passphrase is too short" in res.stderr
    ok = drkit("approvers", "enroll", "erin",
               env={"DRKIT_APPROVER_PASSPHRASE": "erin keeps a long passphrase"})
    assert ok.exit_code == 0, ok.stderr


def test_key_files_readable_by_others_are_refused(drkit, folder: Path) -> None:
    assert drkit("keys", "init", env={"DRKIT_RECOVERY_PASSPHRASE": STRONG}).exit_code == 0
    assert drkit("snapshot").exit_code == 0
    writer = folder / "keys" / "writer.key"
    os.chmod(writer, 0o644)
    res = drkit("snapshot")
    assert res.exit_code == 2
    assert "permissions 0644 are too open" in res.stderr and "chmod 600" in res.stderr
    os.chmod(writer, 0o600)
    os.chmod(folder / "keys", 0o777)
    res = drkit("snapshot")
    assert res.exit_code == 2 and "let others replace the keys" in res.stderr
    os.chmod(folder / "keys", 0o700)
    os.chmod(folder / "keys" / "recovery.key", 0o640)
    res = drkit("restore", "latest", "--to", "out", env={"DRKIT_RECOVERY_PASSPHRASE": STRONG})
    assert res.exit_code == 2 and "recovery.key: permissions 0640 are too open" in res.stderr
    assert not (folder / "out").exists()
    os.chmod(folder / "keys" / "recovery.key", 0o600)
    res = drkit("restore", "latest", "--to", "out", env={"DRKIT_RECOVERY_PASSPHRASE": STRONG})
    assert res.exit_code == 0, res.stderr
