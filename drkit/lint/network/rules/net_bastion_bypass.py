"""SSH or RDP into production from anything other than the bastion.

Ordered policies (Tencent) are evaluated first match wins: a source an earlier DROP keeps
off the SSH/RDP ports is not let in (drkit.lint.network.order)."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint.findings import Hit
from drkit.lint.network.checks import is_world
from drkit.lint.network.model import NetworkModel
from drkit.lint.network.order import reach
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
            if not any(rule.covers(p) for p in ADMIN_PORTS):
                continue
            sources = [p for p in (*rule.groups, *rule.cidrs)
                       if is_world(p) or not model.is_bastion_source(rule, p)]
            admitted = [r for r in (reach(group, rule, p) for p in sources)
                        if any(r.covers(p) for p in ADMIN_PORTS)]
            if not admitted:
                continue
            peers = [r.source for r in admitted if not is_world(r.source)]
            if any(is_world(r.source) for r in admitted):
                peers.append("the internet")
            ports = [f"{p} ({n})" for p, n in ADMIN_PORTS.items()
                     if any(r.covers(p) for r in admitted)]
            yield Hit(
                f"security group {group.id} ({group.name or 'unnamed'}) guards production "
                f"and admits {', '.join(ports)} from {', '.join(peers)}, not only the bastion"
                + ("" if model.environments.bastion.named or model.environments.bastion.tag
                   else " (no bastion is named)"),
                statement=rule.ref, file=group.where.file, line=group.where.line,
                cloud=group.cloud,
                evidence=({"group": group.id, "rule": rule.ref, "sources": peers,
                           "dropped_before": sorted({d for r in admitted
                                                     for d in r.dropped_by})},))
