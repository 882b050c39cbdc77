"""Fixtures for the cloud-snapshot tests: the session's moto server (``moto_endpoint`` from
tests/conftest.py: EC2, RDS and STS too) and the Tencent Cloud API test double, both real
HTTP servers on 127.0.0.1 in this process."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from cloud.tencent_double import TencentDouble

_ids = itertools.count(1)


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Fake credentials and the moto settings for one test; returns the endpoint."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIADRKITCLOUDTEST00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "drkit-cloud-test-not-a-secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    return moto_endpoint


@pytest.fixture
def unique_tag() -> str:
    """A selecting tag value no other test uses (moto keeps state for the whole session)."""
    return f"daily-{os.getpid()}-{next(_ids)}"


def aws_client(endpoint: str, service: str, region: str) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=endpoint)


@pytest.fixture
def make_volume(aws_env: str) -> Any:
    def make(region: str, tag_value: str, size: int = 8) -> str:
        ec2 = aws_client(aws_env, "ec2", region)
        vol = ec2.create_volume(
            AvailabilityZone=f"{region}a", Size=size,
            TagSpecifications=[{"ResourceType": "volume",
                                "Tags": [{"Key": "backup", "Value": tag_value}]}])
        return str(vol["VolumeId"])
    return make


@pytest.fixture
def make_db(aws_env: str) -> Any:
    def make(region: str, tag_value: str) -> str:
        rds = aws_client(aws_env, "rds", region)
        name = f"db-{os.getpid()}-{next(_ids)}"
        rds.create_db_instance(
            DBInstanceIdentifier=name, Engine="mysql", DBInstanceClass="db.t3.micro",
            MasterUsername="admin", MasterUserPassword="not-a-secret-123",
            AllocatedStorage=20, Tags=[{"Key": "backup", "Value": tag_value}])
        return name
    return make


@pytest.fixture
def tencent() -> Iterator[TencentDouble]:
    """A fresh Tencent Cloud API 3.0 test double on 127.0.0.1, with credentials in env."""
    double = TencentDouble(secret_id="AKIDdrkitTEST", secret_key="drkit-tencent-test-key")
    double.start()
    yield double
    double.stop()


@pytest.fixture
def tencent_env(tencent: TencentDouble, monkeypatch: pytest.MonkeyPatch) -> TencentDouble:
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", tencent.secret_id)
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", tencent.secret_key)
    return tencent
