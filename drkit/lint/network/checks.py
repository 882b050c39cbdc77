"""What the network rules share: environment labels of peers and VPC sides."""

from __future__ import annotations

from drkit.lint.network.model import WORLD, IPNetwork, NetworkModel, Permission, network


def non_prod(model: NetworkModel, envs: set[str]) -> list[str]:
    return sorted(e for e in envs if not model.is_prod(e))


def peer_envs(model: NetworkModel, permission: Permission) -> list[tuple[str, set[str]]]:
    """Each peer of a rule (group id or CIDR, the world left out) with its environments."""
    out = []
    for group in permission.groups:
        if group != permission.group:
            out.append((group, model.envs_of_group(group)))
    for cidr in permission.cidrs:
        if cidr not in WORLD:
            out.append((cidr, model.envs_of_cidr(cidr)))
    return out


def is_world(cidr: str) -> bool:
    net = network(cidr)
    return net is not None and net.prefixlen == 0


def side_envs(model: NetworkModel, vpc: str | None, cidrs: list[IPNetwork]) -> set[str]:
    """A peering side's environments: its VPC's, else those its CIDRs overlap."""
    env = model.env_of_vpc(vpc)
    if env:
        return {env}
    out: set[str] = set()
    for cidr in cidrs or model.vpc_cidrs(vpc):
        out |= model.envs_of_cidr(str(cidr))
    return out
