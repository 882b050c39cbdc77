"""`drkit lint` over policies nobody here wrote (issue 14, "How it is shown").

The corpus (tests/lint/corpus, sources in its SOURCES.md): all AWS managed policies,
parliament's and cloudsplaining's test policies and Tencent CAM policies. Every file must
get a verdict (no input error, no linter-error), and the policies in verdicts.toml must get
the verdicts written there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lint.corpus_support import (
    CORPUS,
    MANAGED,
    PLAIN_SETS,
    corpus_folders,
    extract_managed,
    findings_by_file,
    lint_folders,
    load_verdicts,
)

from drkit.lint import LintReport
from drkit.lint.catalog import catalog
from drkit.lint.findings import LINTER_ERROR, SEVERITIES, Finding, severity_rank
from drkit.lint.registry import load_rules

VERDICTS = load_verdicts()
RULE_IDS = {rule.id for rule in load_rules()}
KEYS = {"file", "case", "must", "must_not", "flagged", "not_flagged", "fails_at",
        "max_severity", "rule_max"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LintReport, Path]]:
    managed = extract_managed(tmp_path_factory.mktemp("corpus"))
    yield lint_folders(corpus_folders(managed)), managed


@pytest.fixture(scope="module")
def by_file(corpus: tuple[LintReport, Path]) -> dict[str, list[Finding]]:
    return findings_by_file(corpus[0])


def test_the_corpus_is_all_there(corpus: tuple[LintReport, Path]) -> None:
    report, managed = corpus
    managed_files = sorted(managed.glob("*.json"))
    assert len(managed_files) == 1388
    assert (managed / "AmazonFSxFullAccess.json").is_file()
    plain = {name: len(list((CORPUS / name).glob("*.json"))) for name in PLAIN_SETS}
    assert plain["parliament"] >= 50 and plain["cloudsplaining"] >= 40
    assert plain["cam"] >= 40
    assert report.files == len(managed_files) + sum(plain.values())


def test_every_file_gets_a_verdict(corpus: tuple[LintReport, Path]) -> None:
    report, _ = corpus
    assert report.input_errors == []
    crashed = [f"{f.file}: {f.message}" for f in report.findings if f.rule == LINTER_ERROR]
    assert crashed == []
    # Every file is a policy document: none skipped as "not a policy".
    assert report.policies == report.files


def test_findings_do_not_depend_on_cache_state_or_file_order(
        corpus: tuple[LintReport, Path]) -> None:
    """The catalogue caches answers per action pattern and each statement its covered
    actions: linting the corpus again with a fresh catalogue, files in reverse order, must
    find exactly the same (this is what speed work on the engine must keep)."""
    report, managed = corpus
    catalog.cache_clear()
    files = sorted(managed.glob("*.json"), reverse=True)
    again = lint_folders([*files, *corpus_folders(None)])

    def rows(found: LintReport) -> list[str]:
        return sorted(json.dumps(f.to_dict(), sort_keys=True) for f in found.findings)

    assert again.policies == report.policies
    assert rows(again) == rows(report)


def test_verdicts_are_well_formed() -> None:
    assert len(VERDICTS) >= 30
    files = [v["file"] for v in VERDICTS]
    assert len(files) == len(set(files)), "one verdict per file"
    for verdict in VERDICTS:
        assert set(verdict) <= KEYS, verdict["file"]
        assert verdict["case"], verdict["file"]
        set_name, _, name = verdict["file"].partition("/")
        assert set_name in (MANAGED, *PLAIN_SETS) and name.endswith(".json")
        if set_name != MANAGED:
            assert (CORPUS / verdict["file"]).is_file(), verdict["file"]
        rules = [*verdict.get("must", []), *verdict.get("must_not", []),
                 *verdict.get("flagged", {}), *verdict.get("not_flagged", {}),
                 *verdict.get("rule_max", {})]
        # Only rules that exist (a typo would make a must_not pass for ever).
        assert set(rules) <= RULE_IDS, (verdict["file"], set(rules) - RULE_IDS)
        for level in [verdict.get("fails_at"), *verdict.get("rule_max", {}).values()]:
            assert level is None or level in SEVERITIES
        assert verdict.get("max_severity") in (None, "none", *SEVERITIES)


def _worst(findings: list[Finding]) -> int:
    return max((severity_rank(f.severity) for f in findings), default=-1)


def _shown(findings: list[Finding]) -> str:
    return "\n".join(f"  {f.severity} {f.rule} [{f.statement}] {','.join(f.actions)[:160]}"
                     for f in findings) or "  (no findings)"


def _actions(findings: list[Finding], rule: str) -> set[str]:
    return {a.lower() for f in findings if f.rule == rule for a in f.actions}


@pytest.mark.parametrize("verdict", VERDICTS, ids=[v["file"] for v in VERDICTS])
def test_real_policy_verdict(by_file: dict[str, list[Finding]], verdict: dict[str, Any]) -> None:
    findings = by_file.get(verdict["file"], [])
    fired = {f.rule for f in findings}
    context = f"{verdict['file']} ({verdict['case']}):\n{_shown(findings)}"
    problems: list[str] = []
    for rule in verdict.get("must", []):
        if rule not in fired:
            problems.append(f"{rule} must fire")
    for rule in verdict.get("must_not", []):
        if rule in fired:
            problems.append(f"{rule} must not fire")
    for rule, actions in verdict.get("flagged", {}).items():
        missing = sorted(a for a in actions if a.lower() not in _actions(findings, rule))
        if missing:
            problems.append(f"{rule} must name {', '.join(missing)}")
    for rule, actions in verdict.get("not_flagged", {}).items():
        wrong = sorted(a for a in actions if a.lower() in _actions(findings, rule))
        if wrong:
            problems.append(f"{rule} must not name {', '.join(wrong)}")
    worst = _worst(findings)
    if "fails_at" in verdict and worst < severity_rank(verdict["fails_at"]):
        problems.append(f"must fail at {verdict['fails_at']}")
    ceiling = verdict.get("max_severity")
    if ceiling == "none" and findings:
        problems.append("must have no finding")
    elif ceiling not in (None, "none") and worst > severity_rank(ceiling):
        problems.append(f"nothing above {ceiling}")
    for rule, level in verdict.get("rule_max", {}).items():
        if _worst([f for f in findings if f.rule == rule]) > severity_rank(level):
            problems.append(f"{rule} at most {level}")
    assert not problems, f"{'; '.join(problems)} — {context}"
