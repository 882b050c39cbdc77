"""The real-policy corpus of tests/lint/corpus (issue 14): unpack it and lint it.

Used by tests/lint/test_lint_corpus.py (as lint.corpus_support) and bench/lint.py (as
corpus_support, with tests/lint on the path: the bench script is itself named lint), so it
imports nothing else from the tests folder.
The AWS managed policies are kept in one compressed archive; parliament's and
cloudsplaining's test policies and the Tencent CAM policies are plain files. See
corpus/SOURCES.md for where each came from.
"""

from __future__ import annotations

import tarfile
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drkit.lint import LintReport, lint_paths
from drkit.lint.findings import Finding

CORPUS = Path(__file__).resolve().parent / "corpus"
MANAGED_ARCHIVE = CORPUS / "aws-managed.tar.xz"
MANAGED = "aws-managed"
PLAIN_SETS = ("parliament", "cloudsplaining", "cam")
VERDICTS = CORPUS / "verdicts.toml"
# A fixed clock: the corpus has no suppressions, but lint_paths wants one.
NOW = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)


def extract_managed(dest: Path) -> Path:
    """Unpack the AWS managed policies into ``dest``; returns the folder of ``*.json``."""
    with tarfile.open(MANAGED_ARCHIVE, "r:xz") as tar:
        # The "data" filter refuses absolute paths, links out of dest and special files.
        tar.extractall(dest, filter="data")
    folder = dest / MANAGED
    if not folder.is_dir():
        raise FileNotFoundError(f"{MANAGED_ARCHIVE} holds no {MANAGED}/ folder")
    return folder


def corpus_folders(managed: Path | None, sets: Iterable[str] = PLAIN_SETS) -> list[Path]:
    """The folders to lint: the unpacked managed set (if given) and the plain sets."""
    folders = [managed] if managed is not None else []
    folders.extend(CORPUS / name for name in sets)
    return folders


def lint_folders(folders: Sequence[Path]) -> LintReport:
    """Lint the corpus folders in one run, as ``drkit lint`` would."""
    return lint_paths(list(folders), now=NOW)


def corpus_key(file: str) -> str:
    """``<set>/<name>.json`` for a finding's file, whatever folder it was unpacked into."""
    parts = file.replace("\\", "/").split("/")
    return "/".join(parts[-2:])


def findings_by_file(report: LintReport) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = defaultdict(list)
    for finding in report.findings:
        out[corpus_key(finding.file)].append(finding)
    return out


def policies_per_category(report: LintReport, set_name: str | None = None) -> dict[str, int]:
    """How many policy files have at least one finding of each category."""
    files: dict[str, set[str]] = defaultdict(set)
    for finding in report.findings:
        key = corpus_key(finding.file)
        if set_name is None or key.startswith(f"{set_name}/"):
            files[finding.category].add(key)
    return {category: len(names) for category, names in sorted(files.items())}


def load_verdicts() -> list[dict[str, Any]]:
    with VERDICTS.open("rb") as fh:
        policies: list[dict[str, Any]] = tomllib.load(fh)["policy"]
    return policies
