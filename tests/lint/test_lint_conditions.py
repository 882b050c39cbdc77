"""Condition values are read, not only key names: MFA, networks, identities, guarding denies.

Each case writes a real policy file and runs ``drkit lint`` on it as CI would; the verdict
(which rules fire, at what severity, and the exit code) is what is checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lint.lint_support import aws, cam

from drkit.lint.conditions import (
    admits,
    bounded_values,
    normalise_operator,
    parse_conditions,
)

S3 = "arn:aws:s3:::drkit-backup-aws/*"
BJ = "qcs::cos:ap-beijing:uid/1250000000:drkit-backup-bj-1250000000/*"
DELETE = {"Sid": "Prune", "Effect": "Allow", "Action": "s3:DeleteObjectVersion", "Resource": S3}
CAM_DELETE = {"effect": "allow", "action": ["name/cos:DeleteObject"], "resource": [BJ]}


def lint(drkit: Any, tmp_path: Path, doc: Any, *args: str) -> tuple[int, list[dict[str, Any]]]:
    """Run ``drkit lint --json`` on ``doc`` written to a file; (exit code, findings)."""
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(doc, indent=2))
    res = drkit("lint", str(path), "--json", *args)
    return res.exit_code, json.loads(res.stdout)["findings"]


def rules(drkit: Any, tmp_path: Path, doc: Any) -> set[str]:
    return {f["rule"] for f in lint(drkit, tmp_path, doc)[1]}


def allow_with(condition: dict[str, Any]) -> dict[str, Any]:
    return aws(dict(DELETE, Condition=condition))


# ------------------------------------------------------------------ Allow conditions


@pytest.mark.parametrize("condition", [
    {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
    {"Bool": {"aws:MultiFactorAuthPresent": True}},  # a JSON boolean reads the same
    {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}},
    {"IpAddress": {"aws:SourceIp": ["10.20.0.0/16", "192.0.2.7/32"]}},
    {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
    {"StringLike": {"aws:SourceVpce": "vpce-0abc*"}},
    {"ForAnyValue:StringEquals": {"aws:CalledVia": "cloudformation.amazonaws.com"}},
    {"Bool": {"aws:ViaAWSService": "true"}},
    # Several clauses must all hold: one guard among them is enough.
    {"StringEquals": {"aws:RequestedRegion": "ap-southeast-1"},
     "Bool": {"aws:MultiFactorAuthPresent": "true"}},
])
def test_allow_conditions_that_guard(drkit: Any, tmp_path: Path,
                                     condition: dict[str, Any]) -> None:
    assert "aws_missing_condition" not in rules(drkit, tmp_path, allow_with(condition))


@pytest.mark.parametrize("condition", [
    # The opposite of an MFA guard: it allows exactly the requests made without MFA.
    {"Bool": {"aws:MultiFactorAuthPresent": "false"}},
    # IfExists: a request signed with long-term access keys carries no MFA key and passes.
    {"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}},
    # Null only says whether the key is there (temporary credentials), not that MFA was used.
    {"Null": {"aws:MultiFactorAuthPresent": "true"}},
    {"Null": {"aws:MultiFactorAuthPresent": "false"}},
    {"NumericGreaterThan": {"aws:MultiFactorAuthAge": "3600"}},
    {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}},
    {"IpAddress": {"aws:SourceIp": "not-an-address"}},
    {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    {"StringNotEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
    {"StringLike": {"aws:PrincipalOrgID": "*"}},
    {"StringEqualsIfExists": {"aws:SourceVpce": "vpce-0abc"}},
    {"ForAllValues:StringEquals": {"aws:CalledVia": "cloudformation.amazonaws.com"}},
    # An operator drkit cannot read guards nothing.
    {"StringEqualsFancy": {"aws:SourceVpce": "vpce-0abc"}},
    {"StringEquals": {"aws:SourceVpce": {"nested": "object"}}},
    {"StringEquals": {"aws:RequestedRegion": "ap-southeast-1"}},
])
def test_allow_conditions_that_do_not_guard(drkit: Any, tmp_path: Path,
                                            condition: dict[str, Any]) -> None:
    assert "aws_missing_condition" in rules(drkit, tmp_path, allow_with(condition))


def test_public_principal_needs_a_real_guard(drkit: Any, tmp_path: Path) -> None:
    public = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": S3}
    for condition in ({"Bool": {"aws:SecureTransport": "true"}},
                      {"Bool": {"aws:MultiFactorAuthPresent": "false"}},
                      {"StringNotEquals": {"aws:SourceVpce": "vpce-0abc"}}):
        found = rules(drkit, tmp_path, aws(dict(public, Condition=condition)))
        assert "aws_public_principal" in found, condition
    guarded = dict(public, Condition={"StringEquals": {"aws:SourceVpce": "vpce-0abc"}})
    assert "aws_public_principal" not in rules(drkit, tmp_path, aws(guarded))


# ------------------------------------------------------------------- Deny conditions

DENY_ALL_S3 = {"Sid": "NoMfaNoDelete", "Effect": "Deny", "Action": "s3:Delete*",
               "Resource": "*"}


@pytest.mark.parametrize("condition", [
    # The standard "deny without MFA" statement.
    {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
    {"Null": {"aws:MultiFactorAuthAge": "true"}},
    {"NumericGreaterThanIfExists": {"aws:MultiFactorAuthAge": "3600"}},
    {"NotIpAddress": {"aws:SourceIp": ["10.20.0.0/16"]}},
    {"StringNotEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
    {"StringNotEqualsIfExists": {"aws:SourceVpce": "vpce-0abc"}},
    # Denied unless MFA and unless from the office: what passes has MFA or the office IP.
    {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"},
     "NotIpAddress": {"aws:SourceIp": "10.20.0.0/16"}},
])
def test_a_guarding_deny_guards_the_allow_beside_it(drkit: Any, tmp_path: Path,
                                                    condition: dict[str, Any]) -> None:
    deny = dict(DENY_ALL_S3, Condition=condition)
    found = rules(drkit, tmp_path, aws(DELETE, deny))
    assert "aws_missing_condition" not in found
    # The deny only makes the delete need MFA (or the network): it still exists.
    assert "aws_data_destruction" in found


@pytest.mark.parametrize("condition", [
    # Without IfExists, long-term access keys carry no MFA key and escape the deny.
    {"Bool": {"aws:MultiFactorAuthPresent": "false"}},
    {"Null": {"aws:MultiFactorAuthPresent": "true"}},
    {"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}},
    # A second clause on another key: no-MFA requests in other regions pass.
    {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"},
     "StringEquals": {"aws:RequestedRegion": "ap-southeast-1"}},
    {"NotIpAddress": {"aws:SourceIp": "0.0.0.0/0"}},
    {"BoolIfExistsFancy": {"aws:MultiFactorAuthPresent": "false"}},
])
def test_a_deny_that_does_not_guard(drkit: Any, tmp_path: Path,
                                    condition: dict[str, Any]) -> None:
    deny = dict(DENY_ALL_S3, Condition=condition)
    assert "aws_missing_condition" in rules(drkit, tmp_path, aws(DELETE, deny))


def test_a_guarding_deny_must_cover_the_actions_and_resources(drkit: Any,
                                                              tmp_path: Path) -> None:
    mfa = {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}
    other_bucket = dict(DENY_ALL_S3, Resource="arn:aws:s3:::elsewhere/*", Condition=mfa)
    assert "aws_missing_condition" in rules(drkit, tmp_path, aws(DELETE, other_bucket))
    other_action = dict(DENY_ALL_S3, Action="s3:PutObject", Condition=mfa)
    assert "aws_missing_condition" in rules(drkit, tmp_path, aws(DELETE, other_action))


# --------------------------------------------------------------------------- CAM


@pytest.mark.parametrize(("condition", "guarded"), [
    ({"ip_equal": {"qcs:ip": ["10.20.0.0/16"]}}, True),
    ({"ip_equal": {"qcs:ip": "0.0.0.0/0"}}, False),
    ({"ip_not_equal": {"qcs:ip": ["10.20.0.0/16"]}}, False),
    ({"bool_equal": {"qcs:mfa": "true"}}, True),
    ({"bool_equal": {"mfa": "false"}}, False),
    ({"bool_equal_if_exist": {"mfa": "true"}}, False),
    ({"for_any_value:string_equal": {"qcs:resource_tag": ["team&backup"]}}, True),
    ({"string_not_equal": {"vpc:requester_vpc": ["vpc-1"]}}, False),
    ({"string_equal_if_exist": {"vpc:region": "sh"}}, False),
    ({"ip_equal_fancy": {"qcs:ip": ["10.20.0.0/16"]}}, False),
])
def test_cam_allow_conditions(drkit: Any, tmp_path: Path, condition: dict[str, Any],
                              guarded: bool) -> None:
    found = rules(drkit, tmp_path, cam(dict(CAM_DELETE, condition=condition)))
    assert ("cam_missing_condition" not in found) is guarded


def test_cam_deny_outside_the_office_guards(drkit: Any, tmp_path: Path) -> None:
    deny = {"effect": "deny", "action": ["cos:*"], "resource": ["*"],
            "condition": {"ip_not_equal": {"qcs:ip": ["10.20.0.0/16"]}}}
    assert "cam_missing_condition" not in rules(drkit, tmp_path, cam(CAM_DELETE, deny))
    deny_mfa = dict(deny, condition={"bool_equal_if_exist": {"mfa": "false"}})
    assert "cam_missing_condition" not in rules(drkit, tmp_path, cam(CAM_DELETE, deny_mfa))
    weak = dict(deny, condition={"bool_equal": {"mfa": "false"}})
    assert "cam_missing_condition" in rules(drkit, tmp_path, cam(CAM_DELETE, weak))


def test_cam_condition_null_is_no_condition(drkit: Any, tmp_path: Path) -> None:
    read = {"effect": "allow", "action": ["name/cos:GetObject"], "resource": [BJ],
            "condition": None}
    code, findings = lint(drkit, tmp_path, cam(read))
    assert [(f["rule"], f["severity"]) for f in findings] == [("cam_syntax", "info")]
    assert "null" in findings[0]["message"]
    assert code == 0  # nothing at or above the default threshold (low)
    # It is read as absent: a delete under it is unguarded, not guarded or malformed.
    code, findings = lint(drkit, tmp_path, cam(dict(CAM_DELETE, condition=None)))
    assert "cam_missing_condition" in {f["rule"] for f in findings}
    assert all(f["severity"] == "info" for f in findings if f["rule"] == "cam_syntax")
    # AWS has no such convention: "Condition": null stays a malformed statement.
    _, findings = lint(drkit, tmp_path, aws(dict(DELETE, Condition=None)))
    assert [f["severity"] for f in findings if f["rule"] == "aws_syntax"] == ["high"]


@pytest.mark.parametrize("doc", [
    aws({"Effect": "Allow", "Action": "s3:GetObject", "NotAction": "s3:DeleteObject",
         "Resource": S3}),
    cam({"effect": "allow", "action": ["cos:GetObject"], "notAction": ["cos:DeleteObject"],
         "resource": [BJ]}),
])
def test_action_and_not_action_reported_once(drkit: Any, tmp_path: Path,
                                             doc: dict[str, Any]) -> None:
    _, findings = lint(drkit, tmp_path, doc)
    both = [f for f in findings if f["category"] in ("syntax", "not-action")]
    assert [(f["category"], f["message"]) for f in both] == [
        ("syntax", "both Action and NotAction")]
    # NotAction alone is still reported.
    del doc["Statement" if "Statement" in doc else "statement"][0][
        "Action" if "Statement" in doc else "action"]
    assert {f["category"] for f in lint(drkit, tmp_path, doc)[1]} >= {"not-action"}


# ---------------------------------------------------------------- the reader itself


@pytest.mark.parametrize(("name", "expected"), [
    ("StringEquals", ("stringequals", False, "")),
    ("stringequals", ("stringequals", False, "")),
    ("ForAnyValue:StringLikeIfExists", ("stringlike", True, "foranyvalue")),
    ("ForAllValues:ArnNotLike", ("arnnotlike", False, "forallvalues")),
    ("NumericLessThanEquals", ("numericlessthanequals", False, "")),
    ("DateGreaterThan", ("dategreaterthan", False, "")),
    ("BoolIfExists", ("bool", True, "")),
    ("string_equal", ("stringequals", False, "")),
    ("string_not_equal_ignore_case", ("stringnotequalsignorecase", False, "")),
    ("for_any_value:string_like", ("stringlike", False, "foranyvalue")),
    ("numeric_less_than_equal", ("numericlessthanequals", False, "")),
    ("date_greater_than_equal_if_exist", ("dategreaterthanequals", True, "")),
    ("ip_not_equal", ("notipaddress", False, "")),
    ("bool_equal_if_exist", ("bool", True, "")),
    ("null_equal", ("null", False, "")),
    ("StringEqualz", ("", False, "")),
])
def test_operator_spellings(name: str, expected: tuple[str, bool, str]) -> None:
    assert normalise_operator(name) == expected


def test_scoping_values() -> None:
    conds = parse_conditions({"StringLike": {"iam:PassedToService": ["dax.amazonaws.com",
                                                                     "glue.*"]}})
    assert bounded_values(conds, "iam:PassedToService") == ("dax.amazonaws.com", "glue.*")
    assert admits(conds, "iam:passedtoservice", "glue.amazonaws.com")
    assert not admits(conds, "iam:PassedToService", "ec2.amazonaws.com")
    negated = parse_conditions({"StringNotEquals": {"iam:PassedToService": "ec2.amazonaws.com"}})
    assert bounded_values(negated, "iam:PassedToService") is None
    assert not admits(negated, "iam:PassedToService", "ec2.amazonaws.com")
    assert admits(negated, "iam:PassedToService", "lambda.amazonaws.com")
    arn = parse_conditions({"ArnEquals": {"iam:PolicyARN": "arn:aws:iam::aws:policy/AWSDenyAll"}})
    assert bounded_values(arn, "iam:PolicyARN") == ("arn:aws:iam::aws:policy/AWSDenyAll",)
    assert bounded_values(arn, "iam:PassedToService") is None
    # Two clauses on one key: both must hold, so the bound is what they share.
    both = parse_conditions({"StringLike": {"iam:PolicyARN": "arn:aws:iam::aws:policy/*"},
                             "ArnEquals": {"iam:PolicyARN": "arn:aws:iam::aws:policy/AWSDenyAll"}})
    assert bounded_values(both, "iam:PolicyARN") == ("arn:aws:iam::aws:policy/AWSDenyAll",)


def test_huge_value_lists_cost_linear_time(drkit: Any, tmp_path: Path) -> None:
    # Two clauses of 20,000 policy ARNs each on one attach: comparing every pair would be
    # 4 * 10^8 comparisons. The bound is left wider instead, which keeps it critical.
    many = [f"arn:aws:iam::111122223333:policy/p{i}" for i in range(20_000)]
    attach = {"Effect": "Allow", "Action": "iam:AttachRolePolicy", "Resource": "*",
              "Condition": {"StringLike": {"iam:PolicyARN": many + ["*"]},
                            "ArnEquals": {"iam:PolicyARN": many},
                            "StringNotEquals": {"iam:PolicyARN": many}}}
    _, findings = lint(drkit, tmp_path, aws(attach))
    severities = {f["severity"] for f in findings if f["rule"] == "aws_privilege_escalation"}
    assert severities == {"critical"}
