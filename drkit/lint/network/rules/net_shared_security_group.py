"""One security group used in production and in another environment."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint.findings import Hit
from drkit.lint.network.model import NetworkModel

ID = "net_shared_security_group"
CATEGORY = "network-isolation"
SEVERITY = "high"
CLOUDS = ("aws", "tencent")
SCOPE = "network"
TITLE = "A security group is shared between production and another environment"
REMEDIATION = (
    "Give production its own security groups. A group shared with dev or test lets every "
    "member reach every other (a rule naming the group admits them all), and a change made "
    "for test opens production."
)


def check(model: NetworkModel) -> Iterator[Hit]:
    for group in model.groups.values():
        envs = model.envs_of_group(group.id)
        if len(envs) < 2 or not any(model.is_prod(e) for e in envs):
            continue
        members = sorted(f"{h.id} ({model.env_of_host(h) or '?'})"
                         for h in model.hosts_with_group(group.id))
        yield Hit(
            f"security group {group.id} ({group.name or 'unnamed'}) is in environments "
            f"{', '.join(sorted(envs))}" + (f": attached to {', '.join(members)}"
                                            if members else ""),
            statement=group.id, file=group.where.file, line=group.where.line,
            cloud=group.cloud,
            evidence=({"group": group.id, "environments": sorted(envs),
                       "attached": members},))
