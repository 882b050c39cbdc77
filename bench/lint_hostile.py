"""Benchmark: what hostile policy files cost `drkit lint` (issue 14, section 1).

    .venv/bin/python bench/lint_hostile.py [--statements 1000,2000,4000,50000]

Prints CPU seconds for one file of N statements (pairs of an Allow with delete, PassRole
and a unique Describe pattern and a Deny on the same bucket; and Allows on "*" that give
three findings each), for a file of
many-star action patterns, and for a 1,000-level nested file. Linear time means the
per-statement cost stays flat as N grows.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from drkit.lint import lint_paths

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def findings_only(n: int) -> dict[str, object]:
    """N Allow statements that each give three findings (delete, PassRole on "*")."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": f"S{i}", "Effect": "Allow",
         "Action": ["s3:DeleteObject", f"ec2:Describe{i}*", "iam:PassRole"], "Resource": "*"}
        for i in range(n)]}


def statements(n: int) -> dict[str, object]:
    out: list[dict[str, object]] = []
    for i in range(n // 2):
        out.append({"Sid": f"A{i}", "Effect": "Allow",
                    "Action": ["s3:DeleteObject", f"ec2:Describe{i}*", "iam:PassRole"],
                    "Resource": f"arn:aws:s3:::bucket-{i}/*"})
        out.append({"Sid": f"D{i}", "Effect": "Deny", "Action": "s3:DeleteObject",
                    "Resource": f"arn:aws:s3:::bucket-{i}/*"})
    return {"Version": "2012-10-17", "Statement": out}


def timed(path: Path) -> tuple[float, int, int]:
    start = time.process_time()
    report = lint_paths([path], now=NOW)
    return time.process_time() - start, len(report.findings), len(report.input_errors)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--statements", default="1000,2000,4000,50000")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="drkit-lint-hostile-"))
    for n in (int(x) for x in args.statements.split(",")):
        for kind, make in (("allow+deny pairs", statements), ("allow, 3 findings each",
                                                              findings_only)):
            path = root / f"s{n}.json"
            path.write_text(json.dumps(make(n), indent=2))
            cpu, findings, _ = timed(path)
            print(f"{n:>7} statements ({kind}): {cpu:7.2f} CPU s  "
                  f"({cpu / n * 1e6:6.1f} us/statement, {findings} findings)")
    stars = root / "stars.json"
    stars.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:" + "*" * 60 + "x", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:" + "*a" * 40 + "*x",
         "Resource": "arn:aws:s3:::" + "*a" * 500 + "*b"}]}))
    cpu, findings, _ = timed(stars)
    print(f"  many-star patterns: {cpu:7.3f} CPU s ({findings} findings)")
    deep = root / "deep.json"
    deep.write_text('{"Version": "2012-10-17", "Statement": ' + "[" * 1000 + "]" * 1000 + "}")
    cpu, _, errors = timed(deep)
    print(f"  1,000-level nesting: {cpu:7.3f} CPU s ({errors} input error)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
