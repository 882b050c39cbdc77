"""Issue 12 items 10, 11 and 13: ``drkit verify`` covers every object of a region.

Each attack is played with what the role holds: write access to one region's folder
(a cold copy's admin) or to a bucket's settings (a cloud account admin). Through the real
CLI on real files (local folders; S3 on the moto server for the bucket guardrails), it
must be reported with the right check and severity, and every region that was not
touched must stay clean (no false alarms).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from drkit.canonical import canonical_json, domain_hash
from drkit.cli.common import AppContext
from drkit.cli.main import cli
from drkit.clock import FixedClock
from drkit.storage.base import BucketSettings
from drkit.storage.cos import cos_owner_uin
from drkit.storage.s3 import lifecycle_rule_from_dict
from drkit.verify.bucket_policy import action_matches, destructive_grants
from drkit.verify.guardrails import check_bucket

RECOVERY = "recovery passphrase for tests"
LOCK = 365
CONFIG = f"""\
[repository]
primary = "beijing"
keys = "keys"
cache = ".drkit/cache"
pack_size_mib = 1

[regions.beijing]
url = "file:regions/beijing"
retention_days = 30
lock_days = 7

[regions.shanghai]
url = "file:regions/shanghai"
storage_class = "STANDARD_IA"
retention_days = {LOCK}
lock_days = {LOCK}

[regions.nanjing]
url = "file:regions/nanjing"
storage_class = "STANDARD_IA"
retention_days = {LOCK}
lock_days = {LOCK}

[sources.uploads]
type = "files"
path = "data/uploads"
"""
PEOPLE = ("alice", "bob", "carol", "dave")


# -- a project through the CLI (as tests/approval/conftest.py builds it) ----------------------
@dataclass
class Project:
    root: Path
    drkit: Any
    clock: FixedClock
    enrollments: dict[str, Path] = field(default_factory=dict)

    def region(self, name: str) -> Path:
        return self.root / "regions" / name

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

    def signer(self, name: str) -> list[str]:
        return ["--as", name, "--passphrase-file", str(self.passphrase_file(name))]

    def snapshot(self, content: str) -> str:
        uploads = self.root / "data" / "uploads"
        (uploads / f"{content}.txt").write_text(content * 3000)
        return str(self.json("snapshot")["snapshot_id"])

    def verify(self, *args: str) -> tuple[int, dict[str, Any]]:
        res = self.drkit("--json", "verify", "--accept-first-contact", *args)
        assert res.stdout.strip(), res.stderr
        return res.exit_code, json.loads(res.stdout)

    def approved_request(self, *args: str) -> str:
        rid = str(self.json("request", *args, "--reason", "tests need it",
                            *self.signer("alice"))["id"])
        self.run("approve", rid, *self.signer("bob"))
        self.run("approve", rid, *self.signer("carol"))
        return rid


def findings(doc: dict[str, Any], region: str | None = None) -> list[tuple[str, str, str]]:
    return sorted((f["check"], f["severity"], f["key"]) for f in doc["findings"]
                  if region is None or f["region"] == region)


def clean_regions(doc: dict[str, Any]) -> set[str]:
    return {r["region"] for r in doc["regions"] if r["clean"]}


@pytest.fixture(scope="session")
def approver_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four people's keys, made once (Argon2id is deliberately slow)."""
    root = tmp_path_factory.mktemp("coverage-approver-keys")
    (root / "drkit.toml").write_text(CONFIG + '\n[verify]\nstate_dir = "state"\n')
    clock = FixedClock(datetime(2026, 11, 1, tzinfo=UTC))
    for name in PEOPLE:
        secret = root / f"{name}.pass"
        secret.write_text(f"passphrase of {name}\n")
        res = CliRunner().invoke(cli, ["--config", str(root / "drkit.toml"), "approvers",
                                       "enroll", name, "--passphrase-file", str(secret)],
                                 obj=AppContext(clock=clock), catch_exceptions=False)
        assert res.exit_code == 0, res.stderr
    return root / "keys" / "approvers"


@pytest.fixture
def project(drkit: Any, clock: FixedClock, tmp_path: Path, approver_keys: Path) -> Project:
    """Keys, approvers, one approved and executed delete of an injected object (so every
    kind of approval record exists), two snapshots, replicated to both cold copies, and
    verified once from this host (its trusted state now knows every record)."""
    (tmp_path / "drkit.toml").write_text(CONFIG)
    (tmp_path / "data" / "uploads").mkdir(parents=True)
    proj = Project(tmp_path, drkit, clock)
    proj.run("keys", "init")
    shutil.copytree(approver_keys, tmp_path / "keys" / "approvers")
    for path in sorted((tmp_path / "keys" / "approvers").glob("*.enrollment.json")):
        proj.enrollments[path.name.split(".")[0]] = path
    proj.run("approvers", "bootstrap", *(str(proj.enrollments[n]) for n in PEOPLE))
    proj.snapshot("first")
    stray = proj.region("beijing") / "stray.bin"
    stray.write_bytes(b"left by someone")
    rid = proj.approved_request("delete-object", "beijing", "stray.bin")
    proj.run("execute", rid)
    # The approval happened before the next snapshot, as in real life (time moves on).
    clock.advance(timedelta(hours=1))
    proj.snapshot("second")
    proj.run("replicate")
    code, doc = proj.verify("--all")
    assert code == 0, doc["findings"]
    return proj


def any_pack(project: Project, region: str) -> str:
    packs = sorted(p for p in (project.region(region) / "packs").rglob("*") if p.is_file())
    return str(packs[0].relative_to(project.region(region)))


# -- item 10: audit/ and approval/ are covered ---------------------------------------------
def test_clean_project_has_every_record_kind_and_no_findings(project: Project) -> None:
    replica = project.region("shanghai") / "approval"
    kinds = {p.name for p in replica.iterdir()}
    assert {"requests", "decisions", "executed", "results", "registry"} <= kinds
    assert list((project.region("shanghai") / "audit" / "hosts").glob("*.json"))
    code, doc = project.verify("--all")
    assert code == 0 and doc["findings"] == []
    assert clean_regions(doc) == {"beijing", "shanghai", "nanjing"}


def test_audit_host_deleted_in_a_cold_copy(project: Project) -> None:
    host = sorted((project.region("shanghai") / "audit" / "hosts").glob("*.json"))[0]
    host.unlink()
    code, doc = project.verify("--all")
    assert code == 1
    got = findings(doc, "shanghai")
    assert ("audit-log", "critical", "audit/") in got
    key = str(host.relative_to(project.region("shanghai")))
    assert ("record-missing", "critical", key) in got
    assert clean_regions(doc) == {"beijing", "nanjing"}


def test_audit_host_deleted_seen_by_a_fresh_verifier(project: Project) -> None:
    """Without this host's earlier state, the audit log itself no longer verifies."""
    host = sorted((project.region("nanjing") / "audit" / "hosts").glob("*.json"))[0]
    host.unlink()
    code, doc = project.verify("--all", "--state-dir", str(project.root / "fresh-state"))
    assert code == 1
    assert ("audit-log", "critical", "audit/") in findings(doc, "nanjing")
    assert findings(doc, "beijing") == [] and findings(doc, "shanghai") == []


@pytest.mark.parametrize("key", ["approval/blob.bin", "audit/x/y",
                                 "approval/requests/" + "ab" * 32 + ".json"])
def test_three_megabytes_injected_under_records(project: Project, key: str) -> None:
    target = project.region("shanghai") / key
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"\x00" * (3 << 20))
    code, doc = project.verify("--all")
    assert code == 1
    check = "record-invalid" if "/requests/" in key else "record-injected"
    assert findings(doc, "shanghai") == [(check, "high", key)]
    assert clean_regions(doc) == {"beijing", "nanjing"}


def test_decision_deleted_in_a_cold_copy(project: Project) -> None:
    decision = sorted((project.region("nanjing") / "approval" / "decisions").rglob("*.json"))[0]
    decision.unlink()
    key = str(decision.relative_to(project.region("nanjing")))
    code, doc = project.verify("--all")
    assert code == 1 and findings(doc, "nanjing") == [("record-missing", "critical", key)]
    # A verifier that never saw the region still finds it: the primary has the decision,
    # and it is older than the region's newest checkpoint, so replicate copied it.
    code, doc = project.verify("--region", "nanjing", "--state-dir",
                               str(project.root / "fresh-state"))
    assert code == 1 and findings(doc, "nanjing") == [("record-missing", "critical", key)]


def test_request_edited_in_a_cold_copy(project: Project) -> None:
    request = sorted((project.region("shanghai") / "approval" / "requests").glob("*.json"))[0]
    doc_ = json.loads(request.read_bytes())
    doc_["request"]["reason"] = "nothing to see"
    request.chmod(0o644)
    request.write_bytes(canonical_json(doc_))
    key = str(request.relative_to(project.region("shanghai")))
    code, doc = project.verify("--all")
    assert code == 1
    assert ("record-changed", "critical", key) in findings(doc, "shanghai")
    assert clean_regions(doc) == {"beijing", "nanjing"}


def test_forged_but_well_formed_decision_injected(project: Project) -> None:
    """A decision signed by a key of the attacker's own, for a real request: it verifies
    as a document, but the primary never had it."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from drkit.approval.requests import DECISION_DOMAIN
    from drkit.repo.encoding import b64e, ed25519_text

    request = sorted((project.region("shanghai") / "approval" / "requests").glob("*.json"))[0]
    rid = request.name[:-5]
    key = Ed25519PrivateKey.generate()
    body = json.loads(canonical_json({
        "request": rid, "verdict": "approve", "name": "mallory",
        "key": ed25519_text(key.public_key()), "reason": "", "at": "2026-11-23T02:31:00Z",
        "os_user": "mallory", "host": "evil"}))
    data = canonical_json({"format": "drkit-approval-decision", "version": 1,
                           "decision": body, "signature": b64e(key.sign(
                               domain_hash(DECISION_DOMAIN, canonical_json(body))))})
    name = f"approval/decisions/{rid}/{hashlib.sha256(data).hexdigest()}.json"
    (project.region("shanghai") / name).write_bytes(data)
    code, doc = project.verify("--all")
    assert code == 1 and findings(doc, "shanghai") == [("record-unknown", "high", name)]
    assert clean_regions(doc) == {"beijing", "nanjing"}


def test_decision_for_a_request_the_region_lacks(project: Project) -> None:
    decisions = project.region("shanghai") / "approval" / "decisions"
    first = sorted(decisions.rglob("*.json"))[0]
    orphan = decisions / ("cd" * 32) / first.name
    orphan.parent.mkdir()
    shutil.copy(first, orphan)
    code, doc = project.verify("--region", "shanghai")
    assert code == 1
    got = findings(doc, "shanghai")
    assert [c for c, _s, k in got if k == str(orphan.relative_to(
        project.region("shanghai")))] == ["record-invalid"]


# -- item 13: retention sidecars of local regions -------------------------------------------
def sidecar(project: Project, region: str, key: str) -> Path:
    return project.region(region) / ".drkit-meta" / (key + ".json")


def test_sidecar_bytes_flipped(project: Project) -> None:
    key = any_pack(project, "shanghai")
    path = sidecar(project, "shanghai", key)
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))
    code, doc = project.verify("--all")
    assert code == 1
    # (the class the sidecar held is unreadable too, so the copy also counts as STANDARD)
    assert findings(doc, "shanghai") == [("retention-metadata-invalid", "high", key),
                                         ("storage-class", "medium", key)]
    assert clean_regions(doc) == {"beijing", "nanjing"}


def test_sidecar_deleted(project: Project) -> None:
    key = any_pack(project, "nanjing")
    sidecar(project, "nanjing", key).unlink()
    code, doc = project.verify("--all")
    assert code == 1
    assert findings(doc, "nanjing") == [("retention-metadata-missing", "high", key),
                                        ("storage-class", "medium", key)]
    assert clean_regions(doc) == {"beijing", "shanghai"}


def _shorten(path: Path, until: str) -> str:
    meta = json.loads(path.read_text())
    before = str(meta["retain_until"])
    meta["retain_until"] = until
    path.write_text(json.dumps(meta, sort_keys=True))
    return before


def test_retain_until_shortened_then_delete_refused(project: Project) -> None:
    key = any_pack(project, "shanghai")
    path = sidecar(project, "shanghai", key)
    _shorten(path, "2026-11-23T00:00:00Z")
    code, doc = project.verify("--all")
    assert code == 1
    assert findings(doc, "shanghai") == [("retention-shortened", "high", key)]
    assert clean_regions(doc) == {"beijing", "nanjing"}
    # Deleting it now (with approval) is refused: the journal's retain-until counts.
    res = project.run("request", "delete-object", "shanghai", key, "--reason", "try",
                      *project.signer("alice"), ok=False)
    assert res.exit_code != 0 and "retained until" in res.stderr and "journaled" in res.stderr
    assert (project.region("shanghai") / key).exists()


def test_primary_retention_shortened_keeps_prune_away(project: Project) -> None:
    """The primary's sidecars claim everything expired; prune still keeps what the
    journal says is retained."""
    meta_root = project.region("beijing") / ".drkit-meta"
    for path in meta_root.rglob("*.json"):
        meta = json.loads(path.read_text())
        if "retain_until" in meta:
            _shorten(path, "2026-01-01T00:00:00Z")
    code, doc = project.verify("--region", "beijing")
    assert code == 1 and {c for c, _s, _k in findings(doc, "beijing")} == {
        "retention-shortened"}
    # Three days on, the 7-day lock journaled for every object has not passed: prune
    # forgets nothing and deletes nothing, whatever the sidecars say.
    project.clock.advance(timedelta(days=3))
    plan = project.json("request", "prune", "--older-than-days", "0", "--reason", "t",
                        *project.signer("alice"))["plan"]
    assert plan["forget"] == [] and plan["delete"] == []
    assert len(plan["keep"]) == 2


def test_unreadable_sidecar_blocks_store_delete(tmp_path: Path) -> None:
    from drkit.errors import RetentionActive
    from drkit.storage.local import LocalStore

    store = LocalStore(tmp_path / "r")
    store.put("packs/aa/x", b"data")
    (tmp_path / "r" / ".drkit-meta" / "packs/aa/x.json").write_text("{not json")
    with pytest.raises(RetentionActive, match="retention is unknown"):
        store.delete("packs/aa/x")
    assert (tmp_path / "r" / "packs/aa/x").exists()


# -- item 11: bucket guardrails --------------------------------------------------------------
def _region(scheme: str = "s3") -> Any:
    from drkit.config import RegionConfig
    from drkit.storage.url import parse_store_url

    url = "s3://b-1/x?region=us-east-1" if scheme == "s3" else \
        "cos://b-1250000000/x?region=ap-shanghai"
    return RegionConfig(name="shanghai", url=parse_store_url(url), storage_class="STANDARD_IA",
                        lock_days=30, retention_days=90)


GOOD = dict(versioning="Enabled", object_lock_enabled=True, object_lock_mode="COMPLIANCE",
            default_retention_days=30)


def _checks(scheme: str, **kw: Any) -> list[tuple[str, str]]:
    return [(f.check, f.severity)
            for f in check_bucket(BucketSettings(**{**GOOD, **kw}), _region(scheme))]


COS_OWNER = "qcs::cam::uin/100000000001:uin/100000000001"


def _cos_policy(principal: Any, actions: list[str], effect: str = "allow") -> str:
    return json.dumps({"version": "2.0", "statement": [
        {"principal": {"qcs": principal}, "effect": effect, "action": actions,
         "resource": ["qcs::cos:ap-shanghai:uid/1250000000:b-1250000000/*"]}]})


@pytest.mark.parametrize("rule, check", [
    ({"ID": "date", "Status": "Enabled", "Filter": {"Prefix": ""},
      "Expiration": {"Date": "2027-01-01T00:00:00.000Z"}}, "bucket-lifecycle-expiration"),
    ({"ID": "nc", "Status": "Enabled", "Filter": {"Prefix": ""},
      "NoncurrentVersionTransition": {"NoncurrentDays": "30", "StorageClass": "DEEP_ARCHIVE"}},
     "bucket-lifecycle-noncurrent-transition"),
    ({"ID": "second", "Status": "Enabled", "Filter": {"Prefix": ""},
      "Transition": [{"Days": "400", "StorageClass": "ARCHIVE"},
                     {"Date": "2027-01-01T00:00:00.000Z", "StorageClass": "DEEP_ARCHIVE"}]},
     "bucket-lifecycle-transition"),
    ({"ID": "old", "Status": "Enabled", "Filter": {"Prefix": ""},
      "NoncurrentVersionExpiration": {"NoncurrentDays": "1"}}, "bucket-lifecycle-noncurrent"),
])
def test_cos_lifecycle_rule_classes(rule: dict[str, Any], check: str) -> None:
    """COS rules as cos-python-sdk-v5 parses its XML (singular names, string numbers)."""
    parsed = lifecycle_rule_from_dict(rule)
    assert [c for c, _s in _checks("cos", lifecycle_rules=(parsed,))] == [check]
    disabled = lifecycle_rule_from_dict({**rule, "Status": "Disabled"})
    assert _checks("cos", lifecycle_rules=(disabled,)) == []


@pytest.mark.parametrize("actions", [["name/cos:DeleteObject"], ["name/cos:*"], ["cos:*"],
                                     ["*"], ["name/cos:Delete*"],
                                     ["name/cos:PutBucketLifecycle"]])
def test_cos_policy_grant_to_another_account(actions: list[str]) -> None:
    owner = cos_owner_uin(COS_OWNER)
    assert owner == "100000000001"
    foreign = _cos_policy(["qcs::cam::uin/100000000999:uin/100000000999"], actions)
    assert _checks("cos", policy=foreign, owner_account=owner) == [
        ("bucket-policy-grant", "high")]
    anyone = _cos_policy(["qcs::cam::anyone:anyone"], actions)
    assert ("bucket-policy-grant", "critical") in _checks("cos", policy=anyone,
                                                          owner_account=owner)
    own = _cos_policy(["qcs::cam::uin/100000000001:uin/100000000011"], actions)
    assert _checks("cos", policy=own, owner_account=owner) == []


def test_cos_policy_harmless_or_denied_grants_are_not_findings() -> None:
    owner = "100000000001"
    read_only = _cos_policy(["qcs::cam::uin/100000000999:uin/100000000999"],
                            ["name/cos:GetObject", "name/cos:HeadObject"])
    assert _checks("cos", policy=read_only, owner_account=owner) == []
    text = json.dumps({"version": "2.0", "statement": [
        {"principal": {"qcs": ["qcs::cam::uin/100000000999:uin/100000000999"]},
         "effect": "allow", "action": ["name/cos:*"]},
        {"principal": {"qcs": ["qcs::cam::uin/100000000999:uin/100000000999"]},
         "effect": "deny", "action": ["name/cos:Delete*", "name/cos:Put*"]}]})
    assert _checks("cos", policy=text, owner_account=owner) == []
    assert _checks("cos", policy="{broken", owner_account=owner) == [
        ("bucket-policy-unreadable", "high")]


@pytest.mark.parametrize("action, expected", [
    ("s3:DeleteObjectVersion", True), ("s3:PutLifecycleConfiguration", True),
    ("s3:BypassGovernanceRetention", True), ("s3:Delete*", True), ("s3:*", True),
    ("s3:Put*", True), ("*", True), ("S3:deleteobjectversion", True),
    ("s3:GetObject", False), ("s3:List*", False)])
def test_s3_policy_action_wildcards(action: str, expected: bool) -> None:
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "x", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
         "Action": action, "Resource": "arn:aws:s3:::b-1/*"}]})
    grants = destructive_grants(policy, owner_account="123456789012")
    assert bool(grants) is expected
    assert action_matches("name/cos:Delete*", "cos:DeleteObject")


def test_s3_policy_principal_forms() -> None:
    def policy(principal: Any, **extra: Any) -> str:
        return json.dumps({"Statement": [{"Effect": "Allow", "Principal": principal,
                                          "Action": "s3:DeleteObjectVersion", **extra}]})

    owner = "123456789012"
    assert [g.principal for g in destructive_grants(policy("*"), owner_account=owner)] == ["*"]
    assert destructive_grants(policy({"AWS": "999999999999"}), owner_account=owner)
    assert not destructive_grants(policy({"AWS": f"arn:aws:iam::{owner}:role/ops"}),
                                  owner_account=owner)
    assert not destructive_grants(policy({"Service": "logging.s3.amazonaws.com"}),
                                  owner_account=owner)
    # Owner unknown (no STS): only grants to anyone can be judged.
    assert not destructive_grants(policy({"AWS": "999999999999"}), owner_account=None)
    conditional = destructive_grants(
        policy({"AWS": "999999999999"}, Condition={"Bool": {"aws:SecureTransport": "true"}}),
        owner_account=owner)
    assert conditional and conditional[0].conditional


@pytest.fixture
def make_s3_repo(drkit: Any, clock: FixedClock, tmp_path: Path, store_url_env: Any
                 ) -> Iterator[Any]:
    """A local primary and one S3 replica on the moto server with versioning and a
    COMPLIANCE default retention (every bucket guardrail satisfied)."""
    from moto_server import s3_client

    from drkit.storage.url import parse_store_url

    url = store_url_env.s3(versioning=True, object_lock_days=LOCK)
    (tmp_path / "drkit.toml").write_text(
        '[repository]\nprimary = "beijing"\nkeys = "keys"\ncache = ".drkit/cache"\n\n'
        '[regions.beijing]\nurl = "file:regions/beijing"\n\n'
        f'[regions.shanghai]\nurl = "{url}"\nstorage_class = "STANDARD_IA"\n'
        f"lock_days = {LOCK}\nretention_days = {LOCK}\n\n"
        '[sources.uploads]\ntype = "files"\npath = "data/uploads"\n')
    (tmp_path / "data" / "uploads").mkdir(parents=True)
    (tmp_path / "data" / "uploads" / "a.txt").write_text("a" * 5000)
    env = {"DRKIT_RECOVERY_PASSPHRASE": RECOVERY}
    assert drkit("keys", "init", env=env).exit_code == 0
    assert drkit("snapshot", env=env).exit_code == 0
    assert drkit("replicate").exit_code == 0
    parsed = parse_store_url(url)
    endpoint = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))["endpoint"]
    yield s3_client(endpoint), parsed.bucket


def _verify_json(drkit: Any) -> tuple[int, dict[str, Any]]:
    res = drkit("--json", "verify", "--all", "--accept-first-contact")
    assert res.stdout.strip(), res.stderr
    return res.exit_code, json.loads(res.stdout)


def test_s3_guardrail_gaps_on_moto(make_s3_repo: Any, drkit: Any) -> None:
    client, bucket = make_s3_repo
    code, doc = _verify_json(drkit)
    assert code == 0 and doc["findings"] == [], doc["findings"]
    client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={
        "Rules": [
            {"ID": "date", "Status": "Enabled", "Filter": {"Prefix": ""},
             "Expiration": {"Date": datetime(2027, 1, 1, tzinfo=UTC)}},
            {"ID": "nc", "Status": "Enabled", "Filter": {"Prefix": ""},
             "NoncurrentVersionTransitions": [{"NoncurrentDays": 30,
                                               "StorageClass": "DEEP_ARCHIVE"}]}]})
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Sid": "partner", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
             "Action": ["s3:DeleteObjectVersion", "s3:PutLifecycleConfiguration",
                        "s3:BypassGovernanceRetention"],
             "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]},
            {"Sid": "wild", "Effect": "Allow",
             "Principal": {"AWS": "888888888888"}, "Action": "s3:Delete*",
             "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    code, doc = _verify_json(drkit)
    assert code == 1
    got = {(f["check"], f["severity"], f["found"].split(" ")[0]) for f in doc["findings"]
           if f["region"] == "shanghai"}
    assert {c for c, _s, _f in got} == {"bucket-lifecycle-expiration",
                                        "bucket-lifecycle-noncurrent-transition",
                                        "bucket-policy-grant"}
    grants = [f for f in doc["findings"] if f["check"] == "bucket-policy-grant"]
    assert sorted(f["severity"] for f in grants) == ["high", "high"]
    partner = next(f for f in grants if "999999999999" in f["message"])
    assert {"s3:DeleteObjectVersion", "s3:PutLifecycleConfiguration",
            "s3:BypassGovernanceRetention"} <= set(partner["found"].split(", "))
    assert all(f["region"] == "shanghai" for f in doc["findings"])


def test_s3_policy_to_own_account_is_clean_on_moto(make_s3_repo: Any, drkit: Any) -> None:
    client, bucket = make_s3_repo
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/backup"},
         "Action": "s3:*", "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    code, doc = _verify_json(drkit)
    assert code == 0, doc["findings"]
