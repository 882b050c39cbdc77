"""``drkit replicate`` as a user runs it: real stores (local folders, S3 on the moto
server, COS through the SDK), real key files, the real Journal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drkit.journal import Checkpoint, JournalEntry, read_log
from drkit.journal.log import batch_key, checkpoint_key, encode_batch
from drkit.journal.merkle import hash_leaf, root_hash

LOCK_DAYS = 3650


def run_json(drkit: Any, *args: str) -> tuple[int, dict[str, Any]]:
    if args and args[0] == "verify":
        # A test's fresh host is a first contact (exit 4); these tests are about what
        # verify finds (first contact: tests/security/test_trust_state.py).
        args = (*args, "--accept-first-contact")
    result = drkit(*args, "--json")
    assert result.stdout.strip(), result.stderr
    return result.exit_code, json.loads(result.stdout)


def test_summary_and_second_run_copies_nothing(make_repo: Any, store_url_env: Any,
                                               drkit: Any) -> None:
    repo = make_repo({"hangzhou": "file:regions/hangzhou",
                      "shanghai": store_url_env.s3(versioning=True,
                                                   object_lock_days=LOCK_DAYS)},
                     classes={"shanghai": "GLACIER"})
    entries = repo.snapshot(7)
    code, doc = run_json(drkit, "replicate")
    assert code == 0, doc
    total = sum(e.size for e in repo.written)
    for name in ("hangzhou", "shanghai"):
        r = doc["regions"][name]
        assert (r["objects_copied"], r["bytes_copied"]) == (8, total)
        assert (r["log_size_before"], r["log_size_after"], r["lag_entries"]) == (0, 8, 0)
        assert r["journal_objects_copied"] == 4  # 2 batches + 2 checkpoints
    assert doc["regions"]["shanghai"]["retention"] == "object-lock"
    assert doc["regions"]["hangzhou"]["retention"] == "sidecar"
    s3 = repo.store("shanghai")
    info = s3.head(entries[0].key)
    assert info.storage_class == "GLACIER" and info.needs_thaw and info.retain_until
    assert s3.head("config").storage_class == "STANDARD"
    assert s3.head(checkpoint_key(8)).storage_class == "STANDARD"
    code, doc = run_json(drkit, "replicate", "--region", "shanghai")
    assert code == 0 and list(doc["regions"]) == ["shanghai"]
    assert doc["regions"]["shanghai"]["objects_copied"] == 0
    assert doc["regions"]["shanghai"]["objects_present"] == 8
    text = drkit("replicate")
    assert text.exit_code == 0
    assert "hangzhou: copied 0 objects (0 B) and 0 journal objects; 8 already there; " \
           "log 8 -> 8 of 8" in text.stdout


def test_every_backend_combination_cos_primary(make_repo: Any, store_url_env: Any,
                                               drkit: Any) -> None:
    repo = make_repo({"hangzhou": "file:regions/hangzhou",
                      "shanghai": store_url_env.s3(versioning=True,
                                                   object_lock_days=LOCK_DAYS)},
                     primary=store_url_env.cos(versioning=True))
    repo.snapshot(4)
    code, doc = run_json(drkit, "replicate")
    assert code == 0, doc
    assert {n: r["log_size_after"] for n, r in doc["regions"].items()} == {
        "hangzhou": 5, "shanghai": 5}
    code, doc = run_json(drkit, "verify")
    # The COS primary bucket has no object lock: that guardrail, and nothing else.
    assert code == 1
    assert {(f["region"], f["check"]) for f in doc["findings"]} == {
        ("beijing", "bucket-object-lock")}


def test_s3_primary_to_cos_and_local(make_repo: Any, store_url_env: Any, drkit: Any) -> None:
    repo = make_repo({"nanjing": store_url_env.cos(versioning=True,
                                                   object_lock_days=LOCK_DAYS),
                      "hangzhou": "file:regions/hangzhou"},
                     primary=store_url_env.s3(versioning=True, object_lock_days=LOCK_DAYS))
    repo.snapshot(3)
    code, doc = run_json(drkit, "replicate")
    assert code == 0, doc
    assert doc["regions"]["nanjing"]["retention"] == "object-lock"
    code, doc = run_json(drkit, "verify")
    assert code == 0, doc["findings"]


def test_different_bytes_in_a_region_are_a_finding_never_overwritten(
        make_repo: Any, drkit: Any) -> None:
    repo = make_repo({"hangzhou": "file:regions/hangzhou"})
    entries = repo.snapshot(3)
    planted = b"z" * entries[1].size
    repo.store("hangzhou").put(entries[1].key, planted)
    code, doc = run_json(drkit, "replicate")
    assert code == 1
    checks = [(f["check"], f["key"]) for f in doc["findings"]]
    assert checks == [("replica-differs", entries[1].key), ("journal-not-copied", "")]
    assert repo.store("hangzhou").get(entries[1].key) == planted
    assert doc["regions"]["hangzhou"]["objects_copied"] == 3
    assert doc["regions"]["hangzhou"]["log_size_after"] == 0  # no journal naming a bad copy


def test_unproven_tombstone_does_not_stop_the_copy(make_repo: Any, drkit: Any) -> None:
    """A tombstone without proof of approval (here one citing a made-up approval, which
    the writer key alone can append) is ignored: the object is still copied and owed, and
    verify reports the tombstone in every region (approved deletions with their proof:
    tests/security/test_tombstones.py)."""
    repo = make_repo({"hangzhou": "file:regions/hangzhou"})
    gone, _kept = repo.snapshot(2)
    repo.append([JournalEntry("tombstone", gone.key, gone.size, gone.sha256,
                              note={"approval": "req-7"})])
    code, doc = run_json(drkit, "replicate")
    assert code == 0, doc
    assert doc["regions"]["hangzhou"]["objects_copied"] == 3  # config, `gone` and `kept`
    assert repo.store("hangzhou").exists(gone.key)
    code, doc = run_json(drkit, "verify")
    assert code == 1
    assert sorted((f["region"], f["severity"], f["check"], f["key"]) for f in doc["findings"]
                  ) == [("beijing", "critical", "tombstone-unproven", gone.key),
                        ("hangzhou", "critical", "tombstone-unproven", gone.key)]


def test_refuses_to_copy_from_a_tampered_primary(make_repo: Any, drkit: Any) -> None:
    repo = make_repo({"hangzhou": "file:regions/hangzhou"})
    repo.snapshot(2)
    primary = repo.primary
    view = read_log(primary, repo.origin, [repo.keys.signing_key.public_key()])
    evil = JournalEntry.from_info(primary.put("packs/ee/evil", b"evil"))
    data = encode_batch(repo.origin, 3, [evil], view.batch_keys[-1])
    primary.put(batch_key(3, 4, data), data)
    cp = Checkpoint(repo.origin, 4, root_hash(view.leaf_hashes + [hash_leaf(evil.to_bytes())]),
                    batch=batch_key(3, 4, data))
    primary.put(checkpoint_key(4), cp.sign(Ed25519PrivateKey.generate()))
    result = drkit("replicate")
    assert result.exit_code == 1
    assert "journal/checkpoint/0000000000000004" in result.stderr
    assert "not signed by a trusted writer key" in result.stderr
    assert not (repo.root / "regions/hangzhou/packs").exists()


def test_usage_errors(make_repo: Any, drkit: Any) -> None:
    make_repo({"hangzhou": "file:regions/hangzhou"})
    bad = drkit("replicate", "--region", "nowhere")
    assert bad.exit_code == 2 and "unknown region 'nowhere'" in bad.stderr
    primary = drkit("replicate", "--region", "beijing")
    assert primary.exit_code == 2 and "primary" in primary.stderr


def test_resumable_after_a_kill(make_repo: Any, drkit: Any, tmp_path: Path) -> None:
    repo = make_repo({"hangzhou": "file:regions/hangzhou"})
    repo.snapshot(400, size=20_000)
    target = tmp_path / "regions/hangzhou/packs"
    env = {k: v for k, v in os.environ.items()}
    env["DRKIT_CONFIG"] = str(tmp_path / "drkit.toml")
    proc = subprocess.Popen([sys.executable, "-m", "drkit", "replicate", "--workers", "1"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    copied = 0
    while time.monotonic() < deadline and proc.poll() is None:
        copied = sum(len(files) for _d, _s, files in os.walk(target)) if target.exists() else 0
        if copied >= 40:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "replicate finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    hangzhou = repo.store("hangzhou")
    # Killed mid-way: some data, no journal yet (journal objects are copied last).
    assert 40 <= sum(1 for _ in hangzhou.list("packs/")) < 400
    assert list(hangzhou.list("journal/")) == []
    code, doc = run_json(drkit, "verify", "--region", "hangzhou")
    assert code == 0, doc["findings"]  # copies without a journal are pending, not injected
    assert doc["regions"][0]["objects_pending"] >= 40
    code, doc = run_json(drkit, "replicate")
    assert code == 0, doc
    r = doc["regions"]["hangzhou"]
    assert r["objects_copied"] + r["objects_present"] == 401 and r["log_size_after"] == 401
    code, doc = run_json(drkit, "verify", "--region", "hangzhou")
    assert code == 0 and doc["regions"][0]["objects_hashed"] == 401


def test_object_lost_on_the_primary_is_a_finding(make_repo: Any, drkit: Any) -> None:
    repo = make_repo({"hangzhou": "file:regions/hangzhou"})
    lost, kept = repo.snapshot(2)
    (repo.root / "regions/beijing" / lost.key).unlink()
    code, doc = run_json(drkit, "replicate")
    assert code == 1
    assert {(f["check"], f["key"]) for f in doc["findings"]} == {
        ("primary-unreadable", lost.key), ("journal-not-copied", "")}
    assert repo.store("hangzhou").exists(kept.key)
