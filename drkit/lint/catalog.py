"""The action catalogues (drkit/lint/data/*.toml), loaded once per process.

A :class:`Catalog` answers "which known actions of class X does this action pattern cover",
with the answers cached per pattern, so linting thousands of files does not repeat the work.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from drkit.lint.patterns import collapse_stars, has_wildcard, wildcard_match

CLOUDS = ("aws", "tencent")
ACTION_CLASSES = ("destructive", "tampering", "escalation_grant", "escalation_remove_deny",
                  "pass_role", "assume_role", "compute_launch", "credentials",
                  "code_execution")
_DATA_FILES = {"aws": "aws_actions.toml", "tencent": "cam_actions.toml"}


@dataclass
class Catalog:
    """Known actions of one cloud, by class, with case-insensitive wildcard expansion."""

    cloud: str
    classes: dict[str, tuple[str, ...]]
    read_verbs: tuple[str, ...]
    guard_condition_keys: tuple[str, ...]
    _lower_to_name: dict[str, str] = field(default_factory=dict)
    _cache: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    _pools: dict[tuple[str, str], tuple[tuple[str, str], ...]] = field(default_factory=dict)
    _services: dict[str, dict[str, tuple[tuple[str, str], ...]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for names in self.classes.values():
            for name in names:
                self._lower_to_name[name.lower()] = name
        self._class_sets = {k: frozenset(v) for k, v in self.classes.items()}

    def actions(self, action_class: str) -> frozenset[str]:
        return self._class_sets[action_class]

    def expand(self, pattern: str, action_class: str) -> frozenset[str]:
        """The known actions of ``action_class`` that ``pattern`` matches."""
        key = (pattern, action_class)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        known = self._class_sets[action_class]
        if not has_wildcard(pattern):
            name = self._lower_to_name.get(pattern.lower())
            result = frozenset([name]) if name in known else frozenset()
        else:
            lowered = collapse_stars(pattern.lower())
            service, colon, _ = lowered.partition(":")
            pool = (self._by_service(action_class).get(service, ())
                    if colon and not has_wildcard(service) else self._lowered(action_class))
            head = lowered[:-1]
            if lowered.endswith("*") and not has_wildcard(head):
                result = frozenset(a for a, low in pool if low.startswith(head))
            else:
                # The two-pointer matcher, not a regex: a hostile pattern with many stars
                # makes a backtracking regex take exponential time.
                result = frozenset(a for a, low in pool if wildcard_match(lowered, low))
        self._cache[key] = result
        return result

    def _lowered(self, action_class: str) -> tuple[tuple[str, str], ...]:
        key = ("", action_class)
        if key not in self._pools:
            self._pools[key] = tuple((a, a.lower()) for a in sorted(self.actions(action_class)))
        return self._pools[key]

    def _by_service(self, action_class: str) -> dict[str, tuple[tuple[str, str], ...]]:
        """The class's actions per lower-case service prefix (a pattern naming its service
        only needs to be matched against that service's actions)."""
        found = self._services.get(action_class)
        if found is None:
            grouped: dict[str, list[tuple[str, str]]] = {}
            for name, low in self._lowered(action_class):
                grouped.setdefault(low.partition(":")[0], []).append((name, low))
            found = {k: tuple(v) for k, v in grouped.items()}
            self._services[action_class] = found
        return found

    def is_write_pattern(self, pattern: str) -> bool:
        """Whether an action pattern may cover a write (anything that is not a pure read).

        ``*``, ``svc:*`` and ``svc:*Foo`` may cover writes; ``svc:Get*`` and ``svc:ListBuckets``
        do not.
        """
        if pattern == "*":
            return True
        verb = pattern.split(":", 1)[1] if ":" in pattern else pattern
        if not verb or verb[0] in "*?":
            return True
        lower = verb.lower()
        return not any(lower.startswith(v.lower()) for v in self.read_verbs)

    def is_guard_key(self, key: str) -> bool:
        lower = key.lower()
        for guard in self.guard_condition_keys:
            if guard.endswith("/*"):
                if lower.startswith(guard[:-1].lower()):
                    return True
            elif lower == guard.lower():
                return True
        return False


@cache
def catalog(cloud: str) -> Catalog:
    """The catalogue of ``cloud`` ("aws" or "tencent"), read from package data once."""
    text = resources.files("drkit.lint.data").joinpath(_DATA_FILES[cloud]).read_text("utf-8")
    data = tomllib.loads(text)
    classes = {name: tuple(data.get(name, ())) for name in ACTION_CLASSES}
    return Catalog(cloud=cloud, classes=classes, read_verbs=tuple(data["read_verbs"]),
                   guard_condition_keys=tuple(data["guard_condition_keys"]))
