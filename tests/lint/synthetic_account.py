"""A synthetic ``aws iam get-account-authorization-details`` export of any size (issue 14).

Used by bench/lint_duties.py (as synthetic_account: separation of duties timed at 200,
1,000 and 2,000 principals) and tests/lint/test_lint_duties_scale.py (as
lint.synthetic_account: the verdicts on a small one). Imports nothing else from the tests
folder. The managed policies are the real AWS documents of tests/lint/exports/aws.

The account has teams: each a group whose members may assume the team's roles
(``role/team-<k>-*``); roles trusting the account root, a member of another team,
Lambda or EC2; operators holding RDS and S3 full access; and a few principals with an
escalation path: administrators (``*`` on ``*``), users who may attach policies to
themselves, pass another team's roles to new instances, create access keys for any user,
or update any Lambda function's code (which runs as every role Lambda may assume).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ACCT = "111122223333"
REGION = "ap-southeast-1"
EXAMPLE = Path(__file__).resolve().parent / "exports" / "aws" / "account.json"
MANAGED = ("AmazonRDSFullAccess", "AmazonS3FullAccess", "AmazonS3ReadOnlyAccess",
           "AWSBackupFullAccess")
TIERS = f"""\
[tiers.production]
kind = "production"
resources = ["arn:aws:rds:{REGION}:{ACCT}:db:shop-prod"]

[tiers.backup-s3]
kind = "backup"
resources = ["arn:aws:s3:::shop-backup-sg/*"]

[tiers.backup-vault]
kind = "backup"
resources = ["arn:aws:backup:{REGION}:{ACCT}:backup-vault:shop-vault",
             "arn:aws:backup:{REGION}:{ACCT}:recovery-point:*"]
"""

# Every n-th user or role gets the extra below (the first of each kind is number 0).
ADMIN_USERS = 3  # users 0..2 are in the Admins group ("*" on "*")
OPERATOR_EVERY = 50  # users in the Operators group (RDS and S3 full access)
VAULT_EVERY = 30  # users with an inline policy deleting recovery points
ATTACH_SELF_EVERY = 97  # users who may attach any policy to themselves
PASS_ROLE_EVERY = 89  # users who may pass another team's roles to new EC2 instances
ACCESS_KEY_EVERY = 83  # users who may create access keys for any user
LAMBDA_CODE_EVERY = 25  # users who may update any Lambda function's code
# Roles with AWSBackupFullAccess, AmazonS3FullAccess, AmazonRDSFullAccess: number j has it
# when j % every is one of the residues (chosen so that each is held by roles of every
# kind of trust: j % 5 is 0 Lambda, 1 EC2, 2 and 3 the account root, 4 a named user).
BACKUP_ROLES = (40, (0, 24))
S3_ROLES = (60, (1, 33))
RDS_ROLES = (70, (2, 34))


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _managed(name: str, arn: str, document: dict[str, Any]) -> dict[str, Any]:
    return {"PolicyName": name, "Arn": arn, "Path": "/", "DefaultVersionId": "v1",
            "PolicyVersionList": [{"Document": document, "VersionId": "v1",
                                   "IsDefaultVersion": True}]}


def _attached(name: str, arn: str) -> dict[str, str]:
    return {"PolicyName": name, "PolicyArn": arn}


def _inline(name: str, *statements: dict[str, Any]) -> dict[str, Any]:
    return {"PolicyName": name, "PolicyDocument": _doc(*statements)}


def sizes(principals: int) -> tuple[int, int, int, int]:
    """(teams, groups, users, roles) of an account of ``principals`` principals."""
    teams = max(2, principals // 40)
    groups = teams + 2  # one per team, Admins, Operators
    users = (principals - groups) * 2 // 5
    return teams, groups, users, principals - groups - users


def account_export(principals: int) -> dict[str, Any]:
    """An export holding ``principals`` users, groups and roles (at least 10)."""
    if principals < 10:
        raise ValueError("an account of fewer than 10 principals has no room for teams")
    teams, _groups, users, roles = sizes(principals)
    example = json.loads(EXAMPLE.read_text("utf-8"))
    real = {p["PolicyName"]: p for p in example["Policies"] if p["PolicyName"] in MANAGED}
    policies = [real[name] for name in MANAGED]
    aws_arn = {name: real[name]["Arn"] for name in MANAGED}
    iam = f"arn:aws:iam::{ACCT}"
    for k in range(teams):
        policies.append(_managed(f"team-{k}-assume", f"{iam}:policy/team-{k}-assume", _doc(
            {"Sid": "AssumeTeamRoles", "Effect": "Allow", "Action": "sts:AssumeRole",
             "Resource": f"{iam}:role/team-{k}-*"})))
        policies.append(_managed(f"team-{k}-app", f"{iam}:policy/team-{k}-app", _doc(
            {"Sid": "TeamData", "Effect": "Allow",
             "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
             "Resource": [f"arn:aws:s3:::team-{k}-data", f"arn:aws:s3:::team-{k}-data/*"]},
            {"Sid": "TeamQueue", "Effect": "Allow", "Action": ["sqs:SendMessage",
                                                               "sqs:ReceiveMessage"],
             "Resource": f"arn:aws:sqs:{REGION}:{ACCT}:team-{k}-*"})))
    groups = [
        {"GroupName": "Admins", "Arn": f"{iam}:group/Admins", "Path": "/",
         "GroupPolicyList": [_inline("admin", {"Effect": "Allow", "Action": "*",
                                               "Resource": "*"})],
         "AttachedManagedPolicies": []},
        {"GroupName": "Operators", "Arn": f"{iam}:group/Operators", "Path": "/",
         "GroupPolicyList": [],
         "AttachedManagedPolicies": [_attached(n, aws_arn[n])
                                     for n in ("AmazonRDSFullAccess", "AmazonS3FullAccess")]},
    ]
    for k in range(teams):
        groups.append({"GroupName": f"team-{k}", "Arn": f"{iam}:group/team-{k}", "Path": "/",
                       "GroupPolicyList": [],
                       "AttachedManagedPolicies": [
                           _attached(f"team-{k}-assume", f"{iam}:policy/team-{k}-assume"),
                           _attached("AmazonS3ReadOnlyAccess",
                                     aws_arn["AmazonS3ReadOnlyAccess"])]})
    user_list = []
    for i in range(users):
        team = i % teams
        name = f"user-{i}"
        member = [f"team-{team}"]
        if i < ADMIN_USERS:
            member.append("Admins")
        if i % OPERATOR_EVERY == OPERATOR_EVERY - 1:
            member.append("Operators")
        inline = []
        if i % VAULT_EVERY == VAULT_EVERY - 1:
            inline.append(_inline("vault-cleanup", {
                "Sid": "ExpireOldRecoveryPoints", "Effect": "Allow",
                "Action": ["backup:DeleteRecoveryPoint"],
                "Resource": [f"arn:aws:backup:{REGION}:{ACCT}:backup-vault:shop-vault",
                             f"arn:aws:backup:{REGION}:{ACCT}:recovery-point:*"]}))
        if i % ATTACH_SELF_EVERY == ATTACH_SELF_EVERY - 1:
            inline.append(_inline("self-service", {
                "Effect": "Allow", "Action": "iam:AttachUserPolicy",
                "Resource": f"{iam}:user/{name}"}))
        if i % PASS_ROLE_EVERY == PASS_ROLE_EVERY - 1:
            inline.append(_inline("launch", {
                "Effect": "Allow", "Action": ["iam:PassRole", "ec2:RunInstances"],
                "Resource": [f"{iam}:role/team-{(team + 2) % teams}-*",
                             "arn:aws:ec2:*:*:*"]}))
        if i % ACCESS_KEY_EVERY == ACCESS_KEY_EVERY - 1:
            inline.append(_inline("key-rotation", {
                "Effect": "Allow", "Action": "iam:CreateAccessKey",
                "Resource": f"{iam}:user/*"}))
        if i % LAMBDA_CODE_EVERY == LAMBDA_CODE_EVERY - 1:
            inline.append(_inline("deploy-functions", {
                "Effect": "Allow", "Action": "lambda:UpdateFunctionCode",
                "Resource": f"arn:aws:lambda:{REGION}:{ACCT}:function:*"}))
        user_list.append({"UserName": name, "Arn": f"{iam}:user/{name}", "Path": "/",
                          "GroupList": member, "UserPolicyList": inline,
                          "AttachedManagedPolicies": []})
    role_list = []
    for j in range(roles):
        team = j % teams
        name = f"team-{team}-app-{j}"
        kind = j % 5
        principal: dict[str, Any]
        condition: dict[str, Any] = {}
        if kind == 0:
            principal = {"Service": "lambda.amazonaws.com"}
        elif kind == 1:
            principal = {"Service": "ec2.amazonaws.com"}
        elif kind in (2, 3):
            principal = {"AWS": f"{iam}:root"}
            condition = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
        else:  # a named member of the next team (user numbers run over the teams in turn)
            principal = {"AWS": f"{iam}:user/user-{(team + 1) % teams + teams * (j % 3)}"}
        trust: dict[str, Any] = {"Effect": "Allow", "Principal": principal,
                                 "Action": "sts:AssumeRole"}
        if condition:
            trust["Condition"] = condition
        attached = [_attached(f"team-{team}-app", f"{iam}:policy/team-{team}-app")]
        for (every, residues), managed in ((BACKUP_ROLES, "AWSBackupFullAccess"),
                                           (S3_ROLES, "AmazonS3FullAccess"),
                                           (RDS_ROLES, "AmazonRDSFullAccess")):
            if j % every in residues:
                attached.append(_attached(managed, aws_arn[managed]))
        role_list.append({"RoleName": name, "Arn": f"{iam}:role/{name}", "Path": "/",
                          "AssumeRolePolicyDocument": _doc(trust), "RolePolicyList": [],
                          "AttachedManagedPolicies": attached})
    return {"UserDetailList": user_list, "GroupDetailList": groups,
            "RoleDetailList": role_list, "Policies": policies}


def write_account(folder: Path, principals: int) -> tuple[Path, Path]:
    """Write the export and a tiers-only principals file into ``folder``; return both."""
    folder.mkdir(parents=True, exist_ok=True)
    export = folder / "account.json"
    export.write_text(json.dumps(account_export(principals), indent=1), "utf-8")
    tiers = folder / "tiers.toml"
    tiers.write_text(TIERS, "utf-8")
    return export, tiers
