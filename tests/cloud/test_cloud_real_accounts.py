"""Read-only checks against real clouds, only when credentials are in the environment.

They list resources with a tag no resource carries and look up a snapshot id that cannot
exist, so they create nothing and cost nothing; they prove the real APIs accept drkit's
requests and signatures. Skipped (with the reason) without credentials.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from drkit.cloud import SnapshotRecord, find_missing, parse_cloud_config, status

AWS_REGION = "us-east-1"
TENCENT_REGION = "ap-guangzhou"
TAG = "drkit-test-no-resource-has-this-tag=1"


@pytest.mark.skipif(not (os.environ.get("AWS_ACCESS_KEY_ID")
                         and os.environ.get("AWS_SECRET_ACCESS_KEY")),
                    reason="AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY not set: real AWS skipped")
def test_real_aws_read_only() -> None:
    cfg = parse_cloud_config({"aws": {"region": AWS_REGION, "select_tag": TAG}})
    rows, stale = status(cfg, now=datetime.now(UTC))
    assert rows == [] and stale == []
    ghost = SnapshotRecord("aws", "ebs", "vol-0", "snap-0000000000000000f", AWS_REGION,
                           datetime.now(UTC), "real-test")
    assert [f.record.snapshot_id for f in find_missing(cfg, [ghost])] == [ghost.snapshot_id]


@pytest.mark.skipif(not (os.environ.get("TENCENTCLOUD_SECRET_ID")
                         and os.environ.get("TENCENTCLOUD_SECRET_KEY")),
                    reason="TENCENTCLOUD_SECRET_ID/_SECRET_KEY not set: real Tencent Cloud "
                           "skipped")
def test_real_tencent_read_only() -> None:
    cfg = parse_cloud_config({"tencent": {"region": TENCENT_REGION, "select_tag": TAG}})
    rows, stale = status(cfg, now=datetime.now(UTC))
    assert rows == [] and stale == []
