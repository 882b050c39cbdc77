"""Key files: creation, loading, passphrase handling, corruption."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from drkit.config import load_config
from drkit.errors import InputError, KeyFileError, WrongPassphrase
from drkit.repo import keys

FAST_KDF = {"name": "argon2id", "iterations": 1, "lanes": 1, "memory_cost": 8192}


def _config(tmp_path: Path) -> Path:
    cfg = tmp_path / "drkit.toml"
    cfg.write_text('[repository]\nprimary = "a"\n[regions.a]\nurl = "file:regions/a"\n')
    return cfg


def test_init_and_load_roundtrip(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path))
    made = keys.init_keys(config.keys_dir, "correct horse", kdf=FAST_KDF)
    assert stat.S_IMODE(config.keys_dir.stat().st_mode) == 0o700
    for path in config.keys_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = keys.load_writer_keys(config)
    assert loaded.repository_id == made.repository_id
    assert loaded.id_key == made.id_key
    trusted = keys.load_trusted_writer_keys(config)
    assert [k.public_bytes_raw() for k in trusted] == [
        made.signing_key.public_key().public_bytes_raw()]
    private = keys.unlock_recovery_key(config.keys_dir / keys.RECOVERY_KEY_FILE, "correct horse")
    assert private.public_key().public_bytes_raw() == made.recovery_public.public_bytes_raw()
    with pytest.raises(InputError, match="already exist"):
        keys.init_keys(config.keys_dir, "x", kdf=FAST_KDF)


def test_wrong_passphrase_and_corruption(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path))
    keys.init_keys(config.keys_dir, "right", kdf=FAST_KDF)
    path = config.keys_dir / keys.RECOVERY_KEY_FILE
    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        keys.unlock_recovery_key(path, "wrong")
    writer = config.keys_dir / keys.WRITER_KEY_FILE
    writer.write_bytes(writer.read_bytes()[:-7])
    with pytest.raises(KeyFileError, match="corrupted"):
        keys.load_writer_signing_key(config)
    path.write_text("{not json")
    with pytest.raises(KeyFileError, match="corrupted"):
        keys.unlock_recovery_key(path, "right")
