"""Helpers for the lint tests: write real policy files and lint them with the real engine."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lint.lint_support import NOW, REPO_POLICIES

from drkit.lint import LintReport, lint_paths


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, Any], Path]:
    def _write(name: str, doc: Any) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=2), "utf-8")
        return path
    return _write


@pytest.fixture
def lint_doc(write: Callable[[str, Any], Path]) -> Callable[[Any], LintReport]:
    """Lint one document written to a real file; returns the report."""
    def _lint(doc: Any, name: str = "policy.json") -> LintReport:
        return lint_paths([write(name, doc)], now=NOW)
    return _lint


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    """A copy of the repository's policies/ folder."""
    dest = tmp_path / "policies"
    shutil.copytree(REPO_POLICIES, dest)
    return dest
