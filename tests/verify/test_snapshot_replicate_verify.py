"""End to end with the real writer: ``drkit keys init``, ``drkit snapshot``, ``drkit
replicate`` to a local folder, S3 (moto server) and COS (SDK), ``drkit verify``; then a
pack overwritten in S3 is named."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from moto_server import s3_client

from drkit.storage.url import parse_store_url

LOCK_DAYS = 3650


def run_json(drkit: Any, *args: str) -> tuple[int, dict[str, Any]]:
    if args and args[0] == "verify":
        # A test's fresh host is a first contact (exit 4); these tests are about what
        # verify finds (first contact: tests/security/test_trust_state.py).
        args = (*args, "--accept-first-contact")
    result = drkit(*args, "--json")
    assert result.stdout.strip(), result.stderr
    return result.exit_code, json.loads(result.stdout)


def test_snapshot_replicate_verify_and_tamper(tmp_path: Path, drkit: Any, store_url_env: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRKIT_RECOVERY_PASSPHRASE", "correct horse battery staple")
    s3 = store_url_env.s3(versioning=True, object_lock_days=LOCK_DAYS)
    cos = store_url_env.cos(versioning=True, object_lock_days=LOCK_DAYS)
    files = tmp_path / "data/files"
    files.mkdir(parents=True)
    (files / "a.bin").write_bytes(os.urandom(300_000))
    (files / "b.txt").write_text("merchant ledger\n" * 5000)
    (tmp_path / "drkit.toml").write_text(f"""\
[repository]
primary = "beijing"
keys = "keys"
pack_size_mib = 1

[regions.beijing]
url = "file:regions/beijing"

[regions.hangzhou]
url = "file:regions/hangzhou"
storage_class = "ARCHIVE"
lock_days = {LOCK_DAYS}

[regions.shanghai]
url = "{s3}"
storage_class = "GLACIER"
lock_days = {LOCK_DAYS}

[regions.nanjing]
url = "{cos}"
storage_class = "STANDARD_IA"
lock_days = {LOCK_DAYS}

[sources.files]
type = "files"
path = "data/files"

[verify]
state_dir = "verify-state"
""")
    assert drkit("keys", "init").exit_code == 0
    assert drkit("snapshot").exit_code == 0
    code, doc = run_json(drkit, "replicate")
    assert code == 0, doc
    size = doc["log_size"]
    assert all(r["log_size_after"] == size for r in doc["regions"].values())
    (files / "c.txt").write_text("new file\n" * 100)
    assert drkit("snapshot").exit_code == 0
    code, doc = run_json(drkit, "replicate")
    assert code == 0 and doc["log_size"] > size
    code, doc = run_json(drkit, "verify")
    assert code == 0, doc["findings"]
    assert {r["region"]: r["log_size"] for r in doc["regions"]} == dict.fromkeys(
        ("beijing", "hangzhou", "shanghai", "nanjing"), doc["regions"][0]["log_size"])

    packs = sorted(p for p in (tmp_path / "regions/beijing/packs").rglob("*") if p.is_file())
    key = packs[0].relative_to(tmp_path / "regions/beijing").as_posix()
    parsed = parse_store_url(s3)
    s3_client(parsed.params["endpoint"]).put_object(
        Bucket=parsed.bucket, Key=key, Body=b"\0" * packs[0].stat().st_size,
        StorageClass="GLACIER")
    code, doc = run_json(drkit, "verify")
    assert code == 1
    assert [(f["region"], f["check"], f["key"]) for f in doc["findings"]] == [
        ("shanghai", "object-changed", key)]
