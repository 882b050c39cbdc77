"""``drkit lint network`` on Tencent Cloud API responses: the example layout in
policies/network/ is clean, its responses keep every key through the SDK's own response
models, and breaking it (a peering, a world-open MySQL port, a staging CIDR, a public
TencentDB, a shared CAM role) gives exactly the findings named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from drkit.cli.main import cli

EXAMPLE = Path(__file__).resolve().parents[2] / "policies" / "network"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    dest = tmp_path / "network"
    shutil.copytree(EXAMPLE, dest)
    return dest


def edit(path: Path, change: Any) -> None:
    data = json.loads(path.read_text("utf-8"))
    change(data["Response"])
    path.write_text(json.dumps(data, indent=2), "utf-8")


def test_example_layout_lints_clean() -> None:
    code, out, err = run("lint", "network", str(EXAMPLE), "--json")
    assert code == 0, out + err
    summary = json.loads(out)["summary"]
    assert summary["findings"] == 0 and summary["files"] == 15
    assert summary["resources"]["security_groups"] == 7
    assert summary["unknown_tag_values"] == []


@pytest.mark.parametrize("name,model", [
    ("DescribeVpcs", "vpc.DescribeVpcsResponse"),
    ("DescribeSecurityGroups", "vpc.DescribeSecurityGroupsResponse"),
    ("policies/sg-prodapp1", "vpc.DescribeSecurityGroupPoliciesResponse"),
    ("DescribeRouteTables", "vpc.DescribeRouteTablesResponse"),
    ("DescribeVpcPeeringConnections", "vpc.DescribeVpcPeeringConnectionsResponse"),
    ("DescribeInstances", "cvm.DescribeInstancesResponse"),
])
def test_fixtures_are_shaped_like_the_sdk_models(name: str, model: str) -> None:
    import importlib

    service, cls = model.split(".")
    models = importlib.import_module(f"tencentcloud.{service}.v20170312.models")
    body = json.loads((EXAMPLE / "tencent" / f"{name}.json").read_text("utf-8"))["Response"]
    response = getattr(models, cls)()
    response._deserialize(body)  # warns on any key the model does not have
    again = json.loads(response.to_json_string())

    def keys(value: Any, prefix: str = "") -> set[str]:
        if isinstance(value, dict):
            return {f"{prefix}{k}" for k in value} | {
                k2 for k, v in value.items() for k2 in keys(v, f"{prefix}{k}.")}
        if isinstance(value, list):
            return {k for v in value for k in keys(v, prefix)}
        return set()

    assert keys(body) <= keys(again), keys(body) - keys(again)


def test_broken_tencent_layout_names_each_finding(layout: Path) -> None:
    tencent = layout / "tencent"
    edit(tencent / "DescribeVpcPeeringConnections.json", lambda r: r.update(
        TotalCount=1, PeerConnectionSet=[{
            "SourceVpcId": "vpc-prod0001", "PeerVpcId": "vpc-test0001",
            "PeeringConnectionId": "pcx-shtest01", "PeeringConnectionName": "debug",
            "State": "ACTIVE", "SourceRegion": "ap-shanghai",
            "DestinationRegion": "ap-shanghai", "CreateTime": "2026-02-23 18:00:00"}]))
    edit(tencent / "policies" / "sg-prodapp1.json", lambda r: r["SecurityGroupPolicySet"][
        "Ingress"].extend([
            {"PolicyIndex": 3, "Protocol": "TCP", "Port": "3306", "CidrBlock": "0.0.0.0/0",
             "Action": "ACCEPT"},
            {"PolicyIndex": 4, "Protocol": "TCP", "Port": "3306-3307",
             "CidrBlock": "172.17.0.0/16", "Action": "ACCEPT"},
            {"PolicyIndex": 5, "Protocol": "ALL", "Port": "ALL", "CidrBlock": "10.99.8.0/24",
             "Action": "ACCEPT"}]))
    edit(tencent / "DescribeInstances.json",
         lambda r: r["InstanceSet"][1].update(CamRoleName="shop-prod-app"))
    (tencent / "DescribeDBInstances.json").write_text(json.dumps({"Response": {
        "TotalCount": 1, "Items": [{
            "InstanceId": "cdb-prod0001", "InstanceName": "shop-prod", "UniqVpcId":
            "vpc-prod0001", "UniqSubnetId": "subnet-prod0001", "Vip": "172.16.2.5",
            "Vport": 3306, "WanStatus": 1, "WanDomain": "sh-cdb.example", "WanPort": 23306,
            "TagList": [{"TagKey": "env", "TagValue": "production"}]}]},
        "RequestId": "r"}), "utf-8")
    code, out, _ = run("lint", "network", str(layout), "--json")
    assert code == 1
    found = {(f["rule"], f["statement"]) for f in json.loads(out)["findings"]}
    assert found == {
        ("net_prod_peering", "pcx-shtest01"),
        ("net_world_open_port", "sg-prodapp1/ingress/tcp:3306"),
        ("net_nonprod_to_prod", "sg-prodapp1/ingress/tcp:3306-3307/172.17.0.0/16"),
        # the office test lab, test by the CIDR mapping in environments.toml
        ("net_nonprod_to_prod", "sg-prodapp1/ingress/all:all/10.99.8.0/24"),
        ("net_bastion_bypass", "sg-prodapp1/ingress/all:all"),
        ("net_public_database", "cdb-prod0001"),
        ("net_shared_principal", "shop-prod-app"),
    }
    by_rule = {f["rule"]: f for f in json.loads(out)["findings"]}
    assert by_rule["net_prod_peering"]["cloud"] == "tencent"
    assert by_rule["net_prod_peering"]["file"].endswith(
        "tencent/DescribeVpcPeeringConnections.json")


def test_policies_without_a_group_id_are_an_input_error(layout: Path) -> None:
    shutil.move(layout / "tencent" / "policies" / "sg-testapp1.json",
                layout / "tencent" / "policies" / "test-app.json")
    code, out, err = run("lint", "network", str(layout))
    assert code == 2
    assert "test-app.json: malformed response" in err and "sg-xxxxxxxx" in err
    assert "INPUT ERROR" in out
