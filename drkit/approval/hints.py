"""The commands a refusal tells people to run, built in one place.

A hint that names a command or option drkit does not have sends a person under pressure
down a dead end, so every approval hint is made here from the operation's parameters, in
the exact form of the real command (``tests/security/test_hints.py`` triggers each
refusal and parses every hint it prints with drkit's click command tree).

Placeholders are upper case: ``ID`` (a request id), ``NAME`` (an enrolled person),
``TEXT`` (the reason).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

_PLAIN = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")


def shell_arg(value: Any) -> str:
    """``value`` as one shell word. Double quotes when that is enough (a space): the hint
    itself sits in single quotes; shell single quotes only for characters a shell would
    expand or end a double-quoted word at, which no sane path holds."""
    text = f"{value:g}" if isinstance(value, float) else str(value)
    if _PLAIN.match(text):
        return text
    if not re.search(r'["\\$`!\n]', text):
        return f'"{text}"'
    return shlex.quote(text)


def _options(pairs: list[tuple[str, Any]]) -> str:
    return " ".join(f"{option} {shell_arg(value)}" for option, value in pairs)


def operation_args(operation: str, params: Mapping[str, Any]) -> str:
    """The arguments that name this operation's parameters, shared by ``drkit request OP``
    and the command that runs it (empty when the parameters have no command-line form)."""
    if operation == "prune":
        return _options([("--keep-last", params["keep_last"]),
                         ("--older-than-days", float(params["older_than_days"]))])
    if operation == "delete-object":
        return f"{shell_arg(params['region'])} {shell_arg(params['key'])}"
    if operation == "config-apply":
        return shell_arg(params["file"])
    if operation == "restore-production":
        return (f"{shell_arg(params['snapshot'])} "
                + _options([("--to", params["target"]), ("--source", params["source"])]))
    if operation == "keys":
        keys = [str(k) for k in params.get("public_keys", [])] or ["PUBLIC_KEY"]
        return f"{shell_arg(params['action'])} " + _options([("--public-key", k) for k in keys])
    if operation == "cloud-expire":
        return _options([("--as-of", params["as_of"])])
    return ""


def request_command(operation: str, params: Mapping[str, Any]) -> str:
    """``drkit request OP ... --reason TEXT`` for exactly these parameters."""
    args = operation_args(operation, params)
    return f"drkit request {operation} {args + ' ' if args else ''}--reason TEXT"


def run_command(operation: str, params: Mapping[str, Any], approval: str = "ID") -> str:
    """The command that runs an approved request of this operation (``approval`` fills
    the request id)."""
    if operation == "prune":
        return f"drkit prune {operation_args(operation, params)} --approval {approval}"
    if operation == "config-apply":
        return f"drkit config apply {shell_arg(params['file'])} --approval {approval}"
    if operation == "restore-production":
        return (f"drkit restore {shell_arg(params['snapshot'])} "
                f"--to {shell_arg(params['target'])} --approval {approval}")
    if operation == "keys":
        # Only a rotation has a command that runs it ('drkit keys rotate').
        return f"drkit keys rotate --approval {approval}"
    if operation == "cloud-expire":
        return (f"drkit cloud expire --as-of {shell_arg(params['as_of'])} "
                f"--approval {approval}")
    return f"drkit execute {approval}"


def how_to_request(operation: str, params: Mapping[str, Any]) -> str:
    """The three steps from a refusal to a run, each a command that parses."""
    return (f"request it with '{request_command(operation, params)}', have approvers sign "
            f"with 'drkit approve ID --as NAME', then run '{run_command(operation, params)}'")
