"""Benchmark: separation of duties over a whole account export (issue 14).

    .venv/bin/python bench/lint_duties.py [--principals 200,1000,2000] [--bound 60]

For each size it writes a synthetic ``aws iam get-account-authorization-details`` export
(tests/lint/synthetic_account.py: users in team groups, roles with trust policies, a few
principals with escalation paths) and a tiers-only principals file, then times in CPU
seconds (time.process_time):

* ``lint``: linting the export's documents alone (no principals file);
* ``duties``: the same run with the tiers file, which adds the separation-of-duties
  analysis over every principal; ``sod`` is the difference.

It prints the figures per size, the growth of ``duties`` from one size to the next beside
the growth of the principal count (linear growth: the two ratios are close), and exits 1
if the largest size takes more than ``--bound`` CPU seconds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from drkit.lint import lint_paths

# tests/lint itself goes on the path (tests/ would give lint/, hidden by bench/lint.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "lint"))

import synthetic_account as synthetic  # noqa: E402

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def cpu(run: object) -> float:
    start = time.process_time()
    assert callable(run)
    run()
    return time.process_time() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--principals", default="200,1000,2000",
                        help="comma-separated account sizes (default: 200,1000,2000)")
    parser.add_argument("--bound", type=float, default=60.0,
                        help="CPU seconds the largest size may take (default: 60)")
    args = parser.parse_args()
    counts = sorted(int(x) for x in args.principals.split(","))
    rows: list[tuple[int, float, float, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            export, tiers = synthetic.write_account(Path(tmp) / str(n), n)
            lint_s = cpu(lambda e=export: lint_paths([e], now=NOW))
            found: list[int] = []

            def with_tiers(e: Path = export, t: Path = tiers, out: list[int] = found) -> None:
                report = lint_paths([e], now=NOW, principals_file=t)
                out.append(sum(f.rule == "separation_of_duties" for f in report.findings))

            duties_s = cpu(with_tiers)
            rows.append((n, lint_s, duties_s, found[0]))
            teams, groups, users, roles = synthetic.sizes(n)
            print(f"{n:>6} principals ({users} users, {groups} groups, {roles} roles): "
                  f"lint {lint_s:6.2f} s, duties {duties_s:6.2f} s, "
                  f"sod {duties_s - lint_s:6.2f} CPU s, {found[0]} duty findings",
                  flush=True)
    print("growth (principals ratio -> duties CPU ratio):")
    for (n0, _, d0, _), (n1, _, d1, _) in zip(rows, rows[1:], strict=False):
        print(f"  {n0} -> {n1}: x{n1 / n0:.1f} principals, x{d1 / max(d0, 1e-9):.1f} CPU")
    largest = rows[-1]
    ok = largest[2] <= args.bound
    print(f"{largest[0]} principals: {largest[2]:.2f} CPU s (bound {args.bound:.0f} s): "
          f"{'ok' if ok else 'OVER BOUND'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
