"""Destructive grants in a bucket policy (S3 and COS), for ``drkit verify``'s guardrails.

A region survives an insider only if nobody outside the account that owns its bucket can
destroy or weaken it. A bucket policy can quietly hand that power to another account (or
to anyone): deleting versions, rewriting the lifecycle, bypassing GOVERNANCE retention,
replacing the policy itself. This module reads the policy JSON and returns each
destructive action that an Allow statement grants to a principal outside the owning
account, after subtracting unconditional Deny statements.

Action patterns are matched the way AWS and COS match them: case-insensitive, with ``*``
and ``?`` wildcards (``s3:Delete*``, ``s3:*``, ``*``; COS writes ``name/cos:DeleteObject``,
``name/cos:*``, and sometimes ``cos:*``). ``NotAction`` and ``NotPrincipal`` in an Allow
are read as "everything except", which is what they grant.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from drkit.lint.patterns import wildcard_match

#: Actions that destroy data or switch a guardrail off. A grant of any of them to another
#: account gives that account the power the two-person rule exists to withhold.
S3_DESTRUCTIVE = (
    "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention",
    "s3:PutLifecycleConfiguration", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy",
    "s3:PutBucketVersioning", "s3:PutBucketObjectLockConfiguration",
    "s3:PutObjectRetention", "s3:PutObjectLegalHold", "s3:DeleteBucket",
)
COS_DESTRUCTIVE = (
    "cos:DeleteObject", "cos:DeleteMultipleObjects", "cos:PutBucketLifecycle",
    "cos:DeleteBucketLifecycle", "cos:PutBucketPolicy", "cos:DeleteBucketPolicy",
    "cos:PutBucketVersioning", "cos:PutBucketObjectLockConfiguration", "cos:DeleteBucket",
    "cos:PutBucketACL",
)
ANYONE = "*"
_AWS_ACCOUNT = re.compile(r"^(?:arn:aws[a-z-]*:(?:iam|sts)::)?(\d{12})(?::.*)?$")
_COS_UIN = re.compile(r"uin/(\d+)")


@dataclass(frozen=True)
class DestructiveGrant:
    principal: str  # "*" or the account (AWS account id / COS root UIN) it goes to
    actions: tuple[str, ...]
    conditional: bool  # the Allow carries a Condition (not evaluated here)
    statement: str  # Sid or position, for the message


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _normalise_action(action: str) -> str:
    action = action.strip().lower()
    return action[len("name/"):] if action.startswith("name/") else action


def action_matches(pattern: str, action: str) -> bool:
    return wildcard_match(_normalise_action(pattern), _normalise_action(action))


def _principals(value: Any) -> list[str]:
    """Accounts a Principal names: "*" for anyone, an account id / UIN, or the raw text
    for a principal that names no account (a canonical user, a federated identity)."""
    if value == ANYONE:
        return [ANYONE]
    out: list[str] = []
    items: list[Any] = []
    if isinstance(value, dict):
        for kind, v in value.items():
            if str(kind).lower() == "service":
                continue  # an AWS service acting for the bucket (logging, replication)
            items.extend(_as_list(v))
    else:
        items = _as_list(value)
    for item in items:
        text = str(item).strip()
        if text in (ANYONE, "qcs::cam::anyone:anyone") or text.endswith("anyone:anyone"):
            out.append(ANYONE)
            continue
        aws = _AWS_ACCOUNT.match(text)
        cos = _COS_UIN.search(text)
        out.append(aws.group(1) if aws else cos.group(1) if cos else text)
    return out


def _granted(statement: dict[str, Any], catalogue: Iterable[str]) -> list[str]:
    """Destructive actions a statement applies to (its Action, or all but NotAction)."""
    if "NotAction" in statement:
        excluded = [str(a) for a in _as_list(statement.get("NotAction"))]
        return [a for a in catalogue if not any(action_matches(x, a) for x in excluded)]
    patterns = [str(a) for a in _as_list(statement.get("Action"))]
    return [a for a in catalogue if any(action_matches(p, a) for p in patterns)]


def destructive_grants(policy_text: str, *, owner_account: str | None,
                       cloud: str = "s3") -> list[DestructiveGrant]:
    """Destructive actions the policy allows to anyone or to an account other than
    ``owner_account``. With the owner unknown, only grants to anyone are returned.
    Raises ValueError for a policy that is not a JSON object with statements."""
    policy = json.loads(policy_text)
    if not isinstance(policy, dict):
        raise ValueError("bucket policy is not a JSON object")
    statements = [s for s in _as_list(policy.get("Statement") or policy.get("statement"))
                  if isinstance(s, dict)]
    catalogue = COS_DESTRUCTIVE if cloud == "cos" else S3_DESTRUCTIVE

    def effect(st: dict[str, Any]) -> str:
        return str(st.get("Effect") or st.get("effect") or "").lower()

    def field(st: dict[str, Any], name: str) -> Any:
        return st.get(name, st.get(name.lower()))

    denied: dict[str, set[str]] = {}
    for st in statements:
        if effect(st) != "deny" or field(st, "Condition"):
            continue  # a conditional Deny may not apply: it removes nothing for certain
        normal = {k[0].upper() + k[1:]: v for k, v in st.items()}
        for who in _principals(field(st, "Principal")):
            denied.setdefault(who, set()).update(_granted(normal, catalogue))

    grants: list[DestructiveGrant] = []
    for index, st in enumerate(statements):
        if effect(st) != "allow":
            continue
        normal = {k[0].upper() + k[1:]: v for k, v in st.items()}
        # NotPrincipal in an Allow: everyone except the named ones.
        who_list = [ANYONE] if "NotPrincipal" in normal \
            else _principals(normal.get("Principal"))
        actions = _granted(normal, catalogue)
        if not actions:
            continue
        for who in who_list:
            if who != ANYONE and (owner_account is None or who == owner_account):
                continue
            left = tuple(a for a in actions
                         if a not in denied.get(who, set()) and a not in denied.get(ANYONE,
                                                                                     set()))
            if left:
                grants.append(DestructiveGrant(who, left, bool(normal.get("Condition")),
                                               str(normal.get("Sid") or f"#{index + 1}")))
    return grants
