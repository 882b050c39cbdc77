"""AWS IAM: running code on existing compute, which acts with the role it carries."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint import checks
from drkit.lint.findings import Hit
from drkit.lint.model import Policy

ID = "aws_code_execution"
CATEGORY = "privilege-escalation"
SEVERITY = "high"
CLOUDS = ("aws",)
TITLE = (
    'Running code on existing compute, which then acts with the role that compute carries'
)
REMEDIATION = (
    'Limit lambda:UpdateFunctionCode, ssm:SendCommand, ssm:StartSession, ecs:ExecuteCommand, '
    'glue:UpdateDevEndpoint and the like to the named functions, instances or projects the '
    'holder owns, and keep compute that carries powerful roles out of their reach.'
)


def check(policy: Policy) -> Iterator[Hit]:
    yield from checks.code_execution(policy)
