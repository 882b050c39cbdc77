"""Reading a statement's Condition block for what it lets through, not only its key names.

An IAM or CAM condition is a conjunction of clauses ``operator: {key: values}``; a clause
holds when the request's value of ``key`` satisfies the operator for any of ``values``.
The linter asks three questions of it, each answered conservatively (a clause that cannot
be read never makes anything safer):

* :func:`allow_guard` — does every request an **Allow** lets through carry a guard
  property (MFA, a listed source IP or VPC, the organisation, an external ID...)?
  ``Bool aws:MultiFactorAuthPresent false``, ``BoolIfExists ... true`` (a request signed
  with long-term keys has no such key and passes), ``Null`` checks and negated operators
  are not guards.
* :func:`deny_guard` — does a **Deny** apply to every request that lacks a guard property,
  so that the Allows beside it only work with that guard? The standard "deny without MFA"
  statement (``BoolIfExists aws:MultiFactorAuthPresent false``), ``Null
  aws:MultiFactorAuthAge true``, ``NotIpAddress aws:SourceIp``, ``StringNotEquals
  aws:PrincipalOrgID`` are. Every clause of the Deny must be such a negation, since the
  Deny applies only when all its clauses hold.
* :func:`admits` / :func:`bounded_values` — which values of a scoping key (such as
  ``iam:PassedToService`` or ``iam:PolicyARN``) an Allow admits.

Operators are read in both spellings: AWS (``StringEquals``, ``ForAnyValue:StringLike``,
``BoolIfExists``...) and CAM (``string_equal``, ``for_any_value:string_like``,
``bool_equal_if_exist``...). Semantics follow AWS's documentation of condition operators:
a key absent from the request makes a clause false, except for negated operators
(``StringNotEquals``, ``NotIpAddress``, ``ArnNotLike``...), ``...IfExists`` and ``Null``,
for which an absent key makes it true; ``ForAllValues:`` is true for an absent key.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from drkit.lint.patterns import has_wildcard, matches, overlap

# Canonical operator families (AWS names, lower case).
_STRING_POSITIVE = {"stringequals", "stringequalsignorecase", "stringlike",
                    "arnequals", "arnlike"}
_STRING_NEGATIVE = {"stringnotequals", "stringnotequalsignorecase", "stringnotlike",
                    "arnnotequals", "arnnotlike"}
_NUMERIC = {"numericequals", "numericnotequals", "numericlessthan", "numericlessthanequals",
            "numericgreaterthan", "numericgreaterthanequals"}
_DATE = {f"date{n[7:]}" for n in _NUMERIC}
_OTHER = {"bool", "null", "ipaddress", "notipaddress", "binaryequals"}
NEGATED = _STRING_NEGATIVE | {"numericnotequals", "datenotequals", "notipaddress"}
KNOWN = _STRING_POSITIVE | _STRING_NEGATIVE | _NUMERIC | _DATE | _OTHER

# CAM spells operators in snake case; these are the ones whose AWS name is not simply
# the snake-case words joined (``string_equal`` -> ``stringequals``).
_CAM_NAMES = {"ip_equal": "ipaddress", "ip_not_equal": "notipaddress", "bool_equal": "bool",
              "null_equal": "null", "binary_equal": "binaryequals"}

#: How drkit reads the keys whose meaning it relies on (lower case). Keys of the
#: catalogue's ``guard_condition_keys`` not listed here are identity or network strings
#: (organisation, account, VPC, ARN, external ID, tags): a guard when matched positively.
KEY_KINDS = {
    "aws:multifactorauthpresent": "mfa", "qcs:mfa": "mfa", "cam:mfa": "mfa", "mfa": "mfa",
    "aws:multifactorauthage": "mfa-age",
    "aws:sourceip": "ip", "qcs:ip": "ip",
    "aws:viaawsservice": "via-service",
}
_ANY_NETWORK = ("0.0.0.0/0", "::/0")


@dataclass(frozen=True)
class Clause:
    """One ``operator: {key: values}`` entry, normalised."""

    operator: str  # as written, for messages
    family: str  # canonical family ("stringequals", "bool", ...); "" if not understood
    key: str  # lower case
    values: tuple[str, ...]  # "true"/"false" for booleans, numbers as text
    if_exists: bool
    qualifier: str  # "", "forallvalues" or "foranyvalue"

    @property
    def known(self) -> bool:
        return bool(self.family)

    def describe(self) -> str:
        shown = ", ".join(self.values[:3]) + (" ..." if len(self.values) > 3 else "")
        return f"{self.operator} {self.key} {shown}"


@dataclass(frozen=True)
class Conditions:
    """A statement's condition block as clauses; all must hold (logical AND)."""

    clauses: tuple[Clause, ...]

    def __bool__(self) -> bool:
        return bool(self.clauses)

    def on(self, key: str) -> tuple[Clause, ...]:
        low = key.lower()
        return tuple(c for c in self.clauses if c.key == low)


NONE = Conditions(())


@lru_cache(maxsize=4096)
def normalise_operator(name: str) -> tuple[str, bool, str]:
    """``(family, if_exists, qualifier)`` for an operator name in AWS or CAM spelling.

    An unknown operator gives family ``""``.
    """
    low = name.strip().lower()
    qualifier = ""
    for prefix, qual in (("forallvalues:", "forallvalues"), ("foranyvalue:", "foranyvalue"),
                         ("for_all_value:", "forallvalues"), ("for_any_value:", "foranyvalue")):
        if low.startswith(prefix):
            low, qualifier = low[len(prefix):], qual
            break
    if_exists = False
    for suffix in ("ifexists", "_if_exist", "_if_exists"):
        if low.endswith(suffix):
            low, if_exists = low[: -len(suffix)], True
            break
    if "_" in low:
        low = _CAM_NAMES.get(low) or _cam_family(low)
    return (low if low in KNOWN else "", if_exists, qualifier)


def _cam_family(snake: str) -> str:
    # string_not_equal_ignore_case -> stringnotequalsignorecase; numeric_less_than_equal ->
    # numericlessthanequals; date_greater_than -> dategreaterthan.
    words = snake.split("_")
    if "equal" in words:
        words[words.index("equal")] = "equals"
    return "".join(words)


def _value_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return None


def parse_conditions(block: Any) -> Conditions:
    """Clauses of a Condition object. Anything malformed inside it becomes a clause with an
    unknown family (it then guards nothing and, in a Deny, makes the Deny not count)."""
    if not isinstance(block, dict) or not block:
        return NONE
    clauses: list[Clause] = []
    for operator, inner in block.items():
        family, if_exists, qualifier = normalise_operator(str(operator))
        if not isinstance(inner, dict) or not inner:
            clauses.append(Clause(str(operator), "", "", (), if_exists, qualifier))
            continue
        for key, raw in inner.items():
            items = raw if isinstance(raw, list) else [raw]
            values = tuple(v for v in (_value_text(x) for x in items) if v is not None)
            ok = family and items and len(values) == len(items)
            if family in ("bool", "null"):
                values = tuple(v.lower() for v in values)
                ok = ok and all(v in ("true", "false") for v in values)
            clauses.append(Clause(str(operator), family if ok else "", str(key).lower(),
                                  values, if_exists, qualifier))
    return Conditions(tuple(clauses))


# ---------------------------------------------------------------------------- guards


def _string_guard(clause: Clause) -> bool:
    """A positive string/ARN match on an identity or network key, not ``*`` alone."""
    return (clause.family in _STRING_POSITIVE and not clause.if_exists
            and clause.qualifier != "forallvalues"
            and not any(v.strip("*") == "" for v in clause.values))


def _guard_clause(clause: Clause, kind: str) -> bool:
    """Whether this clause being true proves the request carries a guard property."""
    if not clause.known or clause.qualifier == "forallvalues":
        return False
    if kind == "mfa":
        return clause.family == "bool" and not clause.if_exists and clause.values == (
            "true",) * len(clause.values)
    if kind == "mfa-age":
        return clause.family in ("numericlessthan", "numericlessthanequals") and (
            not clause.if_exists)
    if kind == "ip":
        return clause.family == "ipaddress" and not clause.if_exists and _narrow_networks(
            clause.values)
    if kind == "via-service":
        return clause.family == "bool" and not clause.if_exists and clause.values == (
            "true",) * len(clause.values)
    return _string_guard(clause)


def _negated_guard_clause(clause: Clause, kind: str) -> bool:
    """Whether this clause is true for every request that lacks the guard property.

    A Deny whose clauses are all such negations denies every unguarded request.
    """
    if not clause.known:
        return False
    if kind == "mfa":
        # Without IfExists a request signed with long-term keys (no MFA key at all)
        # escapes ``Bool ... false``; ``Null ... true`` catches only those requests.
        return clause.family == "bool" and clause.if_exists and "false" in clause.values
    if kind == "mfa-age":
        if clause.family == "null":
            return "true" in clause.values
        return clause.family in ("numericgreaterthan", "numericgreaterthanequals") and (
            clause.if_exists)
    if kind == "ip":
        # Negated operators are true for an absent key, so NotIpAddress denies requests
        # from anywhere outside the listed networks.
        return clause.family == "notipaddress" and _narrow_networks(clause.values)
    if kind == "via-service":
        return clause.family == "bool" and clause.if_exists and "false" in clause.values
    return (clause.family in _STRING_NEGATIVE and clause.qualifier != "foranyvalue"
            and not any(v.strip("*") == "" for v in clause.values))


def _narrow_networks(values: Iterable[str]) -> bool:
    """IP ranges that are all parseable and none of which is the whole Internet."""
    seen = False
    for value in values:
        try:
            network = ipaddress.ip_network(value.strip(), strict=False)
        except ValueError:
            return False
        if network.prefixlen == 0 or value.strip() in _ANY_NETWORK:
            return False
        seen = True
    return seen


def key_kind(key: str, is_guard_key: Any) -> str | None:
    """The guard kind of a condition key, or None if it is no guard key."""
    kind = KEY_KINDS.get(key.lower())
    if kind is not None:
        return kind
    return "identity" if is_guard_key(key) else None


def allow_guard(conditions: Conditions, is_guard_key: Any) -> Clause | None:
    """The clause that makes every request an Allow lets through carry a guard, or None.

    ``is_guard_key`` is the catalogue's ``Catalog.is_guard_key``.
    """
    for clause in conditions.clauses:
        kind = key_kind(clause.key, is_guard_key)
        if kind is not None and _guard_clause(clause, kind):
            return clause
    return None


def deny_guard(conditions: Conditions, is_guard_key: Any) -> Clause | None:
    """For a Deny: a clause showing it denies every request without a guard, or None.

    Every clause must be a negated guard: the Deny applies only when all of them hold,
    so one clause on another key (a region, a tag) leaves unguarded requests through.
    """
    if not conditions.clauses:
        return None
    for clause in conditions.clauses:
        kind = key_kind(clause.key, is_guard_key)
        if kind is None or not _negated_guard_clause(clause, kind):
            return None
    return conditions.clauses[0]


# ------------------------------------------------------------------ scoping values


def _string_test(clause: Clause, value: str) -> bool | None:
    family = clause.family
    ignore = family.endswith("ignorecase")
    if family.startswith("arn"):
        # ArnEquals and ArnLike both take wildcards, matched per ARN segment.
        hit = any(_arn_match(p, value) for p in clause.values)
    elif family in ("stringlike", "stringnotlike"):
        hit = any(matches(p, value) for p in clause.values)
    elif family in ("stringequals", "stringnotequals", "stringequalsignorecase",
                    "stringnotequalsignorecase"):
        hit = any((p.lower() == value.lower()) if ignore else p == value
                  for p in clause.values)
    else:
        return None
    return (not hit) if family in _STRING_NEGATIVE else hit


def _arn_match(pattern: str, value: str) -> bool:
    parts_p, parts_v = pattern.split(":", 5), value.split(":", 5)
    if len(parts_p) != len(parts_v):
        return matches(pattern, value)
    return all(matches(p, v) for p, v in zip(parts_p, parts_v, strict=True))


def admits(conditions: Conditions, key: str, value: str) -> bool:
    """Whether some request whose ``key`` equals ``value`` may satisfy the condition.

    Clauses on other keys, and clauses that cannot be evaluated, are assumed satisfiable.
    """
    for clause in conditions.on(key):
        if not clause.known or clause.qualifier == "forallvalues":
            continue
        result = _string_test(clause, value)
        if result is False:
            return False
    return True


#: Pairs of values compared at most when intersecting or filtering bounds. Beyond it the
#: bound is left wider (never narrower), so a hostile file with huge value lists costs
#: linear time and loses nothing a real policy needs.
MAX_PAIRS = 10_000


def _intersect(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    """Patterns for the values both pattern lists admit: of two overlapping patterns the
    literal one when the other matches it, else (conservatively) the first."""
    if len(a) * len(b) > MAX_PAIRS:
        return a
    out: list[str] = []
    for p in a:
        for q in b:
            if not overlap(p, q):
                continue
            if not has_wildcard(q) and matches(p, q):
                pick = q
            elif not has_wildcard(p) and matches(q, p):
                pick = p
            else:
                pick = p
            if pick not in out:
                out.append(pick)
    return tuple(out)


def bounded_values(conditions: Conditions, key: str) -> tuple[str, ...] | None:
    """The patterns a single-valued ``key`` is limited to by a positive string/ARN match,
    or None when nothing bounds it. ``IfExists`` still bounds a key the request carries."""
    bound: tuple[str, ...] | None = None
    for clause in conditions.on(key):
        if (clause.known and clause.family in _STRING_POSITIVE
                and clause.qualifier != "forallvalues"):
            patterns = tuple(clause.values)
            bound = patterns if bound is None else _intersect(bound, patterns)
    if bound is None:
        return None
    work = len(bound) * sum(len(c.values) for c in conditions.on(key))
    if work > MAX_PAIRS:
        return bound
    return tuple(p for p in bound if has_wildcard(p) or admits(conditions, key, p))


def admits_service(conditions: Conditions, key: str, service: str) -> bool:
    """:func:`admits` for a service principal, in its global or China spelling
    (``ec2.amazonaws.com`` / ``ec2.amazonaws.com.cn``)."""
    spellings = (service, service + ".cn") if service.endswith(".amazonaws.com") else (service,)
    return any(admits(conditions, key, s) for s in spellings)
