"""The same role acts in production and in another environment."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint.findings import Hit
from drkit.lint.network.model import Host, NetworkModel

ID = "net_shared_principal"
CATEGORY = "separation-of-duties"
SEVERITY = "high"
CLOUDS = ("aws", "tencent")
SCOPE = "network"
TITLE = "One instance role is used in production and in dev or test"
REMEDIATION = (
    "Give production hosts their own instance profile (CAM role) and grant it production "
    "resources only; a test host holding the production role holds production's data."
)


def check(model: NetworkModel) -> Iterator[Hit]:
    by_principal: dict[tuple[str, str], list[tuple[Host, str | None]]] = {}
    for host in model.hosts:
        if host.principal:
            by_principal.setdefault((host.cloud, host.principal), []).append(
                (host, model.env_of_host(host)))
    for (cloud, principal), hosts in sorted(by_principal.items()):
        envs = {e for _, e in hosts if e}
        if len(envs) < 2 or not any(model.is_prod(e) for e in envs):
            continue
        first = next(h for h, e in hosts if e and not model.is_prod(e))
        yield Hit(
            f"{principal} acts in {', '.join(sorted(envs))}: "
            + ", ".join(f"{h.id} ({e or '?'})" for h, e in hosts),
            statement=principal, principal=principal, file=first.where.file,
            line=first.where.line, cloud=cloud,
            evidence=tuple({"host": h.id, "environment": e} for h, e in hosts))
