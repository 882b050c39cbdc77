"""A route carries traffic between production and another environment."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint.findings import Hit
from drkit.lint.network.checks import is_world
from drkit.lint.network.model import NetworkModel

ID = "net_prod_route"
CATEGORY = "network-isolation"
SEVERITY = "high"
CLOUDS = ("aws", "tencent")
SCOPE = "network"
TITLE = "A route table sends traffic between production and a non-production network"
REMEDIATION = (
    "Remove the route (and the peering, transit-gateway or CCN attachment it uses). "
    "Production route tables hold routes to production networks and the internet only."
)
#: Targets that lead to the internet, not to another private network.
_INTERNET = {"internet-gateway", "nat-gateway", "egress-only-internet-gateway"}


def check(model: NetworkModel) -> Iterator[Hit]:
    for route in model.routes:
        if route.target_type in _INTERNET or is_world(route.destination):
            continue
        here = model.env_of_vpc(route.vpc)
        if here is None:
            continue
        there = model.envs_of_cidr(route.destination) - {here}
        if model.is_prod(here):
            crossing = sorted(e for e in there if not model.is_prod(e))
        else:
            crossing = sorted(e for e in there if model.is_prod(e))
        if not crossing:
            continue
        yield Hit(
            f"route table {route.table} of {route.vpc} ({here}) sends {route.destination} "
            f"({', '.join(crossing)}) to {route.target_type} {route.target}",
            statement=f"{route.table}/{route.destination}", file=route.where.file,
            line=route.where.line, cloud=route.cloud,
            evidence=({"route_table": route.table, "vpc": route.vpc, "environment": here,
                       "destination": route.destination, "destination_environments": crossing,
                       "target": route.target, "target_type": route.target_type},))
