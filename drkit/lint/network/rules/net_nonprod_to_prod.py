"""A security-group rule on production admits a development or test CIDR or group."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint.findings import Hit
from drkit.lint.network.checks import non_prod, peer_envs
from drkit.lint.network.model import NetworkModel

ID = "net_nonprod_to_prod"
CATEGORY = "network-isolation"
SEVERITY = "critical"
CLOUDS = ("aws", "tencent")
SCOPE = "network"
TITLE = "A production security group admits traffic from a non-production environment"
REMEDIATION = (
    "Remove the rule, or narrow its source to production CIDRs or security groups only. "
    "Operators reach production through the bastion, never from a dev or test host."
)


def check(model: NetworkModel) -> Iterator[Hit]:
    for group in model.prod_groups():
        for rule in group.ingress():
            for peer, envs in peer_envs(model, rule):
                others = non_prod(model, envs)
                if not others:
                    continue
                yield Hit(
                    f"security group {group.id} ({group.name or 'unnamed'}) guards production "
                    f"and admits {peer} from {', '.join(others)} on {rule.port_text()}",
                    statement=f"{rule.ref}/{peer}", file=group.where.file, line=group.where.line,
                    cloud=group.cloud,
                    evidence=({"group": group.id, "rule": rule.ref, "peer": peer,
                               "environments": sorted(envs)},))
