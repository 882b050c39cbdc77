"""sudo I/O logs (``Defaults log_output, log_input``): one folder per ``sudo`` run.

A session folder (``/var/log/sudo-io/00/00/01`` by default) holds:

- ``log``: ``TIME:USER:RUNAS:RUNAS_GROUP:TTY[:LINES:COLUMNS]``, then the working folder,
  then the command line (the command's full path and its arguments);
- ``log.json`` (sudo 1.9.4 and later, beside ``log``): ``timestamp`` {``seconds``,
  ``nanoseconds``}, ``submituser``, ``submithost``, ``runuser``, ``command``,
  ``runargv``, ``submitcwd``, ``ttyname``...; preferred when present;
- ``timing``: one line per I/O event, ``TYPE DELAY LENGTH`` (``DELAY`` in seconds since
  the previous event; types 0 stdin, 1 stdout, 2 stderr, 3 ttyin, 4 ttyout, 5 window
  size ``5 DELAY LINES COLUMNS``, 6 ttyout of sudo 1.8.7, 7 suspend ``7 DELAY SIGNAL``);
- ``ttyin``, ``ttyout`` (and ``stdin``/``stdout``/``stderr``): the bytes, each file
  gzip-compressed when ``compress_io`` is on (the default).

Every run is one shell event (the command sudo ran). When it ran an interactive shell
(``sudo -i``, ``sudo -s``, ``sudo bash``), the lines typed into it are read back from
``ttyin`` with their times from ``timing`` and become events of their own. A typed line
is kept only if the terminal echoed it: input typed with echo off (a password at a
``mysql -p`` or ``passwd`` prompt) is left out. Line editing is followed for backspace,
Ctrl-U and Ctrl-C; tab completion and history recall (arrow keys) are not replayed, so a
line built with them is read as typed.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

from drkit.errors import InputError
from drkit.oplog.model import HOST, Actor, OpEvent
from drkit.oplog.readers.bastion import program
from drkit.oplog.readers.compressed import maybe_gunzip

log = logging.getLogger(__name__)

TTYIN, TTYOUT, TTYOUT_OLD = 3, 4, 6
SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "fish", "tcsh", "csh"})
_ESCAPE = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1bO.|\x1b[()][0-9A-Za-z]")


def is_session(folder: Path) -> bool:
    return (folder / "log").is_file() or (folder / "log.json").is_file()


def sessions_under(root: Path) -> list[Path]:
    """Session folders at or under ``root``, in path order (sudo's sequence order)."""
    if not root.is_dir():
        raise InputError(f"{root}: no such folder (give sudo's iolog folder, e.g. "
                         "/var/log/sudo-io, or one session folder)")
    found = [root] if is_session(root) else []
    found += sorted(p.parent for p in root.rglob("log") if p.is_file() and p.parent != root)
    found += sorted(p.parent for p in root.rglob("log.json")
                    if p.is_file() and p.parent != root and not (p.parent / "log").is_file())
    return sorted(set(found))


def _read(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    data = maybe_gunzip(data, path)
    return data


def _info(folder: Path) -> dict[str, object]:
    """user, run_as, host, tty, cwd, command and start time of one session."""
    if (folder / "log.json").is_file():
        try:
            doc = json.loads(_read(folder / "log.json"))
        except ValueError:
            raise InputError(f"{folder / 'log.json'}: not sudo's log.json (not JSON)") from None
        stamp = doc.get("timestamp") if isinstance(doc, dict) else None
        if not isinstance(stamp, dict) or "seconds" not in stamp or "submituser" not in doc:
            raise InputError(f"{folder / 'log.json'}: not sudo's log.json (no timestamp "
                             "or submituser)")
        argv = [str(a) for a in doc.get("runargv") or []]
        command = str(doc.get("command") or (argv[0] if argv else ""))
        words = [command, *argv[1:]] if command else argv
        return {"start": datetime.fromtimestamp(int(stamp["seconds"])
                                                + int(stamp.get("nanoseconds", 0)) / 1e9, UTC),
                "user": str(doc["submituser"]), "run_as": str(doc.get("runuser") or "root"),
                "host": doc.get("submithost"), "tty": doc.get("ttyname"),
                "cwd": doc.get("submitcwd"), "command": shlex.join(words)}
    lines = _read(folder / "log").decode("utf-8", "replace").splitlines()
    head = lines[0].split(":") if lines else []
    try:
        start = datetime.fromtimestamp(float(head[0]), UTC)
    except (IndexError, ValueError):
        raise InputError(f"{folder / 'log'}: not a sudo I/O log (the first line is not "
                         "TIME:USER:RUNAS:GROUP:TTY)") from None
    if len(head) < 5:
        raise InputError(f"{folder / 'log'}: not a sudo I/O log (the first line is not "
                         "TIME:USER:RUNAS:GROUP:TTY)")
    return {"start": start, "user": head[1], "run_as": head[2] or "root", "host": None,
            "tty": head[4], "cwd": lines[1] if len(lines) > 1 else None,
            "command": lines[2].strip() if len(lines) > 2 else ""}


def _edit(line: bytearray, data: bytes) -> list[bytes]:
    """Apply typed bytes to the line being edited; return the lines ended (Enter) within
    ``data``."""
    ended = []
    for byte in _ESCAPE.sub(b"", data):
        if byte in (0x0D, 0x0A):
            ended.append(bytes(line))
            line.clear()
        elif byte in (0x7F, 0x08):
            if line:
                del line[-1]
        elif byte in (0x15, 0x03):  # Ctrl-U, Ctrl-C: the line is dropped
            line.clear()
        elif byte >= 0x20 or byte == 0x09:
            line.append(byte)
    return ended


def _screen(text: bytes) -> str:
    """Terminal output as the typed text shows in it: escapes gone, backspaces applied."""
    out: list[str] = []
    for ch in _ESCAPE.sub(b"", text).decode("utf-8", "replace"):
        if ch == "\b":
            if out:
                out.pop()
        elif ch not in "\r\x07":
            out.append(ch)
    return "".join(out)


def typed_lines(timing: bytes, ttyin: bytes, ttyout: bytes) -> tuple[list[tuple[float, str]],
                                                                      int]:
    """The lines typed at the terminal, each with its seconds since the session started,
    and how many lines were typed without echo (and so left out).

    A line ended by Enter waits for the terminal's output up to the next keystroke: if the
    text shows in it (the echo), it is kept."""
    now = 0.0
    pos_in = pos_out = 0
    line = bytearray()
    echoed = b""
    pending: list[tuple[float, str]] = []
    out: list[tuple[float, str]] = []
    hidden = 0

    def settle() -> None:
        nonlocal echoed, hidden
        if not pending:
            return
        screen = _screen(echoed)
        for when, typed in pending:
            if typed in screen:
                out.append((when, typed))
            else:
                hidden += 1
        pending.clear()
        # Keep the screen's last line: the echo of what is being typed now.
        echoed = echoed[echoed.rfind(b"\n") + 1:]

    for number, raw in enumerate(timing.decode("ascii", "replace").splitlines(), 1):
        parts = raw.split()
        if len(parts) < 3:
            continue
        try:
            kind, delay = int(parts[0]), float(parts[1])
            size = int(parts[2]) if kind in (TTYIN, TTYOUT, TTYOUT_OLD) else 0
        except ValueError:
            raise InputError(f"timing:{number}: not a sudo timing line ({raw!r})") from None
        now += delay
        if kind in (TTYOUT, TTYOUT_OLD):
            echoed += ttyout[pos_out:pos_out + size]
            pos_out += size
        elif kind == TTYIN:
            settle()
            chunk = ttyin[pos_in:pos_in + size]
            pos_in += size
            for text in _edit(line, chunk):
                typed = text.decode("utf-8", "replace").strip()
                if typed:
                    pending.append((now, typed))
    settle()
    return out, hidden


def parse_session(folder: Path, *, root: Path, host: str | None = None,
                  source_ip: str | None = None) -> list[OpEvent]:
    """The events of one sudo session folder."""
    info = _info(folder)
    start = info["start"]
    assert isinstance(start, datetime)
    user, run_as = str(info["user"]), str(info["run_as"])
    node = str(info["host"] or host or "") or None
    relative = folder.relative_to(root).as_posix() if folder != root else folder.name
    session = f"sudo:{node or 'host'}:{relative}"
    command = str(info["command"])
    origin = str(folder)
    events = [_event(start, user, run_as, node, session, command, f"{session}:0", origin,
                     source_ip, info)]
    name = PurePosixPath(shlex.split(command)[0]).name if command.strip() else ""
    is_shell = name in SHELLS or name.lstrip("-") in SHELLS
    timing_path = folder / "timing"
    if is_shell and timing_path.is_file() and (folder / "ttyin").is_file():
        ttyout = _read(folder / "ttyout") if (folder / "ttyout").is_file() else b""
        lines, hidden = typed_lines(_read(timing_path), _read(folder / "ttyin"), ttyout)
        if hidden:
            log.info("%s: %d line(s) typed without echo (passwords) left out", folder, hidden)
        for number, (offset, typed) in enumerate(lines, 1):
            events.append(_event(start + timedelta(seconds=offset), user, run_as, node,
                                 session, typed, f"{session}:{number}", origin, source_ip,
                                 info))
    return events


def _event(when: datetime, user: str, run_as: str, host: str | None, session: str,
           command: str, record_id: str, origin: str, source_ip: str | None,
           info: dict[str, object]) -> OpEvent:
    return OpEvent(time=when, actor=Actor(user=user, session_user=run_as if run_as != user
                                          else None, source_ip=source_ip),
                   cloud=HOST, region=None, service="shell",
                   action=program(command) or command.split(" ", 1)[0],
                   resources=(host,) if host else (), result="ok", record_id=record_id,
                   source="sudoio", session=session, host=host, command=command,
                   origin=origin,
                   extra={k: v for k, v in (("tty", info.get("tty")), ("cwd", info.get("cwd")))
                          if v})


def read(where: str, *, host: str | None = None, source_ip: str | None = None
         ) -> list[OpEvent]:
    """Every session under sudo's iolog folder ``where`` (or that one session folder)."""
    root = Path(where).expanduser()
    out: list[OpEvent] = []
    for folder in sessions_under(root):
        out.extend(parse_session(folder, root=root, host=host, source_ip=source_ip))
    return out
