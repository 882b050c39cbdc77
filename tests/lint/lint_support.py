"""Shared constants and document builders for the lint tests (imported as lint.lint_support)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_POLICIES = Path(__file__).resolve().parents[2] / "policies"
NOW = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)


def aws(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def cam(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"version": "2.0", "statement": list(statements)}
