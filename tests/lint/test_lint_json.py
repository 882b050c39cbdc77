"""The JSON and SARIF reports are the standard library's text, written faster (to_json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lint.lint_support import NOW

from drkit.lint import lint_paths
from drkit.lint.output import render_sarif, to_json

SCALARS = (st.none() | st.booleans() | st.integers() | st.text()
           | st.floats(allow_nan=True, allow_infinity=True))
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (st.lists(inner, max_size=5) | st.tuples(inner, inner)
                   | st.dictionaries(st.text(max_size=8), inner, max_size=5)),
    max_leaves=30)


@given(JSON_VALUES)
def test_to_json_writes_what_json_dumps_writes(value: Any) -> None:
    assert to_json(value) == json.dumps(value, indent=2)
    assert to_json(value, indent=4) == json.dumps(value, indent=4)


def test_what_to_json_does_not_write_itself_goes_to_json_dumps() -> None:
    # Keys that are not strings, and types json.dumps refuses, behave as json.dumps does.
    assert to_json({1: [True, None], 2.5: "x"}) == json.dumps({1: [True, None], 2.5: "x"},
                                                              indent=2)
    with pytest.raises(TypeError, match="not JSON serializable"):
        to_json({"when": NOW})


def test_reports_of_real_findings_are_the_standard_text(tmp_path: Path) -> None:
    policy = tmp_path / "p.json"
    policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Wipe\u00e9", "Effect": "Allow", "Action": ["s3:Delete*", "iam:PassRole",
                                                          "ec2:RunInstances"],
         "Resource": "*"},
        {"Effect": "Allow", "NotAction": "s3:Get*", "Resource": "*"}]}), "utf-8")
    report = lint_paths([policy], now=NOW)
    assert len(report.findings) > 3
    for document in (report.to_dict(), render_sarif(report)):
        assert to_json(document) == json.dumps(document, indent=2)
