"""Runs the rules over policy files and a principals file, applies suppressions."""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from drkit.errors import InputError
from drkit.lint.findings import (
    INPUT_ERROR,
    LINTER_ERROR,
    SEVERITIES,
    SUPPRESSION_EXPIRED,
    Finding,
    Hit,
    Rule,
    severity_rank,
)
from drkit.lint.model import Policy, Problem, parse_policy, unreadable
from drkit.lint.principals import PrincipalModel, load_principals
from drkit.lint.registry import load_rules
from drkit.lint.suppressions import Suppression, load_suppressions
from drkit.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)
PRINCIPALS_FILE = "principals.toml"
INPUT_ERROR_MODES = ("error", "finding")


@dataclass(frozen=True)
class InputProblem:
    """A file the run could not check: unreadable, not JSON, not a JSON object, too deep,
    or a principals file with wrong types. Reported once per file; by default it makes the
    run exit 2 after the report for everything else is written."""

    file: str
    message: str
    line: int = 1

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "message": self.message}

    def as_finding(self) -> Finding:
        return Finding(rule=INPUT_ERROR, category=INPUT_ERROR, severity="critical", cloud="",
                       file=self.file, statement=None, line=self.line, actions=[],
                       message=f"file not checked: {self.message}")


@dataclass
class LintReport:
    """The result of one lint run."""

    findings: list[Finding]
    suppressed: list[Finding]
    expired: list[Suppression]
    files: int
    policies: int
    threshold: str
    principals_file: str | None = None
    rules: tuple[Rule, ...] = field(default=())
    input_errors: list[InputProblem] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        limit = severity_rank(self.threshold)
        return any(severity_rank(f.severity) >= limit for f in self.findings)

    def summary(self) -> dict[str, Any]:
        counts = {s: 0 for s in reversed(SEVERITIES)}
        for finding in self.findings:
            counts[finding.severity] += 1
        return {"files": self.files, "policies": self.policies,
                "principals_file": self.principals_file, "findings": len(self.findings),
                "by_severity": counts, "suppressed": len(self.suppressed),
                "expired_suppressions": [s.to_dict() for s in self.expired],
                "threshold": self.threshold, "failed": self.failed,
                "input_errors": len(self.input_errors)}

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, "findings": [f.to_dict() for f in self.findings],
                "suppressed": [f.to_dict() for f in self.suppressed],
                "input_errors": [e.to_dict() for e in self.input_errors],
                "summary": self.summary()}


def display_path(path: Path) -> str:
    """A path as users wrote it: relative to the working directory when inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # pragma: no cover - other drive on Windows
        return path.as_posix()
    return Path(rel).as_posix() if not rel.startswith("..") else path.as_posix()


def discover(paths: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """Policy candidate files (``*.json``, recursively) and principals files in ``paths``."""
    files: list[Path] = []
    principals: list[Path] = []
    for path in paths:
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            found = sorted(p for p in path.rglob("*.json")
                           if p.is_file() and not any(part.startswith(".")
                                                      for part in p.relative_to(path).parts))
            files.extend(found)
            if (path / PRINCIPALS_FILE).is_file():
                principals.append(path / PRINCIPALS_FILE)
        else:
            raise InputError(f"{path}: no such file or directory")
    return files, principals


class Linter:
    """Holds the loaded rules; call :meth:`lint_policy` per document or :meth:`run`."""

    def __init__(self, rules: Iterable[Rule] | None = None) -> None:
        self.rules = tuple(rules) if rules is not None else load_rules()
        self.policy_rules = [r for r in self.rules if r.scope == "policy"]
        self.principal_rules = [r for r in self.rules if r.scope == "principals"]

    def _run(self, rule: Rule, target: Any, file: str, cloud: str,
             line_of: Any) -> list[Finding]:
        out = []
        try:
            for hit in rule.check(target):
                out.append(self._finding(rule, hit, file, cloud, line_of))
        except Exception as exc:  # a crashing rule must never look like a clean result
            log.debug("lint rule %s crashed on %s:\n%s", rule.id, file, traceback.format_exc())
            out.append(Finding(
                rule=LINTER_ERROR, category=LINTER_ERROR, severity="critical", cloud=cloud,
                file=file, statement=None, line=1, actions=[],
                message=f"rule {rule.id} crashed: {type(exc).__name__}: {exc}"))
        return out

    @staticmethod
    def _finding(rule: Rule, hit: Hit, file: str, cloud: str, line_of: Any) -> Finding:
        line = hit.line if hit.line is not None else line_of(hit.statement)
        return Finding(rule=rule.id, category=rule.category,
                       severity=hit.severity or rule.severity, cloud=hit.cloud or cloud,
                       file=hit.file or file, statement=hit.statement, line=line,
                       actions=list(hit.actions), message=hit.message,
                       principal=hit.principal, evidence=list(hit.evidence))

    def lint_policy(self, policy: Policy) -> list[Finding]:
        findings: list[Finding] = []
        if policy.input_error is not None:
            return findings  # nothing to check; the run reports it as an input error
        for rule in self.policy_rules:
            if policy.cloud in rule.clouds:
                findings.extend(self._run(rule, policy, policy.file, policy.cloud,
                                          policy.statement_line))
        # Findings name statements by Sid where there is one (stable across reordering).
        labels = {st.index: st.ref for st in policy.statements}
        for finding in findings:
            if isinstance(finding.statement, int):
                finding.statement = labels.get(finding.statement, finding.statement)
        return findings

    def lint_principals(self, model: PrincipalModel) -> list[Finding]:
        findings: list[Finding] = []
        for rule in self.principal_rules:
            findings.extend(self._run(rule, model, model.file, "+".join(rule.clouds),
                                      lambda _s: 1))
        return findings


def lint_paths(paths: Sequence[Path], *, now: datetime, threshold: str = "low",
               principals_file: Path | None = None, suppressions_file: Path | None = None,
               progress: Progress = NULL_PROGRESS, linter: Linter | None = None,
               input_errors: str = "error") -> LintReport:
    """Lint policy files and folders.

    Usage problems (no such path, a bad suppressions file, no policy at all) raise
    InputError. A file that cannot be checked never stops the run: it is listed in
    ``report.input_errors`` (``input_errors="error"``) or becomes a critical
    ``input-error`` finding (``"finding"``), and every other file is still linted.
    """
    if threshold not in SEVERITIES:
        raise InputError(f"unknown severity threshold {threshold!r}; "
                         f"use one of {', '.join(SEVERITIES)}")
    if input_errors not in INPUT_ERROR_MODES:
        raise InputError(f"unknown input error mode {input_errors!r}; "
                         f"use one of {', '.join(INPUT_ERROR_MODES)}")
    if not paths:
        raise InputError("no paths to lint")
    linter = linter or Linter()
    suppressions = (load_suppressions(suppressions_file, display_path(suppressions_file))
                    if suppressions_file else [])
    files, found_principals = discover(paths)
    explicit = {p.resolve() for p in paths if p.is_file()}
    cache: dict[Path, Policy] = {}

    def load(path: Path) -> Policy:
        key = path.resolve()
        policy = cache.get(key)
        if policy is None:
            shown = display_path(path)
            try:
                text = path.read_text("utf-8")
            except UnicodeDecodeError:
                policy = unreadable(shown, "", Problem("not UTF-8 text: not a policy document"))
            except OSError as exc:
                policy = unreadable(shown, "", Problem(f"cannot read file: "
                                                       f"{exc.strerror or type(exc).__name__}"))
            else:
                policy = parse_policy(text, shown)
            cache[key] = policy
        return policy

    def load_noted(path: Path) -> Policy:
        """Load a policy file, noting it as an input error if it cannot be read."""
        policy = load(path)
        if policy.input_error is not None:
            problems[policy.file] = InputProblem(policy.file, policy.input_error.message,
                                                 policy.input_error.line or 1)
        return policy

    problems: dict[str, InputProblem] = {}
    findings: list[Finding] = []
    policies = 0
    task = progress.task("lint", total=len(files), unit="files")
    try:
        for path in files:
            policy = load(path)
            task.advance()
            if not policy.is_policy_document and path.resolve() not in explicit:
                # JSON that is not a policy (package.json, a data array) beside policies.
                log.info("skipping %s: not a policy document", policy.file)
                continue
            if load_noted(path).input_error is not None:
                continue
            policies += 1
            findings.extend(_lint_one(linter, policy))
    finally:
        task.close()
    if policies == 0 and not problems:
        where = ", ".join(display_path(p) for p in paths)
        raise InputError(f"no policy files found in {where} (looked for *.json policy "
                         f"documents)")
    principals_path = principals_file or (found_principals[0] if found_principals else None)
    shown_principals = None
    if principals_path is not None:
        shown_principals = display_path(principals_path)
        try:
            model = load_principals(principals_path, load_noted, display_path)
        except InputError as exc:
            message = str(exc).removeprefix(f"{shown_principals}: ")
            problems[shown_principals] = InputProblem(shown_principals, message)
        else:
            findings.extend(linter.lint_principals(model))
    errors = sorted(problems.values(), key=lambda e: e.file)
    if input_errors == "finding":
        findings.extend(e.as_finding() for e in errors)
        errors = []
    active, suppressed, expired = apply_suppressions(findings, suppressions, now)
    active.extend(expired_findings(expired, display_path(suppressions_file)
                                   if suppressions_file else ""))
    active.sort(key=lambda f: (-severity_rank(f.severity), f.file, f.line, f.rule))
    return LintReport(findings=active, suppressed=suppressed, expired=expired,
                      files=len(files), policies=policies, threshold=threshold,
                      principals_file=shown_principals, rules=linter.rules,
                      input_errors=errors)


def _lint_one(linter: Linter, policy: Policy) -> list[Finding]:
    """The findings of one policy; a crash in drkit's own code is a critical finding.

    Rules already turn their own crashes into findings; this catches the rest (the
    statement model, suppressions of labels) so one file never ends the run.
    """
    try:
        return linter.lint_policy(policy)
    except Exception as exc:  # a crash must never look like a clean file
        log.debug("linting %s crashed:\n%s", policy.file, traceback.format_exc())
        return [Finding(rule=LINTER_ERROR, category=LINTER_ERROR, severity="critical",
                        cloud=policy.cloud, file=policy.file, statement=None, line=1,
                        actions=[], message=f"linting crashed: {type(exc).__name__}")]


def apply_suppressions(findings: list[Finding], suppressions: list[Suppression],
                       now: datetime) -> tuple[list[Finding], list[Finding], list[Suppression]]:
    valid = [s for s in suppressions if not s.expired(now)]
    expired = [s for s in suppressions if s.expired(now)]
    active, suppressed = [], []
    for finding in findings:
        match = next((s for s in valid if s.matches(finding)), None)
        if match is None:
            active.append(finding)
        else:
            finding.suppressed_by = match.to_dict()
            suppressed.append(finding)
    return active, suppressed, expired


def expired_findings(expired: list[Suppression], file: str) -> list[Finding]:
    return [Finding(rule=SUPPRESSION_EXPIRED, category="suppression", severity="low",
                    cloud="", file=file, statement=None, line=s.line, actions=[],
                    message=(f"suppression of {s.rule}"
                             + (f" in {s.file}" if s.file else "")
                             + f" (owner {s.owner}) expired on {s.expires.isoformat()}; "
                             "it no longer suppresses anything"),
                    principal=s.principal)
            for s in expired]
