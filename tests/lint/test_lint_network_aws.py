"""``drkit lint network`` against AWS EC2/VPC/RDS on a real moto server (127.0.0.1): a prod
and a test VPC, a peering, too-wide security groups, a public database; linted live and
from the saved exports, each finding named; the fixed layout lints clean."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from drkit.cli.main import cli

CREDS = {"AWS_ACCESS_KEY_ID": "AKIADRKITNETTEST0000",
         "AWS_SECRET_ACCESS_KEY": "drkit-network-test-not-a-secret"}


def _tags(env: str, **more: str) -> list[dict[str, Any]]:
    return [{"Key": "env", "Value": env}, *({"Key": k, "Value": v} for k, v in more.items())]


def _spec(kind: str, env: str, **more: str) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": _tags(env, **more)}]


class Layout:
    """A prod and a test VPC in one region of the moto server, built with boto3."""

    def __init__(self, endpoint: str, region: str, *, broken: bool) -> None:
        kw: dict[str, Any] = {"region_name": region, "endpoint_url": endpoint,
                              "aws_access_key_id": CREDS["AWS_ACCESS_KEY_ID"],
                              "aws_secret_access_key": CREDS["AWS_SECRET_ACCESS_KEY"]}
        ec2, rds, iam = (boto3.client(s, **kw) for s in ("ec2", "rds", "iam"))
        self.region = region
        self.prod = ec2.create_vpc(CidrBlock="10.10.0.0/16", TagSpecifications=_spec(
            "vpc", "prod"))["Vpc"]["VpcId"]
        self.test = ec2.create_vpc(CidrBlock="10.20.0.0/16", TagSpecifications=_spec(
            "vpc", "test"))["Vpc"]["VpcId"]
        sub = {name: ec2.create_subnet(VpcId=vpc, CidrBlock=cidr,
                                       AvailabilityZone=f"{region}{zone}")["Subnet"]["SubnetId"]
               for name, vpc, cidr, zone in (("prod-a", self.prod, "10.10.1.0/24", "a"),
                                             ("prod-b", self.prod, "10.10.2.0/24", "b"),
                                             ("test-a", self.test, "10.20.1.0/24", "a"))}

        def group(name: str, vpc: str, env: str, rules: list[dict[str, Any]],
                  **tags: str) -> str:
            gid = str(ec2.create_security_group(
                GroupName=f"{name}-{region}", Description=name, VpcId=vpc,
                TagSpecifications=_spec("security-group", env, **tags))["GroupId"])
            if rules:
                ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=rules)
            return gid

        def tcp(port: int, cidr: str | None = None, group_id: str | None = None
                ) -> dict[str, Any]:
            rule: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port}
            if cidr:
                rule["IpRanges"] = [{"CidrIp": cidr}]
            if group_id:
                rule["UserIdGroupPairs"] = [{"GroupId": group_id}]
            return rule

        self.bastion = group("bastion", self.prod, "prod", [tcp(22, "203.0.113.0/24")],
                             role="bastion")
        self.app = group("prod-app", self.prod, "prod", [tcp(22, group_id=self.bastion)]
                         + ([tcp(22, "10.10.5.0/24")] if broken else []))
        db_rules = [tcp(5432, group_id=self.app)]
        if broken:
            db_rules += [tcp(5432, "10.20.0.0/16"), tcp(3306, "0.0.0.0/0")]
        self.db_group = group("prod-db", self.prod, "prod", db_rules)
        self.test_app = group("test-app", self.test, "test", [tcp(22, "10.20.0.0/16")])
        # A group tagged test but living in the prod VPC, put on a prod host when broken.
        self.shared = group("ops-tools", self.prod, "test", [])

        def profile(name: str) -> dict[str, str]:
            arn = iam.create_instance_profile(
                InstanceProfileName=f"{name}-{region}")["InstanceProfile"]["Arn"]
            return {"Arn": str(arn)}

        prod_profile = profile("prod-app")
        test_profile = prod_profile if broken else profile("test-app")

        def instance(subnet: str, groups: list[str], env: str, prof: dict[str, str]) -> str:
            return str(ec2.run_instances(
                ImageId="ami-12345678", MinCount=1, MaxCount=1, SubnetId=subnet,
                SecurityGroupIds=groups, IamInstanceProfile=prof,
                TagSpecifications=_spec("instance", env))["Instances"][0]["InstanceId"])

        self.prod_host = instance(sub["prod-a"], [self.app] + ([self.shared] if broken else []),
                                  "prod", prod_profile)
        self.test_host = instance(sub["test-a"], [self.test_app], "test", test_profile)
        self.bastion_host = instance(sub["prod-a"], [self.bastion], "prod",
                                     profile("bastion"))
        if broken:
            self.peering = ec2.create_vpc_peering_connection(
                VpcId=self.prod, PeerVpcId=self.test)["VpcPeeringConnection"][
                "VpcPeeringConnectionId"]
            ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=self.peering)
            table = ec2.describe_route_tables(Filters=[{"Name": "vpc-id",
                                                        "Values": [self.prod]}])
            self.route_table = table["RouteTables"][0]["RouteTableId"]
            ec2.create_route(RouteTableId=self.route_table, DestinationCidrBlock="10.20.0.0/16",
                             VpcPeeringConnectionId=self.peering)
        rds.create_db_subnet_group(DBSubnetGroupName=f"prod-{region}",
                                   DBSubnetGroupDescription="prod",
                                   SubnetIds=[sub["prod-a"], sub["prod-b"]])
        self.db = f"shop-prod-{region}"
        rds.create_db_instance(
            DBInstanceIdentifier=self.db, Engine="postgres", DBInstanceClass="db.t3.micro",
            MasterUsername="shop", MasterUserPassword="not-a-secret-123", AllocatedStorage=20,
            PubliclyAccessible=broken, VpcSecurityGroupIds=[self.db_group],
            DBSubnetGroupName=f"prod-{region}", Tags=_tags("prod"))


@pytest.fixture(scope="module")
def broken(moto_endpoint: str) -> Layout:
    return Layout(moto_endpoint, "ap-northeast-3", broken=True)


@pytest.fixture(scope="module")
def fixed(moto_endpoint: str) -> Layout:
    return Layout(moto_endpoint, "eu-north-1", broken=False)


@pytest.fixture
def aws_creds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in CREDS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def findings(out: str) -> set[tuple[str, str]]:
    return {(f["rule"], str(f["statement"])) for f in json.loads(out)["findings"]}


def expected(layout: Layout) -> set[tuple[str, str]]:
    arn = f"arn:aws:iam::123456789012:instance-profile/prod-app-{layout.region}"
    return {
        ("net_nonprod_to_prod", f"{layout.db_group}/ingress/tcp:5432/10.20.0.0/16"),
        ("net_world_open_port", f"{layout.db_group}/ingress/tcp:3306"),
        ("net_bastion_bypass", f"{layout.app}/ingress/tcp:22"),
        ("net_prod_peering", layout.peering),
        ("net_prod_route", f"{layout.route_table}/10.20.0.0/16"),
        ("net_public_database", layout.db),
        ("net_shared_principal", arn),
        ("net_shared_security_group", layout.shared),
    }


def test_live_names_every_finding(broken: Layout, moto_endpoint: str, aws_creds: None,
                                  tmp_path: Path) -> None:
    code, out, _err = run("lint", "network", "--live", "--region", broken.region,
                          "--endpoint", moto_endpoint, "--save", str(tmp_path / "exports"),
                          "--json")
    assert code == 1
    assert findings(out) == expected(broken)
    by_rule = {f["rule"]: f for f in json.loads(out)["findings"]}
    assert "admits 10.20.0.0/16 from test on tcp 5432" in by_rule["net_nonprod_to_prod"][
        "message"]
    assert "3306 (MySQL)" in by_rule["net_world_open_port"]["message"]
    assert by_rule["net_world_open_port"]["severity"] == "critical"
    assert by_rule["net_public_database"]["file"] == (
        f"aws:{broken.region}/describe-db-instances")
    assert by_rule["net_shared_principal"]["principal"].endswith(
        f"instance-profile/prod-app-{broken.region}")


def test_saved_exports_lint_like_live(broken: Layout, moto_endpoint: str, aws_creds: None,
                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exports = tmp_path / "exports"
    code, live_out, _ = run("lint", "network", "--live", "--region", broken.region,
                            "--endpoint", moto_endpoint, "--save", str(exports), "--json")
    assert code == 1
    # Exports are recognised by their top-level keys, not their names.
    for i, path in enumerate(sorted(exports.iterdir())):
        path.rename(exports / f"response-{i}.json")
    monkeypatch.chdir(tmp_path)
    code, out, _ = run("lint", "network", "exports", "--json")
    assert code == 1
    assert findings(out) == findings(live_out) == expected(broken)
    peering = next(f for f in json.loads(out)["findings"] if f["rule"] == "net_prod_peering")
    assert peering["file"].startswith("exports/response-")
    text = (tmp_path / peering["file"]).read_text("utf-8").splitlines()
    assert broken.peering in text[peering["line"] - 1]


def test_sarif_and_suppression(broken: Layout, moto_endpoint: str, aws_creds: None,
                               tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(
        f'[[suppress]]\nrule = "net_public_database"\nstatement = "{broken.db}"\n'
        'reason = "migration to private subnets"\nowner = "dba"\nexpires = "2099-01-01"\n',
        "utf-8")
    code, out, _ = run("lint", "network", "--live", "--region", broken.region, "--endpoint",
                       moto_endpoint, "--format", "sarif", "--suppressions",
                       str(tmp_path / "s.toml"))
    assert code == 1
    sarif = json.loads(out)
    run0 = sarif["runs"][0]
    rule_ids = {r["id"] for r in run0["tool"]["driver"]["rules"]}
    assert {"net_prod_peering", "net_world_open_port", "net_public_database"} <= rule_ids
    results = {(r["ruleId"], r["properties"]["statement"]) for r in run0["results"]}
    assert results == expected(broken) - {("net_public_database", broken.db)}
    for result in run0["results"]:
        assert result["properties"]["category"] in ("network-isolation", "network-exposure",
                                                    "separation-of-duties")


def test_fixed_layout_lints_clean(fixed: Layout, moto_endpoint: str, aws_creds: None) -> None:
    code, out, err = run("lint", "network", "--live", "--region", fixed.region, "--endpoint",
                         moto_endpoint)
    assert code == 0, out + err
    assert "0 findings" in out and "threshold low: ok" in out


def test_environments_file_instead_of_tags(fixed: Layout, moto_endpoint: str,
                                           aws_creds: None, tmp_path: Path) -> None:
    # The mapping wins over the group's env=test tag: the test app's group becomes a prod
    # group still attached to a test host, and its SSH rule bypasses the bastion.
    env = tmp_path / "environments.toml"
    env.write_text(f'version = 1\n[environments.prod]\nsecurity_groups = ["{fixed.test_app}"]\n'
                   f'[bastion]\nsecurity_groups = ["{fixed.bastion}"]\n', "utf-8")
    code, out, _ = run("lint", "network", "--live", "--region", fixed.region, "--endpoint",
                       moto_endpoint, "--environments", str(env), "--json")
    assert code == 1
    assert findings(out) == {
        ("net_bastion_bypass", f"{fixed.test_app}/ingress/tcp:22"),
        ("net_nonprod_to_prod", f"{fixed.test_app}/ingress/tcp:22/10.20.0.0/16"),
        ("net_shared_security_group", fixed.test_app)}


def test_bad_environments_file_is_a_usage_error(tmp_path: Path) -> None:
    env = tmp_path / "environments.toml"
    env.write_text('[environments.prod]\ncidrs = ["10.0.0.0/33"]\n', "utf-8")
    (tmp_path / "vpcs.json").write_text(json.dumps({"Vpcs": []}), "utf-8")
    code, _out, err = run("lint", "network", str(tmp_path))
    assert code == 2
    assert "environments.prod.cidrs: '10.0.0.0/33' is not a CIDR" in err


def test_policy_lint_is_unchanged_beside_network(tmp_path: Path) -> None:
    os.makedirs(tmp_path / "network")
    (tmp_path / "network" / "p.json").write_text(json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                 "Resource": "arn:aws:s3:::b/*"}]}), "utf-8")
    code, out, _ = run("lint", str(tmp_path / "network"))
    assert code == 0 and "1 policies in 1 files" in out
