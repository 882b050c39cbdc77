"""Ordered rules, first match wins: what an ACCEPT rule still admits after the DROP rules
placed before it.

Tencent Cloud evaluates a security group's policies in ``PolicyIndex`` order and stops at
the first one that matches; a policy may ACCEPT or DROP. So a DROP placed before an ACCEPT
takes traffic away from it, and an ACCEPT after a broader DROP admits nothing at all. AWS
security-group rules only allow and are unordered: for them nothing is taken away.

The evaluation is exact over what the model knows: a source (CIDR or security group) is
taken away on a port only when the earlier DROP rules cover all of it there. A CIDR is
covered by the union of the DROP rules' CIDRs of its family; a security group only by a
DROP naming that same group, or by DROPs covering both ``0.0.0.0/0`` and ``::/0`` (the
addresses of a group's members are not known to the policies). A DROP naming a group does
not cover a CIDR, and address or service templates are not expanded, so the evaluation
errs towards reporting, never towards silence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from drkit.lint.network.model import (
    ALL_PORTS,
    IPNetwork,
    Permission,
    SecurityGroup,
    network,
)

Ports = tuple[tuple[int, int], ...]
#: Protocols an "all" rule stands for: TCP, UDP, and every other protocol together
#: (taken away only by a DROP of all protocols).
_ALL = ("tcp", "udp", "other")


@dataclass(frozen=True)
class Reach:
    """What ``rule`` admits from ``source`` once the earlier DROP rules are applied:
    protocol -> inclusive port ranges (empty when nothing is left)."""

    rule: Permission
    source: str
    ports: dict[str, Ports]
    dropped_by: tuple[str, ...] = field(default=())  # refs of the DROPs that took some away

    @property
    def dead(self) -> bool:
        return not any(self.ports.values())

    def covers(self, port: int) -> bool:
        """Whether TCP or UDP ``port`` is still admitted (as :meth:`Permission.covers`)."""
        return any(lo <= port <= hi for proto in ("tcp", "udp")
                   for lo, hi in self.ports.get(proto, ()))

    def port_text(self) -> str:
        if not self.dropped_by:
            return self.rule.port_text()
        parts = []
        for proto, ranges in self.ports.items():
            if not ranges:
                continue
            if proto == "other":
                parts.append("other protocols")
            elif ranges == ALL_PORTS:
                parts.append(f"{proto} all ports")
            else:
                parts.append(f"{proto} " + ",".join(str(lo) if lo == hi else f"{lo}-{hi}"
                                                   for lo, hi in ranges))
        left = "; ".join(parts) or "nothing"
        return f"{left} (the rest dropped by earlier {', '.join(self.dropped_by)})"


def earlier_drops(group: SecurityGroup, rule: Permission) -> list[Permission]:
    """The DROP rules evaluated before ``rule``: same direction, lower ``PolicyIndex``
    (ties in the order given)."""
    ordered = sorted((r for r in group.rules if r.direction == rule.direction),
                     key=lambda r: r.index)
    out = []
    for other in ordered:
        if other is rule:
            break
        if not other.accept:
            out.append(other)
    return out


def reach(group: SecurityGroup, rule: Permission, source: str) -> Reach:
    """What ``rule`` (an ACCEPT of ``group``) still admits from ``source`` (one of its
    peers: a CIDR or a security group id)."""
    drops = earlier_drops(group, rule)
    protocols = _ALL if rule.protocol == "all" else (rule.protocol,)
    left: dict[str, Ports] = {}
    used: list[str] = []
    for proto in protocols:
        ports = ALL_PORTS if proto == "other" else rule.ports
        relevant = [d for d in drops if _applies(d, proto)]
        remaining = _subtract(ports, source, relevant)
        left[proto] = remaining
        if remaining != ports:
            used += [d.ref for d in relevant if _covers_any(d, ports, source)
                     and d.ref not in used]
    return Reach(rule=rule, source=source, ports=left, dropped_by=tuple(used))


def _applies(drop: Permission, proto: str) -> bool:
    return drop.protocol == "all" or (proto != "other" and drop.protocol == proto)


def _covers_any(drop: Permission, ports: Ports, source: str) -> bool:
    """Whether ``drop`` takes anything from ``source`` on ``ports`` (for the evidence)."""
    if not _overlap(ports, drop.ports):
        return False
    if source in drop.groups:
        return True
    net = network(source)
    for cidr in drop.cidrs:
        other = network(cidr)
        if other is None:
            continue
        if net is None:  # a group: only a world DROP reaches its members by address
            if other.prefixlen == 0:
                return True
        elif other.version == net.version and other.overlaps(net):
            return True
    return False


def _overlap(a: Ports, b: Ports) -> bool:
    return any(lo1 <= hi2 and lo2 <= hi1 for lo1, hi1 in a for lo2, hi2 in b)


def _subtract(ports: Ports, source: str, drops: Sequence[Permission]) -> Ports:
    """The ports of ``ports`` on which ``drops`` do not cover all of ``source``."""
    cuts = {lo for lo, _ in ports} | {hi + 1 for _, hi in ports}
    for drop in drops:
        cuts |= {lo for lo, _ in drop.ports} | {hi + 1 for _, hi in drop.ports}
    points = sorted(cuts)
    kept: list[tuple[int, int]] = []
    for lo, nxt in zip(points, points[1:], strict=False):
        hi = nxt - 1
        if not any(a <= lo and hi <= b for a, b in ports):
            continue
        blocking = [d for d in drops if any(a <= lo and hi <= b for a, b in d.ports)]
        if blocking and _source_covered(source, blocking):
            continue
        if kept and kept[-1][1] == lo - 1:
            kept[-1] = (kept[-1][0], hi)
        else:
            kept.append((lo, hi))
    return tuple(kept)


def _source_covered(source: str, drops: Iterable[Permission]) -> bool:
    drops = list(drops)
    cidrs = [n for n in (network(c) for d in drops for c in d.cidrs) if n is not None]
    net = network(source)
    if net is None:  # a security group
        if any(source in d.groups for d in drops):
            return True
        return all(_within(world, cidrs) for world in (network("0.0.0.0/0"),
                                                       network("::/0")) if world)
    return _within(net, cidrs)


def _within(net: IPNetwork, cidrs: Sequence[IPNetwork]) -> bool:
    """Whether the union of ``cidrs`` contains all of ``net``."""
    remaining = [net]
    for cover in cidrs:
        if cover.version != net.version:
            continue
        after: list[IPNetwork] = []
        for part in remaining:
            if part.subnet_of(cover):  # type: ignore[arg-type]
                continue
            if cover.subnet_of(part):  # type: ignore[arg-type]
                after += list(part.address_exclude(cover))  # type: ignore[arg-type]
            else:
                after.append(part)
        remaining = after
        if not remaining:
            return True
    return not remaining
