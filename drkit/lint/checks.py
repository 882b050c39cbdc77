"""Checks shared by the rule modules (one AWS and one CAM module per category call these).

Every check looks at Allow statements only; a Deny with the same reach and no condition
takes an action out of an Allow in the same document (explicit deny wins).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from drkit.lint.findings import Hit
from drkit.lint.model import Policy, Statement
from drkit.lint.patterns import has_wildcard, resource_matches

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

    ``everywhere``: actions denied on every resource. ``literal``: per literal resource,
    the deny statements naming it (an allow's literal resources can only be covered by
    those). ``wild``: deny statements with wildcard resources, checked one by one.
    """

    everywhere: frozenset[str]
    literal: dict[str, list[tuple[Statement, frozenset[str]]]]
    wild: list[tuple[Statement, frozenset[str]]]


def _deny_index(policy: Policy, action_class: str) -> _DenyIndex:
    key = f"deny-index:{action_class}"
    index = policy.memo.get(key)
    if index is None:
        cat = policy.catalog
        everywhere: set[str] = set()
        literal: dict[str, list[tuple[Statement, frozenset[str]]]] = {}
        wild: list[tuple[Statement, frozenset[str]]] = []
        for deny in policy.statements:
            if not deny.is_deny or deny.condition or deny.not_resources is not None:
                continue
            denied = deny.covers(cat, action_class)
            if not denied:
                continue
            if deny.resources is None or "*" in deny.resources:
                everywhere |= denied
            elif any(has_wildcard(r) for r in deny.resources):
                wild.append((deny, denied))
            else:
                for resource in set(deny.resources):
                    literal.setdefault(resource, []).append((deny, denied))
        index = _DenyIndex(frozenset(everywhere), literal, wild)
        policy.memo[key] = index
    return index


def effective(policy: Policy, statement: Statement, action_class: str) -> frozenset[str]:
    """Known actions of ``action_class`` that ``statement`` allows after this document's denies."""
    allowed = statement.covers(policy.catalog, action_class)
    if not allowed:
        return allowed
    index = _deny_index(policy, action_class)
    allowed = allowed - index.everywhere
    if not allowed or statement.resources is None:
        return allowed
    candidates = list(index.wild)
    if statement.resources and not has_wildcard(statement.resources[0]):
        # A literal-resource deny can only cover this statement if it names its first
        # resource (a literal deny matches only that exact text).
        candidates += index.literal.get(statement.resources[0], [])
    for deny, denied in candidates:
        if _deny_subsumes(deny, statement):
            allowed = allowed - denied
            if not allowed:
                break
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
            yield Hit(f"statement {st.label} allows write actions on every resource (\"*\")",
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
