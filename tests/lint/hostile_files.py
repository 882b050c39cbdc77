"""The hostile policy files of issue 14 section 1, built once for the tests and the bench.

Used by tests/lint/test_lint_hostile.py (as lint.hostile_files: every file gets a verdict or
an input error, untimed) and bench/lint_hostile.py (as hostile_files: the same files timed
against a printed bound). Imports nothing else from the tests folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# "s3:********x" took 7.5 s and sixty stars never returned while "*" became ".*" unchecked.
STAR_ACTIONS = ("s3:" + "*" * 60 + "x", "s3:" + "*a" * 40 + "*x",
                "*" * 200 + "s3:" + "*?" * 100 + "Q")
STAR_RESOURCE = "arn:aws:s3:::" + "*a" * 500 + "*b"
DEEP_LEVELS = 1000
STATEMENTS = 50_000


def deep_nesting(levels: int = DEEP_LEVELS) -> str:
    """A 6 KB policy nested ``levels`` deep (ended the run with RecursionError, exit 70)."""
    return '{"Version": "2012-10-17", "Statement": ' + "[" * levels + "]" * levels + "}"


def lone_surrogate_sid() -> str:
    """A statement whose Sid is a lone surrogate (text output raised UnicodeEncodeError).

    Written as the JSON escape, as a file would carry it; json.loads turns it into the
    unpaired code point."""
    return ('{"Version": "2012-10-17", "Statement": [{"Sid": "\\ud800", "Effect": "Allow", '
            '"Action": "s3:DeleteObjectVersion", "Resource": "arn:aws:s3:::backup-aws/*"}]}')


def many_stars() -> dict[str, Any]:
    """Allows of many-star action patterns on a many-star resource, and a many-star Deny
    that the engine must compare against them."""
    statements: list[dict[str, Any]] = [
        {"Sid": f"Stars{i}", "Effect": "Allow", "Action": action, "Resource": STAR_RESOURCE}
        for i, action in enumerate(STAR_ACTIONS)]
    statements.append({"Sid": "StarDeny", "Effect": "Deny", "Action": "s3:*",
                       "Resource": "arn:aws:s3:::" + "*b" * 500 + "*c"})
    statements.append({"Sid": "StarWipe", "Effect": "Allow",
                       "Action": "s3:***Delete**Object*Version", "Resource": "*"})
    return {"Version": "2012-10-17", "Statement": statements}


def allow_deny_pairs(n: int) -> dict[str, Any]:
    """``n`` statements: Allows of delete, PassRole and a unique Describe pattern on one
    bucket each, every one followed by a Deny of the delete on the same bucket."""
    out: list[dict[str, Any]] = []
    for i in range(n // 2):
        out.append({"Sid": f"A{i}", "Effect": "Allow",
                    "Action": ["s3:DeleteObject", f"ec2:Describe{i}*", "iam:PassRole"],
                    "Resource": f"arn:aws:s3:::bucket-{i}/*"})
        out.append({"Sid": f"D{i}", "Effect": "Deny", "Action": "s3:DeleteObject",
                    "Resource": f"arn:aws:s3:::bucket-{i}/*"})
    return {"Version": "2012-10-17", "Statement": out}


def allows_on_star(n: int) -> dict[str, Any]:
    """``n`` Allows of delete, a unique Describe pattern and PassRole on "*": every one a
    finding of several rules."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": f"S{i}", "Effect": "Allow",
         "Action": ["s3:DeleteObject", f"ec2:Describe{i}*", "iam:PassRole"], "Resource": "*"}
        for i in range(n)]}


def write(path: Path, content: str | dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2),
                    "utf-8")
    return path
