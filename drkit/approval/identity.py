"""Who is acting: OS user and host (never a secret), and UTC time helpers."""

from __future__ import annotations

import getpass
import socket


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


def host_name() -> str:
    try:
        return socket.gethostname() or "unknown"
    except OSError:
        return "unknown"


def actor() -> dict[str, str]:
    """The acting OS user and host, as recorded in requests, decisions and audit events."""
    return {"os_user": os_user(), "host": host_name()}
