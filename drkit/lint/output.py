"""Renderings of a :class:`LintReport`: text for people, JSON for tools, SARIF for code scanning."""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as _quote
from typing import Any

from drkit import __version__
from drkit.lint.engine import LintReport
from drkit.lint.findings import INPUT_ERROR, LINTER_ERROR, SUPPRESSION_EXPIRED, Finding
from drkit.numbers import count

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note",
          "info": "note"}
# GitHub code scanning ranks security results by this number (CVSS-like, 0.0-10.0).
_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0",
                      "info": "1.0"}
_BUILTIN = {
    LINTER_ERROR: ("A lint rule crashed; the file was not fully checked",
                   "Report the bug; treat the file as unchecked until fixed.", "critical"),
    INPUT_ERROR: ("A file could not be read as a policy; it was not checked",
                  "Fix or remove the file (not UTF-8, not JSON, not a JSON object, nested "
                  "too deep, or a principals file with wrong types).", "critical"),
    SUPPRESSION_EXPIRED: ("A suppression has expired and no longer applies",
                          "Fix the finding, or renew the suppression with a new reason, "
                          "owner and expiry.", "low"),
}



def printable(text: str) -> str:
    """``text`` safe to print in any encoding: lone surrogates (a Sid of "\\ud800", a file
    name that is not UTF-8) become backslash escapes instead of a UnicodeEncodeError."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def split_locator(file: str) -> tuple[str, str | None]:
    """``account.json#role/ops/inline/x`` -> the file and the document's place inside it."""
    head, sep, tail = file.partition(".json#")
    return (head + ".json", tail) if sep else (file, None)


def render_text(report: LintReport) -> str:
    lines = [f"{e.file}:{e.line}: INPUT ERROR: {e.message} (file not checked)"
             for e in report.input_errors]
    for f in report.findings:
        where = f"{f.file}:{f.line}"
        stmt = f" [statement {f.statement}]" if f.statement is not None else ""
        who = f" [principal {f.principal}]" if f.principal else ""
        lines.append(f"{where}: {f.severity.upper()} {f.rule}{stmt}{who}: {f.message}")
    s = report.summary()
    counts = ", ".join(f"{n} {sev}" for sev, n in s["by_severity"].items() if n)
    lines.append(
        f"{count(s['policies'], 'policy', 'policies')} in {count(s['files'], 'file')}"
        + (f", principals from {s['principals_file']}" if s["principals_file"] else "")
        + f": {count(s['findings'], 'finding')}" + (f" ({counts})" if counts else "")
        + summary_tail(report, s))
    return printable("\n".join(lines))


def summary_tail(report: LintReport, summary: dict[str, Any]) -> str:
    """The end of a report's summary line: suppressed, expired suppressions, input errors,
    and the threshold with the verdict."""
    return ((f", {summary['suppressed']} suppressed" if summary["suppressed"] else "")
            + (f", {len(report.expired)} expired suppressions" if report.expired else "")
            + (f", {len(report.input_errors)} input errors (files not checked)"
               if report.input_errors else "")
            + f"; threshold {report.threshold}: {'FAIL' if report.failed else 'ok'}")


def _rule_descriptor(rule_id: str, title: str, remediation: str, severity: str,
                     category: str) -> dict[str, Any]:
    return {
        "id": rule_id, "name": rule_id,
        "shortDescription": {"text": title},
        "fullDescription": {"text": title},
        "help": {"text": remediation},
        "defaultConfiguration": {"level": _LEVEL[severity]},
        "properties": {"category": category, "tags": ["security", category],
                       "security-severity": _SECURITY_SEVERITY[severity]},
    }


def _result(f: Finding, index: dict[str, int]) -> dict[str, Any]:
    props: dict[str, Any] = {"severity": f.severity, "category": f.category, "cloud": f.cloud,
                             "actions": f.actions}
    if f.statement is not None:
        props["statement"] = f.statement
    if f.principal:
        props["principal"] = f.principal
    if f.evidence:
        props["evidence"] = f.evidence
    uri, locator = split_locator(f.file)
    location: dict[str, Any] = {"physicalLocation": {
        "artifactLocation": {"uri": uri or "."},
        "region": {"startLine": max(1, f.line)}}}
    if locator:
        location["logicalLocations"] = [{"fullyQualifiedName": locator}]
    return {
        "ruleId": f.rule, "ruleIndex": index[f.rule], "level": _LEVEL[f.severity],
        "message": {"text": f.message},
        "locations": [location],
        "partialFingerprints": {"drkitFinding/v1": f"{f.rule}:{f.file}:{f.statement}:"
                                                   f"{f.principal}"},
        "properties": props,
    }


def render_sarif(report: LintReport) -> dict[str, Any]:
    """A SARIF 2.1.0 log that GitHub code scanning accepts."""
    descriptors = [_rule_descriptor(r.id, r.title, r.remediation, r.severity, r.category)
                   for r in report.rules]
    for rule_id, (title, remediation, severity) in _BUILTIN.items():
        descriptors.append(_rule_descriptor(rule_id, title, remediation, severity, rule_id))
    index = {d["id"]: i for i, d in enumerate(descriptors)}
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "drkit-lint", "version": __version__, "semanticVersion": __version__,
                "rules": descriptors}},
            "columnKind": "unicodeCodePoints",
            "invocations": [_invocation(report)],
            "results": [_result(f, index) for f in report.findings],
        }],
    }


def _invocation(report: LintReport) -> dict[str, Any]:
    """Files that could not be checked, as SARIF tool execution notifications."""
    return {
        "executionSuccessful": not report.input_errors,
        "toolExecutionNotifications": [{
            "level": "error",
            "descriptor": {"id": INPUT_ERROR},
            "message": {"text": e.message},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": e.file or "."},
                "region": {"startLine": max(1, e.line)}}}],
        } for e in report.input_errors],
    }


class _NotPlainJson(Exception):
    """A value :func:`to_json` leaves to the standard encoder."""


def to_json(value: Any, indent: int = 2) -> str:
    """Exactly ``json.dumps(value, indent=indent)``, written faster.

    With ``indent`` the standard library encodes in pure Python; reports list thousands of
    findings, each with its actions. Here strings are quoted by the C quoting function and
    lists of strings joined in one call. Anything but plain JSON types (or a cycle) goes to
    ``json.dumps``, so the text is always the standard one.
    """
    out: list[str] = []
    try:
        _emit(value, out, "\n", " " * indent)
    except (_NotPlainJson, RecursionError):
        return json.dumps(value, indent=indent)
    return "".join(out)


def _emit(value: Any, out: list[str], newline: str, step: str) -> None:
    # The same tests in the same order as json.encoder's _iterencode.
    if isinstance(value, str):
        out.append(_quote(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(_float(value))
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        inner = newline + step
        if all(type(v) is str for v in value):
            out.append("[" + inner + ("," + inner).join(map(_quote, value)) + newline + "]")
            return
        out.append("[")
        for i, item in enumerate(value):
            out.append("," + inner if i else inner)
            _emit(item, out, inner, step)
        out.append(newline + "]")
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = newline + step
        out.append("{")
        first = True
        for key, item in value.items():
            if not isinstance(key, str):
                raise _NotPlainJson
            head = (inner if first else "," + inner) + _quote(key) + ": "
            first = False
            # Most values are strings or null: written here without a call each.
            if type(item) is str:
                out.append(head + _quote(item))
            elif item is None:
                out.append(head + "null")
            else:
                out.append(head)
                _emit(item, out, inner, step)
        out.append(newline + "}")
    else:
        raise _NotPlainJson


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value == float("inf"):
        return "Infinity"
    if value == -float("inf"):
        return "-Infinity"
    return float.__repr__(value)
