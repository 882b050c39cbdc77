"""Runs the network rules over a :class:`NetworkModel` and builds a lint report that the
policy linter's JSON and SARIF renderers, suppressions and exit codes apply to unchanged."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from drkit.errors import InputError
from drkit.lint.engine import (
    InputProblem,
    LintReport,
    apply_suppressions,
    display_path,
    expired_findings,
)
from drkit.lint.findings import LINTER_ERROR, SEVERITIES, Finding, Rule
from drkit.lint.network.environments import EnvironmentMap, load_environments
from drkit.lint.network.model import NetworkModel
from drkit.lint.network.source import discover, read_files, read_response
from drkit.lint.registry import rule_from_module
from drkit.lint.suppressions import load_suppressions
from drkit.numbers import count

log = logging.getLogger(__name__)


@cache
def load_network_rules() -> tuple[Rule, ...]:
    """Every rule in drkit.lint.network.rules (SCOPE "network"), sorted by ID."""
    import drkit.lint.network.rules as package

    rules = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        rule = rule_from_module(importlib.import_module(f"{package.__name__}.{info.name}"),
                                info.name)
        if rule.scope != "network":
            raise InputError(f"network rule {info.name}: SCOPE must be 'network'")
        rules.append(rule)
    return tuple(rules)


@dataclass
class NetworkReport(LintReport):
    """A lint report over network resources (``policies`` stays 0)."""

    resources: dict[str, int] = field(default_factory=dict)
    environments_file: str | None = None
    unclassified_vpcs: list[str] = field(default_factory=list)
    unknown_tag_values: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        out.pop("policies", None)
        out.pop("principals_file", None)
        out.update({"resources": self.resources, "environments_file": self.environments_file,
                    "unclassified_vpcs": self.unclassified_vpcs,
                    "unknown_tag_values": self.unknown_tag_values})
        return out


def run_rules(model: NetworkModel, rules: Sequence[Rule]) -> list[Finding]:
    findings: list[Finding] = []
    for rule in rules:
        try:
            for hit in rule.check(model):
                findings.append(Finding(
                    rule=rule.id, category=rule.category, severity=hit.severity or rule.severity,
                    cloud=hit.cloud or "+".join(rule.clouds), file=hit.file or "",
                    statement=hit.statement, line=hit.line or 1, actions=list(hit.actions),
                    message=hit.message, principal=hit.principal, evidence=list(hit.evidence)))
        except Exception as exc:  # a crashing rule must never look like a clean network
            log.debug("network rule %s crashed:\n%s", rule.id, traceback.format_exc())
            findings.append(Finding(
                rule=LINTER_ERROR, category=LINTER_ERROR, severity="critical", cloud="",
                file=model.files[0] if model.files else "", statement=None, line=1,
                actions=[], message=f"rule {rule.id} crashed: {type(exc).__name__}: {exc}"))
    findings.sort(key=lambda f: (f.file, f.line, f.rule, str(f.statement)))
    return findings


def build_model(paths: Sequence[Path], *, environments_file: Path | None = None,
                live: Sequence[tuple[str, dict[str, Any]]] = ()) -> NetworkModel:
    """Read export files/folders and live responses into one model. The environments file
    is ``environments_file`` or the first ``environments.toml`` in a folder given."""
    files, found = discover(paths)
    env_path = environments_file or found
    environments = (load_environments(env_path, display_path(env_path)) if env_path
                    else EnvironmentMap())
    model = NetworkModel(environments=environments)
    read_files(files, model, display_path)
    for name, response in live:
        read_response(response, name, None, model)
    return model


def lint_network(paths: Sequence[Path], *, now: datetime, threshold: str = "low",
                 environments_file: Path | None = None, suppressions_file: Path | None = None,
                 live: Sequence[tuple[str, dict[str, Any]]] = (),
                 rules: Sequence[Rule] | None = None) -> NetworkReport:
    """Lint network exports (files and folders) and/or live responses.

    A file that cannot be read is listed in ``report.input_errors`` (the run exits 2 after
    the report); no readable response at all is an InputError.
    """
    if threshold not in SEVERITIES:
        raise InputError(f"unknown severity threshold {threshold!r}; "
                         f"use one of {', '.join(SEVERITIES)}")
    if not paths and not live:
        raise InputError("nothing to lint: give export folders or files, or --live")
    suppressions = (load_suppressions(suppressions_file, display_path(suppressions_file))
                    if suppressions_file else [])
    model = build_model(paths, environments_file=environments_file, live=live)
    problems = [InputProblem(i.file, i.message, i.line) for i in model.issues]
    if not model.files and not problems:
        raise InputError("no network responses found in "
                         + ", ".join(p.as_posix() for p in paths)
                         + " (describe-security-groups, describe-instances, ... as JSON)")
    rules = tuple(rules) if rules is not None else load_network_rules()
    findings = run_rules(model, rules)
    active, suppressed, expired = apply_suppressions(findings, suppressions, now)
    if expired and suppressions_file is not None:
        active.extend(expired_findings(expired, display_path(suppressions_file)))
    return NetworkReport(
        findings=active, suppressed=suppressed, expired=expired, files=len(model.files),
        policies=0, threshold=threshold, rules=rules, input_errors=problems,
        resources=model.counts(), environments_file=model.environments.file,
        unclassified_vpcs=model.unclassified_vpcs(),
        unknown_tag_values=sorted(model.environments.unknown_values))


def render_network_text(report: NetworkReport) -> str:
    from drkit.lint.output import printable, summary_tail

    lines = [f"{e.file}:{e.line}: INPUT ERROR: {e.message} (file not checked)"
             for e in report.input_errors]
    for f in report.findings:
        where = f" [{f.statement}]" if f.statement is not None else ""
        who = f" [principal {f.principal}]" if f.principal else ""
        lines.append(f"{f.file}:{f.line}: {f.severity.upper()} {f.rule}{where}{who}: "
                     f"{f.message}")
    s = report.summary()
    counts = ", ".join(f"{n} {sev}" for sev, n in s["by_severity"].items() if n)
    resources = ", ".join(_resource_count(n, k) for k, n in report.resources.items() if n)
    if report.unclassified_vpcs:
        lines.append(f"note: VPCs in no environment (not checked for isolation): "
                     f"{', '.join(report.unclassified_vpcs)}")
    if report.unknown_tag_values:
        lines.append(f"note: environment tag values not in the mapping (treated as "
                     f"non-production environments of their own): "
                     f"{', '.join(report.unknown_tag_values)}")
    lines.append(
        f"{resources or 'no resources'} in {count(s['files'], 'response')}: "
        f"{count(s['findings'], 'finding')}"
        + (f" ({counts})" if counts else "")
        + summary_tail(report, s))
    return printable("\n".join(lines))


def _resource_count(n: int, key: str) -> str:
    """``1 database``, ``2 security groups`` (the counts are keyed by plural names)."""
    plural = key.replace("_", " ")
    singular = plural[:-1] if plural.endswith("s") else plural
    return count(n, singular, plural)
