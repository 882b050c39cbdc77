"""A production data port, SSH or RDP open to the whole internet."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint.findings import Hit
from drkit.lint.network.checks import is_world
from drkit.lint.network.model import NetworkModel
from drkit.lint.network.ports import ADMIN_PORTS, DATA_PORTS

ID = "net_world_open_port"
CATEGORY = "network-exposure"
SEVERITY = "critical"
CLOUDS = ("aws", "tencent")
SCOPE = "network"
TITLE = "A production database, cache or admin port is open to 0.0.0.0/0 or ::/0"
REMEDIATION = (
    "Limit the source to the application's security group (data ports) or the bastion "
    "(SSH/RDP). Nothing holding production data listens to the internet."
)


def check(model: NetworkModel) -> Iterator[Hit]:
    for group in model.prod_groups():
        db_ports = {h.port: f"{h.engine or 'database'} {h.id}"
                    for h in model.hosts_with_group(group.id) if h.port}
        for rule in group.ingress():
            world = [c for c in rule.cidrs if is_world(c)]
            if not world:
                continue
            data = sorted({p: n for p, n in {**DATA_PORTS, **db_ports}.items()
                           if rule.covers(p)}.items())
            admin = sorted((p, n) for p, n in ADMIN_PORTS.items() if rule.covers(p))
            if not data and not admin:
                continue
            named = [f"{p} ({n})" for p, n in (data + admin)[:6]]
            more = len(data) + len(admin) - len(named)
            yield Hit(
                f"security group {group.id} ({group.name or 'unnamed'}) guards production "
                f"and opens {rule.port_text()} to {', '.join(world)}: "
                f"{', '.join(named)}" + (f" and {more} more" if more > 0 else ""),
                statement=rule.ref, file=group.where.file, line=group.where.line,
                cloud=group.cloud, severity="critical" if data else "high",
                evidence=({"group": group.id, "rule": rule.ref, "sources": world,
                           "data_ports": [p for p, _ in data],
                           "admin_ports": [p for p, _ in admin]},))
