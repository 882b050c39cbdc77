"""Approval requests, decisions (approve / deny) and execution records in the repository.

All are create-only objects in the primary store, so people on different hosts can take
part and nothing can be rewritten through drkit:

    approval/requests/ID.json              the request and its plan
    approval/decisions/ID/DIGEST.json      one signed approval or denial each
    approval/executed/ID.json              the single-use claim, written before running
    approval/results/ID.json               what the execution did

Request document (``ID`` = hex SHA-256 of its canonical bytes)::

    {"format": "drkit-approval-request", "version": 1, "operation": OP, "params": {...},
     "plan_sha256": HEX, "repository": REPO_ID, "requester": {"name": NAME | null,
     "key": "drkit-ed25519:..." | null, "os_user": U, "host": H}, "reason": TEXT,
     "nonce": HEX, "created": ISO, "expires": ISO, "quorum": N}

The stored object wraps it: ``{"format": "drkit-approval-request-object", "version": 1,
"request": DOC, "plan": PLAN, "requester_signature": B64 | null}``. The requester signs
``domain_hash("drkit/approval-request/v1", canonical_json(DOC))``.

Decision::

    {"format": "drkit-approval-decision", "version": 1, "decision": {"request": ID,
     "verdict": "approve" | "deny", "name": NAME, "key": "drkit-ed25519:...",
     "reason": TEXT, "at": ISO, "os_user": U, "host": H}, "signature": B64}

signed over ``domain_hash("drkit/approval-decision/v1", canonical_json(decision))``, so a
signature made for anything else (an enrolment, a checkpoint, another request) never
counts as an approval.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature

from drkit.approval.keys import ApproverKey
from drkit.canonical import canonical_hash, canonical_json, domain_hash
from drkit.clock import parse_iso, utc_iso
from drkit.errors import ApprovalRequired, InputError, IntegrityError, ObjectExists, ObjectNotFound
from drkit.repo.encoding import b64d, b64e, parse_ed25519
from drkit.storage.base import Store

REQUEST_FORMAT = "drkit-approval-request"
REQUEST_OBJECT_FORMAT = "drkit-approval-request-object"
DECISION_FORMAT = "drkit-approval-decision"
REQUEST_DOMAIN = "drkit/approval-request/v1"
DECISION_DOMAIN = "drkit/approval-decision/v1"
REQUESTS_PREFIX = "approval/requests/"
DECISIONS_PREFIX = "approval/decisions/"
EXECUTED_PREFIX = "approval/executed/"
RESULTS_PREFIX = "approval/results/"
_ID_RE = re.compile(r"^[0-9a-f]{64}$")


def check_id(request_id: str, *, allow_prefix: bool = False) -> str:
    text = request_id.strip().lower()
    if _ID_RE.match(text) or (allow_prefix and re.fullmatch(r"[0-9a-f]{6,64}", text)):
        return text
    what = ("a request id: 64 hex digits, or a unique prefix of 6 or more (as "
            "'drkit requests' shows)") if allow_prefix else "a request id (64 hex digits)"
    raise InputError(f"{request_id!r} is not {what}")


@dataclass(frozen=True)
class ApprovalRequest:
    id: str
    doc: dict[str, Any]
    plan: Any
    requester_signature: str | None

    @property
    def operation(self) -> str:
        return str(self.doc["operation"])

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.doc["params"])

    @property
    def plan_sha256(self) -> str:
        return str(self.doc["plan_sha256"])

    @property
    def created(self) -> datetime:
        return parse_iso(self.doc["created"])

    @property
    def expires(self) -> datetime:
        return parse_iso(self.doc["expires"])

    @property
    def requester(self) -> dict[str, Any]:
        return dict(self.doc["requester"])

    @property
    def requester_name(self) -> str | None:
        """The enrolled person who signed the request, or None for an unsigned one."""
        name = self.requester.get("name")
        return str(name) if name and self.requester_signature else None

    def to_object(self) -> dict[str, Any]:
        return {"format": REQUEST_OBJECT_FORMAT, "version": 1, "request": self.doc,
                "plan": self.plan, "requester_signature": self.requester_signature}


def new_request(*, operation: str, params: dict[str, Any], plan: Any, repository_id: str,
                requester: ApproverKey | None, actor: dict[str, str], reason: str,
                now: datetime, expires_in: timedelta, quorum: int) -> ApprovalRequest:
    if not reason.strip():
        raise InputError("a request needs --reason: say why this must happen")
    doc = {
        "format": REQUEST_FORMAT, "version": 1, "operation": operation,
        "params": params, "plan_sha256": canonical_hash(plan), "repository": repository_id,
        "requester": {"name": requester.name if requester else None,
                      "key": requester.public_text if requester else None, **actor},
        "reason": reason.strip(), "nonce": secrets.token_hex(16),
        "created": utc_iso(now), "expires": utc_iso(now + expires_in), "quorum": quorum,
    }
    # Round-trip through JSON so that what is hashed is exactly what is stored.
    doc = json.loads(canonical_json(doc))
    signature = None
    if requester is not None:
        signature = b64e(requester.private.sign(domain_hash(REQUEST_DOMAIN,
                                                            canonical_json(doc))))
    return ApprovalRequest(canonical_hash(doc), doc, json.loads(canonical_json(plan)),
                           signature)


def put_request(store: Store, request: ApprovalRequest) -> None:
    store.put(f"{REQUESTS_PREFIX}{request.id}.json", canonical_json(request.to_object()))


def parse_request(data: bytes, request_id: str, *, where: str) -> ApprovalRequest:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise IntegrityError(f"{where}: request is not JSON") from None
    if not isinstance(obj, dict) or obj.get("format") != REQUEST_OBJECT_FORMAT \
            or obj.get("version") != 1:
        raise IntegrityError(f"{where}: not a drkit approval request")
    doc = obj.get("request")
    if not isinstance(doc, dict) or doc.get("format") != REQUEST_FORMAT:
        raise IntegrityError(f"{where}: malformed approval request")
    if canonical_hash(doc) != request_id:
        raise IntegrityError(f"{where}: request content does not match its id (edited)")
    plan = obj.get("plan")
    if canonical_hash(plan) != doc.get("plan_sha256"):
        raise IntegrityError(f"{where}: stored plan does not match the request's plan hash")
    for field in ("operation", "params", "requester", "created", "expires", "repository"):
        if field not in doc:
            raise IntegrityError(f"{where}: request has no {field!r}")
    signature = obj.get("requester_signature")
    if signature is not None:
        try:
            key = parse_ed25519(str(doc["requester"].get("key")))
            key.verify(b64d(str(signature)), domain_hash(REQUEST_DOMAIN, canonical_json(doc)))
        except (ValueError, InvalidSignature, AttributeError):
            raise IntegrityError(f"{where}: requester signature does not verify") from None
    return ApprovalRequest(request_id, doc, plan, signature)


def resolve_id(store: Store, text: str) -> str:
    """A full id, or a unique prefix of one (at least 6 hex digits)."""
    prefix = check_id(text, allow_prefix=True)
    if len(prefix) == 64:
        return prefix
    matches = [i for i in list_request_ids(store) if i.startswith(prefix)]
    if not matches:
        raise InputError(f"{store.url}: no approval request {text!r}")
    if len(matches) > 1:
        raise InputError(f"{store.url}: {text!r} matches {len(matches)} requests; give more "
                         "digits")
    return matches[0]


def load_request(store: Store, request_id: str) -> ApprovalRequest:
    request_id = check_id(request_id)
    key = f"{REQUESTS_PREFIX}{request_id}.json"
    try:
        data = store.get(key)
    except ObjectNotFound:
        raise InputError(f"{store.url}: no approval request {request_id}") from None
    return parse_request(data, request_id, where=f"{store.url}: {key}")


def list_request_ids(store: Store) -> list[str]:
    ids = []
    for info in store.list(REQUESTS_PREFIX):
        name = info.key[len(REQUESTS_PREFIX):]
        if name.endswith(".json") and _ID_RE.match(name[:-5]):
            ids.append(name[:-5])
    return ids


# -- decisions --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    key: str  # object key
    body: dict[str, Any]
    signature: str

    @property
    def verdict(self) -> str:
        return str(self.body.get("verdict"))


def sign_decision(request_id: str, verdict: str, signer: ApproverKey, *, reason: str,
                  now: datetime, actor: dict[str, str]) -> dict[str, Any]:
    if verdict not in ("approve", "deny"):
        raise InputError(f"unknown verdict {verdict!r}")
    body = {"request": request_id, "verdict": verdict, "name": signer.name,
            "key": signer.public_text, "reason": reason, "at": utc_iso(now), **actor}
    body = json.loads(canonical_json(body))
    signature = signer.private.sign(domain_hash(DECISION_DOMAIN, canonical_json(body)))
    return {"format": DECISION_FORMAT, "version": 1, "decision": body,
            "signature": b64e(signature)}


def put_decision(store: Store, request_id: str, document: dict[str, Any]) -> str:
    data = canonical_json(document)
    key = f"{DECISIONS_PREFIX}{request_id}/{hashlib.sha256(data).hexdigest()}.json"
    try:
        store.put(key, data)
    except ObjectExists:
        raise InputError("this exact decision is already recorded") from None
    return key


def load_decisions(store: Store, request_id: str) -> list[tuple[str, bytes]]:
    """Raw decision objects for a request (verification is the gate's job)."""
    return [(info.key, store.get(info.key))
            for info in store.list(f"{DECISIONS_PREFIX}{request_id}/")]


def verify_decision(key: str, data: bytes, request_id: str) -> Decision:
    """Parse one decision and check its signature against the key it names; raises
    IntegrityError naming the object otherwise (the gate turns that into a finding)."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise IntegrityError(f"{key}: decision is not JSON") from None
    if not isinstance(obj, dict) or obj.get("format") != DECISION_FORMAT \
            or obj.get("version") != 1 or not isinstance(obj.get("decision"), dict):
        raise IntegrityError(f"{key}: not a drkit approval decision")
    body = obj["decision"]
    if body.get("request") != request_id:
        raise IntegrityError(f"{key}: decision is for another request")
    try:
        public = parse_ed25519(str(body.get("key")))
        public.verify(b64d(str(obj.get("signature"))),
                      domain_hash(DECISION_DOMAIN, canonical_json(body)))
    except (ValueError, InvalidSignature):
        raise IntegrityError(f"{key}: forged or damaged signature (claims to be "
                             f"{body.get('name')!r}); not counted") from None
    return Decision(key, body, str(obj["signature"]))


# -- single use ---------------------------------------------------------------------------------
def claim_execution(store: Store, request_id: str, *, now: datetime,
                    actor: dict[str, str]) -> None:
    """Create-only claim written before the operation runs: a request runs at most once,
    even when two hosts execute it at the same moment."""
    try:
        store.put(f"{EXECUTED_PREFIX}{request_id}.json",
                  canonical_json({"request": request_id, "started": utc_iso(now), **actor}))
    except ObjectExists:
        raise ApprovalRequired(f"request {request_id[:12]} was already executed; approvals "
                               "are single use: file a new request") from None


def load_execution(store: Store, request_id: str) -> dict[str, Any] | None:
    try:
        data = store.get(f"{EXECUTED_PREFIX}{request_id}.json")
    except ObjectNotFound:
        return None
    try:
        out = json.loads(data)
    except ValueError:
        return {"request": request_id, "started": None, "damaged": True}
    return out if isinstance(out, dict) else {"request": request_id}


def put_result(store: Store, request_id: str, result: dict[str, Any]) -> None:
    # The first result stays; a second run was already refused by the claim.
    with contextlib.suppress(ObjectExists):
        store.put(f"{RESULTS_PREFIX}{request_id}.json", canonical_json(result))


def load_result(store: Store, request_id: str) -> dict[str, Any] | None:
    try:
        out = json.loads(store.get(f"{RESULTS_PREFIX}{request_id}.json"))
    except (ObjectNotFound, ValueError):
        return None
    return out if isinstance(out, dict) else None
