"""The network model: VPCs, subnets, security groups, hosts, databases, peerings and routes
of one or both clouds, each knowing the file (and line) it was read from.

Readers (``aws.py``, ``tencent.py``) turn API responses into these objects; the rules only
ever see this model and the environment map, never a cloud's response shape.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from drkit.lint.network.environments import EnvironmentMap

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
WORLD = ("0.0.0.0/0", "::/0")
ALL_PORTS: tuple[tuple[int, int], ...] = ((0, 65535),)


def network(text: str) -> IPNetwork | None:
    """``text`` as a network (host bits allowed), or None when it is not an address range."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def overlaps(a: IPNetwork, b: IPNetwork) -> bool:
    return a.version == b.version and a.overlaps(b)


@dataclass(frozen=True)
class Where:
    """Where a resource was read: the file (or ``aws:REGION/Call`` when live) and line."""

    file: str
    line: int = 1


@dataclass
class Vpc:
    id: str
    cloud: str
    cidrs: list[IPNetwork]
    tags: dict[str, str]
    where: Where
    name: str = ""


@dataclass
class Subnet:
    id: str
    vpc: str | None
    cidrs: list[IPNetwork]
    tags: dict[str, str]
    where: Where


@dataclass
class Permission:
    """One security-group rule. ``ports`` are inclusive ranges; ``cidrs`` and ``groups``
    are the peers it admits (ingress) or reaches (egress)."""

    group: str
    direction: Literal["ingress", "egress"]
    index: int
    protocol: str  # "all", "tcp", "udp", "icmp", "icmpv6", ...
    ports: tuple[tuple[int, int], ...]
    cidrs: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    accept: bool = True  # Tencent rules may DROP; AWS rules always allow
    description: str = ""

    @property
    def ref(self) -> str:
        """``sg-0abc/ingress/tcp:5432``: the rule as findings and suppressions name it, by
        what it opens rather than its position (the clouds reorder and merge rules)."""
        ports = "all" if self.ports == ALL_PORTS else ",".join(
            str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.ports)
        return f"{self.group}/{self.direction}/{self.protocol}:{ports}"

    def covers(self, port: int) -> bool:
        if self.protocol not in ("all", "tcp", "udp"):
            return False
        return any(lo <= port <= hi for lo, hi in self.ports)

    def port_text(self) -> str:
        if self.ports == ALL_PORTS:
            return f"{self.protocol} all ports"
        return f"{self.protocol} " + ",".join(str(lo) if lo == hi else f"{lo}-{hi}"
                                              for lo, hi in self.ports)


@dataclass
class SecurityGroup:
    id: str
    cloud: str
    vpc: str | None
    name: str
    tags: dict[str, str]
    where: Where
    rules: list[Permission] = field(default_factory=list)

    def ingress(self) -> Iterator[Permission]:
        return (r for r in self.rules if r.direction == "ingress" and r.accept)


@dataclass
class Host:
    """A compute instance or a database instance: something in a VPC behind security
    groups. ``principal`` is the role it acts as (instance profile ARN, CAM role name)."""

    id: str
    cloud: str
    kind: Literal["instance", "database"]
    vpc: str | None
    subnets: list[str]
    groups: list[str]
    tags: dict[str, str]
    where: Where
    name: str = ""
    addresses: list[str] = field(default_factory=list)
    principal: str | None = None
    public: bool = False  # a database reachable from the internet by its own setting
    port: int | None = None
    engine: str = ""


@dataclass
class Peering:
    """A peering (or a similar VPC-to-VPC link) between two VPCs."""

    id: str
    cloud: str
    requester: str | None
    accepter: str | None
    requester_cidrs: list[IPNetwork]
    accepter_cidrs: list[IPNetwork]
    state: str
    where: Where
    live: bool = True  # False when deleted, rejected, failed or expired


@dataclass
class Route:
    table: str
    cloud: str
    vpc: str | None
    subnets: list[str]
    destination: str
    target: str
    target_type: str  # "peering", "transit-gateway", "ccn", "gateway", ...
    where: Where


@dataclass
class NetworkAcl:
    id: str
    vpc: str | None
    subnets: list[str]
    entries: int
    where: Where


@dataclass
class InputIssue:
    file: str
    message: str
    line: int = 1


@dataclass
class NetworkModel:
    """Everything read in one run, plus the environment map that classifies it."""

    environments: EnvironmentMap
    vpcs: dict[str, Vpc] = field(default_factory=dict)
    subnets: dict[str, Subnet] = field(default_factory=dict)
    groups: dict[str, SecurityGroup] = field(default_factory=dict)
    hosts: list[Host] = field(default_factory=list)
    peerings: list[Peering] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    acls: list[NetworkAcl] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    issues: list[InputIssue] = field(default_factory=list)

    # -- environments --------------------------------------------------------------------
    def env_of_vpc(self, vpc_id: str | None) -> str | None:
        if vpc_id is None:
            return None
        vpc = self.vpcs.get(vpc_id)
        return self.environments.resolve(vpc_id, vpc.tags if vpc else {}, "vpcs")

    def env_of_subnet(self, subnet_id: str) -> str | None:
        subnet = self.subnets.get(subnet_id)
        found = self.environments.resolve(subnet_id, subnet.tags if subnet else {}, "subnets")
        if found is None and subnet is not None:
            found = self.env_of_vpc(subnet.vpc)
        return found

    def env_of_host(self, host: Host) -> str | None:
        """Mapping or tag of the host itself, then of its subnet, then of its VPC."""
        found = self.environments.resolve(host.id, host.tags, "hosts")
        for subnet in host.subnets:
            if found is None:
                found = self.env_of_subnet(subnet)
        if found is None:
            found = self.env_of_vpc(host.vpc)
        if found is None:
            for address in host.addresses:
                envs = self.envs_of_cidr(address)
                if len(envs) == 1:
                    found = next(iter(envs))
        return found

    def env_of_group_itself(self, group: SecurityGroup) -> str | None:
        """The group's own environment (mapping or tag), not that of what uses it."""
        return self.environments.resolve(group.id, group.tags, "security_groups")

    def envs_of_group(self, group_id: str) -> set[str]:
        """Every environment a security group belongs to: its own, those of the hosts it is
        attached to, and (when nothing else says) its VPC's."""
        group = self.groups.get(group_id)
        envs: set[str] = set()
        own = self.env_of_group_itself(group) if group else self.environments.resolve(
            group_id, {}, "security_groups")
        if own:
            envs.add(own)
        for host in self.hosts_with_group(group_id):
            env = self.env_of_host(host)
            if env:
                envs.add(env)
        if not envs and group is not None:
            env = self.env_of_vpc(group.vpc)
            if env:
                envs.add(env)
        return envs

    def envs_of_cidr(self, text: str) -> set[str]:
        """Environments whose address space overlaps ``text`` (mapped CIDRs, VPC and subnet
        ranges of classified VPCs and subnets)."""
        net = network(text)
        if net is None:
            return set()
        envs = {env for env, cidr in self.environments.cidrs if overlaps(net, cidr)}
        for vpc in self.vpcs.values():
            env = self.env_of_vpc(vpc.id)
            if env and any(overlaps(net, c) for c in vpc.cidrs):
                envs.add(env)
        for subnet in self.subnets.values():
            env = self.env_of_subnet(subnet.id)
            if env and any(overlaps(net, c) for c in subnet.cidrs):
                envs.add(env)
        return envs

    def vpc_cidrs(self, vpc_id: str | None) -> list[IPNetwork]:
        vpc = self.vpcs.get(vpc_id or "")
        return list(vpc.cidrs) if vpc else []

    def hosts_with_group(self, group_id: str) -> Iterator[Host]:
        return (h for h in self.hosts if group_id in h.groups)

    def is_prod(self, env: str | None) -> bool:
        return env is not None and env in self.environments.production

    def prod_groups(self) -> Iterator[SecurityGroup]:
        """Security groups that guard production: in prod themselves or on a prod host."""
        for group in self.groups.values():
            if any(self.is_prod(e) for e in self.envs_of_group(group.id)):
                yield group

    def is_bastion_source(self, permission: Permission, peer: str) -> bool:
        """Whether ``peer`` (a CIDR or a group id of ``permission``) is the bastion's."""
        bastion = self.environments.bastion
        if peer in permission.groups:
            if peer in bastion.groups:
                return True
            group = self.groups.get(peer)
            if group is not None and bastion.tagged(group.tags):
                return True
            return any(bastion.tagged(h.tags) for h in self.hosts_with_group(peer))
        net = network(peer)
        if net is None:
            return False
        if any(overlaps(net, c) and net.subnet_of(c)  # type: ignore[arg-type]
               for c in bastion.cidrs if c.version == net.version):
            return True
        # A /32 (or /128) naming a tagged bastion host's address.
        if net.num_addresses == 1:
            for host in self.hosts:
                if bastion.tagged(host.tags) and str(net.network_address) in host.addresses:
                    return True
        return False

    def counts(self) -> dict[str, int]:
        return {"vpcs": len(self.vpcs), "subnets": len(self.subnets),
                "security_groups": len(self.groups),
                "instances": sum(1 for h in self.hosts if h.kind == "instance"),
                "databases": sum(1 for h in self.hosts if h.kind == "database"),
                "peerings": len(self.peerings), "routes": len(self.routes),
                "network_acls": len(self.acls)}

    def unclassified_vpcs(self) -> list[str]:
        return sorted(v for v in self.vpcs if self.env_of_vpc(v) is None)


def parse_ports(pairs: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out = tuple(sorted((max(0, lo), min(65535, hi)) for lo, hi in pairs if lo <= hi))
    return out or ALL_PORTS
