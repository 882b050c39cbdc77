"""Privilege escalation read with its conditions, and escalation by running code.

Real AWS managed policies (tests/lint/escalation/, see SOURCES.md there) and small
hand-written ones are linted through the CLI; separation of duties gets the edge from
"can run code on compute" to "holds the roles that compute carries".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lint.lint_support import NOW, aws, cam

from drkit.lint import lint_paths
from drkit.lint.catalog import catalog
from drkit.lint.compute import service_principals

HERE = Path(__file__).resolve().parent / "escalation"
ACCT = "111122223333"


def lint_file(drkit: Any, path: Path, *args: str) -> tuple[int, list[dict[str, Any]]]:
    res = drkit("lint", str(path), "--json", *args)
    return res.exit_code, json.loads(res.stdout)["findings"]


def lint_doc(drkit: Any, tmp_path: Path, doc: Any) -> list[dict[str, Any]]:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(doc, indent=2))
    return lint_file(drkit, path)[1]


def escalations(findings: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    return sorted((f["rule"], f["severity"], f["statement"]) for f in findings
                  if f["category"] == "privilege-escalation")


# ------------------------------------------------------------ real managed policies


def test_dynamodb_full_access_passes_roles_only_to_non_compute_services(drkit: Any) -> None:
    # PassRole on "*", but iam:PassedToService is application-autoscaling and DAX.
    _, findings = lint_file(drkit, HERE / "aws" / "AmazonDynamoDBFullAccess.json")
    assert escalations(findings) == [("aws_privilege_escalation", "low", 2)]
    assert all(f["severity"] != "critical" for f in findings)


def test_codepipeline_full_access_is_not_critical(drkit: Any) -> None:
    # One PassRole names cwe-role-* roles for events; the other is for codepipeline only.
    _, findings = lint_file(drkit, HERE / "aws" / "AWSCodePipeline_FullAccess.json")
    assert escalations(findings) == [
        ("aws_privilege_escalation", "low", "CodePipelineIAMPassRole"),
        ("aws_privilege_escalation", "low", "EventsIAMPassRole")]
    assert all(f["severity"] != "critical" for f in findings)


def test_iq_permission_role_can_only_attach_deny_all(drkit: Any) -> None:
    # iam:AttachRolePolicy with ArnEquals iam:PolicyARN arn:aws:iam::aws:policy/AWSDenyAll.
    code, findings = lint_file(drkit, HERE / "aws" / "AWSIQPermissionServiceRolePolicy.json",
                               "--severity-threshold", "medium")
    assert escalations(findings) == []
    assert not [f for f in findings if "AttachRolePolicy" in f["actions"]]
    assert code == 0


def test_lambda_full_access_stays_critical(drkit: Any) -> None:
    # PassRole on "*" to lambda.amazonaws.com, with lambda:CreateFunction: unscoped.
    _, findings = lint_file(drkit, HERE / "aws" / "AWSLambda_FullAccess.json")
    assert ("aws_privilege_escalation", "critical", 1) in escalations(findings)
    assert ("aws_code_execution", "high", 0) in escalations(findings)


def test_parliament_escalation_policy_is_more_than_medium(drkit: Any) -> None:
    code, findings = lint_file(drkit, HERE / "aws" / "parliament-privilege-escalation.json",
                               "--severity-threshold", "high")
    (hit,) = [f for f in findings if f["rule"] == "aws_code_execution"]
    assert hit["severity"] == "high"
    assert hit["actions"] == ["glue:UpdateDevEndpoint", "lambda:UpdateFunctionCode"]
    assert code == 1


def test_ssm_full_access_can_run_commands(drkit: Any) -> None:
    _, findings = lint_file(drkit, HERE / "aws" / "AmazonSSMFullAccess.json")
    (hit,) = [f for f in findings if f["rule"] == "aws_code_execution"]
    assert {"ssm:SendCommand", "ssm:StartSession"} <= set(hit["actions"])
    assert hit["severity"] == "high"


# ---------------------------------------------------------------------- PassRole

PASS = {"Sid": "Pass", "Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}
RUN = {"Sid": "Run", "Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*"}


@pytest.mark.parametrize(("changes", "severity"), [
    ({}, "critical"),
    ({"Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}},
     "critical"),
    ({"Condition": {"StringLike": {"iam:PassedToService": "ec2.amazonaws.com*"}}},
     "critical"),
    ({"Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com.cn"}}},
     "critical"),
    # Passing to every service but one is not a limit.
    ({"Condition": {"StringNotEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}},
     "critical"),
    # An operator drkit cannot read limits nothing.
    ({"Condition": {"StringEqualsFancy": {"iam:PassedToService": "dax.amazonaws.com"}}},
     "critical"),
    ({"Resource": f"arn:aws:iam::{ACCT}:role/*"}, "critical"),
    ({"Resource": "arn:aws:iam::*:role/service-role/*"}, "critical"),
    ({"Resource": f"arn:aws:iam::{ACCT}:role/web-instance"}, "medium"),
    ({"Resource": [f"arn:aws:iam::{ACCT}:role/web-*", f"arn:aws:iam::{ACCT}:role/batch"]},
     "medium"),
    ({"Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}}, "low"),
    ({"Condition": {"StringEquals": {"iam:PassedToService": ["dax.amazonaws.com"]}}}, "low"),
])
def test_pass_role_severity_follows_its_scope(drkit: Any, tmp_path: Path,
                                              changes: dict[str, Any], severity: str) -> None:
    findings = lint_doc(drkit, tmp_path, aws(dict(PASS, **changes), RUN))
    assert escalations(findings) == [("aws_privilege_escalation", severity, "Pass")]


def test_pass_role_to_the_one_service_of_several_launches(drkit: Any, tmp_path: Path) -> None:
    to_lambda = dict(PASS, Condition={"StringEquals": {
        "iam:PassedToService": "lambda.amazonaws.com"}})
    create = {"Effect": "Allow", "Action": "lambda:CreateFunction", "Resource": "*"}
    (hit,) = [f for f in lint_doc(drkit, tmp_path, aws(to_lambda, RUN, create))
              if f["rule"] == "aws_privilege_escalation"]
    assert hit["severity"] == "critical"
    assert "lambda:CreateFunction" in hit["actions"]
    assert "ec2:RunInstances" not in hit["actions"]


# ------------------------------------------------------------ attach with PolicyARN

ATTACH = {"Sid": "Attach", "Effect": "Allow", "Action": "iam:AttachRolePolicy",
          "Resource": f"arn:aws:iam::{ACCT}:role/app-*"}


@pytest.mark.parametrize(("condition", "expected"), [
    (None, [("aws_privilege_escalation", "critical", "Attach")]),
    ({"ArnEquals": {"iam:PolicyARN": "arn:aws:iam::aws:policy/AWSDenyAll"}}, []),
    ({"StringEquals": {"iam:PolicyARN": ["arn:aws:iam::aws:policy/AWSDenyAll"]}}, []),
    ({"ArnLike": {"iam:PolicyARN": "arn:aws:iam::aws:policy/*"}},
     [("aws_privilege_escalation", "critical", "Attach")]),
    ({"ArnEquals": {"iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess"}},
     [("aws_privilege_escalation", "critical", "Attach")]),
    ({"ArnEquals": {"iam:PolicyARN": f"arn:aws:iam::{ACCT}:policy/app-logs-writer"}},
     [("aws_privilege_escalation", "medium", "Attach")]),
    ({"ArnNotEquals": {"iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess"}},
     [("aws_privilege_escalation", "critical", "Attach")]),
])
def test_attach_reads_policy_arn(drkit: Any, tmp_path: Path, condition: Any,
                                 expected: list[Any]) -> None:
    st = dict(ATTACH, Condition=condition) if condition else ATTACH
    assert escalations(lint_doc(drkit, tmp_path, aws(st))) == expected


def test_policy_arn_does_not_limit_inline_policies(drkit: Any, tmp_path: Path) -> None:
    both = dict(ATTACH, Action=["iam:AttachRolePolicy", "iam:PutRolePolicy"],
                Condition={"ArnEquals": {"iam:PolicyARN": "arn:aws:iam::aws:policy/AWSDenyAll"}})
    (hit,) = [f for f in lint_doc(drkit, tmp_path, aws(both))
              if f["rule"] == "aws_privilege_escalation"]
    assert hit["severity"] == "critical" and hit["actions"] == ["iam:PutRolePolicy"]


# ------------------------------------------------------------------ code execution


@pytest.mark.parametrize(("statement", "severity"), [
    ({"Effect": "Allow", "Action": "lambda:UpdateFunctionCode", "Resource": "*"}, "high"),
    ({"Effect": "Allow", "Action": "lambda:UpdateFunctionCode",
      "Resource": f"arn:aws:lambda:ap-southeast-1:{ACCT}:function:report"}, "medium"),
    ({"Effect": "Allow", "Action": "ssm:StartSession", "Resource": "*"}, "high"),
    ({"Effect": "Allow", "Action": "ecs:ExecuteCommand", "Resource": "*"}, "high"),
    ({"Effect": "Allow", "Action": "ec2-instance-connect:SendSSHPublicKey",
      "Resource": "*"}, "high"),
    ({"Effect": "Allow", "Action": "codebuild:StartBuild", "Resource": "*"}, "high"),
    ({"Effect": "Allow", "Action": "sagemaker:CreatePresignedNotebookInstanceUrl",
      "Resource": "*"}, "high"),
])
def test_code_execution_aws(drkit: Any, tmp_path: Path, statement: dict[str, Any],
                            severity: str) -> None:
    hits = [f for f in lint_doc(drkit, tmp_path, aws(statement))
            if f["rule"] == "aws_code_execution"]
    assert [f["severity"] for f in hits] == [severity]


def test_code_execution_cam_and_explicit_deny(drkit: Any, tmp_path: Path) -> None:
    run = {"effect": "allow", "action": ["name/tat:InvokeCommand", "scf:UpdateFunctionCode"],
           "resource": ["*"]}
    (hit,) = [f for f in lint_doc(drkit, tmp_path, cam(run))
              if f["rule"] == "cam_code_execution"]
    assert hit["severity"] == "high"
    assert hit["actions"] == ["scf:UpdateFunctionCode", "tat:InvokeCommand"]
    deny = {"effect": "deny", "action": ["tat:*", "scf:*"], "resource": ["*"]}
    assert not [f for f in lint_doc(drkit, tmp_path, cam(run, deny))
                if f["rule"] == "cam_code_execution"]
    reads = {"Effect": "Allow", "Action": ["lambda:GetFunction", "ssm:GetCommandInvocation"],
             "Resource": "*"}
    assert not [f for f in lint_doc(drkit, tmp_path, aws(reads))
                if f["rule"] == "aws_code_execution"]


@pytest.mark.parametrize("cloud", ["aws", "tencent"])
def test_every_compute_action_names_its_service_principal(cloud: str) -> None:
    cat = catalog(cloud)
    for cls in ("compute_launch", "code_execution"):
        for action in cat.actions(cls):
            assert service_principals(action), f"{cloud} {cls} {action}"


# ------------------------------------------------------- separation of duties edges

PROD = f"arn:aws:rds:ap-southeast-1:{ACCT}:db:shop"
BACKUP = "arn:aws:s3:::backup-aws/*"
BACKUP_CAM = "qcs::cos:ap-beijing:uid/1250000000:backup-bj-1250000000/*"
TIERS = f"""
[tiers.production]
kind = "production"
resources = ["{PROD}"]
[tiers.backup-aws]
kind = "backup"
resources = ["{BACKUP}"]
[tiers.backup-beijing]
kind = "backup"
resources = ["{BACKUP_CAM}"]
"""
WIPE_AWS = aws({"Effect": "Allow", "Action": ["rds:DeleteDBInstance", "s3:DeleteObject"],
                "Resource": "*"})
WIPE_CAM = cam({"effect": "allow", "action": ["cos:DeleteObject"], "resource": ["*"]})


def trust(service: str) -> dict[str, Any]:
    if service.endswith("qcloud.com"):
        return cam({"effect": "allow", "principal": {"service": [service]},
                    "action": ["name/sts:AssumeRole"]})
    return aws({"Effect": "Allow", "Principal": {"Service": service},
                "Action": "sts:AssumeRole"})


def duties(tmp_path: Path, policies: dict[str, Any], principals: str) -> list[Any]:
    root = tmp_path / "pol"
    root.mkdir(parents=True)
    for name, doc in policies.items():
        (root / name).write_text(json.dumps(doc, indent=2))
    (root / "principals.toml").write_text(TIERS + principals)
    report = lint_paths([root], now=NOW)
    return [f for f in report.findings if f.rule == "separation_of_duties"]


CLEANUP = ('[[principals]]\nname = "cleanup"\ntype = "role"\n'
           f'arn = "arn:aws:iam::{ACCT}:role/cleanup"\n'
           'policies = ["wipe-aws.json", "wipe-cam.json"]\ntrust = ["trust.json"]\n')


@pytest.mark.parametrize(("run", "service"), [
    (aws({"Effect": "Allow", "Action": "lambda:UpdateFunctionCode", "Resource": "*"}),
     "lambda.amazonaws.com"),
    (aws({"Effect": "Allow", "Action": "ssm:SendCommand", "Resource": "*"}),
     "ec2.amazonaws.com"),
    (aws({"Effect": "Allow", "Action": "ssm:StartSession",
          "Resource": f"arn:aws:ec2:ap-southeast-1:{ACCT}:instance/i-0abc"}),
     "ec2.amazonaws.com"),
    (cam({"effect": "allow", "action": ["tat:InvokeCommand"], "resource": ["*"]}),
     "cvm.qcloud.com"),
])
def test_running_code_on_compute_holds_its_role(tmp_path: Path, run: dict[str, Any],
                                                service: str) -> None:
    policies = {"run.json": run, "wipe-aws.json": WIPE_AWS, "wipe-cam.json": WIPE_CAM,
                "trust.json": trust(service)}
    dev = '[[principals]]\nname = "dev"\ntype = "user"\npolicies = ["run.json"]\n'
    found = {f.principal: f for f in duties(tmp_path / "a", policies, dev + CLEANUP)}
    assert found["dev"].severity == "critical"
    assert "runs code on compute that carries it" in found["dev"].message
    assert f"trusts {service}" in found["dev"].message
    # The same role trusted by another service only: running code does not reach it.
    other = "glue.amazonaws.com" if "amazonaws" in service else "scf.qcloud.com"
    policies["trust.json"] = trust(other)
    found = {f.principal: f for f in duties(tmp_path / "b", policies, dev + CLEANUP)}
    assert "dev" not in found and "cleanup" in found


def test_code_execution_denied_is_no_edge(tmp_path: Path) -> None:
    run = aws({"Effect": "Allow", "Action": "lambda:*", "Resource": "*"},
              {"Effect": "Deny", "Action": ["lambda:Update*"], "Resource": "*"})
    policies = {"run.json": run, "wipe-aws.json": WIPE_AWS, "wipe-cam.json": WIPE_CAM,
                "trust.json": trust("lambda.amazonaws.com")}
    dev = '[[principals]]\nname = "dev"\npolicies = ["run.json"]\n'
    assert {f.principal for f in duties(tmp_path, policies, dev + CLEANUP)} == {"cleanup"}


def test_pass_role_edge_follows_passed_to_service(tmp_path: Path) -> None:
    def deployer(service: str) -> dict[str, Any]:
        return aws({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*",
                    "Condition": {"StringEquals": {"iam:PassedToService": service}}},
                   {"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*"})
    principals = '[[principals]]\nname = "deployer"\npolicies = ["deploy.json"]\n' + CLEANUP
    base = {"wipe-aws.json": WIPE_AWS, "wipe-cam.json": WIPE_CAM,
            "trust.json": trust("ec2.amazonaws.com")}
    found = duties(tmp_path / "a", dict(base, **{"deploy.json": deployer("ec2.amazonaws.com")}),
                   principals)
    assert "deployer" in {f.principal for f in found}
    found = duties(tmp_path / "b", dict(base, **{"deploy.json": deployer("dax.amazonaws.com")}),
                   principals)
    assert "deployer" not in {f.principal for f in found}


def test_attaching_only_deny_all_is_no_escalation(tmp_path: Path) -> None:
    attach = aws({"Effect": "Allow", "Action": "iam:AttachUserPolicy", "Resource": "*",
                  "Condition": {"ArnEquals": {
                      "iam:PolicyARN": "arn:aws:iam::aws:policy/AWSDenyAll"}}})
    # It can escalate in CAM, so only its AWS escalation decides whether it reaches the
    # AWS production and backup tiers.
    attach_cam = cam({"effect": "allow", "action": ["cam:AttachUserPolicy"], "resource": ["*"]})
    principals = ('[[principals]]\nname = "iq"\npolicies = ["attach.json", '
                  '"attach-cam.json"]\n')
    policies = {"attach.json": attach, "attach-cam.json": attach_cam}
    assert duties(tmp_path / "a", policies, principals) == []
    del attach["Statement"][0]["Condition"]
    (finding,) = duties(tmp_path / "b", policies, principals)
    assert finding.severity == "critical"
    assert "escalation via iam:AttachUserPolicy" in finding.message
