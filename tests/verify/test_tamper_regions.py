"""The user-side test of issue 4: a repository replicated to three regions (local, S3 on
the moto server, COS through cos-python-sdk-v5), then one region tampered with in each
way the issue lists; ``drkit verify`` must name it and keep every other region clean."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from moto_server import s3_client

from drkit.journal import Checkpoint, Journal, JournalEntry
from drkit.journal.log import batch_key, checkpoint_key, encode_batch, read_log
from drkit.journal.merkle import hash_leaf, root_hash
from drkit.storage.url import open_store, parse_store_url

# How each replica bucket is made: a bucket whose tamper needs a delete has versioning
# but no object lock (as an attacker's bucket lacking lock would); verify must then also
# report that missing lock, and nothing else that was not tampered with.
LOCK_DAYS = 3650  # as in conftest.py: retain-until stays in the future for years
LOCKED = {"versioning": True, "object_lock_days": LOCK_DAYS}
UNLOCKED = {"versioning": True}


def run_json(drkit: Any, *args: str) -> tuple[int, dict[str, Any]]:
    if args and args[0] == "verify":
        # A test's fresh host is a first contact (exit 4); these tests are about what
        # verify finds (first contact: tests/security/test_trust_state.py).
        args = (*args, "--accept-first-contact")
    result = drkit(*args, "--json")
    assert result.stdout.strip(), result.stderr
    return result.exit_code, json.loads(result.stdout)


def checks_by_region(doc: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {r["region"]: set() for r in doc["regions"]}
    for f in doc["findings"]:
        out[f["region"]].add(f["check"])
    return out


def setup_regions(make_repo: Any, store_url_env: Any, drkit: Any, *, s3: dict[str, Any],
                  cos: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    regions = {"hangzhou": "file:regions/hangzhou",
               "shanghai": store_url_env.s3(**s3),
               "nanjing": store_url_env.cos(**cos)}
    repo = make_repo(regions, classes={"hangzhou": "ARCHIVE", "shanghai": "STANDARD_IA",
                                       "nanjing": "STANDARD_IA"})
    repo.snapshot(6, tag="first")
    code, doc = run_json(drkit, "replicate")
    assert code == 0, doc
    saved = repo.root / "saved-hangzhou-journal"
    shutil.copytree(repo.root / "regions/hangzhou/journal", saved)
    repo.snapshot(5, tag="second")
    code, doc = run_json(drkit, "replicate")
    assert code == 0, doc
    assert {r: v["objects_copied"] for r, v in doc["regions"].items()} == {
        "hangzhou": 5, "shanghai": 5, "nanjing": 5}
    baseline = {name: {"bucket-object-lock"} for name, how in (("shanghai", s3), ("nanjing", cos))
                if how is UNLOCKED}
    doc = verify_expect(drkit, baseline)
    return repo, doc


def store(repo: Any, name: str) -> Any:
    return open_store(parse_store_url(repo.regions[name], base_dir=repo.root),
                      clock=repo.clock)


def bucket(repo: Any, name: str) -> str:
    return parse_store_url(repo.regions[name]).bucket


def endpoint(repo: Any, name: str) -> str:
    return parse_store_url(repo.regions[name]).params["endpoint"]


def verify_expect(drkit: Any, expected: dict[str, set[str]]) -> dict[str, Any]:
    code, doc = run_json(drkit, "verify")
    got = checks_by_region(doc)
    want = {name: expected.get(name, set()) for name in got}
    assert got == want, doc["findings"]
    assert code == (1 if any(want.values()) else 0)
    return doc


def test_clean_replicas_and_verify_is_clean(make_repo: Any, store_url_env: Any,
                                            drkit: Any) -> None:
    repo, doc = setup_regions(make_repo, store_url_env, drkit, s3=LOCKED, cos=LOCKED)
    by_name = {r["region"]: r for r in doc["regions"]}
    assert all(r["clean"] and r["log_size"] == 12 and r["objects_logged"] == 12
               for r in doc["regions"])
    # S3 and COS prove content from the listing (MD5 ETags); local folders are hashed.
    assert by_name["shanghai"]["objects_checked_by_listing"] == 12
    assert by_name["nanjing"]["objects_checked_by_listing"] == 12
    assert by_name["hangzhou"]["objects_hashed"] == 12
    assert by_name["beijing"]["objects_hashed"] == 12
    code, again = run_json(drkit, "replicate")
    assert code == 0
    assert all(r["objects_copied"] == 0 and r["objects_present"] == 12
               for r in again["regions"].values())
    # Cold class, retention and storage class really applied in each replica.
    info = store(repo, "shanghai").head(repo.written[3].key)
    assert info.storage_class == "STANDARD_IA" and info.retain_until is not None
    assert store(repo, "hangzhou").head(repo.written[3].key).needs_thaw
    code, doc = run_json(drkit, "verify", "--read-data")
    assert code == 0, doc["findings"]
    read = {r["region"]: (r["objects_read"], r["objects_unverified_cold"])
            for r in doc["regions"]}
    assert read == {"beijing": (12, 0), "shanghai": (12, 0), "nanjing": (12, 0),
                    "hangzhou": (1, 11)}  # config stays STANDARD; ARCHIVE needs a thaw


def test_deleted_object_on_s3(make_repo: Any, store_url_env: Any, drkit: Any) -> None:
    repo, _ = setup_regions(make_repo, store_url_env, drkit, s3=UNLOCKED, cos=LOCKED)
    key = repo.written[4].key
    s3_client(endpoint(repo, "shanghai")).delete_object(Bucket=bucket(repo, "shanghai"), Key=key)
    doc = verify_expect(drkit, {"shanghai": {"object-missing", "bucket-object-lock"}})
    missing = [f for f in doc["findings"] if f["check"] == "object-missing"]
    assert [f["key"] for f in missing] == [key] and missing[0]["found"] == "absent"


def test_same_size_overwrite_new_version_on_s3(make_repo: Any, store_url_env: Any,
                                               drkit: Any) -> None:
    repo, _ = setup_regions(make_repo, store_url_env, drkit, s3=LOCKED, cos=LOCKED)
    entry = repo.written[5]
    s3_client(endpoint(repo, "shanghai")).put_object(
        Bucket=bucket(repo, "shanghai"), Key=entry.key, Body=b"X" * entry.size)
    # The attacker's new version is also not in the configured storage class.
    doc = verify_expect(drkit, {"shanghai": {"object-changed", "storage-class"}})
    assert {f["key"] for f in doc["findings"]} == {entry.key}


def test_same_size_in_place_rewrite_on_local(make_repo: Any, store_url_env: Any,
                                             drkit: Any) -> None:
    repo, _ = setup_regions(make_repo, store_url_env, drkit, s3=LOCKED, cos=LOCKED)
    entry = repo.written[7]
    path = repo.root / "regions/hangzhou" / entry.key
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    doc = verify_expect(drkit, {"hangzhou": {"object-changed"}})
    assert [f["key"] for f in doc["findings"]] == [entry.key]


def test_deleted_newest_checkpoint_on_cos(make_repo: Any, store_url_env: Any,
                                          drkit: Any) -> None:
    repo, _ = setup_regions(make_repo, store_url_env, drkit, s3=LOCKED, cos=UNLOCKED)
    store(repo, "nanjing").delete(checkpoint_key(12))
    # The batch the deleted checkpoint covered is signed and still extends the log
    # (issue 24): reported with its entries, besides the rollback.
    doc = verify_expect(drkit, {"nanjing": {"journal-rollback", "journal-batch-uncovered",
                                            "bucket-object-lock"}})
    rollback = [f for f in doc["findings"] if f["check"] == "journal-rollback"][0]
    assert (rollback["expected"], rollback["found"]) == (">= 12 entries", "7 entries")


def test_journal_replaced_with_older_copy_on_local(make_repo: Any, store_url_env: Any,
                                                   drkit: Any) -> None:
    repo, _ = setup_regions(make_repo, store_url_env, drkit, s3=LOCKED, cos=LOCKED)
    journal_dir = repo.root / "regions/hangzhou/journal"
    shutil.rmtree(journal_dir)
    shutil.copytree(repo.root / "saved-hangzhou-journal", journal_dir)
    doc = verify_expect(drkit, {"hangzhou": {"journal-rollback"}})
    region = {r["region"]: r for r in doc["regions"]}["hangzhou"]
    assert region["log_size"] == 7 and region["objects_pending"] == 5


def test_forged_entry_without_valid_signature_on_s3(make_repo: Any, store_url_env: Any,
                                                    drkit: Any) -> None:
    repo, _ = setup_regions(make_repo, store_url_env, drkit, s3=LOCKED, cos=LOCKED)
    s3 = store(repo, "shanghai")
    view = read_log(s3, repo.origin, [repo.keys.signing_key.public_key()])
    evil = JournalEntry.from_info(s3.put("packs/ee/evil", b"backdoor"))
    data = encode_batch(repo.origin, 12, [evil], view.batch_keys[-1])
    bkey = batch_key(12, 13, data)
    s3.put(bkey, data)
    root = root_hash(view.leaf_hashes + [hash_leaf(evil.to_bytes())])
    forged = Checkpoint(repo.origin, 13, root, time=repo.clock.now(), batch=bkey)
    s3.put(checkpoint_key(13), forged.sign(Ed25519PrivateKey.generate()))
    doc = verify_expect(drkit, {"shanghai": {"journal-checkpoint-invalid", "object-unlogged"}})
    keys = {f["check"]: f["key"] for f in doc["findings"]}
    assert keys == {"journal-checkpoint-invalid": checkpoint_key(13),
                    "object-unlogged": "packs/ee/evil"}
    # Journal.append on that region would refuse too: the log does not verify.
    with pytest.raises(Exception, match="not signed by a trusted writer key"):
        Journal(s3, repo.origin).entries([repo.keys.signing_key.public_key()])


def test_unlogged_object_on_cos(make_repo: Any, store_url_env: Any, drkit: Any) -> None:
    repo, _ = setup_regions(make_repo, store_url_env, drkit, s3=LOCKED, cos=LOCKED)
    store(repo, "nanjing").put("snapshots/injected", b'{"fake": "snapshot"}')
    doc = verify_expect(drkit, {"nanjing": {"object-unlogged"}})
    assert [f["key"] for f in doc["findings"]] == ["snapshots/injected"]


def test_lifecycle_rule_expiring_after_one_day_on_s3(make_repo: Any, store_url_env: Any,
                                                     drkit: Any) -> None:
    repo, _ = setup_regions(make_repo, store_url_env, drkit, s3=LOCKED, cos=LOCKED)
    s3_client(endpoint(repo, "shanghai")).put_bucket_lifecycle_configuration(
        Bucket=bucket(repo, "shanghai"), LifecycleConfiguration={"Rules": [
            {"ID": "cleanup", "Status": "Enabled", "Filter": {"Prefix": ""},
             "Expiration": {"Days": 1}}]})
    doc = verify_expect(drkit, {"shanghai": {"bucket-lifecycle-expiration"}})
    assert doc["findings"][0]["found"] == "1 days"


def test_versioning_suspended_on_cos(make_repo: Any, store_url_env: Any, drkit: Any) -> None:
    repo, _ = setup_regions(make_repo, store_url_env, drkit, s3=LOCKED, cos=UNLOCKED)
    s3_client(endpoint(repo, "nanjing")).put_bucket_versioning(
        Bucket=bucket(repo, "nanjing"), VersioningConfiguration={"Status": "Suspended"})
    doc = verify_expect(drkit, {"nanjing": {"bucket-versioning", "bucket-object-lock"}})
    found = {f["check"]: f["found"] for f in doc["findings"]}
    assert found["bucket-versioning"] == "Suspended"


def test_state_dir_is_the_verifying_hosts(make_repo: Any, store_url_env: Any,
                                          drkit: Any, tmp_path: Path) -> None:
    repo, doc = setup_regions(make_repo, store_url_env, drkit, s3=LOCKED, cos=LOCKED)
    assert Path(doc["state_file"]).parent == repo.root / "verify-state"
    # Another state folder has never seen the larger log: the rollback goes unnoticed there
    # (only lag could show it), which is why the state belongs to the verifying host.
    shutil.rmtree(repo.root / "regions/hangzhou/journal")
    shutil.copytree(repo.root / "saved-hangzhou-journal", repo.root / "regions/hangzhou/journal")
    code, fresh = run_json(drkit, "verify", "--state-dir", str(tmp_path / "fresh"))
    assert code == 0 and fresh["findings"] == []
    code, known = run_json(drkit, "verify", "--region", "hangzhou")
    assert code == 1 and {f["check"] for f in known["findings"]} == {"journal-rollback"}


def test_lifecycle_rule_read_through_the_cos_sdk(make_repo: Any, store_url_env: Any,
                                                 drkit: Any) -> None:
    repo, _ = setup_regions(make_repo, store_url_env, drkit, s3=LOCKED, cos=LOCKED)
    s3_client(endpoint(repo, "nanjing")).put_bucket_lifecycle_configuration(
        Bucket=bucket(repo, "nanjing"), LifecycleConfiguration={"Rules": [
            {"ID": "old-versions", "Status": "Enabled", "Filter": {"Prefix": "packs/"},
             "NoncurrentVersionExpiration": {"NoncurrentDays": 1}}]})
    doc = verify_expect(drkit, {"nanjing": {"bucket-lifecycle-noncurrent"}})
    assert doc["findings"][0]["found"] == "1 days"
