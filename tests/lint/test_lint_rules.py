"""Per-rule tests: a policy in, finding ids out, for both clouds; and the safe counterparts."""

from __future__ import annotations

from typing import Any

import pytest
from lint.lint_support import aws, cam

from drkit.lint import CATEGORIES, load_rules

BJ = "qcs::cos:ap-beijing:uid/1250000000:drkit-backup-bj-1250000000/*"
S3 = "arn:aws:s3:::drkit-backup-aws/*"

# rule id -> a document that must trigger it
TRIGGERS: dict[str, Any] = {
    "aws_syntax": {"Version": "2012-10-18", "Statement": [
        {"Effect": "Permit", "Action": "s3:GetObject", "Resource": "bucket"}], "Extra": 1},
    "cam_syntax": {"version": "1.0", "statement": [
        {"effect": "maybe", "action": ["cos:GetObject"], "resource": ["cos://bucket"]}]},
    "aws_wildcard_action": aws({"Effect": "Allow", "Action": "s3:*", "Resource": S3}),
    "cam_wildcard_action": cam({"effect": "allow", "action": ["cos:*"], "resource": [BJ]}),
    "aws_wildcard_resource": aws({"Effect": "Allow", "Action": "ec2:CreateTags",
                                  "Resource": "*"}),
    "cam_wildcard_resource": cam({"effect": "allow", "action": ["cvm:ModifyInstancesAttribute"],
                                  "resource": ["*"]}),
    "aws_not_action": aws({"Effect": "Allow", "NotAction": "iam:*", "Resource": S3}),
    "cam_not_action": cam({"effect": "allow", "notAction": ["cam:*"], "resource": [BJ]}),
    "aws_not_resource": aws({"Effect": "Allow", "Action": "s3:GetObject",
                             "NotResource": "arn:aws:s3:::secret/*"}),
    "cam_not_resource": cam({"effect": "allow", "action": ["cos:GetObject"],
                             "notResource": [BJ]}),
    "aws_not_principal": aws({"Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::1:root"},
                              "Action": "s3:GetObject", "Resource": S3}),
    "cam_not_principal": cam({"effect": "allow", "notPrincipal": {"qcs": ["qcs::cam::uin/1:uin/1"]},
                              "action": ["cos:GetObject"], "resource": [BJ]}),
    "aws_public_principal": aws({"Effect": "Allow", "Principal": {"AWS": "*"},
                                 "Action": "s3:GetObject", "Resource": S3}),
    "cam_public_principal": {"version": "2.0", "Statement": [
        {"Effect": "Allow", "Principal": {"qcs": ["qcs::cam::anyone"]},
         "Action": ["name/cos:GetObject"], "Resource": [BJ]}]},
    "aws_privilege_escalation": aws({"Effect": "Allow", "Action": "iam:CreatePolicyVersion",
                                     "Resource": "arn:aws:iam::111122223333:policy/*"}),
    "cam_privilege_escalation": cam({"effect": "allow", "action": ["cam:AttachUserPolicy"],
                                     "resource": ["*"]}),
    "aws_code_execution": aws({"Effect": "Allow", "Action": "lambda:UpdateFunctionCode",
                               "Resource": "*"}),
    "cam_code_execution": cam({"effect": "allow", "action": ["tat:InvokeCommand"],
                               "resource": ["*"]}),
    "aws_credentials_exposure": aws({"Effect": "Allow", "Action": "iam:CreateAccessKey",
                                     "Resource": "*"}),
    "cam_credentials_exposure": cam({"effect": "allow", "action": ["cam:CreateAccessKey"],
                                     "resource": ["*"]}),
    "aws_data_destruction": aws({"Effect": "Allow", "Action": "ec2:DeleteSnapshot",
                                 "Resource": "arn:aws:ec2:ap-southeast-1::snapshot/*"}),
    "cam_data_destruction": cam({"effect": "allow", "action": ["cdb:OfflineIsolatedInstances"],
                                 "resource": ["qcs::cdb:ap-shanghai:uin/1:instanceId/*"]}),
    "aws_backup_tampering": aws({"Effect": "Allow", "Action": "s3:BypassGovernanceRetention",
                                 "Resource": S3}),
    "cam_backup_tampering": cam({"effect": "allow", "action": ["name/cos:PutBucketLifecycle"],
                                 "resource": [BJ]}),
    "aws_missing_condition": aws({"Effect": "Allow", "Action": "s3:DeleteObjectVersion",
                                  "Resource": S3}),
    "cam_missing_condition": cam({"effect": "allow", "action": ["cbs:TerminateDisks"],
                                  "resource": ["qcs::cbs:ap-shanghai:uin/1:volume/*"]}),
}

# rule id -> (cloud, a near-identical safe document that must NOT trigger it)
SAFE: dict[str, Any] = {
    "aws_wildcard_action": aws({"Effect": "Deny", "Action": "s3:*", "Resource": S3}),
    "cam_wildcard_action": cam({"effect": "allow", "action": ["cos:GetObject"],
                                "resource": [BJ]}),
    "aws_wildcard_resource": aws({"Effect": "Allow", "Action": "ec2:Describe*",
                                  "Resource": "*"}),
    "cam_wildcard_resource": cam({"effect": "allow", "action": ["cvm:DescribeInstances"],
                                  "resource": ["*"]}),
    "aws_not_action": aws({"Effect": "Deny", "NotAction": "s3:Get*", "Resource": S3}),
    "aws_public_principal": aws({"Effect": "Allow", "Principal": {"AWS": "*"},
                                 "Action": "s3:GetObject", "Resource": S3,
                                 "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}}}),
    "cam_public_principal": cam({"effect": "deny", "principal": {"qcs": ["qcs::cam::anyone"]},
                                 "action": ["cos:DeleteBucket"], "resource": [BJ]}),
    "aws_missing_condition": aws({"Effect": "Allow", "Action": "s3:DeleteObjectVersion",
                                  "Resource": S3, "Condition": {
                                      "Bool": {"aws:MultiFactorAuthPresent": "true"}}}),
    "cam_missing_condition": cam({"effect": "allow", "action": ["cbs:TerminateDisks"],
                                  "resource": ["qcs::cbs:ap-shanghai:uin/1:volume/*"],
                                  "condition": {"ip_equal": {"qcs:ip": ["10.0.0.0/8"]}}}),
    "aws_credentials_exposure": aws({"Effect": "Allow", "Action": "iam:GetUser",
                                     "Resource": "*"}),
    "cam_data_destruction": cam({"effect": "allow", "action": ["cdb:Describe*"],
                                 "resource": ["*"]}),
}


def _ids(report: Any) -> set[str]:
    return {f.rule for f in report.findings}


@pytest.mark.parametrize("rule_id", sorted(TRIGGERS))
def test_rule_fires(lint_doc, rule_id: str) -> None:
    report = lint_doc(TRIGGERS[rule_id])
    assert rule_id in _ids(report), [f.message for f in report.findings]
    finding = next(f for f in report.findings if f.rule == rule_id)
    assert finding.cloud == ("aws" if rule_id.startswith("aws_") else "tencent")


@pytest.mark.parametrize("rule_id", sorted(SAFE))
def test_rule_stays_quiet_on_safe_policy(lint_doc, rule_id: str) -> None:
    assert rule_id not in _ids(lint_doc(SAFE[rule_id]))


def test_every_rule_has_a_trigger_case_and_every_category_both_clouds() -> None:
    rules = load_rules()
    policy_rules = {r.id for r in rules if r.scope == "policy"}
    assert policy_rules == set(TRIGGERS)
    for category in CATEGORIES:
        clouds = {c for r in rules if r.category == category for c in r.clouds}
        assert clouds == {"aws", "tencent"}, category


def test_syntax_reports_each_problem(lint_doc) -> None:
    messages = [f.message for f in lint_doc(TRIGGERS["aws_syntax"]).findings
                if f.rule == "aws_syntax"]
    joined = "\n".join(messages)
    for expected in ("unknown top-level key 'Extra'", "bad version '2012-10-18'",
                     "bad effect 'Permit'", "unparsable resource 'bucket'"):
        assert expected in joined
    cam_messages = "\n".join(f.message for f in lint_doc(TRIGGERS["cam_syntax"]).findings)
    assert "bad version '1.0'" in cam_messages and "bad effect 'maybe'" in cam_messages
    assert "unparsable resource 'cos://bucket'" in cam_messages


def test_wildcard_everything_is_critical(lint_doc) -> None:
    report = lint_doc(aws({"Effect": "Allow", "Action": "*", "Resource": "*"}))
    wild = next(f for f in report.findings if f.rule == "aws_wildcard_action")
    assert wild.severity == "critical"


def test_passrole_with_compute_is_escalation(lint_doc) -> None:
    only_pass = aws({"Effect": "Allow", "Action": "iam:PassRole",
                     "Resource": "arn:aws:iam::1:role/x"})
    assert "aws_privilege_escalation" not in _ids(lint_doc(only_pass))
    both = aws({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/x"},
               {"Effect": "Allow", "Action": "lambda:CreateFunction", "Resource": "*"})
    assert "aws_privilege_escalation" in _ids(lint_doc(both))
    cam_both = cam({"effect": "allow", "action": ["cam:PassRole", "cvm:RunInstances"],
                    "resource": ["*"]})
    assert "cam_privilege_escalation" in _ids(lint_doc(cam_both))


def test_trust_policy_for_another_account_needs_condition(lint_doc) -> None:
    trust = aws({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
                 "Action": "sts:AssumeRole"})
    assert "aws_missing_condition" in _ids(lint_doc(trust))
    trust["Statement"][0]["Condition"] = {"StringEquals": {"sts:ExternalId": "drkit"}}
    assert "aws_missing_condition" not in _ids(lint_doc(trust))
