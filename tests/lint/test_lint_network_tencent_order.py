"""Tencent security group policies are ordered, first match wins, and may ACCEPT or DROP:
the reachability rules (net_nonprod_to_prod, net_world_open_port, net_bastion_bypass)
judge what an ACCEPT still admits after the DROPs placed before it. Each case edits the
production group of the example layout (policies/network/tencent) and lints the folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from lint.lint_support import NOW

from drkit.lint.findings import Finding
from drkit.lint.network.engine import lint_network
from drkit.lint.network.model import Permission, SecurityGroup, Where
from drkit.lint.network.order import reach

EXAMPLE = Path(__file__).resolve().parents[2] / "policies" / "network"
#: The example's production group, in its order: web to the world, SSH from the bastion,
#: MySQL from its own members.
BASE = [
    {"Protocol": "TCP", "Port": "80,443", "CidrBlock": "0.0.0.0/0", "Action": "ACCEPT"},
    {"Protocol": "TCP", "Port": "22", "SecurityGroupId": "sg-bastion01", "Action": "ACCEPT"},
    {"Protocol": "TCP", "Port": "3306", "SecurityGroupId": "sg-prodapp1", "Action": "ACCEPT"},
]


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    dest = tmp_path / "network"
    shutil.copytree(EXAMPLE, dest)
    shutil.rmtree(dest / "aws")  # the Tencent side alone
    return dest


def lint_with(layout: Path, *ingress: dict[str, Any]) -> list[Finding]:
    """Lint the layout with the production group's ingress policies set to ``ingress``,
    PolicyIndex by position."""
    path = layout / "tencent" / "policies" / "sg-prodapp1.json"
    data = json.loads(path.read_text("utf-8"))
    data["Response"]["SecurityGroupPolicySet"]["Ingress"] = [
        {"PolicyIndex": i, "PolicyDescription": "", **p} for i, p in enumerate(ingress)]
    path.write_text(json.dumps(data, indent=2), "utf-8")
    report = lint_network([layout], now=NOW)
    assert report.input_errors == []
    return report.findings


def keys(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(f.rule, str(f.statement)) for f in findings}


def drop(port: str, cidr: str, protocol: str = "TCP") -> dict[str, Any]:
    return {"Protocol": protocol, "Port": port, "CidrBlock": cidr, "Action": "DROP"}


def accept(port: str, cidr: str, protocol: str = "TCP") -> dict[str, Any]:
    return {"Protocol": protocol, "Port": port, "CidrBlock": cidr, "Action": "ACCEPT"}


def test_accepts_after_broader_drops_are_dead(layout: Path) -> None:
    findings = lint_with(
        layout,
        drop("3306", "0.0.0.0/0"), drop("ALL", "172.17.0.0/16", "ALL"),
        drop("ALL", "10.99.0.0/16", "ALL"),
        {"Protocol": "ALL", "Port": "ALL", "SecurityGroupId": "sg-testapp1", "Action": "DROP"},
        *BASE,
        accept("3306", "0.0.0.0/0"), accept("3306-3307", "172.17.0.0/16"),
        accept("ALL", "10.99.8.0/24", "ALL"),
        {"Protocol": "TCP", "Port": "3306", "SecurityGroupId": "sg-testapp1",
         "Action": "ACCEPT"})
    assert findings == []


def test_the_same_accepts_without_the_drops_are_findings(layout: Path) -> None:
    findings = lint_with(
        layout, *BASE, accept("3306", "0.0.0.0/0"), accept("3306-3307", "172.17.0.0/16"),
        accept("ALL", "10.99.8.0/24", "ALL"),
        {"Protocol": "TCP", "Port": "3306", "SecurityGroupId": "sg-testapp1",
         "Action": "ACCEPT"},
        # DROPs after the ACCEPTs change nothing: the ACCEPTs matched first.
        drop("3306", "0.0.0.0/0"), drop("ALL", "0.0.0.0/0", "ALL"))
    assert keys(findings) == {
        ("net_world_open_port", "sg-prodapp1/ingress/tcp:3306"),
        ("net_nonprod_to_prod", "sg-prodapp1/ingress/tcp:3306-3307/172.17.0.0/16"),
        ("net_nonprod_to_prod", "sg-prodapp1/ingress/all:all/10.99.8.0/24"),
        ("net_nonprod_to_prod", "sg-prodapp1/ingress/tcp:3306/sg-testapp1"),
        ("net_bastion_bypass", "sg-prodapp1/ingress/all:all"),
    }
    assert all(f.evidence[0]["dropped_before"] == [] for f in findings)


def test_a_narrower_drop_leaves_the_rest_admitted(layout: Path) -> None:
    findings = lint_with(
        layout, *BASE,
        # One port of the two, half of the test VPC, SSH but not RDP.
        drop("3306", "172.17.0.0/16"), accept("3306-3307", "172.17.0.0/16"),
        drop("3306", "128.0.0.0/1"), accept("3306", "0.0.0.0/0"),
        # Port lists count TCP and UDP alike (as for AWS), so SSH is closed by both.
        drop("22", "10.99.0.0/16"), drop("22", "10.99.0.0/16", "UDP"),
        accept("ALL", "10.99.8.0/24", "ALL"))
    by_key = {(f.rule, str(f.statement)): f for f in findings}
    assert set(by_key) == {
        ("net_nonprod_to_prod", "sg-prodapp1/ingress/tcp:3306-3307/172.17.0.0/16"),
        ("net_world_open_port", "sg-prodapp1/ingress/tcp:3306"),
        ("net_nonprod_to_prod", "sg-prodapp1/ingress/all:all/10.99.8.0/24"),
        ("net_bastion_bypass", "sg-prodapp1/ingress/all:all"),
    }
    staging = by_key[("net_nonprod_to_prod", "sg-prodapp1/ingress/tcp:3306-3307/172.17.0.0/16")]
    assert staging.message.endswith(
        "on tcp 3307 (the rest dropped by earlier sg-prodapp1/ingress/tcp:3306)")
    assert staging.evidence[0]["dropped_before"] == ["sg-prodapp1/ingress/tcp:3306"]
    # Half the internet is still the internet.
    world = by_key[("net_world_open_port", "sg-prodapp1/ingress/tcp:3306")]
    assert "opens tcp 3306 to 0.0.0.0/0" in world.message
    # SSH from the lab is dropped first; RDP still gets through.
    bypass = by_key[("net_bastion_bypass", "sg-prodapp1/ingress/all:all")]
    assert "admits 3389 (RDP) from 10.99.8.0/24" in bypass.message
    assert "22 (SSH)" not in bypass.message
    lab = by_key[("net_nonprod_to_prod", "sg-prodapp1/ingress/all:all/10.99.8.0/24")]
    assert "tcp 0-21,23-65535; udp 0-21,23-65535; other protocols (the rest dropped by " \
        "earlier sg-prodapp1/ingress/tcp:22, sg-prodapp1/ingress/udp:22)" in lab.message


def test_drops_that_together_cover_a_source_close_it(layout: Path) -> None:
    halves = lint_with(layout, *BASE, drop("3306", "172.17.0.0/17"),
                       drop("3306", "172.17.128.0/17"), accept("3306", "172.17.0.0/16"))
    assert halves == []
    # Over different ports, each covering half the source: the source is covered on
    # neither port by both, so each half still gets through on the other port.
    crossed = lint_with(layout, *BASE, drop("3306", "172.17.0.0/17"),
                        drop("3307", "172.17.128.0/17"), accept("3306-3307", "172.17.0.0/16"))
    assert keys(crossed) == {
        ("net_nonprod_to_prod", "sg-prodapp1/ingress/tcp:3306-3307/172.17.0.0/16")}


def test_a_world_drop_of_one_family_does_not_cover_a_group(layout: Path) -> None:
    group_rule = {"Protocol": "TCP", "Port": "3306", "SecurityGroupId": "sg-testapp1",
                  "Action": "ACCEPT"}
    ipv4_only = lint_with(layout, *BASE, drop("ALL", "0.0.0.0/0", "ALL"), group_rule)
    assert keys(ipv4_only) == {
        ("net_nonprod_to_prod", "sg-prodapp1/ingress/tcp:3306/sg-testapp1")}
    both = lint_with(layout, *BASE, drop("ALL", "0.0.0.0/0", "ALL"),
                     {**drop("ALL", "", "ALL"), "CidrBlock": "", "Ipv6CidrBlock": "::/0"},
                     group_rule)
    assert both == []


def _group(*rules: Permission) -> SecurityGroup:
    group = SecurityGroup(id="sg-x", cloud="tencent", vpc=None, name="", tags={},
                          where=Where("f"))
    group.rules = list(rules)
    return group


def _rule(index: int, protocol: str, ports: tuple[tuple[int, int], ...], cidr: str,
          accept: bool) -> Permission:
    return Permission(group="sg-x", direction="ingress", index=index, protocol=protocol,
                      ports=ports, cidrs=(cidr,), accept=accept)


def test_reach_by_protocol_and_policy_index() -> None:
    everything = ((0, 65535),)
    rule = _rule(5, "all", everything, "10.0.0.0/8", True)
    udp_drop = _rule(1, "udp", everything, "0.0.0.0/0", False)
    later_drop = _rule(9, "tcp", everything, "0.0.0.0/0", False)
    # Listed out of order: PolicyIndex decides what comes first.
    result = reach(_group(rule, later_drop, udp_drop), rule, "10.0.0.0/8")
    assert result.ports == {"tcp": everything, "udp": (), "other": everything}
    assert result.dropped_by == ("sg-x/ingress/udp:all",)
    assert result.covers(22) and not result.dead
    icmp = _rule(0, "icmp", everything, "0.0.0.0/0", False)
    all_drop = _rule(2, "all", everything, "10.0.0.0/8", False)
    assert reach(_group(rule, icmp, all_drop), rule, "10.0.0.0/8").dead
    # A DROP on another family or a disjoint range takes nothing.
    v6 = _rule(0, "all", everything, "::/0", False)
    other_net = _rule(1, "all", everything, "192.168.0.0/16", False)
    untouched = reach(_group(rule, v6, other_net), rule, "10.0.0.0/8")
    assert untouched.dropped_by == () and untouched.port_text() == "all all ports"
