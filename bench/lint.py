"""Benchmark: lint synthetic and real policy files; print files/s and files per CPU-second.

    .venv/bin/python bench/lint.py [--files N] [--keep DIR] [--no-synthetic] [--no-real]

Synthetic: 10,000 random AWS/CAM policies (clean and dangerous). Real: the corpus of
tests/lint/corpus (issue 14) — the 1,388 AWS managed policies, timed alone in CPU seconds
(time.process_time, so a busy disk or a neighbour's load does not change the figure), then
with parliament's, cloudsplaining's and the CAM policies. For each set it prints how many
policies have at least one finding per category, so runs before and after a change to the
rules or catalogues can be compared.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from drkit.lint import lint_paths

# tests/lint itself goes on the path (not tests/, whose lint/ this script's name would hide).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "lint"))

import corpus_support as corpus  # noqa: E402

AWS_ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteObject", "s3:*",
               "ec2:Describe*", "rds:DeleteDBInstance", "iam:PassRole", "ec2:RunInstances",
               "kms:Decrypt", "s3:PutLifecycleConfiguration", "iam:AttachRolePolicy"]
CAM_ACTIONS = ["name/cos:GetObject", "name/cos:PutObject", "cos:GetBucket", "cos:DeleteObject",
               "cdb:IsolateDBInstance", "cvm:DescribeInstances", "cam:AttachUserPolicy",
               "cos:PutBucketLifecycle", "cbs:CreateSnapshot", "cdb:*"]


def make_policy(rng: random.Random, i: int) -> dict[str, object]:
    statements: list[dict[str, object]] = []
    if i % 2 == 0:
        for n in range(rng.randint(1, 5)):
            statements.append({
                "Sid": f"S{n}", "Effect": rng.choice(["Allow", "Allow", "Deny"]),
                "Action": rng.sample(AWS_ACTIONS, rng.randint(1, 4)),
                "Resource": rng.choice(["*", f"arn:aws:s3:::bucket-{i % 50}/*",
                                        f"arn:aws:rds:ap-southeast-1:111122223333:db:d{i}"])})
        return {"Version": "2012-10-17", "Statement": statements}
    for _ in range(rng.randint(1, 5)):
        statements.append({
            "effect": rng.choice(["allow", "allow", "deny"]),
            "action": rng.sample(CAM_ACTIONS, rng.randint(1, 4)),
            "resource": [rng.choice([
                "*", f"qcs::cos:ap-beijing:uid/1250000000:b{i % 50}-1250000000/*",
                "qcs::cdb:ap-shanghai:uin/1:instanceId/cdb-*"])]})
    return {"version": "2.0", "statement": statements}


def synthetic(files: int, keep: Path | None) -> None:
    root = keep or Path(tempfile.mkdtemp(prefix="drkit-lint-bench-"))
    try:
        rng = random.Random(5)
        for i in range(files):
            sub = root / f"d{i // 500:03d}"
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f"p{i:05d}.json").write_text(json.dumps(make_policy(rng, i), indent=2))
        start, cpu_start = time.perf_counter(), time.process_time()
        report = lint_paths([root], now=datetime.now(UTC))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        print(f"synthetic: {report.policies} policy files, {len(report.findings)} findings in "
              f"{elapsed:.2f} s = {report.policies / elapsed:,.0f} files/s "
              f"({report.policies / cpu:,.0f} files per CPU-second)")
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)


def real() -> None:
    """The real corpus: managed policies timed alone (first run in this process, as in
    CI), then every set, with per-category counts of policies that have a finding."""
    with tempfile.TemporaryDirectory(prefix="drkit-lint-corpus-") as tmp:
        managed = corpus.extract_managed(Path(tmp))
        cpu_start = time.process_time()
        report = corpus.lint_folders([managed])
        cpu = time.process_time() - cpu_start
        print(f"real {corpus.MANAGED}: {report.policies} policy files, {len(report.findings)} "
              f"findings in {cpu:.2f} CPU s = {report.policies / cpu:,.0f} files per "
              f"CPU-second (input errors {len(report.input_errors)})")
        cpu_start = time.process_time()
        again = corpus.lint_folders([managed])
        cpu = time.process_time() - cpu_start
        print(f"real {corpus.MANAGED}, second run in the same process (warm caches): "
              f"{again.policies / cpu:,.0f} files per CPU-second")
        folders = corpus.corpus_folders(managed)
        sizes = {folder.name: len(list(folder.glob("*.json"))) for folder in folders}
        everything = corpus.lint_folders(folders)
    print("policies with at least one finding, per category:")
    sets = (corpus.MANAGED, *corpus.PLAIN_SETS)
    counts = {name: corpus.policies_per_category(everything, name) for name in sets}
    categories = sorted({c for per in counts.values() for c in per})
    print(f"  {'category':<22}" + "".join(f"{name:>16}" for name in sets))
    print(f"  {'(policies in the set)':<22}" + "".join(f"{sizes[name]:>16}" for name in sets))
    for category in categories:
        print(f"  {category:<22}" + "".join(f"{counts[name].get(category, 0):>16}"
                                            for name in sets))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="write the synthetic corpus here and keep it")
    parser.add_argument("--no-synthetic", action="store_true", help="skip the synthetic files")
    parser.add_argument("--no-real", action="store_true", help="skip the real corpus")
    args = parser.parse_args()
    if not args.no_synthetic:
        synthetic(args.files, args.keep)
    if not args.no_real:
        real()
    return 0


if __name__ == "__main__":
    sys.exit(main())
