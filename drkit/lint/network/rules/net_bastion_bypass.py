"""SSH or RDP into production from anything other than the bastion."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint.findings import Hit
from drkit.lint.network.checks import is_world
from drkit.lint.network.model import NetworkModel
from drkit.lint.network.ports import ADMIN_PORTS

ID = "net_bastion_bypass"
CATEGORY = "network-isolation"
SEVERITY = "high"
CLOUDS = ("aws", "tencent")
SCOPE = "network"
TITLE = "SSH/RDP into production from a source other than the bastion"
REMEDIATION = (
    "Allow SSH/RDP into production only from the bastion's security group or address "
    "(named in environments.toml [bastion] or tagged role=bastion), so every session is "
    "logged and audited there."
)


def _is_bastion_group(model: NetworkModel, group_id: str) -> bool:
    bastion = model.environments.bastion
    group = model.groups.get(group_id)
    return group_id in bastion.groups or (group is not None and bastion.tagged(group.tags)) \
        or any(bastion.tagged(h.tags) for h in model.hosts_with_group(group_id))


def check(model: NetworkModel) -> Iterator[Hit]:
    for group in model.prod_groups():
        if _is_bastion_group(model, group.id):
            continue  # the bastion's own front door: exposure is the world-open rule's
        for rule in group.ingress():
            ports = [f"{p} ({n})" for p, n in ADMIN_PORTS.items() if rule.covers(p)]
            if not ports:
                continue
            peers = [p for p in (*rule.groups, *rule.cidrs)
                     if not is_world(p) and not model.is_bastion_source(rule, p)]
            if any(is_world(c) for c in rule.cidrs):
                peers.append("the internet")
            if not peers:
                continue
            yield Hit(
                f"security group {group.id} ({group.name or 'unnamed'}) guards production "
                f"and admits {', '.join(ports)} from {', '.join(peers)}, not only the bastion"
                + ("" if model.environments.bastion.named or model.environments.bastion.tag
                   else " (no bastion is named)"),
                statement=rule.ref, file=group.where.file, line=group.where.line,
                cloud=group.cloud,
                evidence=({"group": group.id, "rule": rule.ref, "sources": peers},))
