"""Separation of duties: who, across all their policies and both clouds, can destroy what.

A principals file (TOML) names resource tiers (``production`` and one per backup copy) and
principals (users, groups, roles in AWS or Tencent Cloud, or a person holding identities in
both) with the policy files attached to them. :func:`analyse` builds each principal's
effective permissions (an explicit unconditional deny wins over any allow), closes them over
privilege escalation, and reports which tiers each principal can destroy or unprotect.

Conservative choices, because a missed path is worse than a false alarm here:

* an Allow with a condition still counts (an MFA prompt does not stop the one person who
  holds the MFA device); a Deny with a condition does not count (it may not apply);
* a principal that can attach or put policies, create or set policy versions, add users to
  groups or rewrite trust policies is treated as holding every action of that cloud; if it
  can also detach, delete or rewrite policies, its explicit denies no longer protect;
* a principal that can assume a role, pass a role to new compute, or create access keys or
  console passwords for another principal holds that principal's permissions too;
* a principal that can run code on existing compute (``code_execution``) holds every role
  whose trust policy admits that compute's service principal (which function or instance
  carries which role is not in the policies).
"""

from __future__ import annotations

import bisect
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drkit.errors import InputError
from drkit.lint.catalog import catalog
from drkit.lint.checks import grant_scope, passable_launchers
from drkit.lint.compute import service_principals
from drkit.lint.model import Policy, Statement
from drkit.lint.patterns import has_wildcard, matches, resource_matches, resource_overlap
from drkit.numbers import overlong_integer

TIER_KINDS = ("production", "backup")
PRINCIPAL_TYPES = ("user", "group", "role", "person")
_POLICY_WRITE = {"aws": ("s3:PutBucketPolicy", "s3:DeleteBucketPolicy"),
                 "tencent": ("cos:PutBucketPolicy", "cos:DeleteBucketPolicy")}
_TAKEOVER = {"aws": ("iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:UpdateLoginProfile"),
             "tencent": ("cam:CreateAccessKey", "cam:CreateApiKey", "cam:UpdateUser")}


@dataclass
class Tier:
    name: str
    kind: str
    resources: tuple[str, ...]


@dataclass
class Principal:
    name: str
    type: str
    arn: str | None
    policies: list[Policy]
    groups: tuple[str, ...] = ()
    trust: list[Policy] = field(default_factory=list)
    line: int = 1


@dataclass
class PrincipalModel:
    """A parsed principals file, with its policies loaded."""

    file: str
    tiers: list[Tier]
    principals: list[Principal]
    resource_policies: list[Policy] = field(default_factory=list)

    def by_name(self, name: str) -> Principal | None:
        return next((p for p in self.principals if p.name == name), None)


@dataclass(frozen=True)
class Evidence:
    """One allow that makes an action on a resource possible, and how it was reached."""

    action: str
    resource: str
    file: str
    statement: int | str
    via: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "resource": self.resource, "file": self.file,
                "statement": self.statement, "via": list(self.via)}


def resource_cloud(resource: str) -> str | None:
    if resource.startswith("arn:"):
        return "aws"
    if resource.startswith("qcs:"):
        return "tencent"
    return None


def resource_service(resource: str) -> str | None:
    """The service part of an ARN or qcs resource (``s3``, ``cos``), unless wildcarded."""
    parts = resource.split(":", 5)
    if len(parts) < 6 or "*" in parts[2] or "?" in parts[2]:
        return None
    return parts[2].lower()


def _strings(value: Any, where: str) -> list[str]:
    """A TOML list of strings (absent: empty), or InputError naming ``where``."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{where}: must be a list of strings, got {_type_name(value)}")
    return value


def _type_name(value: Any) -> str:
    if isinstance(value, list):
        inner = sorted({type(v).__name__ for v in value if not isinstance(v, str)})
        return f"a list holding {', '.join(inner)}" if inner else "a list"
    return {dict: "a table", str: "a string", bool: "a boolean"}.get(type(value),
                                                                    type(value).__name__)


def _policy_file(base: Path, rel: str, where: str) -> Path:
    file = (base / rel) if not Path(rel).is_absolute() else Path(rel)
    try:
        found = file.is_file()
    except (OSError, ValueError):  # a NUL byte or an over-long name
        found = False
    if not found:
        raise InputError(f"{where}: policy file {rel!r} not found")
    return file


def load_principals(path: Path, load_policy: Callable[[Path], Policy],
                    display: Callable[[Path], str]) -> PrincipalModel:
    """Read a principals file; policy paths are relative to it. Bad entries raise InputError.

    Every value is type-checked before use: a principals file is input, and a wrong type
    (``resource_policies = 1``, ``policies = [[]]``) is an input error naming the key, not a
    crash of the whole run.
    """
    shown = display(path)
    try:
        text = path.read_text("utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{shown}: cannot read principals file: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{shown}: not valid TOML: {exc}") from exc
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise InputError(f"{shown}: not usable TOML: {overlong_integer(text)}") from exc
    raw_tiers = data.get("tiers") or {}
    if not isinstance(raw_tiers, dict):
        raise InputError(f"{shown}: tiers: must be a table of [tiers.<name>] tables")
    tiers = []
    for name, raw in raw_tiers.items():
        if not isinstance(raw, dict) or raw.get("kind") not in TIER_KINDS:
            raise InputError(f"{shown}: tiers.{name}: 'kind' must be one of "
                             f"{', '.join(TIER_KINDS)}")
        res = raw.get("resources")
        if not isinstance(res, list) or not res or not all(isinstance(r, str) for r in res):
            raise InputError(f"{shown}: tiers.{name}: 'resources' must be a non-empty list")
        tiers.append(Tier(name=name, kind=raw["kind"], resources=tuple(res)))
    if not tiers:
        raise InputError(f"{shown}: no [tiers.<name>] tables")
    raw_principals = data.get("principals") or []
    if not isinstance(raw_principals, list):
        raise InputError(f"{shown}: principals: must be a list of [[principals]] tables")
    principals = []
    base = path.parent
    for i, raw in enumerate(raw_principals):
        where = f"{shown}: principals[{i}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise InputError(f"{where}: missing 'name'")
        where = f"{where} ({raw['name']})"
        ptype = raw.get("type", "role")
        if not isinstance(ptype, str) or ptype not in PRINCIPAL_TYPES:
            raise InputError(f"{where}: 'type' must be one of {', '.join(PRINCIPAL_TYPES)}")
        arn = raw.get("arn")
        if arn is not None and not isinstance(arn, str):
            raise InputError(f"{where}: arn: must be a string, got {_type_name(arn)}")
        groups = _strings(raw.get("groups"), f"{where}: groups")
        policies = []
        for key in ("policies", "trust"):
            for rel in _strings(raw.get(key), f"{where}: {key}"):
                policies.append((key, load_policy(_policy_file(base, rel, where))))
        if not any(k == "policies" for k, _ in policies) and not groups:
            raise InputError(f"{where}: needs 'policies' or 'groups'")
        line = _line_of(text, raw["name"])
        principals.append(Principal(
            name=raw["name"], type=ptype, arn=arn,
            policies=[p for k, p in policies if k == "policies"],
            trust=[p for k, p in policies if k == "trust"],
            groups=tuple(groups), line=line))
    resource_policies = []
    for rel in _strings(data.get("resource_policies"), f"{shown}: resource_policies"):
        resource_policies.append(load_policy(_policy_file(base, rel,
                                                          f"{shown}: resource_policies")))
    model = PrincipalModel(file=shown, tiers=tiers, principals=principals,
                           resource_policies=resource_policies)
    for principal in principals:
        for group in principal.groups:
            if model.by_name(group) is None:
                raise InputError(f"{shown}: {principal.name}: unknown group {group!r}")
    return model


def add_exported(model: PrincipalModel, principals: list[Principal], source: str,
                 line: int = 1) -> None:
    """Add the principals read from an account export (``source``) to a model.

    Exported principals are named by their ARN (``arn:aws:iam::…:role/…``) or CAM name
    (``qcs::cam::uin/…:roleName/…``), so they cannot collide with each other; a name that
    is already in the model (the same export read twice, or a hand-written principal of
    that name) is an input error. Findings about them sit at ``line`` of the principals file.
    """
    known = {p.name for p in model.principals}
    for principal in principals:
        if principal.name in known:
            raise InputError(f"{source}: principal {principal.name} is already defined "
                             f"(another export or [[principals]] entry names it)")
        known.add(principal.name)
        principal.line = line
        model.principals.append(principal)


def _line_of(text: str, name: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.replace(" ", "")
        if stripped.startswith("name=") and (f'"{name}"' in line or f"'{name}'" in line):
            return number
    return 1


class Analysis:
    """Effective permissions of every principal in a model, closed over escalation."""

    def __init__(self, model: PrincipalModel) -> None:
        self.model = model
        self._statements: dict[str, list[tuple[Policy, Statement]]] = {}
        self._holds: dict[str, dict[str, tuple[str, ...]]] = {}
        self._class_cache: dict[tuple[str, str, str, str], str | None] = {}
        self._anywhere_cache: dict[tuple[str, str, str], list[str]] = {}
        # can_as per (principal, action, resource): the same question recurs for every
        # principal holding that one (id(): hand-written principals may share a name).
        self._can_as_cache: dict[tuple[int, str, str], Evidence | None] = {}
        self._out_edges: dict[int, list[tuple[Principal, str]]] = {}
        self._index: _TargetIndex | None = None
        self._policy_lists: dict[int, list[Policy]] = {}
        self._capable_cache: dict[tuple[str, str], dict[str, Evidence]] = {}
        self._may_cache: dict[tuple[int, str], bool] = {}
        self._unblocked_cache: dict[tuple[int, str, str], bool] = {}
        self._hold_orders: dict[str, dict[str, int]] = {}
        self._covering_cache: dict[tuple[int, str], tuple[tuple[Statement, ...],
                                                          tuple[Statement, ...]]] = {}
        self._named: dict[str, Principal] = {}
        for principal in model.principals:
            self._named.setdefault(principal.name, principal)

    def by_name(self, name: str) -> Principal | None:
        """:meth:`PrincipalModel.by_name` through a dict (the first principal of a name)."""
        return self._named.get(name)

    def statements(self, principal: Principal) -> list[tuple[Policy, Statement]]:
        """Identity statements of a principal and of the groups it belongs to."""
        cached = self._statements.get(principal.name)
        if cached is None:
            cached = []
            seen: set[str] = set()
            todo = [principal]
            while todo:
                current = todo.pop()
                if current.name in seen:
                    continue
                seen.add(current.name)
                for policy in current.policies:
                    cached.extend((policy, st) for st in policy.statements)
                todo.extend(g for g in (self.by_name(n) for n in current.groups) if g)
            self._statements[principal.name] = cached
        return cached

    def _policies(self, principal: Principal) -> list[Policy]:
        """The distinct policies of :meth:`statements`, in the order they first appear."""
        key = id(principal)
        found = self._policy_lists.get(key)
        if found is None:
            seen: set[int] = set()
            found = []
            for policy, _ in self.statements(principal):
                if id(policy) not in seen:
                    seen.add(id(policy))
                    found.append(policy)
            self._policy_lists[key] = found
        return found

    def _covering(self, policy: Policy, action: str
                  ) -> tuple[tuple[Statement, ...], tuple[Statement, ...]]:
        """The Allow statements of ``policy`` covering ``action``, and its unconditional
        Deny statements covering it, in document order (once per policy and action: a
        managed policy is shared by every principal it is attached to)."""
        key = (id(policy), action)
        found = self._covering_cache.get(key)
        if found is None:
            covering = [st for st in policy.statements if st.covers_action(action)]
            found = (tuple(st for st in covering if st.is_allow),
                     tuple(st for st in covering if st.is_deny and not st.condition))
            self._covering_cache[key] = found
        return found

    def _direct_allow(self, principal: Principal, action: str, resource: str,
                      cloud: str) -> tuple[Policy, Statement] | None:
        grant = action in catalog(cloud).actions("escalation_grant")
        for policy in self._policies(principal):
            if policy.cloud != cloud or policy.kind == "trust":
                continue
            for st in self._covering(policy, action)[0]:
                # Attaching only policies that grant nothing (AWSDenyAll, by iam:PolicyARN)
                # escalates nothing.
                if grant and grant_scope(st, action)[0] == "harmless":
                    continue
                if _reaches(st, resource):
                    return policy, st
        return None

    def _denied(self, principal: Principal, action: str, resource: str, cloud: str) -> bool:
        for policy in self._policies(principal):
            if policy.cloud != cloud:
                continue
            if any(_subsumes(st, resource) for st in self._covering(policy, action)[1]):
                return True
        return False

    def _allowed_anywhere(self, principal: Principal, cls: str, cloud: str) -> list[str]:
        """Every action of class ``cls`` that ``principal`` itself may do somewhere."""
        key = (principal.name, cls, cloud)
        found = self._anywhere_cache.get(key)
        if found is None:
            found = [a for a in sorted(catalog(cloud).actions(cls))
                     if self._direct_allow(principal, a, "*", cloud)
                     and not self._denied(principal, a, "*", cloud)]
            self._anywhere_cache[key] = found
        return found

    def _passable(self, source: Principal, action: str, role: str, cloud: str,
                  launches: list[str]) -> list[str]:
        """Launches a role passed by ``source`` can go to, by ``iam:PassedToService`` of the
        statements allowing the pass (all launches when the pass comes another way)."""
        statements = [st for policy, st in self.statements(source)
                      if st.is_allow and policy.cloud == cloud and policy.kind != "trust"
                      and st.covers_action(action) and _reaches(st, role)]
        if not statements:
            return launches
        out: set[str] = set()
        for st in statements:
            out |= passable_launchers(st, frozenset(launches))
        return sorted(out)

    def _runs_code_as(self, source: Principal, target: Principal) -> str | None:
        """How ``source`` runs code on compute that carries ``target``'s role: a
        ``code_execution`` action, and a trust statement of ``target`` admitting the
        service principal of that compute."""
        for trust in target.trust:
            actions = self._allowed_anywhere(source, "code_execution", trust.cloud)
            if not actions:
                continue
            assume = catalog(trust.cloud).actions("assume_role")
            for st in trust.statements:
                if not (st.is_allow and st.principals
                        and any(st.covers_action(a) for a in assume)):
                    continue
                for action in actions:
                    for service in service_principals(action):
                        spellings = (service, service + ".cn")
                        if any(matches(p, s, True) for p in st.principals for s in spellings):
                            return (f"{action} runs code on compute that carries it: "
                                    f"{trust.file}#{st.label} trusts {service}")
        return None

    def _class_allowed(self, principal: Principal, cls: str, cloud: str,
                       resource: str = "*") -> str | None:
        key = (principal.name, cls, cloud, resource)
        if key in self._class_cache:
            return self._class_cache[key]
        found = None
        for action in sorted(catalog(cloud).actions(cls)):
            if (self._direct_allow(principal, action, resource, cloud)
                    and not self._denied(principal, action, resource, cloud)):
                found = action
                break
        self._class_cache[key] = found
        return found

    def escalates(self, principal: Principal, cloud: str) -> str | None:
        """The action by which ``principal`` can grant itself anything in ``cloud``."""
        return self._class_allowed(principal, "escalation_grant", cloud)

    def can_as(self, principal: Principal, action: str, resource: str) -> Evidence | None:
        """Whether ``principal`` itself (no role hopping) can do ``action`` on ``resource``.

        Identity policies (with escalation) or a resource policy naming the principal must
        allow it, and no unconditional Deny in a resource policy (bucket policy) may apply,
        unless the principal can rewrite that resource policy.
        """
        if not self._may(principal, action):
            return None
        key = (id(principal), action, resource)
        if key in self._can_as_cache:
            return self._can_as_cache[key]
        found = self._can_as(principal, action, resource)
        self._can_as_cache[key] = found
        return found

    def _may(self, principal: Principal, action: str) -> bool:
        """Whether ``principal`` could do ``action`` on some resource: an identity Allow
        covers it, it can grant itself anything, or a resource policy allows it to it.
        When not, :meth:`can_as` is None for every resource, without looking at one."""
        key = (id(principal), action)
        found = self._may_cache.get(key)
        if found is None:
            found = (any(policy.kind != "trust" and self._covering(policy, action)[0]
                         for policy in self._policies(principal))
                     or any(self.escalates(principal, c) for c in ("aws", "tencent"))
                     or any(st.is_allow and st.covers_action(action)
                            and _names_principal(st, principal, False)
                            for policy in self.model.resource_policies
                            for st in policy.statements))
            self._may_cache[key] = found
        return found

    def _can_as(self, principal: Principal, action: str, resource: str) -> Evidence | None:
        found = self._identity_can(principal, action, resource)
        if found is None:
            found = self._resource_allow(principal, action, resource)
        if found is None:
            return None
        for policy, st in self._resource_statements(principal, action, resource, "Deny"):
            if not st.condition and not self._can_rewrite(principal, policy, st):
                return None
        return found

    def _resource_statements(self, principal: Principal, action: str, resource: str,
                             effect: str) -> Iterator[tuple[Policy, Statement]]:
        cloud = resource_cloud(resource)
        for policy in self.model.resource_policies:
            if cloud and policy.cloud != cloud:
                continue
            for st in policy.statements:
                if (st.effect == effect and st.covers_action(action)
                        and (_subsumes(st, resource) if effect == "Deny"
                             else _reaches(st, resource))
                        and _names_principal(st, principal, effect == "Deny")):
                    yield policy, st

    def _resource_allow(self, principal: Principal, action: str,
                        resource: str) -> Evidence | None:
        for policy, st in self._resource_statements(principal, action, resource, "Allow"):
            return Evidence(action, resource, policy.file, st.ref)
        return None

    def _can_rewrite(self, principal: Principal, policy: Policy, deny: Statement) -> bool:
        """Whether ``principal`` can replace or delete the resource policy holding ``deny``."""
        for action in _POLICY_WRITE[policy.cloud]:
            for target in deny.resources or ("*",):
                if self._identity_can(principal, action, target) is None:
                    continue
                blocked = any(
                    st.is_deny and not st.condition and st.covers_action(action)
                    and _names_principal(st, principal, True)
                    for st in policy.statements)
                if not blocked:
                    return True
        return False

    def _identity_can(self, principal: Principal, action: str, resource: str
                      ) -> Evidence | None:
        cloud = resource_cloud(resource)
        clouds = (cloud,) if cloud else ("aws", "tencent")
        for c in clouds:
            hit = self._direct_allow(principal, action, resource, c)
            escalated = None if hit else self.escalates(principal, c)
            if hit is None and escalated is None:
                continue
            if (self._denied(principal, action, resource, c)
                    and self._class_allowed(principal, "escalation_remove_deny", c) is None):
                continue
            if hit is not None:
                policy, st = hit
                return Evidence(action, resource, policy.file, st.ref)
            return Evidence(action, resource, principal.name,
                            f"escalation via {escalated}", (f"{principal.name}+{escalated}",))
        return None

    def _edge(self, source: Principal, target: Principal) -> str | None:
        """How ``source`` can act as ``target``, or None."""
        if target is source:
            return None
        if target.arn is None:
            return self._runs_code_as(source, target)
        cloud = resource_cloud(target.arn) or "aws"
        cat = catalog(cloud)
        for action in sorted(cat.actions("assume_role")):
            if self._able(source, action, target.arn):
                return f"{action} on {target.arn}"
        if source.arn:
            for trust in target.trust:
                for st in trust.statements:
                    if st.is_allow and any(matches(p, source.arn) for p in st.principals or ()):
                        return f"trusted by {trust.file}#{st.label}"
        launches = self._allowed_anywhere(source, "compute_launch", cloud)
        for action in sorted(cat.actions("pass_role")) if launches else ():
            if self._able(source, action, target.arn):
                passable = self._passable(source, action, target.arn, cloud, launches)
                if passable:
                    return f"{action} on {target.arn} + {passable[0]}"
        for action in _TAKEOVER[cloud]:
            if self._able(source, action, target.arn):
                return f"{action} on {target.arn}"
        ran = self._runs_code_as(source, target)
        if ran:
            return ran
        escalated = self.escalates(source, cloud)
        if escalated:
            return f"{escalated} (can rewrite {target.name}'s trust or permissions)"
        return None

    def _able(self, principal: Principal, action: str, resource: str) -> bool:
        """``can_as(...) is not None``, answered per action rather than per resource when
        ``principal`` can grant itself anything in the resource's cloud and nothing can
        deny it the action (no unconditional deny it cannot remove, no resource policy
        Deny naming it): then it can do the action on every resource of that cloud."""
        cloud = resource_cloud(resource)
        if cloud is not None and self._unblocked(principal, action, cloud):
            return True
        return self.can_as(principal, action, resource) is not None

    def _unblocked(self, principal: Principal, action: str, cloud: str) -> bool:
        key = (id(principal), action, cloud)
        found = self._unblocked_cache.get(key)
        if found is None:
            found = (self.escalates(principal, cloud) is not None
                     and (not any(self._covering(policy, action)[1]
                                  for policy in self._policies(principal)
                                  if policy.cloud == cloud)
                          or self._class_allowed(principal, "escalation_remove_deny",
                                                 cloud) is not None)
                     and not any(st.is_deny and not st.condition and st.covers_action(action)
                                 and _names_principal(st, principal, True)
                                 for policy in self.model.resource_policies
                                 if policy.cloud == cloud for st in policy.statements))
            self._unblocked_cache[key] = found
        return found

    def holds(self, principal: Principal) -> dict[str, tuple[str, ...]]:
        """Principals whose permissions ``principal`` holds, each with the path to it."""
        cached = self._holds.get(principal.name)
        if cached is not None:
            return cached
        paths: dict[str, tuple[str, ...]] = {principal.name: ()}
        frontier = [principal]
        while frontier:
            current = frontier.pop()
            for target, how in self.out_edges(current):
                if target.name in paths:
                    continue
                paths[target.name] = paths[current.name] + (f"{target.name} ({how})",)
                frontier.append(target)
        self._holds[principal.name] = paths
        return paths

    def out_edges(self, source: Principal) -> list[tuple[Principal, str]]:
        """Every principal ``source`` can act as directly, with how, in model order.

        Computed once per principal: :meth:`_edge` runs only on the candidates
        :meth:`_candidates` finds through the target index, not on every principal.
        """
        key = id(source)
        found = self._out_edges.get(key)
        if found is None:
            found = []
            principals = self.model.principals
            for position in self._candidates(source):
                target = principals[position]
                how = self._edge(source, target)
                if how:
                    found.append((target, how))
            self._out_edges[key] = found
        return found

    def _target_index(self) -> _TargetIndex:
        if self._index is None:
            self._index = _TargetIndex(self.model.principals)
        return self._index

    def _candidates(self, source: Principal) -> list[int]:
        """Positions of the principals ``source`` may have an edge to, in model order.

        A superset of the targets :meth:`_edge` accepts: if ``source`` can grant itself
        anything, or a resource policy may allow it an edge action, every principal;
        otherwise the principals whose ARN an identity statement of ``source`` allowing an
        assume, pass or takeover action reaches (by the statement's literal ARN prefix),
        whose trust policy names ``source``'s ARN, or whose trust admits the service of
        compute ``source`` runs code on; plus those whose ARN or trust principals hold a
        wildcard, and those without an ARN when ``source`` runs code anywhere.
        """
        index = self._target_index()
        everyone = range(len(self.model.principals))
        if any(self.escalates(source, cloud) for cloud in ("aws", "tencent")):
            return list(everyone)
        # Passing a role makes an edge only together with a compute launch (see _edge).
        launches = any(self._allowed_anywhere(source, "compute_launch", cloud)
                       for cloud in ("aws", "tencent"))
        actions = _edge_actions(with_pass=launches)
        for policy in self.model.resource_policies:
            for st in policy.statements:
                if (st.is_allow and any(st.covers_action(a) for a in actions)
                        and _names_principal(st, source, False)):
                    return list(everyone)
        found: set[int] = set(index.wild_arn)
        for policy, st in self.statements(source):
            if not st.is_allow or policy.kind == "trust":
                continue
            if not any(st.covers_action(a) for a in actions):
                continue
            if st.resources is None:
                return list(everyone)
            for pattern in st.resources:
                prefix = _literal_prefix(pattern)
                if not prefix:
                    return list(everyone)
                found.update(index.arn_prefixed(prefix))
        if source.arn:
            found.update(index.trusts.get(source.arn, ()))
            found.update(index.wild_trust)
        services: set[str] = set()
        for cloud in ("aws", "tencent"):
            for action in self._allowed_anywhere(source, "code_execution", cloud):
                for service in service_principals(action):
                    services.update((service.lower(), service.lower() + ".cn"))
        if services:
            found.update(index.wild_trust)
            for service in services:
                found.update(index.trusts_lower.get(service, ()))
        return sorted(found)

    def can(self, principal: Principal, action: str, resource: str) -> Evidence | None:
        """Whether ``principal`` or anyone it holds can do ``action`` on ``resource``: the
        first holder in :meth:`holds` order that can, with the path to it.

        The holders that can are looked up among the (usually few) principals able to
        do it themselves (:meth:`_capable`), not by asking every holder in turn.
        """
        capable = self._capable(action, resource)
        if not capable:
            return None
        own = capable.get(principal.name)
        if own is not None:
            return own  # the principal itself comes first in holds(), by an empty path
        paths = self.holds(principal)
        if len(capable) < len(paths):
            order = self._hold_order(principal)
            ranked = [(order[name], name) for name in capable if name in order]
            if not ranked:
                return None
            name = min(ranked)[1]
        else:
            found = next((n for n in paths if n in capable), None)
            if found is None:
                return None
            name = found
        hit = capable[name]
        return Evidence(hit.action, hit.resource, hit.file, hit.statement,
                        paths[name] + hit.via)

    def _capable(self, action: str, resource: str) -> dict[str, Evidence]:
        """Principals (by name) that can do ``action`` on ``resource`` themselves."""
        key = (action, resource)
        found = self._capable_cache.get(key)
        if found is None:
            found = {}
            for name, holder in self._named.items():
                hit = self.can_as(holder, action, resource)
                if hit is not None:
                    found[name] = hit
            self._capable_cache[key] = found
        return found

    def _hold_order(self, principal: Principal) -> dict[str, int]:
        order = self._hold_orders.get(principal.name)
        if order is None:
            order = {name: i for i, name in enumerate(self.holds(principal))}
            self._hold_orders[principal.name] = order
        return order

    def tier_reach(self, principal: Principal, tier: Tier) -> list[Evidence]:
        """Every catalogued destroy (and, for backups, unprotect) action on the tier.

        An action counts on a resource only if it can act on it: same service, and (where
        the action database knows the action's resource types) one of its resource types
        can match the resource's ARN, so ``rds:DeleteDBSnapshot`` does not count against a
        database instance. An action AWS lets be granted only on ``*`` cannot be scoped and
        counts on every resource of its service.
        """
        classes = ("destructive",) if tier.kind == "production" else ("destructive", "tampering")
        found: list[Evidence] = []
        for resource in tier.resources:
            cloud = resource_cloud(resource)
            service = resource_service(resource)
            for c in (cloud,) if cloud else ("aws", "tencent"):
                cat = catalog(c)
                db = cat.database
                for cls in classes:
                    for action in sorted(cat.actions(cls)):
                        if service and action.split(":", 1)[0].lower() != service:
                            continue  # an action of one service never acts on another's
                        if db is not None and not db.acts_on(action, resource):
                            continue
                        hit = self.can(principal, action, resource)
                        if hit is not None:
                            found.append(hit)
        return found


def _edge_actions(with_pass: bool = True) -> tuple[str, ...]:
    """Every action by which one principal can act as another: assume, take over and,
    ``with_pass``, pass a role."""
    out: set[str] = set()
    for cloud in ("aws", "tencent"):
        cat = catalog(cloud)
        out |= cat.actions("assume_role")
        if with_pass:
            out |= cat.actions("pass_role")
        out.update(_TAKEOVER[cloud])
    return tuple(sorted(out))


def _literal_prefix(pattern: str) -> str:
    """The text of ``pattern`` before its first wildcard (all of it if none)."""
    cut = min((i for i in (pattern.find("*"), pattern.find("?")) if i >= 0),
              default=len(pattern))
    return pattern[:cut]


class _TargetIndex:
    """The principals of a model indexed as targets of edges (see ``Analysis._candidates``).

    A policy resource pattern can reach a literal ARN only if the ARN starts with the
    pattern's literal prefix (segment by segment the literal parts must be equal), so ARNs
    are kept sorted and a prefix is a range of them. Trust statements are indexed by the
    literal principal values they name (exactly, and lower-cased for service principals);
    ARNs and trust principals holding a wildcard are candidates for every source.
    """

    def __init__(self, principals: list[Principal]) -> None:
        self.arns: list[tuple[str, int]] = []
        self.wild_arn: list[int] = []
        self.trusts: dict[str, set[int]] = {}
        self.trusts_lower: dict[str, set[int]] = {}
        self.wild_trust: list[int] = []
        for position, principal in enumerate(principals):
            if principal.arn is None:
                pass
            elif has_wildcard(principal.arn):
                self.wild_arn.append(position)
            else:
                self.arns.append((principal.arn, position))
            wild = False
            for trust in principal.trust:
                for st in trust.statements:
                    if not st.is_allow:
                        continue
                    for value in st.principals or ():
                        if has_wildcard(value):
                            wild = True
                        self.trusts.setdefault(value, set()).add(position)
                        self.trusts_lower.setdefault(value.lower(), set()).add(position)
            if wild:
                self.wild_trust.append(position)
        self.arns.sort()
        self._keys = [arn for arn, _ in self.arns]

    def arn_prefixed(self, prefix: str) -> Iterator[int]:
        """Positions of the principals whose (literal) ARN starts with ``prefix``."""
        for i in range(bisect.bisect_left(self._keys, prefix), len(self.arns)):
            arn, position = self.arns[i]
            if not arn.startswith(prefix):
                break
            yield position


def _names_principal(st: Statement, principal: Principal, deny: bool) -> bool:
    """Whether a resource-policy statement applies to ``principal``.

    ``*`` and ``qcs::cam::anyone`` name everyone. For a Deny, an account root principal
    names every identity of that account too, and NotPrincipal names everyone not listed.
    """
    arn = principal.arn or ""
    if st.not_principals is not None:
        return deny and not any(arn and matches(p, arn) for p in st.not_principals)
    for value in st.principals or ():
        if value in ("*", "qcs::cam::anyone"):
            return True
        if arn and matches(value, arn):
            return True
        if deny and arn and value.endswith(":root") and _same_account(value, arn):
            return True
    return False


def _same_account(root: str, arn: str) -> bool:
    if root.startswith("arn:"):
        return root.split(":")[4:5] == arn.split(":")[4:5]
    # qcs::cam::uin/<owner>:root names every identity of that owner uin.
    return arn.startswith(root[: -len("root")])


def _reaches(st: Statement, resource: str) -> bool:
    if st.resources is not None:
        if not has_wildcard(resource):
            # Overlapping a literal name is matching it, at a fraction of the cost (a
            # principal's ARN is literal, and every target ARN is a new pair to compare).
            return any(resource_matches(p, resource) for p in st.resources)
        return any(resource_overlap(p, resource) for p in st.resources)
    if st.not_resources is not None:
        return not any(resource_matches(p, resource) for p in st.not_resources)
    return False


def _subsumes(st: Statement, resource: str) -> bool:
    if st.resources is not None:
        return any(resource_matches(p, resource) for p in st.resources)
    if st.not_resources is not None:
        return not any(resource_overlap(p, resource) for p in st.not_resources)
    return False


@dataclass
class DutyViolation:
    principal: Principal
    severity: str
    production: list[str]
    backups: list[str]
    evidence: list[tuple[str, Evidence]]
    all_backups: int


def analyse(model: PrincipalModel) -> Iterator[DutyViolation]:
    """Principals that can destroy production and every backup tier, or two or more tiers."""
    analysis = Analysis(model)
    backups = [t for t in model.tiers if t.kind == "backup"]
    for principal in model.principals:
        reached: dict[str, list[Evidence]] = {}
        for tier in model.tiers:
            hits = analysis.tier_reach(principal, tier)
            if hits:
                reached[tier.name] = hits
        prod = [t.name for t in model.tiers if t.kind == "production" and t.name in reached]
        backs = [t.name for t in backups if t.name in reached]
        if prod and backups and len(backs) == len(backups):
            severity = "critical"
        elif len(backs) >= 2:
            severity = "high"
        else:
            continue
        evidence = [(tier, ev) for tier in prod + backs for ev in reached[tier]]
        yield DutyViolation(principal, severity, prod, backs, evidence, len(backups))
