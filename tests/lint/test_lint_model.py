"""The policy model: wildcard matching, NotAction, conditions, explicit deny, rule loading."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lint.lint_support import NOW, aws, cam

from drkit.lint import Hit, Linter, lint_paths, load_rules, parse_policy
from drkit.lint.catalog import catalog
from drkit.lint.patterns import matches, overlap
from drkit.lint.registry import RuleDefinitionError, rule_from_module


@pytest.mark.parametrize(("pattern", "value", "expected"), [
    ("s3:Delete*", "s3:DeleteObjectVersion", True),
    ("s3:delete*", "s3:DeleteObject", True),  # actions are case-insensitive
    ("s3:Get?bject", "s3:GetObject", True),
    ("s3:Get?bject", "s3:GetObjects", False),
    ("s3:[Dd]elete*", "s3:DeleteObject", False),  # brackets are literal in IAM
    ("*", "anything:AtAll", True),
])
def test_action_wildcards(pattern: str, value: str, expected: bool) -> None:
    assert matches(pattern, value, ignore_case=True) is expected


def test_resource_wildcards_are_case_sensitive() -> None:
    assert matches("arn:aws:s3:::backup-*/*", "arn:aws:s3:::backup-bj/x")
    assert not matches("arn:aws:s3:::Backup-*", "arn:aws:s3:::backup-bj")


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("arn:aws:s3:::backup-*", "arn:aws:s3:::backup-bj/*", True),
    ("arn:aws:s3:::backup-bj/packs/*", "arn:aws:s3:::backup-bj/*", True),
    ("a*c", "ab*", True),
    ("arn:aws:s3:::prod/*", "arn:aws:s3:::backup/*", False),
    ("x?z", "xyz", True),
    ("x?z", "xz", False),
])
def test_pattern_overlap(a: str, b: str, expected: bool) -> None:
    assert overlap(a, b) is expected and overlap(b, a) is expected


@given(st.text(alphabet="ab*?", max_size=6), st.text(alphabet="ab", max_size=6))
def test_overlap_agrees_with_matching_on_literals(pattern: str, literal: str) -> None:
    assert overlap(pattern, literal) == matches(pattern, literal)


def test_catalog_expansion_and_data_sources() -> None:
    cat = catalog("tencent")
    assert cat.expand("cdb:*Isolate*", "destructive") >= {"cdb:IsolateDBInstance",
                                                          "cdb:OfflineIsolatedInstances"}
    assert cat.expand("name/cos:GetObject"[5:], "destructive") == frozenset()
    for cloud in ("aws", "tencent"):
        text = (Path(__file__).resolve().parents[2] / "drkit/lint/data"
                / ("aws_actions.toml" if cloud == "aws" else "cam_actions.toml")).read_text()
        assert "https://" in text  # every catalogue says where its names come from


def test_not_action_allows_everything_else() -> None:
    policy = parse_policy(str(aws({"Effect": "Allow", "NotAction": ["s3:Get*", "s3:List*"],
                                   "Resource": "*"})).replace("'", '"'), "p.json")
    (stmt,) = policy.statements
    cat = policy.catalog
    assert stmt.covers_action("s3:DeleteObject") and not stmt.covers_action("s3:GetObject")
    assert "rds:DeleteDBInstance" in stmt.covers(cat, "destructive")
    excluded = parse_policy('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
                            '"NotAction": "s3:Delete*", "Resource": "*"}]}', "q.json")
    covered = excluded.statements[0].covers(cat, "destructive")
    assert "s3:DeleteObject" not in covered and "ec2:DeleteSnapshot" in covered


def _rules(report) -> set[str]:  # type: ignore[no-untyped-def]
    return {f.rule for f in report.findings}


def test_explicit_deny_in_same_document_overrides_allow(lint_doc) -> None:
    allow = {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}
    assert "aws_data_destruction" in _rules(lint_doc(aws(allow)))
    deny = {"Effect": "Deny", "Action": ["s3:Delete*", "s3:Put*", "s3:Bypass*"],
            "Resource": "arn:aws:s3:::b/*"}
    rules = _rules(lint_doc(aws(allow, deny)))
    assert "aws_data_destruction" not in rules and "aws_backup_tampering" not in rules
    assert "aws_wildcard_action" in rules  # still broader than it needs to be
    # A deny on a narrower resource, or with a condition, does not cancel the allow.
    narrow = dict(deny, Resource="arn:aws:s3:::b/keep/*")
    assert "aws_data_destruction" in _rules(lint_doc(aws(allow, narrow)))
    conditional = dict(deny, Condition={"Bool": {"aws:MultiFactorAuthPresent": "false"}})
    assert "aws_data_destruction" in _rules(lint_doc(aws(allow, conditional)))


def test_conditions_only_guard_with_known_keys(lint_doc) -> None:
    stmt = {"effect": "allow", "action": ["cvm:TerminateInstances"],
            "resource": ["qcs::cvm:ap-shanghai:uin/1:instance/*"]}
    assert "cam_missing_condition" in _rules(lint_doc(cam(stmt)))
    tagged = dict(stmt, condition={"string_equal": {"qcs:resource_tag": ["env&dev"]}})
    assert "cam_missing_condition" not in _rules(lint_doc(cam(tagged)))
    unrelated = dict(stmt, condition={"string_equal": {"vpc:region": ["ap-shanghai"]}})
    assert "cam_missing_condition" in _rules(lint_doc(cam(unrelated)))


def test_cos_capitalised_keys_and_name_prefix() -> None:
    policy = parse_policy('{"version": "2.0", "Statement": [{"Effect": "Allow", '
                          '"Principal": {"qcs": ["qcs::cam::uin/1:uin/2"]}, '
                          '"Action": ["name/cos:PutObject"], '
                          '"Resource": ["qcs::cos:ap-beijing:uid/1:b-1/*"]}]}', "b.json")
    assert policy.cloud == "tencent" and policy.kind == "resource" and not policy.problems
    assert policy.statements[0].actions == ("cos:PutObject",)
    assert policy.statements[0].principals == ("qcs::cam::uin/1:uin/2",)


def test_statement_lines_point_at_each_statement() -> None:
    text = ('{\n  "Version": "2012-10-17",\n  "Statement": [\n    {"Effect": "Allow",\n'
            '     "Action": "s3:GetObject", "Resource": "*"},\n\n    {"Effect": "Deny",\n'
            '     "Action": "s3:*", "Resource": "*"}\n  ]\n}\n')
    policy = parse_policy(text, "x.json")
    assert [policy.statement_line(i) for i in range(2)] == [4, 7]


def _module(name: str, **attrs: object) -> types.ModuleType:
    module = types.ModuleType(name)
    base = {"ID": name, "CATEGORY": "syntax", "SEVERITY": "high", "TITLE": "t",
            "REMEDIATION": "r", "CLOUDS": ("aws",), "check": lambda policy: iter(())}
    base.update(attrs)
    for key, value in base.items():
        setattr(module, key, value)
    return module


def test_rule_id_must_equal_module_name() -> None:
    with pytest.raises(RuleDefinitionError, match="does not equal the module name"):
        rule_from_module(_module("aws_thing", ID="aws-thing"), "aws_thing")
    with pytest.raises(RuleDefinitionError, match="unknown category"):
        rule_from_module(_module("aws_thing", CATEGORY="style"), "aws_thing")
    assert all(r.id == r.check.__module__.rsplit(".", 1)[1] for r in load_rules())


def test_crashing_rule_is_a_critical_finding(write) -> None:
    def explode(policy: object) -> list[Hit]:
        raise KeyError("Statement")

    crashing = rule_from_module(_module("aws_crashy", check=explode), "aws_crashy")
    path = write("p.json", aws({"Effect": "Allow", "Action": "s3:GetObject",
                                "Resource": "arn:aws:s3:::b/*"}))
    report = lint_paths([path], now=NOW, threshold="medium",
                        linter=Linter([*load_rules(), crashing]))
    (finding,) = report.findings
    assert finding.rule == "linter-error" and finding.severity == "critical"
    assert "aws_crashy crashed: KeyError" in finding.message
    assert report.failed


def test_resource_wildcards_stay_within_their_segment() -> None:
    from drkit.lint.patterns import resource_matches, resource_overlap

    policy = "qcs::cos:*:uid/1250000000:drkit-backup-*"
    assert resource_overlap(policy, "qcs::cos:ap-nanjing:uid/1250000000:drkit-backup-nj/*")
    # As plain strings these overlap (the tier's trailing * could spell the rest), but a
    # region wildcard does not reach another bucket.
    prod = "qcs::cos:ap-shanghai:uid/1250000000:shop-prod-1250000000/*"
    assert overlap(policy, prod) and not resource_overlap(policy, prod)
    assert resource_overlap("*", prod) and resource_matches("*", prod)
    assert resource_matches("arn:aws:s3:::b/*", "arn:aws:s3:::b/x/y")
    assert not resource_matches("arn:aws:s3:::b/*", "arn:aws:s3:::c/x")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.sampled_from(
        ["*", "s3:*", "Allow", "deny", "2.0", "2012-10-17", "qcs::cam::anyone",
         "arn:aws:s3:::b/*", "name/cos:DeleteBucket", "qcs::cos:ap-beijing:uid/1:b-1/*"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["Version", "version", "Statement", "statement", "Effect", "effect",
                         "Action", "NotAction", "action", "Resource", "resource",
                         "NotResource", "Principal", "NotPrincipal", "Condition", "Sid",
                         "qcs", "AWS", "Bogus"]), inner, max_size=5),
    max_leaves=20)


@given(_json)
def test_any_json_document_lints_without_a_rule_crashing(doc: object) -> None:
    import json

    policy = parse_policy(json.dumps(doc), "fuzz.json")
    findings = Linter().lint_policy(policy)
    assert not [f for f in findings if f.rule == "linter-error"], findings
