"""Checks shared by the rule modules (one AWS and one CAM module per category call these).

Every check looks at Allow statements only; a Deny with the same reach and no condition
takes an action out of an Allow in the same document (explicit deny wins).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from drkit.lint.findings import Hit
from drkit.lint.model import Policy, Statement
from drkit.lint.patterns import resource_matches

_WILDCARD = re.compile(r"[*?]")
PUBLIC_PRINCIPALS = {"aws": ("*",), "tencent": ("*", "qcs::cam::anyone", "qcs::cam::anyone:anyone")}


def names(actions: frozenset[str] | set[str] | tuple[str, ...], limit: int = 6) -> str:
    """A readable, bounded list of action names for a message (the finding lists them all)."""
    ordered = sorted(actions)
    shown = ", ".join(ordered[:limit])
    return shown + (f" and {len(ordered) - limit} more" if len(ordered) > limit else "")


def _deny_subsumes(deny: Statement, allow: Statement) -> bool:
    """Whether ``deny`` applies, unconditionally, to every resource ``allow`` reaches."""
    if deny.condition:
        return False
    if deny.not_resources is not None:
        return False
    if deny.resources is None:
        return True
    if "*" in deny.resources:
        return True
    if allow.resources is None:
        return False
    return all(any(resource_matches(d, a) for d in deny.resources) for a in allow.resources)


@dataclass
class _DenyIndex:
    """The document's unconditional denies of one action class, indexed so that applying
    them to N allow statements does not cost N x (number of statements).

    Denies with the same resources are merged (whether a deny covers an allow depends only
    on its resources). ``everywhere``: actions denied on every resource. A deny can cover an
    allow only if it covers the allow's first resource, and a deny resource matches a
    resource only if its literal text before the first wildcard is a prefix of it; so
    ``by_prefix`` maps that literal prefix to the denies having it, and ``prefix_lengths``
    says which prefixes of an allow's resource to look up.
    """

    everywhere: frozenset[str]
    by_prefix: dict[str, list[tuple[Statement, frozenset[str]]]]
    prefix_lengths: tuple[int, ...]


def _literal_prefix(resource: str) -> str:
    m = _WILDCARD.search(resource)
    return resource if m is None else resource[:m.start()]


def _deny_index(policy: Policy, action_class: str) -> _DenyIndex:
    key = f"deny-index:{action_class}"
    index = policy.memo.get(key)
    if index is None:
        cat = policy.catalog
        everywhere: set[str] = set()
        merged: dict[tuple[str, ...], tuple[Statement, set[str]]] = {}
        for deny in policy.statements:
            if not deny.is_deny or deny.condition or deny.not_resources is not None:
                continue
            denied = deny.covers(cat, action_class)
            if not denied:
                continue
            if deny.resources is None or "*" in deny.resources:
                everywhere |= denied
            else:
                merged.setdefault(deny.resources, (deny, set()))[1].update(denied)
        by_prefix: dict[str, list[tuple[Statement, frozenset[str]]]] = {}
        for deny, actions in merged.values():
            # A deny with several resources is filed under each distinct prefix.
            for prefix in {_literal_prefix(r) for r in deny.resources or ()}:
                by_prefix.setdefault(prefix, []).append((deny, frozenset(actions)))
        index = _DenyIndex(frozenset(everywhere), by_prefix,
                           tuple(sorted({len(p) for p in by_prefix})))
        policy.memo[key] = index
    return index


def effective(policy: Policy, statement: Statement, action_class: str) -> frozenset[str]:
    """Known actions of ``action_class`` that ``statement`` allows after this document's denies."""
    allowed = statement.covers(policy.catalog, action_class)
    if not allowed:
        return allowed
    index = _deny_index(policy, action_class)
    allowed = allowed - index.everywhere
    if not allowed or not statement.resources:
        return allowed
    first = statement.resources[0]
    seen: set[int] = set()
    for length in index.prefix_lengths:
        if length > len(first):
            break
        for deny, denied in index.by_prefix.get(first[:length], ()):
            if id(deny) in seen:
                continue
            seen.add(id(deny))
            if _deny_subsumes(deny, statement):
                allowed = allowed - denied
                if not allowed:
                    return allowed
    return allowed


def allows(policy: Policy) -> Iterator[Statement]:
    return (s for s in policy.statements if s.is_allow)


def syntax(policy: Policy) -> Iterator[Hit]:
    for problem in policy.problems:
        yield Hit(problem.message, statement=problem.statement, line=problem.line)


def wildcard_action(policy: Policy) -> Iterator[Hit]:
    for st in allows(policy):
        wild = [a for a in st.actions or () if a == "*" or a.endswith(":*")]
        if not wild:
            continue
        everything = "*" in wild and st.all_resources()
        yield Hit(f"statement {st.label} allows every action of "
                  f"{'every service' if '*' in wild else ', '.join(wild)}",
                  statement=st.index, actions=tuple(wild),
                  severity="critical" if everything else None)


def wildcard_resource(policy: Policy) -> Iterator[Hit]:
    cat = policy.catalog
    for st in allows(policy):
        if st.resources is None or "*" not in st.resources:
            continue
        writes = [a for a in st.action_patterns() if cat.is_write_pattern(a)]
        if st.not_actions is not None:
            writes = ["NotAction:" + ",".join(st.not_actions)]
        if writes:
            # Say why a read-looking pattern counts (cognito-identity:Get* covers GetId, a
            # Write): the access level decides, not the verb.
            why = [f"{p} covers {names(w, 3)}" for p in writes
                   if (w := cat.writes_behind_read_verb(p))][:3]
            yield Hit(f"statement {st.label} allows write actions on every resource (\"*\")"
                      + (f" ({'; '.join(why)})" if why else ""),
                      statement=st.index, actions=tuple(writes))


def not_action(policy: Policy) -> Iterator[Hit]:
    for st in allows(policy):
        if st.not_actions is not None:
            yield Hit(f"statement {st.label} allows everything except "
                      f"{', '.join(st.not_actions)} (Allow with NotAction)",
                      statement=st.index, actions=st.not_actions)


def not_resource(policy: Policy) -> Iterator[Hit]:
    for st in allows(policy):
        if st.not_resources is not None:
            yield Hit(f"statement {st.label} allows its actions on every resource except "
                      f"{', '.join(st.not_resources)} (Allow with NotResource)",
                      statement=st.index, actions=st.action_patterns())


def not_principal(policy: Policy) -> Iterator[Hit]:
    for st in allows(policy):
        if st.not_principals is not None:
            yield Hit(f"statement {st.label} allows everyone except "
                      f"{', '.join(st.not_principals)} (Allow with NotPrincipal)",
                      statement=st.index, actions=st.action_patterns())


def public_principal(policy: Policy) -> Iterator[Hit]:
    public = PUBLIC_PRINCIPALS[policy.cloud]
    cat = policy.catalog
    for st in allows(policy):
        who = [p for p in st.principals or () if p in public]
        if who and not st.has_guard_condition(cat):
            yield Hit(f"statement {st.label} grants {', '.join(st.action_patterns())} to "
                      f"anyone ({', '.join(who)}) with no narrowing condition",
                      statement=st.index, actions=st.action_patterns(), principal=who[0])


def privilege_escalation(policy: Policy) -> Iterator[Hit]:
    statements = list(allows(policy))
    for st in statements:
        grant = effective(policy, st, "escalation_grant")
        if grant:
            yield Hit(f"statement {st.label} lets the holder grant itself any permission "
                      f"({names(grant)})", statement=st.index,
                      actions=tuple(sorted(grant)))
        assume = effective(policy, st, "assume_role")
        if assume and st.all_resources() and policy.kind == "identity":
            yield Hit(f"statement {st.label} may assume any role ({names(assume)} "
                      f"on \"*\")", statement=st.index, actions=tuple(sorted(assume)))
    passing = [(st, effective(policy, st, "pass_role")) for st in statements]
    launching = set().union(*(effective(policy, st, "compute_launch") for st in statements))
    for st, passed in passing:
        if passed and launching:
            actions = tuple(sorted(passed | launching))
            yield Hit(f"statement {st.label} can pass a role to new compute "
                      f"({names(actions)}), which hands over that role's permissions",
                      statement=st.index, actions=actions)


def credentials_exposure(policy: Policy) -> Iterator[Hit]:
    for st in allows(policy):
        creds = effective(policy, st, "credentials")
        if creds:
            broad = st.all_resources()
            yield Hit(f"statement {st.label} can create or read credentials "
                      f"({names(creds)})"
                      + (" on every resource" if broad else " on named resources"),
                      statement=st.index, actions=tuple(sorted(creds)),
                      severity=None if broad else "low")


def action_class(policy: Policy, cls: str, what: str) -> Iterator[Hit]:
    for st in allows(policy):
        found = effective(policy, st, cls)
        if found:
            where = "every resource" if st.all_resources() else ", ".join(st.resources or ())
            yield Hit(f"statement {st.label} allows {what}: {names(found)} "
                      f"on {where}", statement=st.index, actions=tuple(sorted(found)))


def missing_condition(policy: Policy) -> Iterator[Hit]:
    cat = policy.catalog
    for st in allows(policy):
        if st.has_guard_condition(cat):
            continue
        sensitive: set[str] = set()
        for cls in ("destructive", "tampering", "escalation_grant"):
            sensitive |= effective(policy, st, cls)
        if sensitive:
            yield Hit(f"statement {st.label} allows {names(sensitive)} without an "
                      "MFA, source-IP/VPC or similar condition", statement=st.index,
                      actions=tuple(sorted(sensitive)))
        elif policy.kind == "trust":
            outside = [p for p in st.principals or () if _is_account_principal(p)]
            if outside:
                yield Hit(f"statement {st.label} lets {', '.join(outside)} assume this role "
                          "without an ExternalId/MFA condition", statement=st.index,
                          actions=st.action_patterns(), principal=outside[0])


def _is_account_principal(principal: str) -> bool:
    if principal.isdigit() and len(principal) == 12:
        return True
    return principal.endswith(":root") and principal.startswith(("arn:aws", "qcs::cam::"))
