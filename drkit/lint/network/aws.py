"""AWS: EC2/VPC and RDS describe responses -> the network model.

The same functions read ``aws ec2 describe-*`` / ``aws rds describe-db-instances`` JSON
exports and the responses boto3 returns live (:func:`fetch_live`), so both modes are one
code path. A response is recognised by its top-level key, never by its file name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from drkit.lint.network.model import (
    ALL_PORTS,
    Host,
    IPNetwork,
    NetworkAcl,
    NetworkModel,
    Peering,
    Permission,
    Route,
    SecurityGroup,
    Subnet,
    Vpc,
    Where,
    network,
    parse_ports,
)
from drkit.lint.network.source import Lines, dict_list

log = logging.getLogger(__name__)

_DEAD_PEERING = {"deleted", "deleting", "rejected", "failed", "expired"}
_PROTOCOLS = {"-1": "all", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}


def _tags(items: Any) -> dict[str, str]:
    if not isinstance(items, list):
        return {}
    return {str(t.get("Key", "")): str(t.get("Value", "")) for t in items if isinstance(t, dict)}


def _nets(texts: Any) -> list[IPNetwork]:
    return [n for n in (network(t) for t in texts if isinstance(t, str)) if n is not None]


def _permission(group: str, direction: str, index: int, raw: dict[str, Any]) -> Permission:
    protocol = str(raw.get("IpProtocol", "-1")).lower()
    protocol = _PROTOCOLS.get(protocol, protocol)
    if protocol == "all" or raw.get("FromPort") in (None, -1):
        ports = ALL_PORTS
    else:
        ports = parse_ports([(int(raw["FromPort"]), int(raw.get("ToPort", raw["FromPort"])))])
    cidrs = tuple(r["CidrIp"] for r in dict_list(raw, "IpRanges") if "CidrIp" in r)
    cidrs += tuple(r["CidrIpv6"] for r in dict_list(raw, "Ipv6Ranges") if "CidrIpv6" in r)
    groups = tuple(p["GroupId"] for p in dict_list(raw, "UserIdGroupPairs") if "GroupId" in p)
    return Permission(group=group, direction=direction,  # type: ignore[arg-type]
                      index=index, protocol=protocol, ports=ports, cidrs=cidrs, groups=groups)


def read_security_groups(data: Any, file: str, lines: Lines, model: NetworkModel) -> None:
    for raw in dict_list(data, "SecurityGroups"):
        gid = str(raw["GroupId"])
        group = SecurityGroup(id=gid, cloud="aws", vpc=raw.get("VpcId"),
                              name=str(raw.get("GroupName", "")), tags=_tags(raw.get("Tags")),
                              where=Where(file, lines.of(gid)))
        for direction, key in (("ingress", "IpPermissions"), ("egress", "IpPermissionsEgress")):
            for i, perm in enumerate(dict_list(raw, key)):
                group.rules.append(_permission(gid, direction, i, perm))
        model.groups[gid] = group


def read_instances(data: Any, file: str, lines: Lines, model: NetworkModel) -> None:
    for reservation in dict_list(data, "Reservations"):
        for raw in dict_list(reservation, "Instances"):
            state = (raw.get("State") or {}).get("Name", "")
            if state in ("terminated", "shutting-down"):
                continue
            iid = str(raw["InstanceId"])
            groups = [g["GroupId"] for g in dict_list(raw, "SecurityGroups") if "GroupId" in g]
            subnets = [raw["SubnetId"]] if raw.get("SubnetId") else []
            addresses = [a for a in (raw.get("PrivateIpAddress"),) if a]
            for eni in dict_list(raw, "NetworkInterfaces"):
                groups += [g["GroupId"] for g in dict_list(eni, "Groups")
                           if g.get("GroupId") and g["GroupId"] not in groups]
                if eni.get("SubnetId") and eni["SubnetId"] not in subnets:
                    subnets.append(eni["SubnetId"])
                addresses += [a["PrivateIpAddress"] for a in dict_list(eni, "PrivateIpAddresses")
                              if a.get("PrivateIpAddress")
                              and a["PrivateIpAddress"] not in addresses]
            profile = raw.get("IamInstanceProfile") or {}
            tags = _tags(raw.get("Tags"))
            model.hosts.append(Host(
                id=iid, cloud="aws", kind="instance", vpc=raw.get("VpcId"), subnets=subnets,
                groups=groups, tags=tags, where=Where(file, lines.of(iid)),
                name=tags.get("Name", ""), addresses=addresses,
                principal=profile.get("Arn") or None,
                public=bool(raw.get("PublicIpAddress"))))


def read_vpcs(data: Any, file: str, lines: Lines, model: NetworkModel) -> None:
    for raw in dict_list(data, "Vpcs"):
        vid = str(raw["VpcId"])
        texts = [raw.get("CidrBlock")] + [a.get("CidrBlock") for a in
                                          dict_list(raw, "CidrBlockAssociationSet")]
        texts += [a.get("Ipv6CidrBlock") for a in dict_list(raw, "Ipv6CidrBlockAssociationSet")]
        cidrs: list[IPNetwork] = []
        for net in _nets(texts):
            if net not in cidrs:
                cidrs.append(net)
        tags = _tags(raw.get("Tags"))
        model.vpcs[vid] = Vpc(id=vid, cloud="aws", cidrs=cidrs, tags=tags,
                              where=Where(file, lines.of(vid)), name=tags.get("Name", ""))


def read_subnets(data: Any, file: str, lines: Lines, model: NetworkModel) -> None:
    for raw in dict_list(data, "Subnets"):
        sid = str(raw["SubnetId"])
        texts = [raw.get("CidrBlock")] + [a.get("Ipv6CidrBlock") for a in
                                          dict_list(raw, "Ipv6CidrBlockAssociationSet")]
        model.subnets[sid] = Subnet(id=sid, vpc=raw.get("VpcId"), cidrs=_nets(texts),
                                    tags=_tags(raw.get("Tags")),
                                    where=Where(file, lines.of(sid)))


def _side(info: Any) -> tuple[str | None, list[IPNetwork]]:
    if not isinstance(info, dict):
        return None, []
    texts = [info.get("CidrBlock")] + [c.get("CidrBlock") for c in dict_list(info, "CidrBlockSet")]
    texts += [c.get("Ipv6CidrBlock") for c in dict_list(info, "Ipv6CidrBlockSet")]
    nets: list[IPNetwork] = []
    for net in _nets(texts):
        if net not in nets:
            nets.append(net)
    return info.get("VpcId"), nets


def read_peerings(data: Any, file: str, lines: Lines, model: NetworkModel) -> None:
    for raw in dict_list(data, "VpcPeeringConnections"):
        pid = str(raw["VpcPeeringConnectionId"])
        requester, requester_cidrs = _side(raw.get("RequesterVpcInfo"))
        accepter, accepter_cidrs = _side(raw.get("AccepterVpcInfo"))
        state = str((raw.get("Status") or {}).get("Code", "unknown"))
        model.peerings.append(Peering(
            id=pid, cloud="aws", requester=requester, accepter=accepter,
            requester_cidrs=requester_cidrs, accepter_cidrs=accepter_cidrs, state=state,
            where=Where(file, lines.of(pid)), live=state not in _DEAD_PEERING))


_TARGETS = (("VpcPeeringConnectionId", "peering"), ("TransitGatewayId", "transit-gateway"),
            ("NatGatewayId", "nat-gateway"), ("NetworkInterfaceId", "network-interface"),
            ("InstanceId", "instance"), ("LocalGatewayId", "local-gateway"),
            ("CoreNetworkArn", "core-network"), ("GatewayId", "gateway"))


def read_route_tables(data: Any, file: str, lines: Lines, model: NetworkModel) -> None:
    for raw in dict_list(data, "RouteTables"):
        tid = str(raw["RouteTableId"])
        subnets = [a["SubnetId"] for a in dict_list(raw, "Associations") if a.get("SubnetId")]
        where = Where(file, lines.of(tid))
        for route in dict_list(raw, "Routes"):
            if route.get("State") == "blackhole":
                continue
            destination = route.get("DestinationCidrBlock") or route.get(
                "DestinationIpv6CidrBlock")
            if not destination:
                continue  # prefix-list destinations name AWS services, not VPCs
            target, kind = "", "unknown"
            for key, name in _TARGETS:
                if route.get(key):
                    target, kind = str(route[key]), name
                    break
            if target == "local":
                continue
            if kind == "gateway":
                kind = {"igw": "internet-gateway", "vgw": "vpn-gateway"}.get(
                    target.split("-", 1)[0], "gateway")
            model.routes.append(Route(table=tid, cloud="aws", vpc=raw.get("VpcId"),
                                      subnets=subnets, destination=str(destination),
                                      target=target, target_type=kind, where=where))


def read_network_acls(data: Any, file: str, lines: Lines, model: NetworkModel) -> None:
    for raw in dict_list(data, "NetworkAcls"):
        aid = str(raw["NetworkAclId"])
        model.acls.append(NetworkAcl(
            id=aid, vpc=raw.get("VpcId"),
            subnets=[a["SubnetId"] for a in dict_list(raw, "Associations") if a.get("SubnetId")],
            entries=len(dict_list(raw, "Entries")), where=Where(file, lines.of(aid))))


def read_db_instances(data: Any, file: str, lines: Lines, model: NetworkModel) -> None:
    for raw in dict_list(data, "DBInstances"):
        name = str(raw["DBInstanceIdentifier"])
        subnet_group = raw.get("DBSubnetGroup") or {}
        port = (raw.get("Endpoint") or {}).get("Port") or raw.get("DbInstancePort") or None
        model.hosts.append(Host(
            id=name, cloud="aws", kind="database", vpc=subnet_group.get("VpcId"),
            subnets=[s["SubnetIdentifier"] for s in dict_list(subnet_group, "Subnets")
                     if s.get("SubnetIdentifier")],
            groups=[g["VpcSecurityGroupId"] for g in dict_list(raw, "VpcSecurityGroups")
                    if g.get("VpcSecurityGroupId")],
            tags=_tags(raw.get("TagList")), where=Where(file, lines.of(name)), name=name,
            public=raw.get("PubliclyAccessible") is True, port=int(port) if port else None,
            engine=str(raw.get("Engine", ""))))


#: Top-level key of each response -> its reader.
READERS: dict[str, Callable[[Any, str, Lines, NetworkModel], None]] = {
    "SecurityGroups": read_security_groups,
    "Reservations": read_instances,
    "Vpcs": read_vpcs,
    "Subnets": read_subnets,
    "VpcPeeringConnections": read_peerings,
    "RouteTables": read_route_tables,
    "NetworkAcls": read_network_acls,
    "DBInstances": read_db_instances,
}

#: The calls live mode makes: (service, paginated operation, top-level key).
LIVE_CALLS = (
    ("ec2", "describe_vpcs", "Vpcs"),
    ("ec2", "describe_subnets", "Subnets"),
    ("ec2", "describe_security_groups", "SecurityGroups"),
    ("ec2", "describe_instances", "Reservations"),
    ("ec2", "describe_vpc_peering_connections", "VpcPeeringConnections"),
    ("ec2", "describe_route_tables", "RouteTables"),
    ("ec2", "describe_network_acls", "NetworkAcls"),
    ("rds", "describe_db_instances", "DBInstances"),
)


def fetch_live(region: str, endpoint: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Every response of :data:`LIVE_CALLS` in ``region`` through boto3 (credentials from
    the usual environment and profile), pages merged: ``[(name, response), ...]`` where
    name is what findings show, ``aws:REGION/describe-vpcs``."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from drkit.errors import InputError

    session = boto3.session.Session(region_name=region)
    out: list[tuple[str, dict[str, Any]]] = []
    clients: dict[str, Any] = {}
    for service, operation, key in LIVE_CALLS:
        client = clients.get(service)
        if client is None:
            client = clients[service] = session.client(service, endpoint_url=endpoint)
        name = f"aws:{region}/{operation.replace('_', '-')}"
        items: list[Any] = []
        try:
            for page in client.get_paginator(operation).paginate():
                items.extend(page.get(key, []))
        except (BotoCoreError, ClientError) as exc:
            raise InputError(f"{name}: {exc}") from None
        log.info("%s: %d items", name, len(items))
        out.append((name, {key: items}))
    return out
