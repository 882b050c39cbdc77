"""Benchmark: lint 10,000 policy files (AWS and CAM, clean and dangerous); print files/s.

    .venv/bin/python bench/lint.py [--files N] [--keep DIR]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="write the corpus here and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="drkit-lint-bench-"))
    try:
        rng = random.Random(5)
        for i in range(args.files):
            sub = root / f"d{i // 500:03d}"
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f"p{i:05d}.json").write_text(json.dumps(make_policy(rng, i), indent=2))
        start = time.perf_counter()
        report = lint_paths([root], now=datetime.now(UTC))
        elapsed = time.perf_counter() - start
        print(f"lint: {report.policies} policy files, {len(report.findings)} findings in "
              f"{elapsed:.2f} s = {report.policies / elapsed:,.0f} files/s")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
