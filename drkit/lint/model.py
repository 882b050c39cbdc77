"""One policy model for AWS IAM and Tencent Cloud CAM documents.

AWS policies use ``Version``/``Statement``/``Effect``/``Action``/``Resource``/``Principal``;
CAM policies use the same words in lower case (COS also returns them capitalised) with
``qcs::service:region:account:resource`` resources and ``qcs::cam::...`` principals.
Parsing never raises: everything wrong with a document becomes a :class:`Problem` that the
``syntax`` rules report, so a malformed file is a finding, not a crash.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import accumulate, repeat
from typing import Any

from drkit.lint.catalog import Catalog, catalog
from drkit.lint.conditions import Clause, Conditions, allow_guard, parse_conditions
from drkit.lint.patterns import matches

AWS_VERSIONS = ("2012-10-17", "2008-10-17")
CAM_VERSIONS = ("2.0",)
_AWS_TOP = {"Version", "Id", "Statement"}
# COS bucket policies may name their principal once, at the top (CAM "Syntax Structure":
# a policy is a version and a statement "and can also contain principal information").
_CAM_TOP = {"version", "statement", "id", "principal"}
_STATEMENT_KEYS = {"sid", "effect", "action", "notaction", "resource", "notresource",
                   "principal", "notprincipal", "condition"}
_ACTION_RE = re.compile(r"^[A-Za-z0-9_\-*?]+:[A-Za-z0-9_\-*?]+$")
# A whole list of actions joined by commas, each "*" or matching _ACTION_RE (no comma or
# newline can occur inside one, so each repetition is exactly one action).
_ACTIONS_RE = re.compile(r"(?:(?:\*|[A-Za-z0-9_\-*?]+:[A-Za-z0-9_\-*?]+),)*")
_QCS_HINT = re.compile(r"qcs::|\"version\"\s*:\s*\"2\.0\"|name/[a-z]+:")


@dataclass(frozen=True)
class Problem:
    """Something structurally wrong with a policy document."""

    message: str
    statement: int | None = None
    line: int | None = None
    severity: str | None = None  # overrides the syntax rule's severity (None: the rule's)


@dataclass
class Statement:
    """One statement, with keys normalised; ``None`` means the key is absent."""

    index: int
    sid: str | None
    effect: str  # "Allow" or "Deny" (anything else is a Problem and the statement is inert)
    actions: tuple[str, ...] | None
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    not_resources: tuple[str, ...] | None
    principals: tuple[str, ...] | None  # flattened principal values, e.g. "*", "arn:aws:..."
    not_principals: tuple[str, ...] | None
    condition: dict[str, Any]
    has_principal_block: bool = False
    # What covers() found, for the catalogue it was asked with: every rule asks about the
    # same few classes, so the patterns are matched once per statement (see _Covered).
    _covered: _Covered | None = field(default=None, repr=False, compare=False)
    _guard: tuple[Catalog, Clause | None] | None = field(default=None, repr=False,
                                                         compare=False)
    _conditions: Conditions | None = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        return self.sid if self.sid else str(self.index)

    @property
    def ref(self) -> int | str:
        """How reports name the statement: its Sid, or its 0-based index without one."""
        return self.sid if self.sid else self.index

    @property
    def is_allow(self) -> bool:
        return self.effect == "Allow"

    @property
    def is_deny(self) -> bool:
        return self.effect == "Deny"

    def action_patterns(self) -> tuple[str, ...]:
        return self.actions if self.actions is not None else (self.not_actions or ())

    def covers(self, cat: Catalog, action_class: str) -> frozenset[str]:
        """Known actions of ``action_class`` this statement applies to (NotAction inverted)."""
        covered = self._covered
        if covered is None or covered.catalog is not cat:
            covered = self._covered = _Covered.of(self, cat)
        found = covered.per_class.get(action_class)
        if found is None:
            # Only NotAction gets here (an Action statement's map names every class).
            found = cat.actions(action_class) - covered.excluded.get(action_class, _NO_ACTIONS)
            covered.per_class[action_class] = found
        return found

    def covers_action(self, action: str) -> bool:
        if self.actions is not None:
            return any(matches(p, action, True) for p in self.actions)
        if self.not_actions is not None:
            return not any(matches(p, action, True) for p in self.not_actions)
        return False

    def covers_resource(self, resource: str) -> bool:
        """Whether the statement applies to a (literal) resource name."""
        if self.resources is not None:
            return any(matches(p, resource) for p in self.resources)
        if self.not_resources is not None:
            return not any(matches(p, resource) for p in self.not_resources)
        # Trust and some resource policies omit Resource: they apply to the resource itself.
        return True

    def all_resources(self) -> bool:
        """Whether the statement applies to every resource (``*`` or NotResource)."""
        if self.resources is not None:
            return "*" in self.resources
        return self.not_resources is not None

    def condition_keys(self) -> Iterator[str]:
        for block in self.condition.values():
            if isinstance(block, dict):
                yield from (str(k) for k in block)

    @property
    def conditions(self) -> Conditions:
        """The Condition block as clauses (see :mod:`drkit.lint.conditions`), parsed once."""
        if self._conditions is None:
            self._conditions = parse_conditions(self.condition)
        return self._conditions

    def guard(self, cat: Catalog) -> Clause | None:
        """The clause of this statement's own condition that guards who or where, if any."""
        if not self.condition:
            return None
        if self._guard is None or self._guard[0] is not cat:
            self._guard = (cat, allow_guard(self.conditions, cat.is_guard_key))
        return self._guard[1]

    def has_guard_condition(self, cat: Catalog) -> bool:
        return self.guard(cat) is not None


_NO_ACTIONS: frozenset[str] = frozenset()


@dataclass
class _Covered:
    """A statement's known actions per class (``per_class``) for one catalogue. For
    NotAction, ``excluded`` holds the actions its patterns match, and a class is filled in
    (the class less those) when it is first asked for."""

    catalog: Catalog
    per_class: dict[str, frozenset[str]]
    excluded: dict[str, frozenset[str]]

    @classmethod
    def of(cls, statement: Statement, cat: Catalog) -> _Covered:
        """Match the statement's patterns once for every class."""
        patterns = (statement.actions if statement.actions is not None
                    else statement.not_actions)
        frozen = cat.covered_by(patterns or ())
        if statement.actions is not None or statement.not_actions is None:
            return cls(cat, {action_class: frozen.get(action_class, _NO_ACTIONS)
                             for action_class in cat.classes}, {})
        return cls(cat, {}, frozen)


@dataclass
class Policy:
    """One policy document from one file."""

    file: str
    cloud: str  # "aws" or "tencent"
    text: str
    kind: str = "identity"  # "identity", "resource" or "trust"
    version: str | None = None
    statements: list[Statement] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    parsed: bool = True
    is_policy_document: bool = True  # False for JSON that is not a policy (package.json...)
    # Set when the file cannot be read as a JSON object at all (not UTF-8, not JSON, empty,
    # an array, nested too deep): an input error of the run, not a finding about a policy.
    input_error: Problem | None = None
    _lines: dict[int, int] | None = None
    # Per-document memo for the checks (deny indexes per action class); see lint/checks.py.
    memo: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    _catalog: Catalog | None = field(default=None, repr=False, compare=False)

    @property
    def catalog(self) -> Catalog:
        # Looked up once per document: the checks ask for it tens of times per statement.
        if self._catalog is None:
            self._catalog = catalog(self.cloud)
        return self._catalog

    def statement_line(self, index: int | None) -> int:
        """1-based line where statement ``index`` starts (1 for the whole document)."""
        if index is None or not self.parsed:
            return 1
        if self._lines is None:
            self._lines = _statement_lines(self.text)
        return self._lines.get(index, 1)


def looks_like_policy(data: Any) -> bool:
    return isinstance(data, dict) and any(
        str(k).lower() in ("statement", "version") for k in data)


def _qcs_hint(text: str) -> bool:
    """Whether ``text`` has a mark of a CAM policy (see ``_QCS_HINT``)."""
    # Each alternative of the regex holds one of these strings; looking for them first
    # spares scanning most AWS policies with the regex.
    return ("qcs::" in text or "name/" in text or '"version"' in text) and (
        _QCS_HINT.search(text) is not None)


def guess_cloud(text: str, data: Any = None) -> str:
    if isinstance(data, dict):
        if "version" in data or "statement" in data:
            return "tencent"
        if "Version" in data and str(data.get("Version")) in CAM_VERSIONS:
            return "tencent"
        if "Statement" in data and _qcs_hint(text):
            return "tencent"
        if "Statement" in data or "Version" in data:
            return "aws"
    return "tencent" if _qcs_hint(text) else "aws"


#: Real policies nest a handful of levels (document, statement, condition, operator, key).
#: Anything deeper is refused before json.loads, whose recursion (and ours after it) a
#: 6 KB file of brackets would otherwise exhaust.
MAX_NESTING = 32
# A JSON string (to skip: brackets inside it do not nest) or a bracket, captured.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|([\[\]{}])')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1, "": 0}


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting in JSON ``text``, ignoring brackets inside strings."""
    found: Iterable[str]
    if "\\" not in text:
        # With no escapes, strings run from one quote to the next: what lies between them
        # is every second piece of a split on quotes, and only its brackets matter.
        found = _NOT_BRACKET.sub("", "".join(text.split('"')[::2]))
    else:
        # findall yields "" for each string and the bracket for each bracket.
        found = _STRING_OR_BRACKET.findall(text)
    # The running sum of +1/-1 steps is the depth, computed without a Python-level loop.
    return max(0, max(accumulate(map(_DEPTH_STEP.__getitem__, found)), default=0))


def may_nest_too_deep(text: str) -> bool:
    """Whether ``text`` holds more opening brackets than :data:`MAX_NESTING` (if not, it
    cannot nest deeper, and :func:`nesting_depth` need not walk it)."""
    return text.count("[") + text.count("{") > MAX_NESTING


def unreadable(file: str, text: str, problem: Problem) -> Policy:
    policy = Policy(file=file, cloud=guess_cloud(text), text=text, parsed=False)
    policy.input_error = problem
    return policy


def parse_policy(text: str, file: str) -> Policy:
    """Parse one policy document; problems are recorded, never raised.

    A file that is not a JSON object at all gets ``input_error``; everything wrong inside a
    JSON object becomes a :class:`Problem` that the syntax rules report.
    """
    if not text.strip():
        return unreadable(file, text, Problem("empty file: not a policy document"))
    if may_nest_too_deep(text) and nesting_depth(text) > MAX_NESTING:
        return unreadable(file, text, Problem(f"nested more than {MAX_NESTING} levels deep: "
                                              "not a policy document"))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return unreadable(file, text, Problem(f"not valid JSON: {exc.msg} at line "
                                              f"{exc.lineno} column {exc.colno}",
                                              line=exc.lineno))
    except (ValueError, RecursionError) as exc:
        # int() refuses more than 4,300 digits: no policy holds such a number.
        reason = "a number too long to read" if isinstance(exc, ValueError) else "too deep"
        return unreadable(file, text, Problem(f"not usable JSON: {reason}"))
    cloud = guess_cloud(text, data)
    policy = Policy(file=file, cloud=cloud, text=text, is_policy_document=looks_like_policy(data))
    if not isinstance(data, dict):
        kind = {list: "an array", str: "a string", type(None): "null",
                bool: "a boolean"}.get(type(data), "a number")
        policy.input_error = Problem(f"a policy must be a JSON object, got {kind}")
        policy.parsed = False
        return policy
    _parse_document(policy, data)
    return policy


def _get(mapping: dict[str, Any], name: str) -> tuple[bool, Any]:
    """Case-insensitive key lookup (CAM documents come in both spellings)."""
    for key, value in mapping.items():
        if key.lower() == name:
            return True, value
    return False, None


def _parse_document(policy: Policy, data: dict[str, Any]) -> None:
    aws = policy.cloud == "aws"
    allowed_top = _AWS_TOP if aws else _CAM_TOP
    for key in data:
        known = key in allowed_top if aws else key.lower() in allowed_top
        if not known:
            policy.problems.append(Problem(f"unknown top-level key {key!r}"))
    found, version = _get(data, "version")
    policy.version = str(version) if found else None
    valid_versions = AWS_VERSIONS if aws else CAM_VERSIONS
    if not found:
        if not aws:
            policy.problems.append(Problem("missing 'version' (CAM policies use \"2.0\")"))
    elif str(version) not in valid_versions:
        policy.problems.append(Problem(f"bad version {version!r}; expected "
                                       f"{' or '.join(valid_versions)}"))
    found, raw_statements = _get(data, "statement")
    if not found:
        policy.problems.append(Problem("missing 'Statement'"))
        return
    if isinstance(raw_statements, dict):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, list) or not raw_statements:
        policy.problems.append(Problem("'Statement' must be a non-empty list of objects"))
        return
    for index, raw in enumerate(raw_statements):
        statement = _parse_statement(policy, index, raw)
        if statement is not None:
            policy.statements.append(statement)
    found, top_principal = (False, None) if aws else _get(data, "principal")
    if found:
        # A top-level principal applies to every statement that names none of its own.
        shared = _principals(policy, None, "principal", top_principal)
        for st in policy.statements:
            if not st.has_principal_block:
                st.principals = shared
                st.has_principal_block = True
    if any(s.has_principal_block for s in policy.statements):
        assume = catalog(policy.cloud).actions("assume_role")
        if any(s.covers_action(a) for s in policy.statements for a in assume
               if s.actions is not None):
            policy.kind = "trust"
        else:
            policy.kind = "resource"
        for st in policy.statements:
            if not st.has_principal_block:
                policy.problems.append(Problem(f"missing Principal in a {policy.kind} policy",
                                               statement=st.index))


def _strings(policy: Policy, index: int | None, key: str, value: Any
             ) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(map(isinstance, value, repeat(str))):
        return tuple(value)
    policy.problems.append(Problem(f"{key} must be a string or a non-empty list of strings",
                                   statement=index))
    return None


def _principals(policy: Policy, index: int | None, key: str, value: Any
                ) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, dict):
        out: list[str] = []
        for kind, inner in value.items():
            vals = _strings(policy, index, f"{key}.{kind}", inner)
            out.extend(vals or ())
        return tuple(out)
    policy.problems.append(Problem(f"{key} must be \"*\" or an object", statement=index))
    return None


def _parse_statement(policy: Policy, index: int, raw: Any) -> Statement | None:
    aws = policy.cloud == "aws"
    if not isinstance(raw, dict):
        policy.problems.append(Problem("a statement must be an object", statement=index))
        return None
    # Keys by lower case, the first spelling winning (as a case-insensitive lookup would).
    fields: dict[str, Any] = {}
    for key, value in raw.items():
        low = key.lower()
        if low not in _STATEMENT_KEYS or (aws and key[0].islower()):
            policy.problems.append(Problem(f"unknown statement key {key!r}", statement=index))
        if low not in fields:
            fields[low] = value
    sid = fields.get("sid")
    found = "effect" in fields
    effect_raw = fields.get("effect")
    effect = str(effect_raw) if found else ""
    if aws:
        normalised = effect if effect in ("Allow", "Deny") else ""
    else:
        normalised = effect.capitalize() if effect.lower() in ("allow", "deny") else ""
    if not normalised:
        shown = repr(effect_raw) if found else "missing"
        policy.problems.append(Problem(f"bad effect {shown}; expected "
                                       f"{'Allow or Deny' if aws else 'allow or deny'}",
                                       statement=index))
    values: dict[str, tuple[str, ...] | None] = {}
    for key in ("action", "notaction", "resource", "notresource"):
        values[key] = _strings(policy, index, key, fields[key]) if key in fields else None
    if "action" in fields and "notaction" in fields:
        policy.problems.append(Problem("both Action and NotAction", statement=index))
    if "action" not in fields and "notaction" not in fields:
        policy.problems.append(Problem("missing Action", statement=index))
    for key in ("action", "notaction"):
        actions = values[key]
        if actions is not None:
            values[key] = _actions(policy, index, actions)
    for key in ("resource", "notresource"):
        for resource in values[key] or ():
            reason = _resource_problem(resource, aws)
            if reason:
                policy.problems.append(Problem(f"unparsable resource {resource!r}: {reason}",
                                               statement=index))
    found_p, found_np = "principal" in fields, "notprincipal" in fields
    principals = (_principals(policy, index, "Principal", fields["principal"]) if found_p
                  else None)
    not_principals = (_principals(policy, index, "NotPrincipal", fields["notprincipal"])
                      if found_np else None)
    if not (found_p or found_np or "resource" in fields or "notresource" in fields):
        policy.problems.append(Problem("missing Resource", statement=index))
    found = "condition" in fields
    condition: Any = fields.get("condition")
    if found and condition is None and not aws:
        # CAM's own console and APIs return "condition": null for a statement without
        # conditions: it means no condition, not a malformed policy.
        policy.problems.append(Problem("condition is null (read as no condition)",
                                       statement=index, severity="info"))
        condition = {}
    elif found and not isinstance(condition, dict):
        policy.problems.append(Problem("Condition must be an object", statement=index))
        condition = {}
    return Statement(index=index, sid=str(sid) if sid is not None else None, effect=normalised,
                     actions=values["action"], not_actions=values["notaction"],
                     resources=values["resource"], not_resources=values["notresource"],
                     principals=principals, not_principals=not_principals,
                     condition=condition if found else {},
                     has_principal_block=found_p or found_np)


def _actions(policy: Policy, index: int, actions: tuple[str, ...]) -> tuple[str, ...]:
    """``actions`` with any CAM ``name/`` prefix removed; an unparsable one is a Problem."""
    # One regex over the whole list first: managed policies list thousands of actions,
    # nearly all well formed. A list it does not accept is checked action by action.
    joined = ",".join(actions)
    if "name/" not in joined and _ACTIONS_RE.fullmatch(joined + ",") is not None:
        return actions
    cleaned = []
    for action in actions:
        name = action[5:] if action.startswith("name/") else action
        if name != "*" and not _ACTION_RE.match(name):
            policy.problems.append(Problem(f"unparsable action {action!r}", statement=index))
        cleaned.append(name)
    return tuple(cleaned)


def _resource_problem(resource: str, aws: bool) -> str | None:
    if resource == "*":
        return None
    if aws:
        if not resource.startswith("arn:"):
            return "an AWS resource is \"*\" or an ARN"
        if len(resource.split(":", 5)) < 6:
            return "an ARN has six colon-separated parts"
        return None
    if not resource.startswith("qcs:"):
        return "a CAM resource is \"*\" or qcs::service:region:account:resource"
    if len(resource.split(":", 5)) < 6:
        return "a qcs resource has six colon-separated parts"
    return None


def _statement_lines(text: str) -> dict[int, int]:
    """Line number of each statement object, found by walking the top-level JSON object."""
    decoder = json.JSONDecoder()
    lines: dict[int, int] = {}
    ws = re.compile(r"[ \t\n\r]*")
    # Newlines are counted from the previous statement on, not from the start of the text:
    # counting from 0 for each statement made a file of N statements cost O(N^2).
    counted = [0, 1]  # position up to which newlines are counted, line number there

    def line_at(pos: int) -> int:
        counted[1] += text.count("\n", counted[0], pos)
        counted[0] = pos
        return counted[1]

    def skip(pos: int) -> int:
        m = ws.match(text, pos)
        return m.end() if m else pos

    try:
        pos = skip(0)
        if text[pos] != "{":
            return lines
        pos = skip(pos + 1)
        while pos < len(text) and text[pos] != "}":
            key, pos = decoder.raw_decode(text, pos)
            pos = skip(pos)
            pos = skip(pos + 1)  # the colon
            if isinstance(key, str) and key.lower() == "statement":
                if text[pos] == "{":
                    lines[0] = line_at(pos)
                    _, pos = decoder.raw_decode(text, pos)
                elif text[pos] == "[":
                    pos = skip(pos + 1)
                    index = 0
                    while text[pos] != "]":
                        lines[index] = line_at(pos)
                        _, pos = decoder.raw_decode(text, pos)
                        pos = skip(pos)
                        if text[pos] == ",":
                            pos = skip(pos + 1)
                        index += 1
                    pos += 1
                else:
                    _, pos = decoder.raw_decode(text, pos)
            else:
                _, pos = decoder.raw_decode(text, pos)
            pos = skip(pos)
            if pos < len(text) and text[pos] == ",":
                pos = skip(pos + 1)
    except (ValueError, IndexError):
        pass
    return lines
