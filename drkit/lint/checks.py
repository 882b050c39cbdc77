"""Checks shared by the rule modules (one AWS and one CAM module per category call these).

Every check looks at Allow statements only; a Deny with the same reach and no condition
takes an action out of an Allow in the same document (explicit deny wins).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from drkit.lint.compute import service_principals
from drkit.lint.conditions import admits_service, bounded_values, deny_guard
from drkit.lint.findings import Hit
from drkit.lint.model import Policy, Statement
from drkit.lint.patterns import has_wildcard, resource_matches

_WILDCARD = re.compile(r"[*?]")
PUBLIC_PRINCIPALS = {"aws": ("*",), "tencent": ("*", "qcs::cam::anyone", "qcs::cam::anyone:anyone")}


def names(actions: frozenset[str] | set[str] | tuple[str, ...], limit: int = 6) -> str:
    """A readable, bounded list of action names for a message (the finding lists them all)."""
    ordered = sorted(actions)
    shown = ", ".join(ordered[:limit])
    return shown + (f" and {len(ordered) - limit} more" if len(ordered) > limit else "")


def _deny_subsumes(deny: Statement, allow: Statement, conditional: bool = False) -> bool:
    """Whether ``deny`` applies to every resource ``allow`` reaches (unconditionally, unless
    ``conditional``: then its condition is the caller's business)."""
    if deny.condition and not conditional:
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


def _deny_index(policy: Policy, action_class: str, guarding: bool = False) -> _DenyIndex:
    """The index of unconditional denies or, with ``guarding``, of the denies that deny
    every request lacking MFA, a listed network or the like (see ``conditions.deny_guard``)."""
    key = f"{'guard' if guarding else 'deny'}-index:{action_class}"
    index = policy.memo.get(key)
    if index is None:
        cat = policy.catalog
        everywhere: set[str] = set()
        merged: dict[tuple[str, ...], tuple[Statement, set[str]]] = {}
        for deny in policy.statements:
            if not deny.is_deny or deny.not_resources is not None:
                continue
            if guarding:
                if not deny.condition or deny_guard(deny.conditions, cat.is_guard_key) is None:
                    continue
            elif deny.condition:
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
    return _without_denied(statement, allowed, _deny_index(policy, action_class),
                           conditional=False)


def unguarded(policy: Policy, statement: Statement, action_class: str) -> frozenset[str]:
    """:func:`effective`, less the actions a guarding Deny of this document makes need MFA,
    a listed network or the like (the standard "deny unless MFA" statement)."""
    allowed = effective(policy, statement, action_class)
    if not allowed:
        return allowed
    return _without_denied(statement, allowed, _deny_index(policy, action_class, True),
                           conditional=True)


def _without_denied(statement: Statement, allowed: frozenset[str], index: _DenyIndex,
                    conditional: bool) -> frozenset[str]:
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
            if _deny_subsumes(deny, statement, conditional):
                allowed = allowed - denied
                if not allowed:
                    return allowed
    return allowed


def allows(policy: Policy) -> Iterator[Statement]:
    # Every rule walks the Allow statements: they are picked out once per document.
    found: tuple[Statement, ...] | None = policy.memo.get("allows")
    if found is None:
        found = policy.memo["allows"] = tuple(s for s in policy.statements if s.is_allow)
    return iter(found)


def syntax(policy: Policy) -> Iterator[Hit]:
    for problem in policy.problems:
        yield Hit(problem.message, statement=problem.statement, line=problem.line,
                  severity=problem.severity)


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
            # Write): the access level decides, not the verb. A literal name covers only
            # itself, so it is simply a write.
            behind = {p: w for p in writes if (w := cat.writes_behind_read_verb(p))}
            why = [f"{p} covers {names(w, 3)}" if has_wildcard(p) else f"{p} is a write to AWS"
                   for p, w in behind.items()][:3]
            # Only such patterns (AWS's own read-only policies hold them): a low finding,
            # so a medium threshold is not tripped by Get* minting an identity id.
            only_behind = st.not_actions is None and len(behind) == len(writes)
            yield Hit(f"statement {st.label} allows write actions on every resource (\"*\")"
                      + (f" ({'; '.join(why)})" if why else ""),
                      statement=st.index, actions=tuple(writes),
                      severity="low" if only_behind else None)


def not_action(policy: Policy) -> Iterator[Hit]:
    for st in allows(policy):
        # A statement with both Action and NotAction is reported once, by the syntax rule.
        if st.not_actions is not None and st.actions is None:
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
    guards = None
    for st in allows(policy):
        who = [p for p in st.principals or () if p in public]
        if not who or st.has_guard_condition(cat):
            continue
        if guards is None:
            guards = _public_guards(policy)
        # A guarding Deny of the same policy ("deny everyone outside these networks")
        # narrows the grant as the Allow's own condition would.
        covering = [d for d in guards if _deny_subsumes(d, st, conditional=True)]
        if st.actions is not None:
            open_ = tuple(p for p in st.actions
                          if not any(_denies_pattern(d, p) for d in covering))
        else:  # NotAction grants nearly everything: only a guard on "*" closes it
            open_ = () if any(_denies_pattern(d, "*") for d in covering) else \
                st.action_patterns()
        if not open_:
            continue
        yield Hit(f"statement {st.label} grants {', '.join(open_)} to "
                  f"anyone ({', '.join(who)}) with no narrowing condition",
                  statement=st.index, actions=open_, principal=who[0])


def _public_guards(policy: Policy) -> list[Statement]:
    """The policy's Denies that apply to everyone and deny every request lacking a guard
    (a listed network, VPC endpoint, organisation...; see ``conditions.deny_guard``)."""
    public = PUBLIC_PRINCIPALS[policy.cloud]
    cat = policy.catalog
    out = []
    for st in policy.statements:
        if not st.is_deny or not st.condition:
            continue
        if st.not_principals is not None:
            everyone = not any(p in public for p in st.not_principals)
        else:
            everyone = any(p in public for p in st.principals or ())
        if everyone and deny_guard(st.conditions, cat.is_guard_key) is not None:
            out.append(st)
    return out


def _denies_pattern(deny: Statement, pattern: str) -> bool:
    """Whether ``deny`` covers every action ``pattern`` (of an Allow) can match.

    A literal action is checked by matching; a wildcard pattern is covered only by ``*``
    or a deny pattern ``prefix*`` whose literal prefix starts it (``s3:*`` covers
    ``s3:Get*``) — anything subtler is left uncovered, so the finding stays.
    """
    if deny.actions is None:
        if deny.not_actions is None:
            return False
        return not has_wildcard(pattern) and deny.covers_action(pattern)
    if not has_wildcard(pattern):
        return deny.covers_action(pattern)
    low = pattern.lower()
    for d in deny.actions:
        head = d[:-1].lower()
        if d == "*" or (d.endswith("*") and not has_wildcard(head) and low.startswith(head)):
            return True
    return False


#: Attach actions whose ``iam:PolicyARN`` names the policy attached, and permission-boundary
#: actions whose ``iam:PermissionsBoundary`` names the boundary set.
_POLICY_KEYS = {"iam:attachuserpolicy": "iam:PolicyARN", "iam:attachgrouppolicy": "iam:PolicyARN",
                "iam:attachrolepolicy": "iam:PolicyARN",
                "iam:putuserpermissionsboundary": "iam:PermissionsBoundary",
                "iam:putrolepermissionsboundary": "iam:PermissionsBoundary"}
#: Managed policies that grant nothing: being able to attach only these escalates nothing.
HARMLESS_POLICIES = ("arn:aws:iam::aws:policy/AWSDenyAll",)
_POWERFUL_POLICY = re.compile(r"policy/(.*/)?(AdministratorAccess[^/]*|PowerUserAccess|"
                              r"IAMFullAccess)$", re.IGNORECASE)


def grant_scope(statement: Statement, action: str) -> tuple[str, tuple[str, ...]]:
    """How far an escalation-grant ``action`` in ``statement`` reaches, read from its
    condition: ``("any", ())``, ``("named", policies)`` when ``iam:PolicyARN`` (or
    ``iam:PermissionsBoundary``) limits it to named policies that are not administrator
    policies, or ``("harmless", policies)`` when those grant nothing (AWSDenyAll)."""
    key = _POLICY_KEYS.get(action.lower())
    if key is None or not statement.condition:
        return "any", ()
    bound = bounded_values(statement.conditions, key)
    if bound is None:
        return "any", ()
    if any(has_wildcard(p) or _POWERFUL_POLICY.search(p) for p in bound):
        return "any", ()
    if all(p in HARMLESS_POLICIES for p in bound):
        return "harmless", bound
    return "named", bound


def grants(statement: Statement, actions: frozenset[str]) -> frozenset[str]:
    """``actions`` (escalation grants) less those the condition limits to harmless policies."""
    return frozenset(a for a in actions if grant_scope(statement, a)[0] != "harmless")


def named_roles(statement: Statement) -> bool:
    """Whether every resource names particular roles: not ``*``, not NotResource, and a
    literal name (or name prefix) after the last ``/``, as in ``role/deploy-*``."""
    if not statement.resources:
        return False
    for resource in statement.resources:
        name = resource.rsplit("/", 1)[-1] if "/" in resource else ""
        if not name.strip("*?"):
            return False
    return True


def passable_launchers(statement: Statement, launching: frozenset[str]) -> frozenset[str]:
    """Compute launches that a role passed under ``statement`` can go to, by
    ``iam:PassedToService``; a launch whose service drkit does not know stays in."""
    if not statement.condition:
        return launching
    out = set()
    for action in launching:
        services = service_principals(action)
        if not services or any(admits_service(statement.conditions, "iam:PassedToService", s)
                               for s in services):
            out.add(action)
    return frozenset(out)


def privilege_escalation(policy: Policy) -> Iterator[Hit]:
    statements = list(allows(policy))
    for st in statements:
        grant = effective(policy, st, "escalation_grant")
        if grant:
            scoped: dict[str, list[str]] = {"any": [], "named": [], "harmless": []}
            bounds: set[str] = set()
            for action in grant:
                scope, bound = grant_scope(st, action)
                scoped[scope].append(action)
                if scope == "named":
                    bounds.update(bound)
            if scoped["any"]:
                found = frozenset(scoped["any"])
                yield Hit(f"statement {st.label} lets the holder grant itself any permission "
                          f"({names(found)})", statement=st.index,
                          actions=tuple(sorted(found)))
            if scoped["named"]:
                found = frozenset(scoped["named"])
                yield Hit(f"statement {st.label} lets the holder attach only the named "
                          f"policies {names(bounds, 3)} ({names(found)}): it gains what they "
                          "grant",
                          statement=st.index, actions=tuple(sorted(found)), severity="medium")
        assume = effective(policy, st, "assume_role")
        if assume and st.all_resources() and policy.kind == "identity":
            yield Hit(f"statement {st.label} may assume any role ({names(assume)} "
                      f"on \"*\")", statement=st.index, actions=tuple(sorted(assume)))
    passing = [(st, effective(policy, st, "pass_role")) for st in statements]
    launching = frozenset().union(*(effective(policy, st, "compute_launch")
                                    for st in statements))
    for st, passed in passing:
        if not passed or not launching:
            continue
        reachable = passable_launchers(st, launching)
        if not reachable:
            actions = tuple(sorted(passed))
            yield Hit(f"statement {st.label} can pass roles, but iam:PassedToService limits "
                      f"them to services that launch none of the compute this policy allows "
                      f"({names(launching)})", statement=st.index, actions=actions,
                      severity="low")
        elif named_roles(st):
            actions = tuple(sorted(passed | reachable))
            yield Hit(f"statement {st.label} can pass the named roles "
                      f"{', '.join(st.resources or ())} to new compute ({names(reachable)}), "
                      "which hands over those roles' permissions", statement=st.index,
                      actions=actions, severity="medium")
        else:
            actions = tuple(sorted(passed | reachable))
            yield Hit(f"statement {st.label} can pass any role to new compute "
                      f"({names(actions)}), which hands over that role's permissions",
                      statement=st.index, actions=actions)


def code_execution(policy: Policy) -> Iterator[Hit]:
    """Running code on existing compute: the code acts with the role that compute carries."""
    for st in allows(policy):
        found = effective(policy, st, "code_execution")
        if found:
            broad = st.all_resources()
            where = "every resource" if broad else ", ".join(st.resources or ())
            yield Hit(f"statement {st.label} can run code on existing compute "
                      f"({names(found)}) on {where}, acting with the roles that compute "
                      "carries", statement=st.index, actions=tuple(sorted(found)),
                      severity=None if broad else "medium")


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
        for cls in ("destructive", "tampering", "escalation_grant", "code_execution"):
            found = unguarded(policy, st, cls)
            sensitive |= grants(st, found) if cls == "escalation_grant" else found
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
