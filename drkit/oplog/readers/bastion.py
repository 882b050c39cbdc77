"""What a self-built bastion records: auditd EXECVE records, ``script`` transcripts and
shell history with timestamps. One small reader per format, each to ``OpEvent``.

- auditd: a ``SYSCALL`` record (``auid`` = the login user, ``uid`` = who the program ran
  as, ``ses`` = the login session, ``tty``) and an ``EXECVE`` record (``argc``, ``a0``...)
  share one event serial, ``msg=audit(EPOCH.MS:SERIAL)``. Arguments holding spaces or
  quotes are hex-encoded by auditd. With ``log_format = ENRICHED`` a record ends in
  ``\\x1d`` followed by ``AUID="wang" UID="root"``: those names are used; without them
  the ids are shown as ``uid:1001`` unless a ``users`` map is given.
- ``script`` transcripts: ``Script started on TIME [...]``, the terminal output, ``Script
  done on TIME``. Commands are the lines after a shell prompt (``[user@host dir]$ cmd``,
  ``user@host:dir# cmd``). A plain transcript does not time each command, so every
  command carries the session's start time.
- shell history with ``HISTTIMEFORMAT`` set: ``#EPOCH`` lines before each command.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import PurePosixPath

from drkit.clock import parse_iso
from drkit.errors import InputError
from drkit.oplog.model import HOST, Actor, OpEvent

_AUDIT_HEAD = re.compile(r"^(?:node=(?P<node>\S+)\s+)?type=(?P<type>\w+)\s+"
                         r"msg=audit\((?P<epoch>\d+)(?:\.(?P<ms>\d+))?:(?P<serial>\d+)\):\s*"
                         r"(?P<body>.*)$")
_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')
_HEX = re.compile(r"^(?:[0-9A-F]{2})+$")
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-Za-z]|\r")
_PROMPT = re.compile(r"^(?:\((?:[^)]*)\)\s*)?"  # (venv)
                     r"(?:\[(?P<u1>[\w.-]+)@(?P<h1>[\w.-]+)[^\]]*\]"  # [user@host dir]
                     r"|(?P<u2>[\w.-]+)@(?P<h2>[\w.-]+):[^\s$#]*)"  # user@host:dir
                     r"\s?[$#]\s+(?P<cmd>\S.*)$")
_SCRIPT_START = re.compile(r"^Script started on (?P<time>.+?)(?:\s+\[.*\])?\s*$")
_SCRIPT_DONE = re.compile(r"^Script done on (?P<time>.+?)(?:\s+\[.*\])?\s*$")


def program(command: str) -> str:
    """The program a command line runs (``sudo``/``env`` prefixes skipped)."""
    try:
        words = shlex.split(command, posix=True)
    except ValueError:
        words = command.split()
    while words and (words[0] in ("sudo", "env", "nohup", "time", "exec", "command")
                     or "=" in words[0] or (words[0].startswith("-") and len(words) > 1)):
        words = words[1:]
    return PurePosixPath(words[0]).name if words else ""


def _shell_event(*, time: datetime, user: str | None, run_as: str | None, host: str | None,
                 session: str | None, command: str, record_id: str, source: str,
                 origin: str, source_ip: str | None = None) -> OpEvent:
    name = program(command) or command.split(" ", 1)[0]
    return OpEvent(time=time, actor=Actor(user=user, session_user=run_as if run_as != user
                                          else None, source_ip=source_ip),
                   cloud=HOST, region=None, service="shell", action=name,
                   resources=(host,) if host else (), result="ok", record_id=record_id,
                   source=source, session=session, host=host, command=command, origin=origin)


# -- auditd ---------------------------------------------------------------------------------
def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if _HEX.match(value):
        try:
            return bytes.fromhex(value).decode("utf-8", "replace")
        except ValueError:
            return value
    return value


def _fields(body: str) -> tuple[dict[str, str], dict[str, str]]:
    """(raw fields, enriched names after \\x1d)."""
    raw, _sep, enriched = body.partition("\x1d")
    return ({k: v for k, v in _FIELD.findall(raw)},
            {k: _unquote(v) for k, v in _FIELD.findall(enriched)})


def _name(uid: str | None, enriched: str | None, users: Mapping[str, str]) -> str | None:
    if enriched and enriched not in ("unset", "?"):
        return enriched
    if uid is None or uid in ("4294967295", "-1"):
        return None
    return users.get(uid, f"uid:{uid}")


def parse_auditd(text: str, *, origin: str, host: str | None = None,
                 users: Mapping[str, str] | None = None) -> list[OpEvent]:
    """auditd's log (``/var/log/audit/audit.log``): one event per EXECVE."""
    users = users or {}
    groups: dict[tuple[str | None, str], dict[str, tuple[dict[str, str], dict[str, str]]]] = {}
    times: dict[tuple[str | None, str], datetime] = {}
    order: list[tuple[str | None, str]] = []
    for line in text.splitlines():
        m = _AUDIT_HEAD.match(line)
        if m is None or m["type"] not in ("SYSCALL", "EXECVE"):
            continue
        key = (m["node"], m["serial"])
        if key not in groups:
            groups[key] = {}
            order.append(key)
            times[key] = datetime.fromtimestamp(
                int(m["epoch"]) + int((m["ms"] or "0").ljust(3, "0")[:3]) / 1000, UTC)
        groups[key][m["type"]] = _fields(m["body"])
    out = []
    for key in order:
        records = groups[key]
        if "EXECVE" not in records:
            continue
        args_raw, _ = records["EXECVE"]
        try:
            argc = int(args_raw.get("argc", "0"))
        except ValueError:
            argc = 0
        args = [_unquote(args_raw.get(f"a{i}", "")) for i in range(argc)]
        command = shlex.join(args) if args else ""
        sys_raw, sys_names = records.get("SYSCALL", ({}, {}))
        if sys_raw.get("success") == "no":
            continue  # exec failed: nothing ran
        node = key[0] or host
        ses = sys_raw.get("ses")
        session = f"{node or 'host'}:ses={ses}" if ses and ses != "4294967295" else None
        out.append(_shell_event(
            time=times[key], user=_name(sys_raw.get("auid"), sys_names.get("AUID"), users),
            run_as=_name(sys_raw.get("uid"), sys_names.get("UID"), users), host=node,
            session=session, command=command, record_id=f"{node or ''}:{key[1]}",
            source="auditd", origin=origin))
    return out


# -- script transcripts ----------------------------------------------------------------------
def _script_time(text: str) -> datetime | None:
    text = text.strip()
    for candidate in (text, text.replace(" ", "T", 1)):
        try:
            return parse_iso(candidate)
        except ValueError:
            continue
    for fmt in ("%a %d %b %Y %I:%M:%S %p %Z", "%a %b %d %H:%M:%S %Y", "%a %d %b %Y %H:%M:%S %Z"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def parse_transcript(text: str, *, origin: str, session: str | None = None,
                     source_ip: str | None = None) -> list[OpEvent]:
    """A ``script`` session transcript: one event per command typed at a prompt."""
    start: datetime | None = None
    login: str | None = None
    out: list[OpEvent] = []
    session = session or f"transcript:{PurePosixPath(origin).name}"
    for number, raw in enumerate(text.splitlines(), 1):
        line = _ANSI.sub("", raw)
        m = _SCRIPT_START.match(line)
        if m:
            start = _script_time(m["time"])
            if start is None:
                raise InputError(f"{origin}:{number}: unreadable session start time "
                                 f"{m['time']!r}")
            continue
        if _SCRIPT_DONE.match(line):
            continue
        p = _PROMPT.match(line)
        if p is None:
            continue
        if start is None:
            raise InputError(f"{origin}: not a script transcript (no 'Script started on' "
                             "line before the first command)")
        prompt_user = p["u1"] or p["u2"]
        host = p["h1"] or p["h2"]
        # The session belongs to whoever logged in (the first prompt); after ``sudo -i`` or
        # ``su`` the prompt names the user commands now run as.
        login = login or prompt_user
        out.append(_shell_event(time=start, user=login, run_as=prompt_user, host=host,
                                session=session, command=p["cmd"].strip(),
                                record_id=f"{session}:{number}", source="transcript",
                                origin=origin, source_ip=source_ip))
    return out


# -- shell history --------------------------------------------------------------------------
def parse_history(text: str, *, origin: str, user: str, host: str | None) -> list[OpEvent]:
    """Shell history written with HISTTIMEFORMAT (``#EPOCH`` before each command).
    Commands without a time line before them are skipped: their time is unknown."""
    out = []
    when: datetime | None = None
    digest = hashlib.sha256(origin.encode()).hexdigest()[:8]
    for number, line in enumerate(text.splitlines(), 1):
        if re.fullmatch(r"#\d{9,11}", line.strip()):
            when = datetime.fromtimestamp(int(line.strip()[1:]), UTC)
            continue
        if when is None or not line.strip():
            continue
        out.append(_shell_event(time=when, user=user, run_as=user, host=host,
                                session=f"history:{host or 'host'}:{user}", command=line.strip(),
                                record_id=f"{digest}:{number}", source="history",
                                origin=origin))
        when = None
    return out
