"""A VPC peering (or CCN attachment) joins production and another environment."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint.findings import Hit
from drkit.lint.network.checks import side_envs
from drkit.lint.network.model import NetworkModel

ID = "net_prod_peering"
CATEGORY = "network-isolation"
SEVERITY = "critical"
CLOUDS = ("aws", "tencent")
SCOPE = "network"
TITLE = "A VPC peering connects production with a non-production VPC"
REMEDIATION = (
    "Delete the peering (or detach the VPC from the cloud connect network). Data that must "
    "flow from production to test goes through an export job that masks it, not a network "
    "path."
)


def check(model: NetworkModel) -> Iterator[Hit]:
    for peering in model.peerings:
        if not peering.live:
            continue
        a = side_envs(model, peering.requester, peering.requester_cidrs)
        b = side_envs(model, peering.accepter, peering.accepter_cidrs)
        prod_a = any(model.is_prod(e) for e in a)
        prod_b = any(model.is_prod(e) for e in b)
        other_a = sorted(e for e in a if not model.is_prod(e))
        other_b = sorted(e for e in b if not model.is_prod(e))
        if not ((prod_a and other_b) or (prod_b and other_a) or (prod_a and other_a)
                or (prod_b and other_b)):
            continue
        kind = "cloud connect network" if peering.id.startswith("ccn-") else "peering"
        yield Hit(
            f"{kind} {peering.id} ({peering.state}) connects {peering.requester or '?'} "
            f"({', '.join(sorted(a)) or '?'}) and {peering.accepter or '?'} "
            f"({', '.join(sorted(b)) or '?'})",
            statement=peering.id if kind == "peering"
            else f"{peering.id}/{peering.requester}/{peering.accepter}",
            file=peering.where.file, line=peering.where.line, cloud=peering.cloud,
            evidence=({"peering": peering.id, "state": peering.state,
                       "requester": peering.requester, "requester_environments": sorted(a),
                       "accepter": peering.accepter, "accepter_environments": sorted(b)},))
