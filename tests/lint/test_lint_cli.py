"""drkit lint as CI uses it: real files, the real CLI, exit codes and output formats."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from lint.lint_support import REPO_POLICIES

DANGEROUS_AWS = {"Sid": "Oops", "Effect": "Allow", "Action": "rds:DeleteDBInstance",
                 "Resource": "arn:aws:rds:ap-southeast-1:111122223333:db:shop-main"}
DANGEROUS_CAM = {"effect": "allow", "action": ["cdb:IsolateDBInstance"],
                 "resource": ["qcs::cdb:ap-shanghai:uin/100000000001:instanceId/cdb-main"]}


def test_shipped_policies_pass_ci(drkit, shipped: Path) -> None:
    res = drkit("lint", str(shipped), "--severity-threshold", "medium")
    assert res.exit_code == 0, res.stdout
    assert "0 findings" in res.stdout
    assert "principals from" in res.stdout


def _policy_files() -> list[str]:
    # policies/network/ holds network exports for `drkit lint network`, not policies.
    return sorted(p.relative_to(REPO_POLICIES).as_posix() for p in REPO_POLICIES.rglob("*.json")
                  if p.relative_to(REPO_POLICIES).parts[0] != "network")


@pytest.mark.parametrize("name", _policy_files())
def test_one_dangerous_statement_fails_ci(drkit, shipped: Path, name: str) -> None:
    path = shipped / name
    doc = json.loads(path.read_text())
    key = "Statement" if "Statement" in doc else "statement"
    extra = dict(DANGEROUS_CAM if name.startswith("tencent/") else DANGEROUS_AWS)
    if any("Principal" in st or "principal" in st for st in doc[key]):
        # A resource or trust policy: the dangerous change is opening it to everyone.
        extra["principal" if key == "statement" else "Principal"] = (
            {"qcs": ["qcs::cam::anyone"]} if key == "statement" else "*")
    doc[key].append(extra)
    path.write_text(json.dumps(doc))
    res = drkit("lint", str(shipped), "--severity-threshold", "medium", "--json")
    assert res.exit_code == 1
    report = json.loads(res.stdout)
    rules = {f["rule"] for f in report["findings"] if f["file"].endswith(name)}
    assert rules & {"aws_data_destruction", "cam_data_destruction", "aws_public_principal",
                    "cam_public_principal"}
    assert report["summary"]["failed"] is True


def test_json_document_fields(drkit, write) -> None:
    write("p/a.json", {"Version": "2012-10-17", "Statement": [
        {"Sid": "Wipe", "Effect": "Allow", "Action": "rds:DeleteDBInstance",
         "Resource": "arn:aws:rds:ap-southeast-1:111122223333:db:shop"}]})
    res = drkit("lint", "p", "--format", "json")
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    finding = next(f for f in doc["findings"] if f["rule"] == "aws_data_destruction")
    assert finding == {**finding, "category": "data-destruction", "severity": "high",
                       "cloud": "aws", "file": "p/a.json", "statement": "Wipe",
                       "actions": ["rds:DeleteDBInstance"], "principal": None, "line": 4}
    assert doc["summary"]["policies"] == 1 and doc["summary"]["failed"] is True
    # --json is the same as --format json (both the command flag and the global flag).
    assert json.loads(drkit("lint", "p", "--json").stdout) == doc
    assert json.loads(drkit("--json", "lint", "p").stdout) == doc


def test_threshold_decides_exit_code(drkit, write) -> None:
    write("p/a.json", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}]})
    assert drkit("lint", "p", "--severity-threshold", "medium").exit_code == 1
    assert drkit("lint", "p", "--severity-threshold", "high").exit_code == 0


def test_sarif_has_rules_file_and_line(drkit, write) -> None:
    write("p/c.json", '{\n "version": "2.0",\n "statement": [\n  {"effect": "allow",\n'
                      '   "action": ["cvm:TerminateInstances"], "resource": ["*"]}\n ]\n}\n')
    res = drkit("lint", "p", "--format", "sarif")
    assert res.exit_code == 1
    sarif = json.loads(res.stdout)
    assert sarif["version"] == "2.1.0" and "sarif-2.1.0" in sarif["$schema"]
    run = sarif["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert "cam_data_destruction" in rule_ids and "linter-error" in rule_ids
    result = next(r for r in run["results"] if r["ruleId"] == "cam_data_destruction")
    assert rule_ids[result["ruleIndex"]] == "cam_data_destruction"
    loc = result["locations"][0]["physicalLocation"]
    assert loc == {"artifactLocation": {"uri": "p/c.json"}, "region": {"startLine": 4}}
    assert result["level"] == "error"


def test_malformed_file_is_an_input_error_not_a_crash(drkit, write) -> None:
    # Issue 13.8: an unreadable file is an input error (exit 2 after the report), not a
    # finding that --severity-threshold could wave through.
    write("p/broken.json", '{"Version": "2012-10-17",\n "Statement": [\n')
    res = drkit("lint", "p", "--json")
    assert res.exit_code == 2
    doc = json.loads(res.stdout)
    assert doc["findings"] == []
    (error,) = doc["input_errors"]
    assert error["file"] == "p/broken.json" and "not valid JSON" in error["message"]
    assert error["line"] == 3
    assert "drkit: error: p/broken.json: not valid JSON" in res.stderr
    res = drkit("lint", "p", "--json", "--input-errors", "finding")
    assert res.exit_code == 1
    (finding,) = json.loads(res.stdout)["findings"]
    assert finding["rule"] == "input-error" and finding["severity"] == "critical"
    assert finding["line"] == 3


def test_folder_without_policies_is_usage_error(drkit, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "package.json").write_text('{"name": "x"}')
    res = drkit("lint", "empty")
    assert res.exit_code == 2
    assert "no policy files found in empty" in res.stderr
    assert drkit("lint", "missing").exit_code == 2


def test_suppressions_with_reason_owner_expiry(drkit, write, clock) -> None:
    write("p/a.json", {"Version": "2012-10-17", "Statement": [
        {"Sid": "Prune", "Effect": "Allow", "Action": "s3:DeleteObject",
         "Resource": "arn:aws:s3:::drkit-backup-aws/*",
         "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}]})
    write("supp.toml", '[[suppress]]\nrule = "aws_data_destruction"\nfile = "p/a.json"\n'
                       'statement = "Prune"\nreason = "pruning after retention, approved"\n'
                       'owner = "sre@example.com"\nexpires = 2026-12-31\n')
    res = drkit("lint", "p", "--suppressions", "supp.toml", "--json")
    assert res.exit_code == 0, res.stdout
    doc = json.loads(res.stdout)
    assert doc["findings"] == [] and doc["summary"]["suppressed"] == 1
    assert doc["suppressed"][0]["suppressed_by"]["owner"] == "sre@example.com"
    # Valid through its expiry day; the day after, the finding returns and the expiry is shown.
    clock.advance(timedelta(days=38))
    doc = json.loads(drkit("lint", "p", "--suppressions", "supp.toml", "--json").stdout)
    assert doc["summary"]["suppressed"] == 1
    clock.advance(timedelta(days=1))
    res = drkit("lint", "p", "--suppressions", "supp.toml", "--json")
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    rules = sorted(f["rule"] for f in doc["findings"])
    assert rules == ["aws_data_destruction", "suppression-expired"]
    assert doc["summary"]["expired_suppressions"][0]["expires"] == "2026-12-31"


@pytest.mark.parametrize("missing", ["reason", "owner", "expires"])
def test_suppression_needs_reason_owner_expiry(drkit, write, missing: str) -> None:
    write("p/a.json", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]})
    fields = {"rule": '"aws_syntax"', "reason": '"r"', "owner": '"o"', "expires": "2027-01-01"}
    del fields[missing]
    write("supp.toml", "[[suppress]]\n" + "".join(f"{k} = {v}\n" for k, v in fields.items()))
    res = drkit("lint", "p", "--suppressions", "supp.toml")
    assert res.exit_code == 2
    assert f"'{missing}' is required" in res.stderr


def test_text_output_names_file_line_rule(drkit, write) -> None:
    write("p/a.json", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]})
    res = drkit("lint", "p")
    assert res.exit_code == 1
    assert "p/a.json:4: HIGH aws_not_action [statement 0]" in res.stdout
    assert res.stdout.rstrip().endswith("FAIL")


def test_shipped_principals_catch_a_role_that_can_wipe_two_regions(drkit, shipped: Path) -> None:
    verifier = shipped / "tencent" / "verifier.json"
    doc = json.loads(verifier.read_text())
    # A "cleanup" permission slipped into the verifier: delete in every drkit COS bucket.
    doc["statement"].append({"effect": "allow", "action": ["name/cos:DeleteObject"],
                             "resource": ["qcs::cos:*:uid/1250000000:drkit-backup-*"],
                             "condition": {"ip_equal": {"qcs:ip": ["10.20.0.0/16"]}}})
    verifier.write_text(json.dumps(doc))
    res = drkit("lint", str(shipped), "--severity-threshold", "critical", "--json")
    report = json.loads(res.stdout)
    (duty,) = [f for f in report["findings"] if f["rule"] == "separation_of_duties"]
    assert duty["severity"] == "high" and duty["principal"] == "drkit-verifier"
    assert {e["tier"] for e in duty["evidence"]} == {"backup-beijing", "backup-nanjing"}
    assert res.exit_code == 0  # high is below the critical threshold
    assert drkit("lint", str(shipped), "--severity-threshold", "high").exit_code == 1


def test_output_file_and_non_policy_json_skipped(drkit, write, tmp_path: Path) -> None:
    write("p/package.json", {"name": "not-a-policy"})
    write("p/a.json", {"Version": "2012-10-17", "Statement": {
        "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}})
    res = drkit("lint", "p", "--format", "sarif", "-o", "out.sarif")
    assert res.exit_code == 0 and res.stdout == ""
    sarif = json.loads((tmp_path / "out.sarif").read_text())
    assert sarif["runs"][0]["results"] == []
    summary = json.loads(drkit("lint", "p", "--json").stdout)["summary"]
    assert summary["files"] == 2 and summary["policies"] == 1
