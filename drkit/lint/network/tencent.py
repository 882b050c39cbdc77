"""Tencent Cloud: VPC, CVM and TencentDB API 3.0 responses -> the network model.

Shapes follow the SDK's response models (``tencentcloud.vpc.v20170312.models``,
``tencentcloud.cvm.v20170312.models``, ``tencentcloud.cdb.v20170320.models``). Files may
hold the API's ``{"Response": {...}}`` or the body as ``tccli`` prints it. The same readers
take the live responses (:func:`fetch_live`), serialised from the SDK's models.

``DescribeSecurityGroupPolicies`` does not name the group it describes: its file is named
after the group (``sg-xxxxxxxx.json``, or a folder ``sg-xxxxxxxx/``), or the body carries
``"SecurityGroupId"`` beside ``SecurityGroupPolicySet`` (what live mode and ``--save``
write).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from itertools import combinations
from typing import Any

from drkit.errors import InputError
from drkit.lint.network.model import (
    ALL_PORTS,
    Host,
    IPNetwork,
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

_GROUP_ID = re.compile(r"\bsg-[0-9a-z]+\b")
#: List actions whose SDK request models type Offset/Limit as integers (the others: strings).
_INTEGER_PAGING = {"DescribeInstances", "DescribeVpcPeeringConnections",
                   "DescribeCcnAttachedInstances", "DescribeDBInstances"}
#: The largest Limit the VPC and CVM list actions accept.
PAGE_SIZE = 100
_DEAD = {"DELETED", "REJECTED", "EXPIRED", "FAILED", "DELETING"}


def _tags(items: Any) -> dict[str, str]:
    if not isinstance(items, list):
        return {}
    out = {}
    for t in items:
        if isinstance(t, dict):
            key = t.get("Key", t.get("TagKey"))
            if key is not None:
                out[str(key)] = str(t.get("Value", t.get("TagValue", "")))
    return out


def _nets(*texts: Any) -> list[IPNetwork]:
    out: list[IPNetwork] = []
    for text in texts:
        net = network(text) if isinstance(text, str) and text else None
        if net is not None and net not in out:
            out.append(net)
    return out


def parse_port(text: Any) -> tuple[tuple[int, int], ...]:
    """``"ALL"``, ``"22"``, ``"80,443"``, ``"8000-8010"`` -> inclusive ranges."""
    text = str(text or "ALL").strip().upper()
    if text in ("ALL", "", "-1"):
        return ALL_PORTS
    pairs = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        pairs.append((int(lo), int(hi or lo)))
    return parse_ports(pairs)


def read_security_groups(data: Any, file: str, lines: Lines, model: NetworkModel) -> None:
    for raw in dict_list(data, "SecurityGroupSet"):
        gid = str(raw["SecurityGroupId"])
        existing = model.groups.get(gid)
        group = SecurityGroup(id=gid, cloud="tencent", vpc=None,
                              name=str(raw.get("SecurityGroupName", "")),
                              tags=_tags(raw.get("TagSet")), where=Where(file, lines.of(gid)))
        if existing is not None:  # its policies were read first
            group.rules = existing.rules
        model.groups[gid] = group


def read_security_group_policies(data: Any, file: str, lines: Lines,
                                 model: NetworkModel) -> None:
    gid = data.get("SecurityGroupId")
    if not gid:
        found = _GROUP_ID.findall(file)
        if not found:
            raise ValueError("cannot tell which security group these policies belong to: "
                             "name the file or its folder after the group (sg-xxxxxxxx)")
        gid = found[-1]
    policies = data["SecurityGroupPolicySet"]
    group = model.groups.get(gid)
    if group is None:
        group = model.groups[gid] = SecurityGroup(id=gid, cloud="tencent", vpc=None, name="",
                                                  tags={}, where=Where(file, 1))
    group.rules = []
    for direction, key in (("ingress", "Ingress"), ("egress", "Egress")):
        for i, raw in enumerate(dict_list(policies, key)):
            index = raw.get("PolicyIndex", i)
            protocol = str(raw.get("Protocol", "ALL")).lower()
            cidrs = tuple(c for c in (raw.get("CidrBlock"), raw.get("Ipv6CidrBlock")) if c)
            peer = raw.get("SecurityGroupId")
            group.rules.append(Permission(
                group=gid, direction=direction,  # type: ignore[arg-type]
                index=int(index), protocol="all" if protocol == "all" else protocol,
                ports=parse_port(raw.get("Port")), cidrs=cidrs,
                groups=(str(peer),) if peer else (),
                accept=str(raw.get("Action", "ACCEPT")).upper() == "ACCEPT",
                description=str(raw.get("PolicyDescription", ""))))


def read_instance_set(data: Any, file: str, lines: Lines, model: NetworkModel) -> None:
    """CVM ``DescribeInstances``, or CCN ``DescribeCcnAttachedInstances`` (same key)."""
    attached: dict[str, list[dict[str, Any]]] = {}
    for raw in dict_list(data, "InstanceSet"):
        if "CcnId" in raw:
            if raw.get("InstanceType") == "VPC" and str(raw.get("State", "")).upper() \
                    not in _DEAD:
                attached.setdefault(str(raw["CcnId"]), []).append(raw)
            continue
        if str(raw.get("InstanceState", "")).upper() in ("TERMINATING", "SHUTDOWN_TERMINATED"):
            continue
        iid = str(raw["InstanceId"])
        vpc = raw.get("VirtualPrivateCloud") or {}
        model.hosts.append(Host(
            id=iid, cloud="tencent", kind="instance", vpc=vpc.get("VpcId"),
            subnets=[vpc["SubnetId"]] if vpc.get("SubnetId") else [],
            groups=[str(g) for g in raw.get("SecurityGroupIds") or []],
            tags=_tags(raw.get("Tags")), where=Where(file, lines.of(iid)),
            name=str(raw.get("InstanceName", "")),
            addresses=[str(a) for a in raw.get("PrivateIpAddresses") or []],
            principal=raw.get("CamRoleName") or None,
            public=bool(raw.get("PublicIpAddresses"))))
    for ccn, members in attached.items():
        for a, b in combinations(members, 2):
            model.peerings.append(Peering(
                id=ccn, cloud="tencent", requester=a.get("InstanceId"),
                accepter=b.get("InstanceId"), requester_cidrs=_nets(*a.get("CidrBlock") or []),
                accepter_cidrs=_nets(*b.get("CidrBlock") or []), state=str(a.get("State")),
                where=Where(file, lines.of(ccn))))


def read_vpcs(data: Any, file: str, lines: Lines, model: NetworkModel) -> None:
    for raw in dict_list(data, "VpcSet"):
        vid = str(raw["VpcId"])
        extra = [c.get("CidrBlock") for c in dict_list(raw, "AssistantCidrSet")]
        model.vpcs[vid] = Vpc(id=vid, cloud="tencent",
                              cidrs=_nets(raw.get("CidrBlock"), raw.get("Ipv6CidrBlock"), *extra),
                              tags=_tags(raw.get("TagSet")), where=Where(file, lines.of(vid)),
                              name=str(raw.get("VpcName", "")))


def read_subnets(data: Any, file: str, lines: Lines, model: NetworkModel) -> None:
    for raw in dict_list(data, "SubnetSet"):
        sid = str(raw["SubnetId"])
        model.subnets[sid] = Subnet(id=sid, vpc=raw.get("VpcId"),
                                    cidrs=_nets(raw.get("CidrBlock"), raw.get("Ipv6CidrBlock")),
                                    tags=_tags(raw.get("TagSet")),
                                    where=Where(file, lines.of(sid)))


def read_peerings(data: Any, file: str, lines: Lines, model: NetworkModel) -> None:
    for raw in dict_list(data, "PeerConnectionSet"):
        pid = str(raw["PeeringConnectionId"])
        state = str(raw.get("State", "UNKNOWN"))
        model.peerings.append(Peering(
            id=pid, cloud="tencent", requester=raw.get("SourceVpcId"),
            accepter=raw.get("PeerVpcId") or raw.get("DestinationVpcId"), requester_cidrs=[],
            accepter_cidrs=[], state=state, where=Where(file, lines.of(pid)),
            live=state.upper() not in _DEAD))


_GATEWAYS = {"PEERCONNECTION": "peering", "CCN": "ccn", "USER_CCN": "ccn",
             "VPN": "vpn-gateway", "DIRECTCONNECT": "direct-connect", "NAT": "nat-gateway",
             "EIP": "internet-gateway", "CVM": "instance", "NORMAL_CVM": "instance",
             "HAVIP": "havip"}


def read_route_tables(data: Any, file: str, lines: Lines, model: NetworkModel) -> None:
    for raw in dict_list(data, "RouteTableSet"):
        tid = str(raw["RouteTableId"])
        subnets = [a["SubnetId"] for a in dict_list(raw, "AssociationSet") if a.get("SubnetId")]
        where = Where(file, lines.of(tid))
        for route in dict_list(raw, "RouteSet"):
            if route.get("Enabled") is False:
                continue
            destination = route.get("DestinationCidrBlock") or route.get(
                "DestinationIpv6CidrBlock")
            gateway = str(route.get("GatewayType", "")).upper()
            if not destination or gateway in ("LOCAL", ""):
                continue
            model.routes.append(Route(table=tid, cloud="tencent", vpc=raw.get("VpcId"),
                                      subnets=subnets, destination=str(destination),
                                      target=str(route.get("GatewayId", "")),
                                      target_type=_GATEWAYS.get(gateway, gateway.lower()),
                                      where=where))


def read_cdb_instances(data: Any, file: str, lines: Lines, model: NetworkModel) -> None:
    """TencentDB for MySQL ``DescribeDBInstances``: ``WanStatus`` 1 is internet access on."""
    for raw in dict_list(data, "Items"):
        if "InstanceId" not in raw or not ({"WanStatus", "UniqVpcId", "Vport"} & set(raw)):
            raise ValueError("'Items' entries are not TencentDB instances")
        iid = str(raw["InstanceId"])
        model.hosts.append(Host(
            id=iid, cloud="tencent", kind="database", vpc=raw.get("UniqVpcId") or None,
            subnets=[raw["UniqSubnetId"]] if raw.get("UniqSubnetId") else [], groups=[],
            tags=_tags(raw.get("TagList")), where=Where(file, lines.of(iid)),
            name=str(raw.get("InstanceName", iid)),
            addresses=[raw["Vip"]] if raw.get("Vip") else [], public=raw.get("WanStatus") == 1,
            port=int(raw["Vport"]) if raw.get("Vport") else None, engine="mysql"))


READERS: dict[str, Callable[[Any, str, Lines, NetworkModel], None]] = {
    "SecurityGroupSet": read_security_groups,
    "SecurityGroupPolicySet": read_security_group_policies,
    "InstanceSet": read_instance_set,
    "VpcSet": read_vpcs,
    "SubnetSet": read_subnets,
    "PeerConnectionSet": read_peerings,
    "RouteTableSet": read_route_tables,
    "Items": read_cdb_instances,
}


def _endpoint(endpoint: str | None, protocol: str) -> tuple[str | None, str]:
    """``http://host:port`` -> (``host:port``, ``http``): the SDK takes them apart."""
    if endpoint and "://" in endpoint:
        scheme, _, rest = endpoint.partition("://")
        if scheme not in ("http", "https") or not rest.strip("/"):
            raise InputError(f"--endpoint {endpoint!r}: use host[:port] or "
                             "http(s)://host[:port]")
        return rest.strip("/"), scheme
    return endpoint, protocol


def fetch_live(region: str, endpoint: str | None = None, *, protocol: str = "https",
               page_size: int = PAGE_SIZE) -> list[tuple[str, dict[str, Any]]]:
    """The same responses, live through tencentcloud-sdk-python (credentials from
    ``TENCENTCLOUD_SECRET_ID``/``TENCENTCLOUD_SECRET_KEY``). Every list is paged
    (``Offset``/``Limit`` of ``page_size``) to its ``TotalCount``; each group's policies get
    a response of their own carrying its id. ``endpoint`` (one host for every service, a
    test server) may carry its scheme: ``http://127.0.0.1:8080``."""
    from tencentcloud.cdb.v20170320 import cdb_client
    from tencentcloud.cdb.v20170320 import models as cdb_models
    from tencentcloud.common import credential
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
        TencentCloudSDKException,
    )
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.cvm.v20170312 import cvm_client
    from tencentcloud.cvm.v20170312 import models as cvm_models
    from tencentcloud.vpc.v20170312 import models as vpc_models
    from tencentcloud.vpc.v20170312 import vpc_client

    if not 1 <= page_size <= PAGE_SIZE:
        raise InputError(f"page size {page_size}: use 1 to {PAGE_SIZE}")
    endpoint, protocol = _endpoint(endpoint, protocol)
    try:
        cred = credential.EnvironmentVariableCredential().get_credential()
    except TencentCloudSDKException:
        cred = None
    if cred is None:
        raise InputError("tencent: no credentials: set TENCENTCLOUD_SECRET_ID and "
                         "TENCENTCLOUD_SECRET_KEY")

    def profile(service: str) -> ClientProfile:
        http = HttpProfile(protocol=protocol,
                           endpoint=endpoint or f"{service}.tencentcloudapi.com")
        return ClientProfile(httpProfile=http)

    vpc = vpc_client.VpcClient(cred, region, profile("vpc"))
    cvm = cvm_client.CvmClient(cred, region, profile("cvm"))
    cdb = cdb_client.CdbClient(cred, region, profile("cdb"))
    out: list[tuple[str, dict[str, Any]]] = []

    def call(client: Any, models: Any, action: str, key: str, params: dict[str, Any],
             paged: bool = True) -> dict[str, Any]:
        name = f"tencent:{region}/{action}"
        items: list[Any] = []
        offset = 0
        while True:
            request = getattr(models, f"{action}Request")()
            page_params = dict(params)
            if paged:
                # Some actions take Offset/Limit as strings, some as integers.
                numeric = action in _INTEGER_PAGING
                page_params.update({"Offset": offset if numeric else str(offset),
                                    "Limit": page_size if numeric else str(page_size)})
            request.from_json_string(json.dumps(page_params))
            try:
                body = json.loads(getattr(client, action)(request).to_json_string())
            except TencentCloudSDKException as exc:
                raise InputError(f"{name}: {exc.code}: {exc.message}") from None
            if not paged:
                return body
            page = body.get(key) or []
            items.extend(page)
            offset += len(page)
            total = int(body.get("TotalCount") or 0)
            if not page or offset >= total:
                log.debug("%s: %d items in %d pages", name, len(items),
                          -(-offset // page_size))
                if len(items) < total:
                    raise InputError(f"{name}: the list ended at {len(items)} of its "
                                     f"TotalCount {total}")
                return {key: items, "TotalCount": len(items)}

    def add(client: Any, models: Any, action: str, key: str) -> dict[str, Any]:
        body = call(client, models, action, key, {})
        out.append((f"tencent:{region}/{action}", body))
        return body

    add(vpc, vpc_models, "DescribeVpcs", "VpcSet")
    add(vpc, vpc_models, "DescribeSubnets", "SubnetSet")
    groups = add(vpc, vpc_models, "DescribeSecurityGroups", "SecurityGroupSet")
    for group in groups["SecurityGroupSet"]:
        gid = group["SecurityGroupId"]
        body = call(vpc, vpc_models, "DescribeSecurityGroupPolicies", "",
                    {"SecurityGroupId": gid}, paged=False)
        out.append((f"tencent:{region}/DescribeSecurityGroupPolicies/{gid}",
                    {"SecurityGroupId": gid,
                     "SecurityGroupPolicySet": body.get("SecurityGroupPolicySet") or {}}))
    add(vpc, vpc_models, "DescribeVpcPeeringConnections", "PeerConnectionSet")
    add(vpc, vpc_models, "DescribeRouteTables", "RouteTableSet")
    add(vpc, vpc_models, "DescribeCcnAttachedInstances", "InstanceSet")
    add(cvm, cvm_models, "DescribeInstances", "InstanceSet")
    add(cdb, cdb_models, "DescribeDBInstances", "Items")
    log.info("tencent %s: %d responses read", region, len(out))
    return out
