"""Benchmark: what hostile policy files cost `drkit lint` (issue 14, section 1), against bounds.

    .venv/bin/python bench/lint_hostile.py [--statements 1000,2000,4000,50000]

Times, in CPU seconds (time.process_time), the hostile files of tests/lint/hostile_files.py
(the same files tests/lint/test_lint_hostile.py checks for a verdict, untimed):

* one file of N statements, as Allow/Deny pairs and as Allows on "*" that each give
  findings: the cost per statement must stay under PER_STATEMENT_US at every N, and the
  cost per statement at the largest N may be at most LINEAR_FACTOR times the smallest
  (linear time: it was quadratic, 50,000 statements took over a minute);
* many-star action and resource patterns (sixty stars never returned), a 1,000-level
  nested file (RecursionError, exit 70) and a lone-surrogate Sid (UnicodeEncodeError in
  text output): each under SINGLE_FILE_S, text output included.

Prints each figure with its bound and exits 1 if any is over.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drkit.lint import LintReport, lint_paths
from drkit.lint.output import render_text

# tests/lint itself goes on the path (tests/ would give lint/, hidden by bench/lint.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "lint"))

import hostile_files as hostile  # noqa: E402

NOW = datetime(2026, 11, 23, tzinfo=UTC)
PER_STATEMENT_US = 500.0  # CPU microseconds per statement, at any size
LINEAR_FACTOR = 3.0  # largest-N cost per statement over smallest-N cost per statement
SINGLE_FILE_S = 0.5  # CPU seconds for one small hostile file, text output included


def timed(path: Path) -> tuple[float, LintReport]:
    start = time.process_time()
    report = lint_paths([path], now=NOW)
    render_text(report).encode("utf-8")  # what printing the report costs (and needs)
    return time.process_time() - start, report


def verdict(ok: bool) -> str:
    return "ok" if ok else "OVER BOUND"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--statements", default=f"1000,2000,4000,{hostile.STATEMENTS}")
    args = parser.parse_args()
    sizes = sorted(int(x) for x in args.statements.split(","))
    failed = False
    with tempfile.TemporaryDirectory(prefix="drkit-lint-hostile-") as tmp:
        root = Path(tmp)
        kinds: list[tuple[str, Callable[[int], dict[str, Any]]]] = [
            ("allow+deny pairs", hostile.allow_deny_pairs),
            ("allows on *, findings each", hostile.allows_on_star)]
        for kind, make in kinds:
            per_statement: dict[int, float] = {}
            for n in sizes:
                path = hostile.write(root / f"{n}.json", make(n))
                cpu, report = timed(path)
                per_statement[n] = cpu / n * 1e6
                ok = per_statement[n] <= PER_STATEMENT_US and not report.input_errors
                failed |= not ok
                print(f"{n:>7} statements ({kind}): {cpu:7.2f} CPU s  "
                      f"({per_statement[n]:6.1f} us/statement, bound {PER_STATEMENT_US:.0f}; "
                      f"{len(report.findings)} findings)  {verdict(ok)}")
            growth = per_statement[sizes[-1]] / max(per_statement[sizes[0]], 1e-9)
            ok = growth <= LINEAR_FACTOR
            failed |= not ok
            print(f"  {kind}: cost per statement at {sizes[-1]:,} is {growth:.2f}x that at "
                  f"{sizes[0]:,} (bound {LINEAR_FACTOR:.1f}x, linear time)  {verdict(ok)}")
        singles: list[tuple[str, str | dict[str, Any], str]] = [
            ("many-star patterns", hostile.many_stars(), "findings"),
            (f"{hostile.DEEP_LEVELS:,}-level nesting", hostile.deep_nesting(), "input error"),
            ("lone-surrogate Sid", hostile.lone_surrogate_sid(), "findings")]
        for i, (name, content, expected) in enumerate(singles):
            cpu, report = timed(hostile.write(root / f"single{i}.json", content))
            got = "input error" if report.input_errors else "findings"
            ok = cpu <= SINGLE_FILE_S and got == expected
            failed |= not ok
            print(f"  {name}: {cpu:7.3f} CPU s (bound {SINGLE_FILE_S} s; "
                  f"{len(report.findings)} findings, {len(report.input_errors)} input "
                  f"errors)  {verdict(ok)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
