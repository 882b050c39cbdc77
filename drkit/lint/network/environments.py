"""Which environment (prod, test, dev, ...) each VPC, subnet, security group and host is in.

Membership comes from an ``environments.toml`` mapping (ids and CIDRs, which win) or from
tags (default key ``env``; values ``prod``/``production``, ``test``/``staging``,
``dev``/``development``). The bastion — the one way into production for SSH/RDP — is named
there too, by security group, CIDR or tag.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drkit.errors import InputError

ENVIRONMENTS_FILE = "environments.toml"
DEFAULT_TAG_KEYS = ("env", "environment")
DEFAULT_VALUES: dict[str, tuple[str, ...]] = {
    "prod": ("prod", "production", "prd"),
    "test": ("test", "testing", "staging", "stage", "stg", "qa", "uat"),
    "dev": ("dev", "development", "develop", "sandbox"),
}
_KINDS = ("vpcs", "subnets", "cidrs", "security_groups", "hosts")
_TOP = {"version", "production", "tags", "environments", "bastion"}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class Bastion:
    """The bastion: SSH/RDP into production may come only from these."""

    groups: set[str] = field(default_factory=set)
    cidrs: list[Network] = field(default_factory=list)
    tag: tuple[str, str] | None = ("role", "bastion")

    def tagged(self, tags: dict[str, str]) -> bool:
        if self.tag is None:
            return False
        key, value = self.tag
        return any(k.lower() == key.lower() and v.lower() == value.lower()
                   for k, v in tags.items())

    @property
    def named(self) -> bool:
        return bool(self.groups or self.cidrs)


@dataclass
class EnvironmentMap:
    tag_keys: tuple[str, ...] = DEFAULT_TAG_KEYS
    values: dict[str, str] = field(default_factory=lambda: {
        v: env for env, vs in DEFAULT_VALUES.items() for v in vs})
    production: frozenset[str] = frozenset({"prod"})
    ids: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in _KINDS})
    cidrs: list[tuple[str, Network]] = field(default_factory=list)
    bastion: Bastion = field(default_factory=Bastion)
    file: str | None = None
    unknown_values: set[str] = field(default_factory=set)

    def from_tags(self, tags: dict[str, str]) -> str | None:
        lowered = {k.lower(): v for k, v in tags.items()}
        for key in self.tag_keys:
            value = lowered.get(key.lower())
            if value is None or not value.strip():
                continue
            env = self.values.get(value.strip().lower())
            if env is None:
                # An environment of its own (never production), listed in the summary so
                # that a misspelt "Prod-EU" is seen rather than silently trusted.
                env = value.strip().lower()
                self.unknown_values.add(value)
            return env
        return None

    def resolve(self, resource_id: str, tags: dict[str, str], kind: str) -> str | None:
        """The mapping of ``resource_id`` under ``kind``, else its tags' environment."""
        return self.ids.get(kind, {}).get(resource_id) or self.from_tags(tags)


def load_environments(path: Path | None, shown: str | None = None) -> EnvironmentMap:
    """Read ``environments.toml``; None gives the defaults (tags only). Errors name the key."""
    if path is None:
        return EnvironmentMap()
    shown = shown or path.as_posix()
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise InputError(f"{shown}: cannot read environments file: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{shown}: not valid TOML: {exc}") from None
    unknown = set(data) - _TOP
    if unknown:
        raise InputError(f"{shown}: unknown keys {', '.join(sorted(unknown))}")
    out = EnvironmentMap(file=shown)
    tags = _table(data, "tags", shown)
    if set(tags) - {"keys", "values"}:
        raise InputError(f"{shown}: [tags]: unknown keys "
                         f"{', '.join(sorted(set(tags) - {'keys', 'values'}))}")
    if "keys" in tags:
        out.tag_keys = tuple(_strings(tags["keys"], f"{shown}: tags.keys"))
    if "values" in tags:
        values = _table(tags, "values", f"{shown}: tags")
        out.values = {v.lower(): env for env, vs in values.items()
                      for v in _strings(vs, f"{shown}: tags.values.{env}")}
    if "production" in data:
        out.production = frozenset(_strings(data["production"], f"{shown}: production"))
    for env, table in _table(data, "environments", shown).items():
        where = f"{shown}: environments.{env}"
        if not isinstance(table, dict):
            raise InputError(f"{where}: must be a table")
        if set(table) - set(_KINDS):
            raise InputError(f"{where}: unknown keys {', '.join(sorted(set(table) - set(_KINDS)))}"
                             f" (use {', '.join(_KINDS)})")
        for kind in _KINDS:
            for item in _strings(table.get(kind, []), f"{where}.{kind}"):
                if kind == "cidrs":
                    out.cidrs.append((env, _cidr(item, f"{where}.cidrs")))
                    continue
                other = out.ids[kind].get(item)
                if other is not None and other != env:
                    raise InputError(f"{where}.{kind}: {item} is also in environment {other}")
                out.ids[kind][item] = env
    bastion = _table(data, "bastion", shown)
    if set(bastion) - {"security_groups", "cidrs", "tag"}:
        raise InputError(f"{shown}: [bastion]: unknown keys (use security_groups, cidrs, tag)")
    out.bastion.groups = set(_strings(bastion.get("security_groups", []),
                                      f"{shown}: bastion.security_groups"))
    out.bastion.cidrs = [_cidr(c, f"{shown}: bastion.cidrs")
                         for c in _strings(bastion.get("cidrs", []), f"{shown}: bastion.cidrs")]
    if "tag" in bastion:
        tag = bastion["tag"]
        if not isinstance(tag, str) or (tag and "=" not in tag):
            raise InputError(f"{shown}: bastion.tag must be \"KEY=VALUE\" (or \"\" for none)")
        key, _, value = tag.partition("=")
        out.bastion.tag = (key.strip(), value.strip()) if tag else None
    return out


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise InputError(f"{where}: '{key}' must be a table")
    return value


def _strings(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InputError(f"{where}: must be a list of strings")
    return list(value)


def _cidr(text: str, where: str) -> Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InputError(f"{where}: {text!r} is not a CIDR") from None
