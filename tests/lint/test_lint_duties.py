"""Separation of duties over a principals file: effective permissions across policies/clouds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lint.lint_support import NOW, aws, cam

from drkit.lint import lint_paths

U, APP, ACCT = "100000000001", "1250000000", "111122223333"
PROD_DB = f"qcs::cdb:ap-shanghai:uin/{U}:instanceId/cdb-*"
BJ = f"qcs::cos:ap-beijing:uid/{APP}:backup-bj-{APP}/*"
NJ = f"qcs::cos:ap-nanjing:uid/{APP}:backup-nj-{APP}/*"
S3 = "arn:aws:s3:::backup-aws/*"

TIERS = f"""
[tiers.production]
kind = "production"
resources = ["{PROD_DB}", "arn:aws:rds:ap-southeast-1:{ACCT}:db:shop"]
[tiers.backup-beijing]
kind = "backup"
resources = ["{BJ}"]
[tiers.backup-nanjing]
kind = "backup"
resources = ["{NJ}"]
[tiers.backup-aws]
kind = "backup"
resources = ["{S3}"]
"""

DESTROY_PROD = cam({"effect": "allow", "action": ["cdb:IsolateDBInstance"],
                    "resource": [PROD_DB]})
DESTROY_COS = cam({"effect": "allow", "action": ["name/cos:DeleteObject"],
                   "resource": [f"qcs::cos:*:uid/{APP}:backup-*"]})
DESTROY_S3 = aws({"Sid": "WipeS3", "Effect": "Allow", "Action": "s3:DeleteObjectVersion",
                  "Resource": S3})


def setup(tmp_path: Path, policies: dict[str, Any], principals: str, top: str = "") -> Path:
    root = tmp_path / "pol"
    for name, doc in policies.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2))
    (root / "principals.toml").write_text(top + TIERS + principals)
    return root


def duties(root: Path) -> list[Any]:
    report = lint_paths([root], now=NOW)
    return [f for f in report.findings if f.rule == "separation_of_duties"]


def test_safe_with_one_policy_unsafe_with_two(tmp_path: Path) -> None:
    one = setup(tmp_path / "a", {"prod.json": DESTROY_PROD, "cos.json": DESTROY_COS,
                                 "s3.json": DESTROY_S3},
                '[[principals]]\nname = "ops"\ntype = "user"\npolicies = ["cos.json"]\n')
    (high,) = duties(one)
    assert high.severity == "high"  # two COS tiers, not AWS, not production
    assert "2 of 3 backup tiers" in high.message
    safe = setup(tmp_path / "b", {"prod.json": DESTROY_PROD, "s3.json": DESTROY_S3},
                 '[[principals]]\nname = "ops"\npolicies = ["prod.json"]\n')
    assert duties(safe) == []
    unsafe = setup(tmp_path / "c", {"prod.json": DESTROY_PROD, "cos.json": DESTROY_COS,
                                    "s3.json": DESTROY_S3},
                   '[[principals]]\nname = "ops"\ntype = "person"\n'
                   'policies = ["prod.json", "cos.json", "s3.json"]\n')
    (critical,) = duties(unsafe)
    assert critical.severity == "critical" and critical.principal == "ops"
    assert {"cdb:IsolateDBInstance", "cos:DeleteObject", "s3:DeleteObjectVersion"} <= set(
        critical.actions)
    # The evidence names exact statements, across both clouds (split across clouds).
    where = {(e["tier"], e["file"], e["statement"]) for e in critical.evidence}
    assert ("backup-aws", "pol/s3.json", "WipeS3") in {
        (t, f.split("c/")[-1], s) for t, f, s in where}
    assert critical.line == TIERS.count("\n") + 2


def test_unsafe_only_through_escalation(tmp_path: Path) -> None:
    attach = aws({"Sid": "Attach", "Effect": "Allow", "Action": "iam:AttachUserPolicy",
                  "Resource": f"arn:aws:iam::{ACCT}:user/ops"})
    attach_cam = cam({"effect": "allow", "action": ["cam:AttachUserPolicy"], "resource": ["*"]})
    root = setup(tmp_path, {"attach.json": attach, "attach-cam.json": attach_cam},
                 '[[principals]]\nname = "ops"\ntype = "user"\n'
                 'policies = ["attach.json", "attach-cam.json"]\n')
    (finding,) = duties(root)
    assert finding.severity == "critical"
    assert "escalation via iam:AttachUserPolicy" in finding.message


def test_unsafe_by_assuming_a_more_powerful_role(tmp_path: Path) -> None:
    admin_arn = f"qcs::cam::uin/{U}:roleName/cleanup"
    hop = cam({"effect": "allow", "action": ["sts:AssumeRole"], "resource": [admin_arn]})
    root = setup(tmp_path, {"prod.json": DESTROY_PROD, "cos.json": DESTROY_COS,
                            "hop.json": hop},
                 '[[principals]]\nname = "junior"\npolicies = ["hop.json"]\n'
                 f'[[principals]]\nname = "cleanup"\narn = "{admin_arn}"\n'
                 'policies = ["cos.json"]\n')
    found = {f.principal: f for f in duties(root)}
    assert set(found) == {"junior", "cleanup"}
    assert "cleanup (sts:AssumeRole on" in found["junior"].message


def test_safe_because_of_explicit_deny(tmp_path: Path) -> None:
    broad = cam({"effect": "allow", "action": ["cos:*"], "resource": ["*"]},
                {"effect": "allow", "action": ["cdb:*"], "resource": ["*"]})
    deny = cam({"effect": "deny", "action": ["cos:Delete*", "cos:PutBucket*",
                                             "cos:PutObjectRetention", "cos:PutObjectACL",
                                             "cos:AbortMultipartUpload"],
                "resource": [f"qcs::cos:*:uid/{APP}:backup-*"]})
    principal = '[[principals]]\nname = "dba"\npolicies = ["broad.json"{extra}]\n'
    unsafe = setup(tmp_path / "a", {"broad.json": broad}, principal.format(extra=""))
    assert [f.severity for f in duties(unsafe)] == ["high"]
    safe = setup(tmp_path / "b", {"broad.json": broad, "deny.json": deny},
                 principal.format(extra=', "deny.json"'))
    assert duties(safe) == []
    # A conditional deny may not apply, so it does not make the principal safe.
    deny["statement"][0]["condition"] = {"ip_equal": {"qcs:ip": ["10.0.0.0/8"]}}
    conditional = setup(tmp_path / "c", {"broad.json": broad, "deny.json": deny},
                        principal.format(extra=', "deny.json"'))
    assert len(duties(conditional)) == 1


def test_groups_contribute_policies(tmp_path: Path) -> None:
    root = setup(tmp_path, {"cos.json": DESTROY_COS, "s3.json": DESTROY_S3},
                 '[[principals]]\nname = "backup-admins"\ntype = "group"\n'
                 'policies = ["cos.json"]\n'
                 '[[principals]]\nname = "bob"\ntype = "user"\ngroups = ["backup-admins"]\n'
                 'policies = ["s3.json"]\n')
    found = {f.principal: f.severity for f in duties(root)}
    assert found == {"backup-admins": "high", "bob": "high"}
    bob = next(f for f in duties(root) if f.principal == "bob")
    assert "3 of 3 backup tiers" in bob.message


def test_bad_principals_file_is_usage_error(tmp_path: Path, drkit) -> None:
    root = setup(tmp_path, {"cos.json": DESTROY_COS},
                 '[[principals]]\nname = "x"\npolicies = ["nope.json"]\n')
    res = drkit("lint", str(root))
    assert res.exit_code == 2
    assert "policy file 'nope.json' not found" in res.stderr


@pytest.mark.parametrize("fmt", ["json", "sarif"])
def test_duty_finding_in_reports(tmp_path: Path, drkit, fmt: str) -> None:
    root = setup(tmp_path, {"cos.json": DESTROY_COS, "s3.json": DESTROY_S3},
                 '[[principals]]\nname = "ops"\npolicies = ["cos.json", "s3.json"]\n')
    res = drkit("lint", str(root), "--format", fmt)
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    if fmt == "json":
        (f,) = [f for f in doc["findings"] if f["rule"] == "separation_of_duties"]
        assert f["principal"] == "ops" and f["cloud"] == "aws+tencent"
        assert f["file"].endswith("principals.toml")
    else:
        result = next(r for r in doc["runs"][0]["results"]
                      if r["ruleId"] == "separation_of_duties")
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith(
            "principals.toml")


def test_bucket_policy_deny_protects_unless_the_principal_can_rewrite_it(tmp_path: Path) -> None:
    wipe = cam({"effect": "allow", "action": ["name/cos:DeleteBucket"],
                "resource": [f"qcs::cos:*:uid/{APP}:backup-*"]})
    bucket_deny = {"version": "2.0", "Statement": [
        {"Effect": "deny", "Principal": {"qcs": ["qcs::cam::anyone"]},
         "Action": ["name/cos:DeleteBucket", "name/cos:PutBucketLifecycle"],
         "Resource": [BJ, NJ]}]}
    principal = ('[[principals]]\nname = "ops"\narn = "qcs::cam::uin/{u}:uin/200"\n'
                 'policies = [{files}]\n')
    docs = {"wipe.json": wipe, "bucket.json": bucket_deny,
            "rewrite.json": cam({"effect": "allow", "action": ["cos:PutBucketPolicy"],
                                 "resource": [f"qcs::cos:*:uid/{APP}:backup-*"]})}
    unsafe = setup(tmp_path / "a", docs, principal.format(u=U, files='"wipe.json"'))
    assert [f.severity for f in duties(unsafe)] == ["high"]
    safe = setup(tmp_path / "b", docs, principal.format(u=U, files='"wipe.json"'),
                 top='resource_policies = ["bucket.json"]\n')
    assert duties(safe) == []
    rewriter = setup(tmp_path / "c", docs,
                     principal.format(u=U, files='"wipe.json", "rewrite.json"'),
                     top='resource_policies = ["bucket.json"]\n')
    assert [f.severity for f in duties(rewriter)] == ["high"]


def test_bucket_policy_allow_grants_the_named_principal(tmp_path: Path) -> None:
    arn = f"qcs::cam::uin/{U}:uin/300"
    grant = {"version": "2.0", "Statement": [
        {"Effect": "allow", "Principal": {"qcs": [arn]}, "Action": ["name/cos:DeleteObject"],
         "Resource": [BJ, NJ]}]}
    reader = cam({"effect": "allow", "action": ["name/cos:GetObject"], "resource": [BJ]})
    root = setup(tmp_path, {"grant.json": grant, "reader.json": reader},
                 f'[[principals]]\nname = "auditor"\narn = "{arn}"\npolicies = ["reader.json"]\n'
                 '[[principals]]\nname = "other"\narn = "qcs::cam::uin/1:uin/2"\n'
                 'policies = ["reader.json"]\n', top='resource_policies = ["grant.json"]\n')
    assert [f.principal for f in duties(root)] == ["auditor"]


def test_split_across_clouds(tmp_path: Path) -> None:
    """Neither identity alone is critical; the person holding both is."""
    tencent_side = cam(DESTROY_PROD["statement"][0], DESTROY_COS["statement"][0])
    docs = {"tencent.json": tencent_side, "aws.json": DESTROY_S3}
    alone = setup(tmp_path / "a", docs,
                  '[[principals]]\nname = "alice-tencent"\npolicies = ["tencent.json"]\n'
                  '[[principals]]\nname = "alice-aws"\npolicies = ["aws.json"]\n')
    assert {f.principal: f.severity for f in duties(alone)} == {"alice-tencent": "high"}
    both = setup(tmp_path / "b", docs, '[[principals]]\nname = "alice"\ntype = "person"\n'
                                       'policies = ["tencent.json", "aws.json"]\n')
    (finding,) = duties(both)
    assert finding.severity == "critical" and finding.cloud == "aws+tencent"
    assert {e["tier"] for e in finding.evidence} == {
        "production", "backup-beijing", "backup-nanjing", "backup-aws"}


def test_unsafe_through_passing_a_role_to_new_compute(tmp_path: Path) -> None:
    role = f"arn:aws:iam::{ACCT}:role/janitor"
    launcher = aws({"Effect": "Allow", "Action": "iam:PassRole", "Resource": role},
                   {"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*"})
    janitor = aws({"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": S3},
                  {"Effect": "Allow", "Action": "rds:DeleteDBInstance",
                   "Resource": f"arn:aws:rds:ap-southeast-1:{ACCT}:db:*"})
    cos = DESTROY_COS
    principals = ('[[principals]]\nname = "dev"\ntype = "person"\n'
                  'policies = ["launcher.json", "cos.json"]\n'
                  f'[[principals]]\nname = "janitor"\narn = "{role}"\n'
                  'policies = ["janitor.json"]\n')
    root = setup(tmp_path, {"launcher.json": launcher, "janitor.json": janitor,
                            "cos.json": cos}, principals)
    found = {f.principal: f for f in duties(root)}
    assert found["dev"].severity == "critical"
    assert "janitor (iam:PassRole on" in found["dev"].message
    # Without the compute launch, PassRole alone gives nothing.
    launcher["Statement"].pop()
    root = setup(tmp_path / "x", {"launcher.json": launcher, "janitor.json": janitor,
                                  "cos.json": cos}, principals)
    assert {f.principal: f.severity for f in duties(root)}["dev"] == "high"
