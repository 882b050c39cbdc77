"""What people actually have: API responses, whole-account exports and CAM bundles.

The fixtures under ``tests/lint/exports/`` are what the clouds' own tools print (see the
SOURCES.md there): ``aws iam get-policy-version`` output of two real AWS managed policies, an
``aws iam get-account-authorization-details`` export built from real managed policies, and
a folder of ``tccli cam ...`` responses. Tests lint them as a user would, through the CLI.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from lint.lint_support import NOW

from drkit.lint import lint_paths
from drkit.lint.exports import read_file

EXPORTS = Path(__file__).resolve().parent / "exports"
ACCT = "111122223333"
BOB = f"arn:aws:iam::{ACCT}:user/ops-bob"
OWNER = "qcs::cam::uin/100000000001:"


@pytest.fixture
def fixtures(tmp_path: Path) -> Path:
    """A copy of tests/lint/exports in the test's working directory."""
    shutil.copytree(EXPORTS, tmp_path / "ex")
    return tmp_path / "ex"


def run(drkit: Any, *args: str) -> tuple[int, dict[str, Any], str]:
    res = drkit("lint", *args, "--json")
    return res.exit_code, json.loads(res.stdout), res.stderr


def by_rule(report: dict[str, Any], rule: str) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["rule"] == rule]


# --- single API responses -----------------------------------------------------------------

def test_get_policy_version_is_linted_in_folder_mode(drkit: Any, fixtures: Path) -> None:
    """Real ``aws iam get-policy-version`` output: no longer skipped as "not a policy"."""
    code, report, _ = run(drkit, "ex/aws/api")
    assert code == 1
    assert report["summary"]["policies"] == 2
    s3 = [f for f in by_rule(report, "aws_data_destruction")
          if f["file"] == "ex/aws/api/AmazonS3FullAccess.json"]
    assert s3 and {"s3:DeleteBucket", "s3:DeleteObject"} <= set(s3[0]["actions"])
    # The line is the statement's own line in the response file.
    lines = (fixtures / "aws/api/AmazonS3FullAccess.json").read_text().splitlines()
    assert lines[s3[0]["line"] - 1].strip() == "{"
    assert '"Action"' in lines[s3[0]["line"]]


def _document_forms(doc: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    yield "embedded", doc
    yield "json-text", json.dumps(doc)
    yield "url-encoded", quote(json.dumps(doc), safe="")  # what the IAM API returns


@pytest.mark.parametrize("form", ["embedded", "json-text", "url-encoded"])
@pytest.mark.parametrize("shape", ["get-policy-version", "get-role-policy", "cam-GetPolicy",
                                   "cam-GetPolicy-api"])
def test_response_shapes_and_document_encodings(write: Callable[[str, Any], Path],
                                                shape: str, form: str) -> None:
    cam = shape.startswith("cam")
    doc = ({"version": "2.0", "statement": [{"effect": "allow", "action": "name/cos:DeleteBucket",
                                             "resource": "*"}]} if cam else
           {"Version": "2012-10-17", "Statement": [{"Sid": "Wipe", "Effect": "Allow",
                                                   "Action": "rds:DeleteDBInstance",
                                                   "Resource": "*"}]})
    value = dict(_document_forms(doc))[form]
    body: dict[str, Any] = {
        "get-policy-version": {"PolicyVersion": {"Document": value, "VersionId": "v3",
                                                 "IsDefaultVersion": True}},
        "get-role-policy": {"RoleName": "ops", "PolicyName": "wipe", "PolicyDocument": value},
        "cam-GetPolicy": {"PolicyName": "p", "Type": 1, "PolicyDocument": value,
                          "RequestId": "r"},
        "cam-GetPolicy-api": {"Response": {"PolicyName": "p", "Type": 1,
                                           "PolicyDocument": value, "RequestId": "r"}},
    }[shape]
    path = write(f"in/{shape}.json", body)
    report = lint_paths([path.parent], now=NOW)
    (finding,) = [f for f in report.findings if f.category == "data-destruction"]
    assert finding.cloud == ("tencent" if cam else "aws")
    assert finding.file.endswith(f"{shape}.json")
    assert finding.actions == (["cos:DeleteBucket"] if cam else ["rds:DeleteDBInstance"])


def test_trust_policies_of_get_role_and_cam_get_role(write: Callable[[str, Any], Path]) -> None:
    open_trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}
    write("r/aws-role.json", {"Role": {"RoleName": "x", "Arn": f"arn:aws:iam::{ACCT}:role/x",
                                       "AssumeRolePolicyDocument": open_trust}})
    cam_trust = {"version": "2.0", "statement": [
        {"effect": "allow", "action": "name/sts:AssumeRole",
         "principal": {"qcs": ["qcs::cam::anyone"]}}]}
    write("r/cam-role.json", {"Response": {"RoleInfo": {
        "RoleName": "x", "PolicyDocument": json.dumps(cam_trust)}, "RequestId": "r"}})
    report = lint_paths([write("r/package.json", {"name": "not-a-policy"}).parent], now=NOW)
    public = {f.file.rsplit("/", 1)[-1] for f in report.findings
              if f.category == "public-principal"}
    assert public == {"aws-role.json", "cam-role.json"}
    assert report.policies == 2  # package.json is still skipped


def test_cam_error_response_is_an_input_error(drkit: Any, write: Callable[[str, Any], Path],
                                              fixtures: Path) -> None:
    write("ex/cam/policies/9.json", {"Response": {"Error": {
        "Code": "ResourceNotFound.PolicyIdNotExist", "Message": "policy id not exist"},
        "RequestId": "r"}})
    code, report, err = run(drkit, "ex/cam/policies")
    assert code == 2
    assert report["input_errors"][0]["file"] == "ex/cam/policies/9.json"
    assert "ResourceNotFound.PolicyIdNotExist" in err
    assert report["summary"]["policies"] == 4  # every other response is still linted


# --- aws iam get-account-authorization-details -------------------------------------------

def test_account_export_lints_every_document_with_locators(fixtures: Path) -> None:
    report = lint_paths([fixtures / "aws/account.json"], now=NOW)
    assert report.policies == 9  # 5 managed (default versions), 2 inline, 2 trust
    files = {f.file.partition("#")[2] for f in report.findings}
    assert {"policy/AmazonS3FullAccess", "policy/AmazonRDSFullAccess",
            "policy/AWSBackupFullAccess", "user/ops-bob/inline/vault-cleanup",
            "user/ci-deployer/inline/deploy"} <= files
    # The writer's non-default v1 (which allowed s3:DeleteObject) is not in force.
    assert not any("drkit-backup-writer" in f for f in files)
    text = (fixtures / "aws/account.json").read_text().splitlines()
    vault = next(f for f in report.findings if f.statement == "ExpireOldRecoveryPoints")
    assert text[vault.line].strip() == '"Sid": "ExpireOldRecoveryPoints",'


def test_account_export_gives_duties_per_real_principal(drkit: Any, fixtures: Path) -> None:
    """The user's side: an export and a tiers-only principals file, no hand-written principals."""
    code, report, _ = run(drkit, "ex/aws/account.json", "--principals", "ex/aws/tiers.toml")
    assert code == 1
    (duty,) = by_rule(report, "separation_of_duties")
    assert duty["severity"] == "critical" and duty["principal"] == BOB
    assert duty["file"] == "ex/aws/tiers.toml"
    where = {(e["tier"], e["file"].partition("#")[2]) for e in duty["evidence"]}
    # Production and the S3 copy through the Operators group's managed policies, the vault
    # through ops-bob's own inline policy: only the whole principal is critical.
    assert ("production", "policy/AmazonRDSFullAccess") in where
    assert ("backup-s3", "policy/AmazonS3FullAccess") in where
    assert ("backup-vault", "user/ops-bob/inline/vault-cleanup") in where


def test_exports_key_in_principals_file_and_folder_mode(drkit: Any, fixtures: Path) -> None:
    tiers = fixtures / "aws/tiers.toml"
    tiers.write_text('exports = ["account.json"]\n' + tiers.read_text())
    (fixtures / "aws/principals.toml").write_text(tiers.read_text())
    code, report, _ = run(drkit, "ex/aws")
    assert code == 1
    (duty,) = by_rule(report, "separation_of_duties")
    assert duty["principal"] == BOB and duty["line"] == 1  # the exports = line
    # The export is read once although both the folder and the exports key name it.
    assert report["summary"]["policies"] == 11


def test_sarif_splits_the_locator_off_the_file(drkit: Any, fixtures: Path) -> None:
    res = drkit("lint", "ex/aws/account.json", "--format", "sarif")
    results = json.loads(res.stdout)["runs"][0]["results"]
    loc = next(r["locations"][0] for r in results
               if r["properties"].get("statement") == "ExpireOldRecoveryPoints")
    assert loc["physicalLocation"]["artifactLocation"]["uri"] == "ex/aws/account.json"
    assert loc["logicalLocations"] == [
        {"fullyQualifiedName": "user/ops-bob/inline/vault-cleanup"}]


def _export() -> dict[str, Any]:
    return json.loads((EXPORTS / "aws/account.json").read_text())


def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


BAD_EXPORTS = [
    (("RoleDetailList", 0, "AttachedManagedPolicies", 0, "PolicyArn"),
     f"arn:aws:iam::{ACCT}:policy/gone",
     "RoleDetailList[0] (BackupAdmin).AttachedManagedPolicies[0]: policy "
     f"arn:aws:iam::{ACCT}:policy/gone is attached but not in the export's Policies"),
    (("UserDetailList",), {}, "UserDetailList: must be an array, got an object"),
    (("UserDetailList", 1, "UserPolicyList", 0, "PolicyDocument"), 5,
     "UserDetailList[1] (ops-bob).UserPolicyList[0] (vault-cleanup).PolicyDocument: must be "
     "a policy document"),
    (("UserDetailList", 1, "UserPolicyList", 0, "PolicyDocument"), "%7Bnot json",
     "the policy document text is not valid JSON"),
    (("RoleDetailList", 1, "RoleName"), None,
     "RoleDetailList[1]: 'RoleName' must be a non-empty string (missing)"),
    (("Policies", 4, "PolicyVersionList", 0, "IsDefaultVersion"), False,
     "Policies[4] (drkit-backup-writer).PolicyVersionList: needs exactly one version with "
     "IsDefaultVersion true, found 0"),
    (("UserDetailList", 0, "GroupList"), ["Admins"],
     "UserDetailList[0] (alice).GroupList[0]: group 'Admins' is not in the export's "
     "GroupDetailList"),
    (("IsTruncated",), True, "IsTruncated is true: this is one page of the listing"),
    (("RoleDetailList", 0, "AssumeRolePolicyDocument"), ["not", "a", "document"],
     "RoleDetailList[0] (BackupAdmin).AssumeRolePolicyDocument: must be a policy document"),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD_EXPORTS,
                         ids=[".".join(map(str, b[0])) for b in BAD_EXPORTS])
def test_bad_export_is_one_line_input_error(drkit: Any, write: Callable[[str, Any], Path],
                                            path: tuple[Any, ...], value: Any,
                                            message: str) -> None:
    data = _export()
    _set(data, path, value)
    write("acct/account.json", data)
    write("acct/other.json", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:DeleteBucket", "Resource": "*"}]})
    res = drkit("lint", "acct", "--json")
    assert res.exit_code == 2
    errors = [line for line in res.stderr.splitlines() if "acct/account.json" in line]
    assert len(errors) == 1 and errors[0].startswith("drkit: error: acct/account.json: ")
    assert message in errors[0]
    report = json.loads(res.stdout)
    assert report["summary"]["policies"] == 1  # the other file still got its verdict
    assert report["input_errors"][0]["file"] == "acct/account.json"
    if path != ("IsTruncated",):  # the line of the entry at fault, not line 1
        assert report["input_errors"][0]["line"] > 1


def _paths(value: Any, prefix: tuple[Any, ...] = (), depth: int = 4) -> Iterator[tuple[Any, ...]]:
    if depth == 0:
        return
    items = (value.items() if isinstance(value, dict)
             else enumerate(value) if isinstance(value, list) else ())
    for key, child in items:
        yield prefix + (key,)
        yield from _paths(child, prefix + (key,), depth - 1)


SMALL_EXPORT = {
    "UserDetailList": [{"UserName": "u", "Arn": f"arn:aws:iam::{ACCT}:user/u",
                        "GroupList": ["g"], "UserPolicyList": [
                            {"PolicyName": "i", "PolicyDocument": {
                                "Version": "2012-10-17", "Statement": [
                                    {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}}],
                        "AttachedManagedPolicies": [
                            {"PolicyName": "m", "PolicyArn": f"arn:aws:iam::{ACCT}:policy/m"}]}],
    "GroupDetailList": [{"GroupName": "g", "Arn": f"arn:aws:iam::{ACCT}:group/g",
                         "GroupPolicyList": [], "AttachedManagedPolicies": []}],
    "RoleDetailList": [{"RoleName": "r", "Arn": f"arn:aws:iam::{ACCT}:role/r",
                        "AssumeRolePolicyDocument": "%7B%22Version%22%3A%222012-10-17%22%7D",
                        "RolePolicyList": [], "AttachedManagedPolicies": []}],
    "Policies": [{"PolicyName": "m", "Arn": f"arn:aws:iam::{ACCT}:policy/m",
                  "PolicyVersionList": [{"Document": {"Version": "2012-10-17", "Statement": []},
                                         "IsDefaultVersion": True}]}],
}


def test_no_wrong_type_anywhere_in_an_export_crashes() -> None:
    """Every value (to depth 4) replaced by every JSON type: a result or an input error."""
    outcomes = {"ok": 0, "error": 0}
    for path in _paths(SMALL_EXPORT):
        for value in (None, 0, True, "x", [], {}, [1], {"a": 1}):
            data = copy.deepcopy(SMALL_EXPORT)
            _set(data, path, value)
            loaded = read_file(json.dumps(data, indent=1), "fuzz.json")
            if loaded.input_error is not None:
                message = loaded.input_error.message
                # One line that names the place: the top-level list the entry is in.
                assert "\n" not in message
                assert message.split("[")[0].split(":")[0] in (
                    "UserDetailList", "GroupDetailList", "RoleDetailList", "Policies"), message
                outcomes["error"] += 1
            else:
                assert loaded.policies and loaded.principals is not None
                outcomes["ok"] += 1
    # Optional keys may be null or empty, everything else wrong is refused.
    assert outcomes["ok"] >= 20 and outcomes["error"] >= 200, outcomes


def test_account_export_listed_as_a_policy_is_an_input_error(
        drkit: Any, fixtures: Path) -> None:
    tiers = fixtures / "aws/tiers.toml"
    tiers.write_text(tiers.read_text() + '\n[[principals]]\nname = "x"\n'
                     'policies = ["account.json"]\n')
    res = drkit("lint", "ex/aws/api", "--principals", "ex/aws/tiers.toml")
    assert res.exit_code == 2
    assert "holds 9 policy documents, not one: list an account export under 'exports'" in (
        res.stderr)


# --- Tencent Cloud CAM bundle --------------------------------------------------------------

def test_cam_bundle_gives_duties_per_real_principal(drkit: Any, fixtures: Path) -> None:
    code, report, _ = run(drkit, "ex/cam", "--principals", "ex/cam-tiers.toml")
    assert code == 1
    found = {f["principal"]: f["severity"] for f in by_rule(report, "separation_of_duties")}
    assert found == {
        OWNER + "uin/100000000011": "critical",  # dba-carol, through group dba
        OWNER + "groupid/30021": "critical",  # dba holds QcloudCDBFullAccess (cos:* on *)
        OWNER + "roleName/backup-cleanup": "high",  # both COS copies
        OWNER + "uin/100000000012": "high",  # backup-dave, named in the role's trust
    }
    dave = next(f for f in by_rule(report, "separation_of_duties")
                if f["principal"].endswith("100000000012"))
    assert any("trusted by ex/cam/DescribeRoleList.json#role/backup-cleanup/trust" in v
               for e in dave["evidence"] for v in e["via"])
    # Every GetPolicy response and each role's trust policy (two pages) were linted.
    assert report["summary"]["policies"] == 6


def test_cam_bundle_through_exports_key_only(drkit: Any, fixtures: Path) -> None:
    """``exports = ["cam"]`` alone: the bundle's documents are linted and its principals used."""
    code, report, _ = run(drkit, "ex/cam/policies/240016901.json",
                          "--principals", "ex/cam-tiers.toml")
    assert code == 1
    assert len(by_rule(report, "separation_of_duties")) == 4
    assert report["summary"]["files"] == 15


def _break(fixtures: Path, rel: str, change: Callable[[Any], Any] | None) -> None:
    path = fixtures / "cam" / rel
    if change is None:
        path.unlink()
    else:
        path.write_text(json.dumps(change(json.loads(path.read_text()))))


BAD_BUNDLES: list[tuple[str, Callable[[Any], Any] | None, str, str]] = [
    ("policies/1017.json", None, "ex/cam/groups/dba/ListAttachedGroupPolicies.json",
     "List[0]: policy 1017 (QcloudCDBFullAccess) is attached to group dba but "
     "policies/1017.json is not in the bundle"),
    ("users/backup-dave/ListGroupsForUser.json", None, "ex/cam",
     "CAM bundle is missing users/backup-dave/ListGroupsForUser.json"),
    ("GetUserAppId.json", None, "ex/cam", "CAM bundle is missing GetUserAppId.json"),
    ("ListUsers.json", lambda d: {**d, "Data": {"Uin": 1}}, "ex/cam/ListUsers.json",
     "Data: must be an array, got an object"),
    ("ListUsers.json", lambda d: {**d, "Data": [{**d["Data"][0], "Name": 7.5}]},
     "ex/cam/ListUsers.json", "Data[0]: 'Name' must be a non-empty string (got a number)"),
    ("DescribeRoleList.json", lambda d: d[:1], "ex/cam/DescribeRoleList.json",
     "holds 1 of TotalNum 2 entries: save every page"),
    ("roles/backup-cleanup/ListAttachedRolePolicies.json",
     lambda d: {"Response": {"Error": {"Code": "AuthFailure", "Message": "denied"}}},
     "ex/cam/roles/backup-cleanup/ListAttachedRolePolicies.json",
     "an error response of the cloud API, not an export: AuthFailure: denied"),
]


@pytest.mark.parametrize(("rel", "change", "file", "message"), BAD_BUNDLES,
                         ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD_BUNDLES)])
def test_bad_cam_bundle_is_one_line_input_error(drkit: Any, fixtures: Path, rel: str,
                                                change: Callable[[Any], Any] | None,
                                                file: str, message: str) -> None:
    _break(fixtures, rel, change)
    code, report, err = run(drkit, "ex/cam", "--principals", "ex/cam-tiers.toml")
    assert code == 2
    errors = [e for e in report["input_errors"] if message in e["message"]]
    assert [e["file"] for e in errors] == [file], report["input_errors"]
    assert f"drkit: error: {file}: " in err
    assert not by_rule(report, "separation_of_duties")  # no verdict on a partial model
    assert report["summary"]["policies"] >= 3  # the documents themselves were still linted


def test_exports_key_must_be_a_list_of_existing_paths(drkit: Any, fixtures: Path) -> None:
    tiers = fixtures / "cam-tiers.toml"
    for bad, message in (('exports = "cam"', "exports: must be a list of strings, got a "
                                             "string"),
                         ('exports = ["nowhere"]', "exports: 'nowhere' not found"),
                         ('exports = ["aws/api"]', "listed under exports but not a CAM bundle")):
        tiers.write_text(tiers.read_text().replace('exports = ["cam"]', bad))
        res = drkit("lint", "ex/cam/policies", "--principals", "ex/cam-tiers.toml")
        assert res.exit_code == 2 and message in res.stderr, res.stderr
        tiers.write_text(tiers.read_text().replace(bad, 'exports = ["cam"]'))
