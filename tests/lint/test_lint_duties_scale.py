"""Separation of duties over a whole synthetic account export (issue 14): the verdicts.

The account (tests/lint/synthetic_account.py, the one bench/lint_duties.py times at 2,000
principals) is linted through the CLI with a tiers-only principals file; who holds whom is
read through the analysis itself. Untimed: speed is the bench's business.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from lint import synthetic_account as synthetic

from drkit.lint.exports import read_file
from drkit.lint.principals import Analysis, PrincipalModel, Tier

PRINCIPALS = 260  # 6 teams, 8 groups, 100 users, 152 roles
IAM = f"arn:aws:iam::{synthetic.ACCT}"


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return synthetic.write_account(tmp_path_factory.mktemp("account"), PRINCIPALS)


@pytest.fixture(scope="module")
def analysis(account: tuple[Path, Path]) -> Analysis:
    export, _ = account
    loaded = read_file(export.read_text("utf-8"), "account.json")
    assert loaded.principals is not None
    tiers = [Tier(name, t["kind"], tuple(t["resources"]))
             for name, t in tomllib.loads(synthetic.TIERS)["tiers"].items()]
    return Analysis(PrincipalModel("tiers.toml", tiers, loaded.principals))


def duties(drkit: Any, account: tuple[Path, Path]) -> dict[str, dict[str, Any]]:
    export, tiers = account
    res = drkit("lint", str(export), "--principals", str(tiers), "--json")
    assert res.exit_code == 1, res.stderr
    found = [f for f in json.loads(res.stdout)["findings"]
             if f["rule"] == "separation_of_duties"]
    return {f["principal"].removeprefix(f"{IAM}:"): f for f in found}


def test_account_verdicts(drkit: Any, account: tuple[Path, Path]) -> None:
    assert synthetic.sizes(PRINCIPALS) == (6, 8, 100, 152)
    found = duties(drkit, account)
    # Administrators ("*" on "*") and whoever can make themselves one.
    for name in ("group/Admins", "user/user-0", "user/user-1", "user/user-2"):
        assert found[name]["severity"] == "critical", name
    assert "escalation via iam:AttachUserPolicy" in found["user/user-96"]["message"]
    # Access keys for any user: takes over the first administrator.
    assert (f"user-0 (iam:CreateAccessKey on {IAM}:user/user-0)"
            in found["user/user-82"]["message"])
    # Team 5 holds no role with backup, S3 or RDS full access, and its plain members have
    # nothing else: no finding, though they may assume every team-5 role. user-11 is
    # also trusted by name by team-4-app-64, which has AWSBackupFullAccess.
    assert "group/team-5" not in found
    assert not {"user/user-5", "user/user-17", "user/user-23"} & set(found)
    assert "trusted by" in found["user/user-11"]["message"]


def test_who_holds_whom(analysis: Analysis) -> None:
    def holds(name: str) -> dict[str, tuple[str, ...]]:
        principal = analysis.by_name(f"{IAM}:{name}")
        assert principal is not None, name
        return {k.removeprefix(f"{IAM}:"): v for k, v in analysis.holds(principal).items()}

    team5 = holds("user/user-5")
    # The team's roles, by the team group's role/team-5-* assume policy (every one of
    # them, and no other team's; the group's policies are the user's own).
    roles = sorted(n for n in team5 if n.startswith("role/"))
    assert roles == sorted(f"role/team-5-app-{j}" for j in range(152) if j % 6 == 5)
    assert "sts:AssumeRole on" in team5["role/team-5-app-17"][-1]
    # Updating any Lambda function's code runs as every role Lambda may assume.
    lambda_user = holds("user/user-74")
    assert "lambda:UpdateFunctionCode runs code on compute that carries it" in \
        lambda_user["role/team-0-app-0"][-1]
    # A role trusting a named user (of another team) is held by that user, through the
    # trust policy alone.
    named = holds("user/user-11")
    assert named["role/team-4-app-64"][-1].endswith(
        "(trusted by account.json#role/team-4-app-64/trust#0)")
    # Passing team 0's roles to new EC2 instances (user-88 is in team 4).
    passer = holds("user/user-88")
    assert passer["role/team-0-app-6"][-1].endswith(
        f"(iam:PassRole on {IAM}:role/team-0-app-6 + ec2:RunInstances)")
