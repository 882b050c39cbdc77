"""The false alarms and misses left after issue 14's sections 2-4, from the user's side.

Policies are written to files and linted through the CLI (``drkit lint --json``) or the
engine: a guarding Deny in a bucket policy narrows a public grant; running code counts for
missing-condition; user data and EMR steps run code; request tags guard nothing; a COS
bucket policy may name its principal once at the top.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lint.lint_support import NOW, aws, cam

from drkit.lint import lint_paths

ACCT = "111122223333"
BUCKET = "arn:aws:s3:::shop-assets"
COS = "qcs::cos:ap-beijing:uid/1250000000:assets-1250000000/*"


def lint(drkit: Any, tmp_path: Path, doc: Any, name: str = "policy.json"
         ) -> list[dict[str, Any]]:
    path = tmp_path / name
    path.write_text(json.dumps(doc, indent=2))
    res = drkit("lint", str(path), "--json")
    assert res.exit_code in (0, 1), res.stderr
    return json.loads(res.stdout)["findings"]


def by_rule(findings: list[dict[str, Any]], rule: str) -> list[dict[str, Any]]:
    return [f for f in findings if f["rule"] == rule]


# ------------------------------------------------- public principal and guarding denies

PUBLIC_READ = {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
               "Action": ["s3:GetObject"], "Resource": f"{BUCKET}/*"}
OFFICE_ONLY = {"Sid": "OfficeOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
               "Resource": [BUCKET, f"{BUCKET}/*"],
               "Condition": {"NotIpAddress": {"aws:SourceIp": ["203.0.113.0/24"]}}}


def test_guarding_deny_narrows_a_public_grant(drkit: Any, tmp_path: Path) -> None:
    alone = by_rule(lint(drkit, tmp_path, aws(PUBLIC_READ)), "aws_public_principal")
    assert [f["statement"] for f in alone] == ["PublicRead"]
    # "Deny everyone outside the office network" guards the grant as its own
    # IpAddress condition would.
    assert not by_rule(lint(drkit, tmp_path, aws(PUBLIC_READ, OFFICE_ONLY)),
                       "aws_public_principal")


@pytest.mark.parametrize(("change", "why"), [
    ({"Condition": {"StringNotEquals": {"aws:RequestedRegion": "ap-southeast-1"}}},
     "a region condition lets requests from anywhere through"),
    ({"Principal": {"AWS": f"arn:aws:iam::{ACCT}:user/intern"}},
     "a deny for one user does not apply to anonymous requests"),
    ({"Resource": f"{BUCKET}/private/*"}, "a deny on part of the bucket leaves the rest open"),
    ({"Action": "s3:PutObject"}, "a deny of other actions leaves reads open"),
])
def test_deny_that_does_not_guard_leaves_the_finding(drkit: Any, tmp_path: Path,
                                                      change: dict[str, Any], why: str) -> None:
    deny = {k: v for k, v in OFFICE_ONLY.items() if k not in change or k == "Condition"}
    deny.update(change)
    found = by_rule(lint(drkit, tmp_path, aws(PUBLIC_READ, deny)), "aws_public_principal")
    assert [f["statement"] for f in found] == ["PublicRead"], why


def test_partly_guarded_public_grant_names_what_is_open(drkit: Any, tmp_path: Path) -> None:
    grant = dict(PUBLIC_READ, Action=["s3:GetObject", "s3:PutObject"])
    reads_guarded = dict(OFFICE_ONLY, Action=["s3:Get*"])
    (hit,) = by_rule(lint(drkit, tmp_path, aws(grant, reads_guarded)), "aws_public_principal")
    assert hit["actions"] == ["s3:PutObject"]
    assert "grants s3:PutObject to anyone" in hit["message"]


def test_cos_guarding_deny_narrows_a_public_grant(drkit: Any, tmp_path: Path) -> None:
    grant = {"principal": {"qcs": ["qcs::cam::anyone"]}, "effect": "allow",
             "action": ["name/cos:GetObject"], "resource": [COS]}
    deny = {"principal": {"qcs": ["qcs::cam::anyone"]}, "effect": "deny",
            "action": ["name/cos:*"], "resource": [COS],
            "condition": {"ip_not_equal": {"qcs:ip": ["10.0.0.0/8"]}}}
    assert by_rule(lint(drkit, tmp_path, cam(grant)), "cam_public_principal")
    assert not by_rule(lint(drkit, tmp_path, cam(grant, deny)), "cam_public_principal")


# ----------------------------------------------------- missing condition, code execution


def test_running_code_needs_a_guard_condition(drkit: Any, tmp_path: Path) -> None:
    deploy = {"Sid": "Deploy", "Effect": "Allow",
              "Action": ["lambda:UpdateFunctionCode", "ssm:SendCommand"],
              "Resource": "*"}
    (hit,) = by_rule(lint(drkit, tmp_path, aws(deploy)), "aws_missing_condition")
    assert hit["actions"] == ["lambda:UpdateFunctionCode", "ssm:SendCommand"]
    with_mfa = dict(deploy, Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}})
    assert not by_rule(lint(drkit, tmp_path, aws(with_mfa)), "aws_missing_condition")
    tat = {"effect": "allow", "action": ["name/tat:InvokeCommand"], "resource": ["*"]}
    (cam_hit,) = by_rule(lint(drkit, tmp_path, cam(tat)), "cam_missing_condition")
    assert cam_hit["actions"] == ["tat:InvokeCommand"]


@pytest.mark.parametrize("action", ["ec2:ModifyInstanceAttribute",
                                    "elasticmapreduce:AddJobFlowSteps"])
def test_user_data_and_emr_steps_run_code(drkit: Any, tmp_path: Path, action: str) -> None:
    found = lint(drkit, tmp_path, aws({"Effect": "Allow", "Action": action, "Resource": "*"}))
    (hit,) = by_rule(found, "aws_code_execution")
    assert hit["severity"] == "high" and hit["actions"] == [action]
    assert action in by_rule(found, "aws_missing_condition")[0]["actions"]


@pytest.mark.parametrize("action", ["ec2:ModifyInstanceAttribute",
                                    "elasticmapreduce:AddJobFlowSteps"])
def test_user_data_and_emr_steps_hold_the_instance_role(tmp_path: Path, action: str) -> None:
    """Both run code on EC2 instances, which act with their instance profile's role."""
    root = tmp_path / "pol"
    root.mkdir()
    docs = {
        "run.json": aws({"Effect": "Allow", "Action": action, "Resource": "*"}),
        "wipe.json": aws({"Effect": "Allow", "Action": ["rds:DeleteDBInstance",
                                                        "s3:DeleteObject"], "Resource": "*"}),
        "trust.json": aws({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                           "Action": "sts:AssumeRole"}),
    }
    for name, doc in docs.items():
        (root / name).write_text(json.dumps(doc))
    (root / "principals.toml").write_text(
        '[tiers.production]\nkind = "production"\n'
        f'resources = ["arn:aws:rds:ap-southeast-1:{ACCT}:db:shop"]\n'
        '[tiers.backup]\nkind = "backup"\nresources = ["arn:aws:s3:::backup/*"]\n'
        '[[principals]]\nname = "dev"\ntype = "user"\npolicies = ["run.json"]\n'
        '[[principals]]\nname = "worker"\ntype = "role"\n'
        f'arn = "arn:aws:iam::{ACCT}:role/worker"\n'
        'policies = ["wipe.json"]\ntrust = ["trust.json"]\n')
    duties = {f.principal: f for f in lint_paths([root], now=NOW).findings
              if f.rule == "separation_of_duties"}
    assert duties["dev"].severity == "critical"
    assert f"{action} runs code on compute that carries it" in duties["dev"].message
    assert "trusts ec2.amazonaws.com" in duties["dev"].message


# ------------------------------------------------------------ request tags guard nothing


def test_request_tags_guard_nothing(drkit: Any, tmp_path: Path) -> None:
    wipe = {"Effect": "Allow", "Action": "rds:DeleteDBInstance", "Resource": "*"}
    tagged = dict(wipe, Condition={"StringEquals": {"aws:RequestTag/env": "dev"}})
    assert by_rule(lint(drkit, tmp_path, aws(tagged)), "aws_missing_condition")
    # A key the requester cannot set still guards.
    org = dict(wipe, Condition={"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}})
    assert not by_rule(lint(drkit, tmp_path, aws(org)), "aws_missing_condition")
    terminate = {"effect": "allow", "action": ["cvm:TerminateInstances"], "resource": ["*"],
                 "condition": {"string_equal": {"qcs:request_tag": ["env&dev"]}}}
    assert by_rule(lint(drkit, tmp_path, cam(terminate)), "cam_missing_condition")


# ------------------------------------------------------------- COS top-level principal


def test_cos_top_level_principal_applies_to_every_statement(drkit: Any,
                                                            tmp_path: Path) -> None:
    doc = {"version": "2.0", "principal": {"qcs": ["qcs::cam::anyone"]},
           "statement": [
               {"effect": "allow", "action": ["name/cos:GetObject"], "resource": [COS]},
               {"effect": "allow", "action": ["name/cos:PutObject"], "resource": [COS],
                "principal": {"qcs": ["qcs::cam::uin/100000000001:uin/100000000002"]}},
           ]}
    found = lint(drkit, tmp_path, doc)
    assert not by_rule(found, "cam_syntax")
    # The first statement takes the top-level principal (anyone); the second keeps its own.
    assert [f["statement"] for f in by_rule(found, "cam_public_principal")] == [0]


def test_top_level_principal_is_still_unknown_to_aws(drkit: Any, tmp_path: Path) -> None:
    doc = aws({"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET}/*"})
    doc["Principal"] = "*"
    (hit,) = by_rule(lint(drkit, tmp_path, doc), "aws_syntax")
    assert "unknown top-level key 'Principal'" in hit["message"]
