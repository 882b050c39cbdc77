"""Loads the rule modules under drkit/lint/rules/ and checks their metadata.

Like prowler, a rule whose ID differs from its module name is refused at load: the ID is
what suppressions and SARIF refer to, so it must not drift from the file that defines it.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import ModuleType

from drkit.errors import InternalError
from drkit.lint.catalog import CLOUDS
from drkit.lint.findings import CATEGORIES, NETWORK_CATEGORIES, SEVERITIES, Rule


class RuleDefinitionError(InternalError):
    """A lint rule module is malformed."""


def rule_from_module(module: ModuleType, module_name: str) -> Rule:
    """Validate one rule module's metadata and wrap it as a :class:`Rule`."""
    def need(attr: str) -> object:
        if not hasattr(module, attr):
            raise RuleDefinitionError(f"lint rule {module_name}: missing {attr}")
        return getattr(module, attr)

    rule_id = need("ID")
    if rule_id != module_name:
        raise RuleDefinitionError(f"lint rule {module_name}: ID {rule_id!r} does not equal "
                                  f"the module name")
    category, severity = need("CATEGORY"), need("SEVERITY")
    if category not in CATEGORIES + NETWORK_CATEGORIES:
        raise RuleDefinitionError(f"lint rule {module_name}: unknown category {category!r}")
    if severity not in SEVERITIES:
        raise RuleDefinitionError(f"lint rule {module_name}: unknown severity {severity!r}")
    title, remediation = need("TITLE"), need("REMEDIATION")
    if not (isinstance(title, str) and title and isinstance(remediation, str) and remediation):
        raise RuleDefinitionError(f"lint rule {module_name}: empty TITLE or REMEDIATION")
    clouds = need("CLOUDS")
    if not (isinstance(clouds, tuple) and clouds and all(c in CLOUDS for c in clouds)):
        raise RuleDefinitionError(f"lint rule {module_name}: CLOUDS must be a tuple of "
                                  f"{CLOUDS}")
    scope = getattr(module, "SCOPE", "policy")
    if scope not in ("policy", "principals", "network"):
        raise RuleDefinitionError(f"lint rule {module_name}: unknown SCOPE {scope!r}")
    check = need("check")
    if not callable(check):
        raise RuleDefinitionError(f"lint rule {module_name}: check is not callable")
    return Rule(id=module_name, category=str(category), severity=str(severity),
                title=title, remediation=remediation, clouds=clouds, scope=scope,
                check=check)


@cache
def load_rules() -> tuple[Rule, ...]:
    """Every rule in drkit.lint.rules, sorted by ID."""
    import drkit.lint.rules as package

    rules = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        rules.append(rule_from_module(module, info.name))
    return tuple(rules)
