"""A database instance that is reachable from the internet by its own setting."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint.findings import Hit
from drkit.lint.network.model import NetworkModel

ID = "net_public_database"
CATEGORY = "network-exposure"
SEVERITY = "critical"
CLOUDS = ("aws", "tencent")
SCOPE = "network"
TITLE = "A database instance is publicly accessible"
REMEDIATION = (
    "Turn public access off (RDS PubliclyAccessible=false; TencentDB: close the public "
    "network address). Reach databases from inside the VPC, operators through the bastion."
)


def check(model: NetworkModel) -> Iterator[Hit]:
    for host in model.hosts:
        if host.kind != "database" or not host.public:
            continue
        env = model.env_of_host(host)
        prod = model.is_prod(env)
        setting = "PubliclyAccessible" if host.cloud == "aws" else "public network (WanStatus 1)"
        yield Hit(
            f"database {host.id} ({host.engine or 'database'}, {env or 'no environment'}) "
            f"has {setting} on",
            statement=host.id, file=host.where.file, line=host.where.line, cloud=host.cloud,
            severity="critical" if prod else "high",
            evidence=({"database": host.id, "environment": env, "port": host.port},))
