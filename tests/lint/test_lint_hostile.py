"""Every hostile file of issue 14 section 1 gets a verdict or one input error, and the run
goes on. What they cost is measured in bench/lint_hostile.py, never here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lint.hostile_files import (
    DEEP_LEVELS,
    STAR_ACTIONS,
    STATEMENTS,
    allow_deny_pairs,
    allows_on_star,
    deep_nesting,
    lone_surrogate_sid,
    many_stars,
    write,
)
from lint.lint_support import NOW

from drkit.lint import lint_paths
from drkit.lint.findings import LINTER_ERROR
from drkit.lint.output import render_sarif, render_text

WIPE = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Wipe", "Effect": "Allow", "Action": "s3:DeleteObjectVersion",
     "Resource": "arn:aws:s3:::backup-aws/*"}]}


def test_deep_file_is_one_input_error_and_the_others_are_linted(tmp_path: Path) -> None:
    write(tmp_path / "p" / "deep.json", deep_nesting())
    write(tmp_path / "p" / "wipe.json", WIPE)
    report = lint_paths([tmp_path / "p"], now=NOW)
    (error,) = report.input_errors
    assert error.file.endswith("deep.json") and "nested more than 32 levels" in error.message
    assert len(deep_nesting()) > 2 * DEEP_LEVELS
    assert [f.rule for f in report.findings if f.file.endswith("wipe.json")]
    assert not [f for f in report.findings if f.rule == LINTER_ERROR]


def test_lone_surrogate_sid_gets_its_finding_in_every_format(tmp_path: Path) -> None:
    path = write(tmp_path / "sid.json", lone_surrogate_sid())
    report = lint_paths([path], now=NOW)
    assert report.input_errors == []
    wipe = [f for f in report.findings if f.rule == "aws_data_destruction"]
    assert wipe and wipe[0].statement == "\ud800"
    text = render_text(report)
    text.encode("utf-8")  # what printing needs; raised UnicodeEncodeError before
    assert "[statement \\ud800]" in text
    sarif = json.dumps(render_sarif(report))  # the JSON encoder escapes it
    assert "aws_data_destruction" in sarif


def test_many_star_patterns_get_a_verdict(tmp_path: Path) -> None:
    path = write(tmp_path / "stars.json", many_stars())
    report = lint_paths([path], now=NOW)
    assert report.input_errors == []
    assert not [f for f in report.findings if f.rule == LINTER_ERROR]
    # The patterns are still matched, not given up on: s3:***Delete**Object*Version on "*"
    # is a deletion of object versions, and the sixty-star pattern is a wildcard action.
    destroy = [f for f in report.findings
               if f.rule == "aws_data_destruction" and f.statement == "StarWipe"]
    assert destroy and "s3:DeleteObjectVersion" in destroy[0].actions
    assert {f.statement for f in report.findings} >= {"StarWipe"}
    assert len(STAR_ACTIONS[0]) > 60


@pytest.mark.slow
def test_fifty_thousand_statements_get_a_verdict(tmp_path: Path) -> None:
    path = write(tmp_path / "pairs.json", allow_deny_pairs(STATEMENTS))
    report = lint_paths([path], now=NOW)
    assert report.input_errors == [] and report.policies == 1
    assert not [f for f in report.findings if f.rule == LINTER_ERROR]
    # Each Deny takes the delete out of its own Allow: no destruction finding at all,
    # but every Allow's PassRole on its bucket is still judged.
    assert not [f for f in report.findings if f.rule == "aws_data_destruction"]


def test_many_allows_on_star_each_get_their_findings(tmp_path: Path) -> None:
    n = 2_000
    path = write(tmp_path / "allows.json", allows_on_star(n))
    report = lint_paths([path], now=NOW)
    destroy = {f.statement for f in report.findings if f.rule == "aws_data_destruction"}
    assert destroy == {f"S{i}" for i in range(n)}
