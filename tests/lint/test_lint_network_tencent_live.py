"""``drkit lint network --live --cloud tencent`` through the real tencentcloud-sdk-python,
real HTTP and real TC3 signing, against the Tencent Cloud API 3.0 test double
(tests/cloud/tencent_double.py) serving the example layout of policies/network/tencent.

The broken layout gives exactly the findings named, ``--save DIR`` writes responses that
lint the same, the fixed layout is clean, and every list is read to its TotalCount when
pages are smaller than the data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cloud.tencent_double import TencentDouble
from lint.lint_support import NOW

from drkit.cli.main import cli
from drkit.errors import InputError
from drkit.lint.network.engine import lint_network
from drkit.lint.network.tencent import fetch_live

EXAMPLE = Path(__file__).resolve().parents[2] / "policies" / "network"
ENVIRONMENTS = EXAMPLE / "environments.toml"
REGION = "ap-shanghai"
#: Which list action serves each top-level key of the example's responses.
ACTIONS = {"VpcSet": "DescribeVpcs", "SubnetSet": "DescribeSubnets",
           "SecurityGroupSet": "DescribeSecurityGroups",
           "PeerConnectionSet": "DescribeVpcPeeringConnections",
           "RouteTableSet": "DescribeRouteTables", "InstanceSet": "DescribeInstances"}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def double(monkeypatch: pytest.MonkeyPatch) -> Iterator[TencentDouble]:
    server = TencentDouble(secret_id="AKIDdrkitNETTEST", secret_key="drkit-net-test-key")
    server.start()
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", server.secret_id)
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", server.secret_key)
    yield server
    server.stop()


def _tags(**tags: str) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def seed_fixed_layout(double: TencentDouble) -> None:
    """The example layout's responses, plus subnets, a dev VPC and host and more groups, so
    that every list is longer than the two-item pages of the paging test."""
    folder = EXAMPLE / "tencent"
    for path in sorted(folder.glob("*.json")):
        body = json.loads(path.read_text("utf-8"))["Response"]
        for key, action in ACTIONS.items():
            if key in body:
                double.add_network(REGION, action, body[key])
    for path in sorted((folder / "policies").glob("sg-*.json")):
        body = json.loads(path.read_text("utf-8"))["Response"]
        double.set_security_group_policies(REGION, path.stem, body["SecurityGroupPolicySet"])
    double.add_network(REGION, "DescribeVpcs", [{
        "VpcId": "vpc-dev00001", "VpcName": "shop-dev-sh", "CidrBlock": "172.18.0.0/16",
        "IsDefault": False, "EnableMulticast": False, "CreatedTime": "2026-01-05 10:06:00",
        "AssistantCidrSet": [], "TagSet": _tags(env="dev")}])
    double.add_network(REGION, "DescribeSubnets", [
        {"VpcId": vpc, "SubnetId": sid, "SubnetName": sid, "CidrBlock": cidr,
         "IsDefault": False, "EnableBroadcast": False, "Zone": "ap-shanghai-2",
         "RouteTableId": rtb, "CreatedTime": "2026-01-05 10:07:00",
         "AvailableIpAddressCount": 250, "TotalIpAddressCount": 253, "TagSet": []}
        for vpc, sid, cidr, rtb in (
            ("vpc-prod0001", "subnet-prod0001", "172.16.1.0/24", "rtb-prod0001"),
            ("vpc-prod0001", "subnet-prod0002", "172.16.2.0/24", "rtb-prod0001"),
            ("vpc-test0001", "subnet-test0001", "172.17.1.0/24", "rtb-test0001"),
            ("vpc-dev00001", "subnet-dev00001", "172.18.1.0/24", "rtb-dev00001"))])
    double.add_network(REGION, "DescribeRouteTables", [
        {"VpcId": vpc, "RouteTableId": rtb, "RouteTableName": "default", "Main": True,
         "CreatedTime": "2026-01-05 10:00:00", "TagSet": [],
         "AssociationSet": [{"SubnetId": subnet, "RouteTableId": rtb}],
         "RouteSet": [{"DestinationCidrBlock": cidr, "GatewayType": "LOCAL",
                       "GatewayId": "local", "RouteId": 1, "RouteDescription": "",
                       "Enabled": True, "RouteType": "NETMASK", "RouteTableId": rtb,
                       "RouteItemId": f"rti-{rtb[4:]}"}]}
        for vpc, rtb, subnet, cidr in (
            ("vpc-test0001", "rtb-test0001", "subnet-test0001", "172.17.0.0/16"),
            ("vpc-dev00001", "rtb-dev00001", "subnet-dev00001", "172.18.0.0/16"))])
    double.add_network(REGION, "DescribeSecurityGroups", [
        {"SecurityGroupId": "sg-devapp01", "SecurityGroupName": "dev-app",
         "SecurityGroupDesc": "", "ProjectId": "0", "IsDefault": False,
         "CreatedTime": "2026-01-05 10:13:00", "TagSet": _tags(env="dev")}])
    double.set_security_group_policies(REGION, "sg-devapp01", {
        "Version": "1", "Egress": [],
        "Ingress": [{"PolicyIndex": 0, "Protocol": "TCP", "Port": "22",
                     "CidrBlock": "172.18.0.0/16", "Action": "ACCEPT",
                     "PolicyDescription": "", "ModifyTime": "2026-01-05 10:23:00"}]})
    double.add_network(REGION, "DescribeInstances", [{
        "InstanceId": "ins-dev00001", "InstanceName": "shop-app-dev",
        "InstanceState": "RUNNING", "Placement": {"Zone": "ap-shanghai-2", "ProjectId": 0},
        "VirtualPrivateCloud": {"VpcId": "vpc-dev00001", "SubnetId": "subnet-dev00001",
                                "AsVpcGateway": False},
        "PrivateIpAddresses": ["172.18.1.10"], "PublicIpAddresses": None,
        "SecurityGroupIds": ["sg-devapp01"], "CamRoleName": "shop-dev-app",
        "Tags": _tags(env="dev")}])
    double.add_db_item(REGION, {
        "InstanceId": "cdb-prod0001", "InstanceName": "shop-prod", "UniqVpcId": "vpc-prod0001",
        "UniqSubnetId": "subnet-prod0002", "Vip": "172.16.2.5", "Vport": 3306,
        "WanStatus": 0, "Status": 1, "Region": REGION, "Volume": 100,
        "TagList": [{"TagKey": "env", "TagValue": "production"}]})


def _ccn(ccn: str, vpc: str, cidr: str) -> dict[str, Any]:
    return {"CcnId": ccn, "InstanceType": "VPC", "InstanceId": vpc, "InstanceName": vpc,
            "InstanceRegion": REGION, "InstanceUin": "100000000001", "CidrBlock": [cidr],
            "State": "ACTIVE", "AttachedTime": "2026-02-23 18:00:00",
            "CcnUin": "100000000001", "InstanceArea": "china", "Description": ""}


def break_layout(double: TencentDouble) -> None:
    """The same breakage as the export test, plus a CCN joining prod and dev."""
    double.add_network(REGION, "DescribeVpcPeeringConnections", [{
        "SourceVpcId": "vpc-prod0001", "PeerVpcId": "vpc-test0001",
        "PeeringConnectionId": "pcx-shtest01", "PeeringConnectionName": "debug",
        "State": "ACTIVE", "SourceRegion": REGION, "DestinationRegion": REGION,
        "CreateTime": "2026-02-23 18:00:00"}])
    double.policies[REGION]["sg-prodapp1"]["Ingress"].extend([
        {"PolicyIndex": 3, "Protocol": "TCP", "Port": "3306", "CidrBlock": "0.0.0.0/0",
         "Action": "ACCEPT"},
        {"PolicyIndex": 4, "Protocol": "TCP", "Port": "3306-3307",
         "CidrBlock": "172.17.0.0/16", "Action": "ACCEPT"},
        {"PolicyIndex": 5, "Protocol": "ALL", "Port": "ALL", "CidrBlock": "10.99.8.0/24",
         "Action": "ACCEPT"}])
    double.network[REGION]["DescribeInstances"][1]["CamRoleName"] = "shop-prod-app"
    double.instances[REGION]["cdb-prod0001"]["WanStatus"] = 1
    double.add_network(REGION, "DescribeCcnAttachedInstances", [
        _ccn("ccn-shared01", "vpc-prod0001", "172.16.0.0/16"),
        _ccn("ccn-shared01", "vpc-dev00001", "172.18.0.0/16")])


BROKEN = {
    ("net_prod_peering", "pcx-shtest01"),
    ("net_prod_peering", "ccn-shared01/vpc-prod0001/vpc-dev00001"),
    ("net_world_open_port", "sg-prodapp1/ingress/tcp:3306"),
    ("net_nonprod_to_prod", "sg-prodapp1/ingress/tcp:3306-3307/172.17.0.0/16"),
    ("net_nonprod_to_prod", "sg-prodapp1/ingress/all:all/10.99.8.0/24"),
    ("net_bastion_bypass", "sg-prodapp1/ingress/all:all"),
    ("net_public_database", "cdb-prod0001"),
    ("net_shared_principal", "shop-prod-app"),
}


def live(double: TencentDouble, *extra: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = run("lint", "network", "--live", "--cloud", "tencent", "--region",
                         REGION, "--endpoint", f"http://{double.endpoint}",
                         "--environments", str(ENVIRONMENTS), "--json", *extra)
    return code, (json.loads(out) if out.strip() else {}), err


def found(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["rule"], f["statement"]) for f in report["findings"]}


def test_live_broken_layout_names_each_finding_and_save_lints_the_same(
        double: TencentDouble, tmp_path: Path) -> None:
    seed_fixed_layout(double)
    break_layout(double)
    saved = tmp_path / "saved"
    code, report, err = live(double, "--save", str(saved))
    assert code == 1, err
    assert found(report) == BROKEN
    resources = report["summary"]["resources"]
    assert resources["vpcs"] == 3 and resources["subnets"] == 4
    assert resources["security_groups"] == 4 and resources["instances"] == 3
    assert resources["databases"] == 1 and resources["peerings"] == 2
    # Every call went through the SDK, signed for its own service, to the double.
    actions = {a for a, _, _ in double.calls}
    assert actions == {"DescribeVpcs", "DescribeSubnets", "DescribeSecurityGroups",
                       "DescribeSecurityGroupPolicies", "DescribeVpcPeeringConnections",
                       "DescribeRouteTables", "DescribeCcnAttachedInstances",
                       "DescribeInstances", "DescribeDBInstances"}
    assert {r for _, r, _ in double.calls} == {REGION}
    policies = sorted(p["SecurityGroupId"] for a, _, p in double.calls
                      if a == "DescribeSecurityGroupPolicies")
    assert policies == ["sg-bastion01", "sg-devapp01", "sg-prodapp1", "sg-testapp1"]

    files = sorted(p.name for p in saved.iterdir())
    assert "ap-shanghai_DescribeSecurityGroupPolicies_sg-prodapp1.json" in files
    assert len(files) == 8 + 4  # eight lists, one policy set per group
    code, out, err = run("lint", "network", str(saved), "--environments", str(ENVIRONMENTS),
                         "--json")
    assert code == 1, err
    again = json.loads(out)
    assert found(again) == BROKEN
    assert again["summary"]["resources"] == resources
    by_rule = {f["rule"]: f for f in again["findings"]}
    assert by_rule["net_public_database"]["file"].endswith(
        "ap-shanghai_DescribeDBInstances.json")


def test_live_fixed_layout_is_clean(double: TencentDouble) -> None:
    seed_fixed_layout(double)
    code, report, err = live(double)
    assert code == 0, err
    assert report["findings"] == []
    assert report["summary"]["files"] == 12
    assert report["summary"]["unclassified_vpcs"] == []


def test_live_reader_follows_pages_smaller_than_the_data(double: TencentDouble) -> None:
    seed_fixed_layout(double)
    break_layout(double)
    responses = fetch_live(REGION, f"http://{double.endpoint}", page_size=2)
    bodies = {name.split("/", 1)[1]: body for name, body in responses}
    assert [v["VpcId"] for v in bodies["DescribeVpcs"]["VpcSet"]] == [
        "vpc-prod0001", "vpc-test0001", "vpc-dev00001"]
    assert len(bodies["DescribeSubnets"]["SubnetSet"]) == 4
    assert len(bodies["DescribeSecurityGroups"]["SecurityGroupSet"]) == 4
    assert len(bodies["DescribeInstances"]["InstanceSet"]) == 3
    assert len(bodies["DescribeRouteTables"]["RouteTableSet"]) == 3
    # Offsets step by what each page returned, typed as each SDK model types them.
    vpc_pages = [p for a, _, p in double.calls if a == "DescribeVpcs"]
    assert [(p["Offset"], p["Limit"]) for p in vpc_pages] == [("0", "2"), ("2", "2")]
    cvm_pages = [p for a, _, p in double.calls if a == "DescribeInstances"]
    assert [(p["Offset"], p["Limit"]) for p in cvm_pages] == [(0, 2), (2, 2)]
    report = lint_network([], now=NOW, environments_file=ENVIRONMENTS, live=responses)
    assert {(f.rule, str(f.statement)) for f in report.findings} == BROKEN


def test_live_limit_above_the_service_maximum_and_bad_credentials(
        double: TencentDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_fixed_layout(double)
    double.max_limit = 50  # a service that allows smaller pages than drkit asks for
    with pytest.raises(InputError, match=r"DescribeVpcs: InvalidParameterValue.Range"):
        fetch_live(REGION, f"http://{double.endpoint}")
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", "not-the-key")
    code, _, err = live(double)
    assert code == 2
    assert "AuthFailure.SignatureFailure" in err and len(err.strip().splitlines()) == 1
