"""The linter survives every file (issue 24.6, 13.8, 14.1): one clear input error per bad
file, the report for everything else still written, exit 2 for input errors (or a critical
finding with --input-errors=finding), no crash, no hang, linear time in statements."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lint.lint_support import NOW, aws

from drkit.lint import lint_paths

WIPE = aws({"Sid": "Wipe", "Effect": "Allow", "Action": "s3:DeleteObjectVersion",
            "Resource": "arn:aws:s3:::backup-aws/*"})
READ = aws({"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::reports/*"})

BAD_FILES = {
    "not-json": ("{\"Version\": \"2012-10-17\", \"Statement\": [", "not valid JSON"),
    "empty": ("", "empty file"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "not UTF-8 text"),
    "huge-int": ('{"Version": "2012-10-17", "Statement": [], "Id": ' + "9" * 5000 + "}",
                 "a number too long to read"),
    "deep": ('{"Version": "2012-10-17", "Statement": ' + "[" * 1000 + "]" * 1000 + "}",
             "nested more than 32 levels deep"),
}


def put(path: Path, content: str | bytes | dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2),
                        "utf-8")
    return path


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_file_in_folder_is_one_input_error_and_report_is_written(drkit, tmp_path: Path,
                                                                     kind: str) -> None:
    content, reason = BAD_FILES[kind]
    put(tmp_path / "p" / "wipe.json", WIPE)
    put(tmp_path / "p" / "read.json", READ)
    put(tmp_path / "p" / "bad.json", content)
    res = drkit("lint", "p", "--format", "sarif", "-o", "out.sarif")
    assert res.exit_code == 2, res.stderr
    assert "internal error" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if "p/bad.json" in line]
    assert len(errors) == 1 and reason in errors[0], res.stderr
    # The report was written, with the finding of the good file and the bad file named.
    sarif = json.loads((tmp_path / "out.sarif").read_text())
    run = sarif["runs"][0]
    assert any(r["ruleId"] == "aws_data_destruction" for r in run["results"])
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is False
    (note,) = invocation["toolExecutionNotifications"]
    assert note["level"] == "error" and reason in note["message"]["text"]
    assert note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "p/bad.json"


@pytest.mark.parametrize("kind", ["not-json", "empty", "binary", "array"])
def test_unreadable_file_cannot_pass_a_critical_threshold(drkit, tmp_path: Path,
                                                          kind: str) -> None:
    # Before: a syntax finding (high), so --severity-threshold critical exited 0. (In a
    # folder a JSON array is skipped like package.json; named explicitly it is an error.)
    content = "[{\"Effect\": \"Allow\"}]" if kind == "array" else BAD_FILES[kind][0]
    put(tmp_path / "bad.json", content)
    res = drkit("lint", "bad.json", "--severity-threshold", "critical")
    assert res.exit_code == 2, res.stdout + res.stderr
    assert "INPUT ERROR" in res.stdout
    res = drkit("lint", "bad.json", "--severity-threshold", "critical", "--json",
                "--input-errors", "finding")
    assert res.exit_code == 1
    (finding,) = json.loads(res.stdout)["findings"]
    assert finding["rule"] == "input-error" and finding["severity"] == "critical"


def test_clean_folder_has_no_input_errors(drkit, tmp_path: Path) -> None:
    put(tmp_path / "p" / "read.json", READ)
    put(tmp_path / "p" / "package.json", {"name": "not-a-policy"})
    put(tmp_path / "p" / "data.json", [1, 2, 3])  # JSON beside policies, not a policy
    res = drkit("lint", "p", "--json")
    assert res.exit_code == 0, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    assert doc["input_errors"] == [] and doc["findings"] == []
    assert doc["summary"]["policies"] == 1 and res.stderr == ""


PRINCIPALS_HEAD = """\
[tiers.production]
kind = "production"
resources = ["arn:aws:rds:ap-southeast-1:111122223333:db:shop"]
[tiers.backup]
kind = "backup"
resources = ["arn:aws:s3:::backup-aws/*"]
"""


@pytest.mark.parametrize(("body", "reason"), [
    ("resource_policies = 1\n", "resource_policies: must be a list of strings, got int"),
    ("resource_policies = [1, 2]\n",
     "resource_policies: must be a list of strings, got a list holding int"),
    ('[[principals]]\nname = "ops"\npolicies = [[]]\n',
     "principals[0] (ops): policies: must be a list of strings, got a list holding list"),
    ('[[principals]]\nname = "ops"\npolicies = 1\n', "policies: must be a list of strings"),
    ('[[principals]]\nname = "ops"\ngroups = "admins"\npolicies = ["wipe.json"]\n',
     "groups: must be a list of strings, got a string"),
    ('[[principals]]\nname = "ops"\narn = 5\npolicies = ["wipe.json"]\n',
     "arn: must be a string"),
    ('[[principals]]\nname = "ops"\ntype = ["user"]\npolicies = ["wipe.json"]\n',
     "'type' must be one of"),
    ('[[principals]]\nname = "ops"\npolicies = ["a\\u0000b"]\n', "not found"),
    ("principals = 3\n", "principals: must be a list"),
    ("x = " + "7" * 5000 + "\n", "x (line 1): an integer of 5000 digits"),
])
def test_principals_wrong_types_are_input_errors(drkit, tmp_path: Path, body: str,
                                                 reason: str) -> None:
    put(tmp_path / "p" / "wipe.json", WIPE)
    # Top-level keys go before the first [table] header, or TOML files them under it.
    top = not body.startswith("[[")
    put(tmp_path / "p" / "principals.toml", body + PRINCIPALS_HEAD if top
        else PRINCIPALS_HEAD + body)
    res = drkit("lint", "p", "--json", "-o", "report.json")
    assert res.exit_code == 2, res.stderr
    assert "internal error" not in res.stderr and "TypeError" not in res.stderr
    line = next(x for x in res.stderr.splitlines() if "p/principals.toml" in x)
    assert reason in line, res.stderr
    doc = json.loads((tmp_path / "report.json").read_text())
    assert any(f["rule"] == "aws_data_destruction" for f in doc["findings"])
    assert [e["file"] for e in doc["input_errors"]] == ["p/principals.toml"]


def test_lone_surrogate_sid_prints(drkit, tmp_path: Path) -> None:
    # json.loads gives "\ud800" as a lone surrogate; printing it raised UnicodeEncodeError.
    put(tmp_path / "s.json", '{"Version": "2012-10-17", "Statement": [{"Sid": "\\ud800", '
                             '"Effect": "Allow", "Action": "s3:DeleteObjectVersion", '
                             '"Resource": "arn:aws:s3:::backup-aws/*"}]}')
    res = drkit("lint", "s.json")
    assert res.exit_code == 1, res.stderr
    assert "[statement \\ud800]" in res.stdout
    res = drkit("lint", "s.json", "-o", "out.txt")
    assert res.exit_code == 1 and "\\ud800" in (tmp_path / "out.txt").read_text()
    assert json.loads(drkit("lint", "s.json", "--json").stdout)["findings"]


@pytest.mark.parametrize("pattern", ["s3:" + "*" * 60 + "x", "s3:" + "*a" * 40 + "*x",
                                     "*" * 200 + "s3:" + "*?" * 100 + "Q"])
def test_many_stars_get_a_verdict(tmp_path: Path, pattern: str) -> None:
    # How long they take is bench/lint_hostile.py's business (timed, with a printed bound);
    # here: the file is linted, and the hostile Allow is still read as a wildcard grant.
    path = put(tmp_path / "stars.json", aws(
        {"Effect": "Allow", "Action": pattern, "Resource": "arn:aws:s3:::" + "*a" * 500 + "*b"},
        {"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::" + "*b" * 500 + "*c"}))
    report = lint_paths([path], now=NOW)
    assert report.policies == 1 and not report.input_errors
    assert not [f for f in report.findings if f.rule in ("linter-error", "aws_syntax")]


def test_star_patterns_still_match_what_they_should(lint_doc) -> None:
    report = lint_doc(aws({"Effect": "Allow", "Action": "s3:***Delete**Object*Version",
                           "Resource": "*"}))
    destroy = [f for f in report.findings if f.rule == "aws_data_destruction"]
    assert destroy and "s3:DeleteObjectVersion" in destroy[0].actions


def _many(n: int) -> dict:
    statements = []
    for i in range(n):
        statements.append({"Sid": f"A{i}", "Effect": "Allow",
                           "Action": ["s3:DeleteObject", f"ec2:Describe{i}*", "iam:PassRole"],
                           "Resource": f"arn:aws:s3:::bucket-{i}/*"})
        statements.append({"Sid": f"D{i}", "Effect": "Deny", "Action": "s3:DeleteObject",
                           "Resource": f"arn:aws:s3:::bucket-{i}/*"})
    return aws(*statements)


def test_many_statement_pairs_each_deny_their_own_allow(tmp_path: Path) -> None:
    # The cost per statement staying flat is measured in bench/lint_hostile.py (it was
    # quadratic: checks.effective scanned every statement for denies once per allow).
    path = put(tmp_path / "s2000.json", _many(2000))
    report = lint_paths([path], now=NOW)
    # Each Deny takes s3:DeleteObject out of its own Allow: no destruction finding.
    assert not [f for f in report.findings if f.rule == "aws_data_destruction"]
    assert len([f for f in report.findings if f.rule == "aws_privilege_escalation"]) == 0


def test_statement_lines_are_right_in_a_long_file(tmp_path: Path) -> None:
    statements = [{"Sid": f"W{i}", "Effect": "Allow", "Action": "s3:DeleteObjectVersion",
                   "Resource": f"arn:aws:s3:::backup-{i}/*"} for i in range(300)]
    path = put(tmp_path / "long.json", aws(*statements))
    report = lint_paths([path], now=NOW)
    text = path.read_text().splitlines()
    lines = {f.statement: f.line for f in report.findings if f.rule == "aws_data_destruction"}
    assert len(lines) == 300
    for sid in ("W0", "W150", "W299"):
        assert text[lines[sid] - 1].strip() == "{"  # the statement's opening brace
        assert f'"Sid": "{sid}"' in text[lines[sid]]


# --- Property-based fuzzing: any file gives a verdict or one input error, never a crash ---

_JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                       st.text(max_size=8),
                       st.sampled_from(["*", "s3:*", "s3:Delete*", "iam:PassRole", "Allow",
                                        "Deny", "arn:aws:s3:::b/*", "qcs::cos:*:uid/1:b/*",
                                        "2012-10-17", "2.0", "\ud800", "s3:" + "*a" * 20]))
_JSON = st.recursive(_JSON_LEAF, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.sampled_from(["Version", "Statement", "Sid", "Effect", "Action",
                                     "NotAction", "Resource", "NotResource", "Principal",
                                     "Condition", "version", "statement", "x"]),
                    inner, max_size=5)), max_leaves=20)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_JSON, cut=st.integers(0, 200), raw=st.binary(max_size=40))
def test_fuzz_policies_never_crash(drkit, tmp_path: Path, doc: object, cut: int,
                                   raw: bytes) -> None:
    text = json.dumps(doc)
    put(tmp_path / "p" / "doc.json", text)
    put(tmp_path / "p" / "cut.json", text[:cut])  # truncated: usually not JSON
    put(tmp_path / "p" / "raw.json", raw)
    put(tmp_path / "p" / "good.json", WIPE)
    res = drkit("lint", "p", "--json")
    assert res.exit_code in (1, 2), res.stderr
    assert "internal error" not in res.stderr and "Traceback" not in res.stderr
    report = json.loads(res.stdout)
    assert any(f["rule"] == "aws_data_destruction" and f["file"] == "p/good.json"
               for f in report["findings"])
    assert not any(f["rule"] == "linter-error" for f in report["findings"]), report
