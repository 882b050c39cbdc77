"""Runs the rules over policy files and a principals file, applies suppressions."""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from drkit.errors import InputError
from drkit.lint.exports import (
    CAM_BUNDLE_MARKERS,
    LoadedFile,
    export_line,
    export_paths,
    is_cam_bundle,
    read_cam_bundle,
    read_file,
)
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
from drkit.lint.model import Policy, Problem, unreadable
from drkit.lint.principals import Principal, PrincipalModel, add_exported, load_principals
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


class _RunPaths:
    """The real path and the shown name of each file of one run, each worked out once.

    Resolving a path costs an ``lstat`` per component and a ``stat``; a file that is not a
    symbolic link resolves to its folder's real path plus its name, so the folder is
    resolved once for all its files and each file costs one ``lstat``. Keys are strings:
    hashing a ``Path`` costs more than the lookup.
    """

    def __init__(self) -> None:
        self._real: dict[str, str] = {}
        self._folders: dict[str, str] = {}
        self._shown_folders: dict[str, str | None] = {}

    def real(self, path: Path) -> str:
        """``str(path.resolve())``."""
        key = os.fspath(path)
        found = self._real.get(key)
        if found is None:
            folder, name = os.path.split(key)
            if name in ("", os.curdir, os.pardir) or os.path.islink(key):
                found = str(path.resolve())
            else:
                real_folder = self._folders.get(folder)
                if real_folder is None:
                    real_folder = self._folders[folder] = str(Path(folder).resolve())
                found = os.path.join(real_folder, name)
            self._real[key] = found
        return found

    def shown(self, path: Path) -> str:
        """:func:`display_path`, with the folder's relative path computed once."""
        folder, name = os.path.split(os.fspath(path))
        if name in ("", os.curdir, os.pardir):
            return display_path(path)
        if folder in self._shown_folders:
            rel_folder = self._shown_folders[folder]
        else:
            try:
                rel_folder = os.path.relpath(folder or os.curdir)
            except ValueError:  # pragma: no cover - other drive on Windows
                rel_folder = None
            self._shown_folders[folder] = rel_folder
        if rel_folder is None:  # pragma: no cover - other drive on Windows
            return path.as_posix()
        rel = name if rel_folder == os.curdir else os.path.join(rel_folder, name)
        return Path(rel).as_posix() if not rel.startswith("..") else path.as_posix()


def discover(paths: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """Policy candidate files (``*.json``, recursively) and principals files in ``paths``."""
    files: list[Path] = []
    principals: list[Path] = []
    for path in paths:
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(_json_files(path))
            if (path / PRINCIPALS_FILE).is_file():
                principals.append(path / PRINCIPALS_FILE)
        else:
            raise InputError(f"{path}: no such file or directory")
    return files, principals


def _json_files(top: Path) -> list[Path]:
    """``*.json`` files under ``top``, sorted, leaving out hidden files and folders (a name
    starting with "."); symbolic links to files count, to folders are not followed.

    One ``scandir`` per folder, whose entries know their type: globbing built a path for
    every entry and ``stat``-ed each match again.
    """
    found: list[Path] = []
    pending = [os.fspath(top)]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as entries:
                listed = list(entries)
        except PermissionError:
            continue
        base = Path(folder)
        for entry in listed:
            name = entry.name
            if name.startswith("."):
                continue
            try:
                if entry.is_dir() and not entry.is_symlink():
                    pending.append(entry.path)
                elif os.path.normcase(name).endswith(".json") and entry.is_file():
                    found.append(base / name)
            except OSError:
                continue
    return sorted(found)


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
    run_paths = _RunPaths()
    explicit = {run_paths.real(p) for p in paths if p.is_file()}
    problems: dict[str, InputProblem] = {}
    principals_path = principals_file or (found_principals[0] if found_principals else None)
    shown_principals = display_path(principals_path) if principals_path else None
    listed: list[Path] = []
    if principals_path is not None and shown_principals is not None:
        try:
            listed = export_paths(principals_path, shown_principals)
        except InputError as exc:
            problems[shown_principals] = InputProblem(
                shown_principals, str(exc).removeprefix(f"{shown_principals}: "))
    # Exports named in the principals file are linted too, once each.
    for export in listed:
        files.extend(discover([export])[0])
    unique: dict[str, Path] = {}
    for file in files:
        unique.setdefault(run_paths.real(file), file)
    files = list(unique.values())
    # Parsed files are kept only when a principals file may name them again (its policy
    # files, exports and CAM bundles are read after the loop below): holding every parsed
    # document to the end of a large run made each garbage collection walk all of them.
    cache: dict[str, LoadedFile] = {}
    keep_loaded = principals_path is not None

    def load(path: Path) -> LoadedFile:
        key = run_paths.real(path)
        loaded = cache.get(key)
        if loaded is None:
            shown = run_paths.shown(path)
            try:
                text = _read_text(path)
            except UnicodeDecodeError:
                loaded = _unreadable(shown, Problem("not UTF-8 text: not a policy document"))
            except OSError as exc:
                loaded = _unreadable(shown, Problem(f"cannot read file: "
                                                    f"{exc.strerror or type(exc).__name__}"))
            else:
                try:
                    loaded = read_file(text, shown)
                except Exception as exc:  # a crash must never end the run or pass the file
                    log.debug("reading %s crashed:\n%s", shown, traceback.format_exc())
                    loaded = _unreadable(shown, Problem(f"drkit could not read it "
                                                        f"({type(exc).__name__}); please "
                                                        "report this"))
            if keep_loaded:
                cache[key] = loaded
        return loaded

    def load_noted(path: Path) -> Policy:
        """Load one policy file named in a principals file, noting an input error."""
        loaded = load(path)
        if loaded.input_error is not None:
            problems[loaded.file] = InputProblem(loaded.file, loaded.input_error.message,
                                                 loaded.input_error.line or 1)
        elif len(loaded.policies) != 1 or loaded.principals is not None:
            raise InputError(f"{loaded.file}: holds {len(loaded.policies)} policy documents, "
                             "not one: list an account export under 'exports'")
        return loaded.single

    findings: list[Finding] = []
    exported: list[tuple[str, list[Principal]]] = []
    policies = 0
    task = progress.task("lint", total=len(files), unit="files")
    try:
        for path in files:
            loaded = load(path)
            task.advance()
            if not loaded.recognised and run_paths.real(path) not in explicit:
                # JSON that is not a policy (package.json, a data array) beside policies.
                log.info("skipping %s: not a policy document", loaded.file)
                continue
            if loaded.input_error is not None:
                problems[loaded.file] = InputProblem(loaded.file, loaded.input_error.message,
                                                     loaded.input_error.line or 1)
                continue
            policies += len(loaded.policies)
            for policy in loaded.policies:
                findings.extend(_lint_one(linter, policy))
            if loaded.principals is not None:
                exported.append((loaded.file, loaded.principals))
    finally:
        task.close()
    if policies == 0 and not problems:
        where = ", ".join(display_path(p) for p in paths)
        raise InputError(f"no policy files found in {where} (looked for *.json policy "
                         f"documents)")
    if principals_path is not None and shown_principals is not None \
            and shown_principals not in problems:
        try:
            model = load_principals(principals_path, load_noted, display_path)
            line = export_line(principals_path)
            _check_listed(listed, load, problems)
            for folder in _bundles(paths, listed, files):
                exported.append((display_path(folder),
                                 read_cam_bundle(folder, load, display_path)))
            for source, found in exported:
                add_exported(model, found, source, line)
        except InputError as exc:
            where, _, message = str(exc).partition(": ")
            if not message:
                where, message = shown_principals, str(exc)
            problems[where] = InputProblem(where, message)
        else:
            findings.extend(linter.lint_principals(model))
    elif exported:
        log.info("account exports read; a principals file with [tiers.*] tables runs the "
                 "separation-of-duties check over their principals")
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


def _read_text(path: Path) -> str:
    """``path.read_text("utf-8")``, read unbuffered and decoded in one go rather than through
    a text stream set up per file, with the same universal newlines ("\\r\\n" and "\\r"
    read as "\\n")."""
    with open(path, "rb", buffering=0) as fh:
        text = fh.read().decode("utf-8")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _unreadable(shown: str, problem: Problem) -> LoadedFile:
    return LoadedFile(shown, [unreadable(shown, "", problem)], input_error=problem)


def _bundles(paths: Sequence[Path], listed: Sequence[Path], files: Sequence[Path]) -> list[Path]:
    """CAM bundle folders: those named as PATH or export, or holding a marker file found."""
    folders = {p.parent.resolve(): p.parent for p in files if p.name in CAM_BUNDLE_MARKERS}
    for path in (*paths, *listed):
        if path.is_dir() and is_cam_bundle(path):
            folders.setdefault(path.resolve(), path)
    return [folders[k] for k in sorted(folders)]


def _check_listed(listed: Sequence[Path], load: Callable[[Path], LoadedFile],
                  problems: dict[str, InputProblem]) -> None:
    """Every export named in a principals file must be one (else it would add nobody)."""
    for path in listed:
        if path.is_dir():
            if not is_cam_bundle(path):
                raise InputError(f"{display_path(path)}: listed under exports but not a CAM "
                                 f"bundle (no {' or '.join(CAM_BUNDLE_MARKERS)})")
            continue
        loaded = load(path)
        if loaded.input_error is None and loaded.principals is None:
            raise InputError(f"{loaded.file}: listed under exports but not an account export "
                             "(aws iam get-account-authorization-details)")


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
