"""Least-privilege policy linter for AWS IAM and Tencent Cloud CAM policies.

Public API::

    from drkit.lint import lint_paths, LintReport, Finding, parse_policy
    report = lint_paths([Path("policies")], now=clock.now(), threshold="medium")
    report.failed, report.findings, report.to_dict()
"""

from drkit.lint.engine import Linter, LintReport, lint_paths
from drkit.lint.findings import CATEGORIES, SEVERITIES, Finding, Hit, Rule
from drkit.lint.model import Policy, Statement, parse_policy
from drkit.lint.registry import load_rules

__all__ = ["CATEGORIES", "SEVERITIES", "Finding", "Hit", "LintReport", "Linter", "Policy",
           "Rule", "Statement", "lint_paths", "load_rules", "parse_policy"]
