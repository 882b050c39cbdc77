"""Policies as people actually have them: API responses and whole-account exports.

Besides bare policy documents, ``drkit lint`` reads what the clouds' own tools print:

* ``aws iam get-policy-version`` (``{"PolicyVersion": {"Document": ...}}``),
  ``get-role-policy`` / ``get-user-policy`` / ``get-group-policy`` (``PolicyDocument``) and
  ``get-role`` (``Role.AssumeRolePolicyDocument``);
* ``aws iam get-account-authorization-details``: every user, group and role with their
  inline and attached managed policies, role trust policies, and every managed policy's
  default version — linted document by document and read into a principal model;
* Tencent Cloud CAM ``GetPolicy`` / ``GetPolicyVersion`` / ``GetRole`` / ``DescribeRoleList``
  responses, as ``tccli`` prints them or wrapped in ``{"Response": ...}`` as the API returns
  them, and a folder of such responses (a *CAM bundle*, see :func:`read_cam_bundle`).

A document may be embedded JSON (what the AWS CLI prints), its JSON text (CAM, AWS
``GetPolicy``) or URL-encoded JSON text (what the IAM API itself returns). Every
structural problem of an export is an :class:`ExportError` naming the place in the file
(``RoleDetailList[2] (ops-admin).AttachedManagedPolicies[0]``), never a crash.
"""

from __future__ import annotations

import contextlib
import json
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from drkit.errors import InputError
from drkit.lint.model import Policy, Problem, _statement_lines, parse_policy
from drkit.lint.principals import Principal

JSONPath = tuple[str | int, ...]

#: Files whose presence makes a folder a CAM bundle.
CAM_BUNDLE_MARKERS = ("ListUsers.json", "DescribeRoleList.json")
AWS_EXPORT_KEYS = ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies")


class ExportError(Exception):
    """A structural problem of an export, with the place in the file it concerns."""

    def __init__(self, message: str, line: int = 1, path: JSONPath | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.path = path  # where in the file, for the line number


@dataclass
class LoadedFile:
    """What one JSON file holds: policy documents to lint, and principals if it is an export.

    ``policies`` holds one Policy for a bare document, a document in an API response, or a
    file that is not a policy at all (then ``recognised`` is False and the engine skips it
    in folder mode); one per document for a multi-document export.
    """

    file: str
    policies: list[Policy]
    recognised: bool = True
    input_error: Problem | None = None
    principals: list[Principal] | None = None  # set for an account export
    by_locator: dict[str, Policy] = field(default_factory=dict)

    @property
    def single(self) -> Policy:
        return self.policies[0]


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null", int: "a number", float: "a number"}.get(type(value),
                                                                        type(value).__name__)


def _where(path: JSONPath, names: dict[JSONPath, str] | None = None) -> str:
    """``RoleDetailList[2] (ops-admin).AttachedManagedPolicies[0]`` for a JSON path."""
    out = ""
    for depth, part in enumerate(path):
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        name = (names or {}).get(path[: depth + 1])
        if name:
            out += f" ({name})"
    return out or "the top level"


class _Reader:
    """Typed access to a parsed export; every wrong type is an ExportError with its place."""

    def __init__(self, names: dict[JSONPath, str] | None = None) -> None:
        self.names: dict[JSONPath, str] = names if names is not None else {}

    def fail(self, path: JSONPath, message: str) -> ExportError:
        return ExportError(f"{_where(path, self.names)}: {message}", path=path)

    def get(self, obj: dict[str, Any], path: JSONPath, key: str, kind: type,
            required: bool = True) -> Any:
        if key not in obj or obj[key] is None:
            if required:
                raise self.fail(path, f"missing {key!r}")
            return kind()
        value = obj[key]
        if kind is str and not isinstance(value, str):
            raise self.fail(path + (key,), f"must be a string, got {_type_name(value)}")
        if kind is list and not isinstance(value, list):
            raise self.fail(path + (key,), f"must be an array, got {_type_name(value)}")
        if kind is dict and not isinstance(value, dict):
            raise self.fail(path + (key,), f"must be an object, got {_type_name(value)}")
        return value

    def objects(self, obj: dict[str, Any], path: JSONPath, key: str,
                required: bool = True) -> list[tuple[JSONPath, dict[str, Any]]]:
        items = self.get(obj, path, key, list, required)
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise self.fail(path + (key, i), f"must be an object, got {_type_name(item)}")
            out.append((path + (key, i), item))
        return out

    def doc(self, path: JSONPath, value: Any, locator: str | None) -> _Doc:
        return _Doc(path, value, locator, _where(path, self.names))

    def name(self, obj: dict[str, Any], path: JSONPath, key: str) -> str:
        value = obj.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value:
            shown = "missing" if value is None else f"got {_type_name(value)}"
            raise self.fail(path, f"{key!r} must be a non-empty string ({shown})")
        self.names[path] = value
        return value


# --- where things are in the text (for line numbers) -----------------------------------

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def value_spans(text: str, paths: Iterable[JSONPath]) -> dict[JSONPath, tuple[int, int]]:
    """Start and end offsets in ``text`` of the JSON values at ``paths``, in one pass.

    Only containers on the way to a wanted value are entered; everything else is skipped by
    the C decoder, so the cost is about one more parse of the text.
    """
    trie: dict[Any, Any] = {}
    for path in paths:
        node = trie
        for part in path:
            node = node.setdefault(part, {})
        node[None] = True
    spans: dict[JSONPath, tuple[int, int]] = {}

    def skip(pos: int) -> int:
        m = _WS.match(text, pos)
        return m.end() if m else pos

    def walk(pos: int, node: dict[Any, Any], prefix: JSONPath) -> int:
        children = [k for k in node if k is not None]
        if None in node or not children or text[pos] not in "{[":
            _, end = _DECODER.raw_decode(text, pos)
            if None in node:
                spans[prefix] = (pos, end)
            return end
        opener = text[pos]
        closer = "}" if opener == "{" else "]"
        pos = skip(pos + 1)
        index = 0
        while text[pos] != closer:
            if opener == "{":
                key, pos = _DECODER.raw_decode(text, pos)
                pos = skip(skip(pos) + 1)  # the colon
            else:
                key = index
            child = node.get(key)
            if child is not None:
                pos = walk(pos, child, prefix + (key,))
            else:
                _, pos = _DECODER.raw_decode(text, pos)
            pos = skip(pos)
            if text[pos] == ",":
                pos = skip(pos + 1)
            index += 1
        return pos + 1

    # Line numbers are a convenience: a document the walk does not find keeps line 1.
    with contextlib.suppress(ValueError, IndexError):
        walk(skip(0), trie, ())
    return spans


class _Lines:
    """Line numbers of increasing offsets, counted incrementally (linear in the text)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1

    def at(self, offset: int) -> int:
        if offset < self.pos:
            self.pos, self.line = 0, 1
        self.line += self.text.count("\n", self.pos, offset)
        self.pos = offset
        return self.line


# --- documents --------------------------------------------------------------------------

@dataclass
class _Doc:
    """A policy document found at ``path`` in a file, with a locator for reports."""

    path: JSONPath
    value: Any
    locator: str | None  # None: the file holds one document and is named as it is
    where: str = ""  # the path for messages, with the names of the entries on the way


def _document(text: str, shown: str, doc: _Doc, span: tuple[int, int] | None,
              lines: _Lines) -> Policy:
    """Parse one embedded document; line numbers point into the export file."""
    file = f"{shown}#{doc.locator}" if doc.locator else shown
    place = doc.where or _where(doc.path)
    value = doc.value
    if isinstance(value, str):
        raw = value.strip()
        if not raw.startswith("{") and "%" in raw:
            raw = unquote(raw)  # the IAM API returns documents URL-encoded (RFC 3986)
        policy = parse_policy(raw, file)
        if policy.input_error is not None:
            raise ExportError(f"{place}: the policy document text is "
                              f"{policy.input_error.message}",
                              lines.at(span[0]) if span else 1)
        base = lines.at(span[0]) if span else 1
        policy._lines = {st.index: base for st in policy.statements}
        return policy
    if not isinstance(value, dict):
        raise ExportError(f"{place}: must be a policy document (an object or its JSON text), "
                          f"got {_type_name(value)}", lines.at(span[0]) if span else 1)
    if span is not None:
        policy = parse_policy(text[span[0]:span[1]], file)
        base = lines.at(span[0])
        policy._lines = {i: base + n - 1 for i, n in _statement_lines(policy.text).items()}
    else:  # pragma: no cover - the walker finds every path json.loads found
        policy = parse_policy(json.dumps(value, indent=2), file)
        policy._lines = {}
    return policy


def _unwrap_response(data: dict[str, Any]) -> dict[str, Any]:
    """A Tencent Cloud API response body without its ``Response`` wrapper (tccli strips it)."""
    inner = data.get("Response")
    if isinstance(inner, dict) and set(data) == {"Response"}:
        return inner
    return data


def _response_error(data: dict[str, Any]) -> str | None:
    error = _unwrap_response(data).get("Error")
    if isinstance(error, dict) and ("Code" in error or "Message" in error):
        return (f"an error response of the cloud API, not an export: "
                f"{error.get('Code', '')}: {error.get('Message', '')}".rstrip(": "))
    return None


def _single_documents(data: dict[str, Any]) -> list[_Doc] | None:
    """Documents of a single API response, or None when the shape is not one we know."""
    wrapped = "Response" in data and _unwrap_response(data) is not data
    body = _unwrap_response(data)
    at: JSONPath = ("Response",) if wrapped else ()
    version = body.get("PolicyVersion")
    if isinstance(version, dict) and "Document" in version:
        return [_Doc(at + ("PolicyVersion", "Document"), version["Document"], None)]
    role = body.get("Role")
    if isinstance(role, dict) and "AssumeRolePolicyDocument" in role:
        return [_Doc(at + ("Role", "AssumeRolePolicyDocument"),
                     role["AssumeRolePolicyDocument"], None)]
    info = body.get("RoleInfo")
    if isinstance(info, dict) and "PolicyDocument" in info:
        return [_Doc(at + ("RoleInfo", "PolicyDocument"), info["PolicyDocument"], None)]
    if "PolicyDocument" in body:
        return [_Doc(at + ("PolicyDocument",), body["PolicyDocument"], None)]
    return _role_list(body, at)


def _role_list(body: dict[str, Any], at: JSONPath) -> list[_Doc] | None:
    """Trust policies of a CAM ``DescribeRoleList`` response (one page)."""
    roles = body.get("List")
    if not (isinstance(roles, list) and roles
            and all(isinstance(r, dict) and "RoleName" in r for r in roles)):
        return None
    reader = _Reader()
    out = []
    for path, role_info in reader.objects(body, at, "List"):
        name = reader.name(role_info, path, "RoleName")
        out.append(reader.doc(path + ("PolicyDocument",),
                              reader.get(role_info, path, "PolicyDocument", object),
                              f"role/{name}/trust"))
    return out


def _role_pages(data: list[Any]) -> list[_Doc] | None:
    """Trust policies of several ``DescribeRoleList`` pages saved as one JSON array."""
    out: list[_Doc] = []
    for n, page in enumerate(data):
        if not isinstance(page, dict):
            return None
        body = _unwrap_response(page)
        found = _role_list(body, (n, "Response") if body is not page else (n,))
        if found is None:
            return None
        out.extend(found)
    return out or None


def read_file(text: str, shown: str) -> LoadedFile:
    """Everything to lint in one JSON file's ``text``; structural problems are input errors."""
    policy = parse_policy(text, shown)
    if policy.input_error is not None and policy.input_error.message.endswith("an array"):
        # Several pages of a CAM DescribeRoleList saved as one array, or not a policy at all.
        try:
            docs = _role_pages(json.loads(text))
        except ExportError as exc:
            return _failed(shown, policy, exc, text)
        if docs is not None:
            policy.input_error = None
            return _documents(text, shown, policy, docs)
    if policy.input_error is not None or policy.is_policy_document:
        return LoadedFile(shown, [policy], recognised=policy.is_policy_document,
                          input_error=policy.input_error)
    data = json.loads(text)  # parse_policy succeeded, so this cannot fail
    if not isinstance(data, dict):
        return LoadedFile(shown, [policy], recognised=False)
    try:
        error = _response_error(data)
        if error:
            raise ExportError(error)
        if any(key in data for key in AWS_EXPORT_KEYS):
            return _aws_account_export(text, shown, data)
        docs = _single_documents(data)
        if docs is None:
            return LoadedFile(shown, [policy], recognised=False)
    except ExportError as exc:
        return _failed(shown, policy, exc, text)
    return _documents(text, shown, policy, docs)


def _documents(text: str, shown: str, policy: Policy, docs: list[_Doc]) -> LoadedFile:
    """Parse the documents found in one file; a structural problem fails the whole file."""
    try:
        lines = _Lines(text)
        spans = value_spans(text, [d.path for d in docs])
        policies = [_document(text, shown, d, spans.get(d.path), lines) for d in docs]
    except ExportError as exc:
        return _failed(shown, policy, exc, text)
    return LoadedFile(shown, policies,
                      by_locator={d.locator: p for d, p in zip(docs, policies, strict=True)
                                  if d.locator})


def _failed(shown: str, policy: Policy, exc: ExportError, text: str = "") -> LoadedFile:
    line = exc.line
    if exc.path and text:
        span = value_spans(text, [exc.path]).get(exc.path)
        line = _Lines(text).at(span[0]) if span else line
    problem = Problem(exc.message, line=line)
    policy.input_error = problem
    policy.parsed = False
    return LoadedFile(shown, [policy], input_error=problem)


# --- aws iam get-account-authorization-details -------------------------------------------

def _aws_account_export(text: str, shown: str, data: dict[str, Any]) -> LoadedFile:
    reader = _Reader()
    if data.get("IsTruncated") is True:
        raise ExportError("IsTruncated is true: this is one page of the listing; export with "
                          "'aws iam get-account-authorization-details', which fetches every "
                          "page")
    docs: list[_Doc] = []
    # Managed policies: the default version of each is what is in force.
    managed: dict[str, int] = {}  # ARN -> index into docs
    names: dict[str, int] = {}
    policy_entries = reader.objects(data, (), "Policies", required=False)
    for path, entry in policy_entries:
        name = reader.name(entry, path, "PolicyName")
        names[name] = names.get(name, 0) + 1
    for path, entry in policy_entries:
        arn = reader.name(entry, path, "Arn")
        name = reader.name(entry, path, "PolicyName")
        default = [(p, v) for p, v in reader.objects(entry, path, "PolicyVersionList")
                   if v.get("IsDefaultVersion") is True]
        if len(default) != 1:
            raise reader.fail(path + ("PolicyVersionList",),
                              f"needs exactly one version with IsDefaultVersion true, "
                              f"found {len(default)}")
        vpath, version = default[0]
        locator = f"policy/{name}" if names[name] == 1 else f"policy/{arn}"
        managed[arn] = len(docs)
        docs.append(reader.doc(vpath + ("Document",),
                               reader.get(version, vpath, "Document", object), locator))
    principals: list[tuple[str, str, str, list[int], list[int], list[str]]] = []
    group_arns: dict[str, str] = {}
    for list_key, kind, name_key, inline_key in (
            ("GroupDetailList", "group", "GroupName", "GroupPolicyList"),
            ("UserDetailList", "user", "UserName", "UserPolicyList"),
            ("RoleDetailList", "role", "RoleName", "RolePolicyList")):
        for path, entry in reader.objects(data, (), list_key, required=False):
            name = reader.name(entry, path, name_key)
            arn = reader.get(entry, path, "Arn", str)
            policies: list[int] = []
            for ipath, inline in reader.objects(entry, path, inline_key, required=False):
                pname = reader.name(inline, ipath, "PolicyName")
                policies.append(len(docs))
                docs.append(reader.doc(ipath + ("PolicyDocument",),
                                       reader.get(inline, ipath, "PolicyDocument", object),
                                       f"{kind}/{name}/inline/{pname}"))
            for apath, attached in reader.objects(entry, path, "AttachedManagedPolicies",
                                                  required=False):
                parn = reader.get(attached, apath, "PolicyArn", str)
                if parn not in managed:
                    raise reader.fail(apath, f"policy {parn} is attached but not in the "
                                             "export's Policies (export without --filter, "
                                             "or with LocalManagedPolicy and "
                                             "AWSManagedPolicy)")
                policies.append(managed[parn])
            trust: list[int] = []
            if kind == "role":
                trust.append(len(docs))
                docs.append(reader.doc(path + ("AssumeRolePolicyDocument",),
                                       reader.get(entry, path, "AssumeRolePolicyDocument",
                                                  object),
                                       f"role/{name}/trust"))
            groups: list[str] = []
            if kind == "user":
                for i, group in enumerate(reader.get(entry, path, "GroupList", list,
                                                     required=False)):
                    if not isinstance(group, str) or group not in group_arns:
                        shown_group = group if isinstance(group, str) else _type_name(group)
                        raise reader.fail(path + ("GroupList", i),
                                          f"group {shown_group!r} is not in the export's "
                                          "GroupDetailList")
                    groups.append(group_arns[group])
            if kind == "group":
                group_arns[name] = arn
            principals.append((kind, arn, name, policies, trust, groups))
    lines = _Lines(text)
    spans = value_spans(text, [d.path for d in docs])
    order = sorted(range(len(docs)), key=lambda i: spans.get(docs[i].path, (0, 0))[0])
    parsed: dict[int, Policy] = {}
    for i in order:  # in file order, so line counting stays linear
        parsed[i] = _document(text, shown, docs[i], spans.get(docs[i].path), lines)
    out = [parsed[i] for i in range(len(docs))]
    if not out:
        raise ExportError("an account export with no users, groups, roles or policies")
    model = [Principal(name=arn, type=kind, arn=arn, policies=[out[i] for i in pol],
                       trust=[out[i] for i in tr], groups=tuple(groups))
             for kind, arn, _name, pol, tr, groups in principals]
    return LoadedFile(shown, out, principals=model,
                      by_locator={d.locator: out[i] for i, d in enumerate(docs) if d.locator})


# --- Tencent Cloud CAM bundle ------------------------------------------------------------

def is_cam_bundle(folder: Path) -> bool:
    return any((folder / marker).is_file() for marker in CAM_BUNDLE_MARKERS)


@dataclass
class _Response:
    """One tccli/API response file of a bundle, read as a JSON object (pages merged)."""

    shown: str
    items: list[tuple[JSONPath, dict[str, Any]]]


def read_cam_bundle(folder: Path, load: Callable[[Path], LoadedFile],
                    display: Callable[[Path], str]) -> list[Principal]:
    """Principals of a folder of CAM API responses, as ``tccli cam ...`` prints them.

    Layout (every file one response, or a JSON array of pages of it)::

        GetUserAppId.json                      tccli cam GetUserAppId
        ListUsers.json                         tccli cam ListUsers
        ListGroups.json                        tccli cam ListGroups          (optional)
        DescribeRoleList.json                  tccli cam DescribeRoleList
        users/<Name>/ListAttachedUserPolicies.json    --TargetUin <Uin>
        users/<Name>/ListGroupsForUser.json           --SubUin <Uin>
        groups/<GroupName>/ListAttachedGroupPolicies.json  --TargetGroupId <GroupId>
        roles/<RoleName>/ListAttachedRolePolicies.json     --RoleName <RoleName>
        policies/<PolicyId>.json               tccli cam GetPolicy --PolicyId <PolicyId>

    Principals are named as CAM names them in policies: ``qcs::cam::uin/<owner>:uin/<uin>``,
    ``...:groupid/<id>``, ``...:roleName/<name>``. A missing file, a wrong type or an
    attached policy without its ``policies/<id>.json`` raises InputError naming the file.
    """
    def read(rel: str, list_key: str | None, required: bool = True) -> _Response | None:
        path = folder / rel
        shown = display(path)
        if not path.is_file():
            if required:
                raise InputError(f"{display(folder)}: CAM bundle is missing {rel}")
            return None
        try:
            data = json.loads(path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise InputError(f"{shown}: not a readable JSON response: "
                             f"{type(exc).__name__}") from None
        pages = data if isinstance(data, list) else [data]
        reader = _Reader()
        items: list[tuple[JSONPath, dict[str, Any]]] = []
        total = None
        for n, page in enumerate(pages):
            at: JSONPath = (n,) if isinstance(data, list) else ()
            if not isinstance(page, dict):
                raise InputError(f"{shown}: {_where(at)}: must be an object, "
                                 f"got {_type_name(page)}")
            error = _response_error(page)
            if error:
                raise InputError(f"{shown}: {error}")
            if "Response" in page and _unwrap_response(page) is not page:
                at += ("Response",)
            body = _unwrap_response(page)
            if list_key is None:
                items.append((at, body))
                continue
            try:
                items.extend(reader.objects(body, at, list_key))
            except ExportError as exc:
                raise InputError(f"{shown}: {exc.message}") from None
            if isinstance(body.get("TotalNum"), int):
                total = body["TotalNum"]
        if total is not None and len(items) < total:
            raise InputError(f"{shown}: holds {len(items)} of TotalNum {total} entries: save "
                             "every page (a JSON array of the responses)")
        return _Response(shown, items)

    def text_of(resp: _Response, path: JSONPath, item: dict[str, Any], key: str) -> str:
        try:
            return _Reader().name(item, path, key)
        except ExportError as exc:
            raise InputError(f"{resp.shown}: {exc.message}") from None

    app = read("GetUserAppId.json", None)
    assert app is not None  # required
    (app_path, app_body), = app.items
    owner = text_of(app, app_path, app_body, "OwnerUin")
    prefix = f"qcs::cam::uin/{owner}:"
    policy_cache: dict[str, Policy] = {}

    def attached(rel: str, key: str, who: str) -> list[Policy]:
        resp = read(rel, key)
        assert resp is not None
        out = []
        for path, item in resp.items:
            policy_id = text_of(resp, path, item, "PolicyId")
            policy = policy_cache.get(policy_id)
            if policy is None:
                file = folder / "policies" / f"{policy_id}.json"
                if not file.is_file():
                    raise InputError(f"{resp.shown}: {_where(path)}: policy {policy_id} "
                                     f"({item.get('PolicyName', '?')}) is attached to {who} "
                                     f"but policies/{policy_id}.json is not in the bundle")
                loaded = load(file)
                if loaded.input_error is not None:
                    raise InputError(f"{loaded.file}: {loaded.input_error.message}")
                if not loaded.recognised or len(loaded.policies) != 1:
                    raise InputError(f"{loaded.file}: not a GetPolicy response")
                policy = policy_cache[policy_id] = loaded.single
            out.append(policy)
        return out

    principals: list[Principal] = []
    groups: dict[str, str] = {}  # group name -> principal name
    listed = read("ListGroups.json", "GroupInfo", required=False)
    if listed is not None:
        for path, item in listed.items:
            groups[text_of(listed, path, item, "GroupName")] = (
                prefix + "groupid/" + text_of(listed, path, item, "GroupId"))
    users = read("ListUsers.json", "Data", required=False)
    for path, item in users.items if users is not None else []:
        assert users is not None
        name = text_of(users, path, item, "Name")
        uin = text_of(users, path, item, "Uin")
        memberships = read(f"users/{name}/ListGroupsForUser.json", "GroupInfo")
        assert memberships is not None
        member_of = []
        for gpath, group in memberships.items:
            gname = text_of(memberships, gpath, group, "GroupName")
            groups.setdefault(gname, prefix + "groupid/"
                              + text_of(memberships, gpath, group, "GroupId"))
            member_of.append(groups[gname])
        principals.append(Principal(
            name=prefix + "uin/" + uin, type="user", arn=prefix + "uin/" + uin,
            policies=attached(f"users/{name}/ListAttachedUserPolicies.json", "List",
                              f"user {name}"),
            groups=tuple(member_of)))
    for gname, gprincipal in sorted(groups.items()):
        principals.append(Principal(
            name=gprincipal, type="group", arn=gprincipal,
            policies=attached(f"groups/{gname}/ListAttachedGroupPolicies.json", "List",
                              f"group {gname}")))
    roles_file = folder / "DescribeRoleList.json"
    if roles_file.is_file():
        loaded = load(roles_file)
        if loaded.input_error is not None:
            raise InputError(f"{loaded.file}: {loaded.input_error.message}")
        roles = read("DescribeRoleList.json", "List")
        assert roles is not None
        for path, item in roles.items:
            name = text_of(roles, path, item, "RoleName")
            trust = loaded.by_locator.get(f"role/{name}/trust")
            arn = prefix + "roleName/" + name
            principals.append(Principal(
                name=arn, type="role", arn=arn,
                policies=attached(f"roles/{name}/ListAttachedRolePolicies.json", "List",
                                  f"role {name}"),
                trust=[trust] if trust is not None else []))
    return principals


# --- exports named in a principals file --------------------------------------------------

def export_paths(principals_file: Path, shown: str) -> list[Path]:
    """Paths listed under ``exports = [...]`` in a principals file (relative to it)."""
    try:
        data = tomllib.loads(principals_file.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return []  # load_principals reports an unreadable file
    raw = data.get("exports")
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise InputError(f"{shown}: exports: must be a list of strings, got "
                         f"{_type_name(raw)}")
    out = []
    for rel in raw:
        path = principals_file.parent / rel
        try:
            found = path.exists()
        except (OSError, ValueError):
            found = False
        if not found:
            raise InputError(f"{shown}: exports: {rel!r} not found")
        out.append(path)
    return out


def export_line(principals_file: Path) -> int:
    """The line of the ``exports`` key in a principals file (where its principals come from)."""
    try:
        for number, line in enumerate(principals_file.read_text("utf-8").splitlines(), 1):
            if line.replace(" ", "").startswith("exports="):
                return number
    except (OSError, UnicodeDecodeError):
        pass
    return 1
