"""Tencent Cloud Bastion Host (``bh``, formerly ``dasb``): its command and session search.

The service answers four searches; every one is read, from saved responses or live:

- ``SearchCommand``: ``Commands``, a list of ``SearchCommandResult`` (``Time``,
  ``UserName``, ``RealName``, ``Account`` the host account, ``InstanceId``,
  ``DeviceName``, ``PrivateIp``, ``PublicIp``, ``FromIp``, ``Cmd``, ``Action``, ``Sid``,
  ``TimeOffset`` in ms from ``SessionTime``, ``ConfirmTime``);
- ``SearchCommandBySid``: ``CommandSet``, a list of ``Command`` (the same without the
  device's name and addresses);
- ``SearchSessionCommand`` (dasb 2019-10-18): ``CommandSessionSet``, sessions
  (``SessionCommand``) each holding its ``Commands``;
- ``SearchSession``: ``SessionSet`` (``SessionResult``: ``Id``, ``UserName``,
  ``RealName``, ``Account``, ``DeviceName``, ``FromIp``, ``StartTime``...). Sessions are
  not events of their own: they fill in what a command record lacks (the device's name,
  the source address) for the commands of that session.

``Action`` is what the bastion did with the command: 1 let it run, 2 blocked it, 3 held
it for confirmation (run once ``ConfirmTime`` is set). Times are ISO 8601 with an offset
(``2026-11-23T10:35:58+08:00``). Saved responses are what ``tccli bh SearchCommand ...``
prints: the ``Response`` object's content (with or without the ``Response`` wrapper), one
page per file, several pages concatenated, or a JSON list of pages.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from drkit.clock import parse_iso
from drkit.errors import InputError
from drkit.oplog.model import HOST, Actor, OpEvent
from drkit.oplog.readers.bastion import program

log = logging.getLogger(__name__)

#: The searches live reading pages through (Limit's documented maximum is 200).
PAGE = 200
#: ``Action`` of a command record.
ALLOWED, BLOCKED, CONFIRM = 1, 2, 3
_LISTS = ("Commands", "CommandSet", "CommandSessionSet", "SessionSet")


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return parse_iso(str(value).replace(" ", "T", 1))
    except ValueError:
        return None


def pages_of(data: bytes, *, origin: str) -> list[dict[str, Any]]:
    """The response objects in a saved file (one, several concatenated, or a list)."""
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InputError(f"{origin}: not a Bastion Host search response (not UTF-8)") from None
    decoder = json.JSONDecoder()
    docs: list[Any] = []
    pos = 0
    while pos < len(text):
        try:
            doc, end = decoder.raw_decode(text, pos)
        except ValueError:
            raise InputError(f"{origin}: not a Bastion Host search response (not JSON at "
                             f"character {pos})") from None
        docs.extend(doc if isinstance(doc, list) else [doc])
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    pages = []
    for doc in docs:
        if isinstance(doc, dict) and isinstance(doc.get("Response"), dict):
            doc = doc["Response"]
        if not isinstance(doc, dict) or not any(k in doc for k in _LISTS):
            raise InputError(f"{origin}: not a Bastion Host search response (no Commands, "
                             "CommandSet, CommandSessionSet or SessionSet)")
        if isinstance(doc.get("Error"), dict):
            raise InputError(f"{origin}: a saved error response "
                             f"({doc['Error'].get('Code')}), not search results")
        pages.append(doc)
    return pages


def events_of(pages: Iterable[tuple[str, dict[str, Any]]], *,
              region: str | None = None) -> list[OpEvent]:
    """Shell events from search responses, given as (origin, page): one per command
    record. Sessions among the pages (``SessionSet``) complete the commands of their
    session, whichever page or file they came from."""
    pages = list(pages)
    sessions: dict[str, dict[str, Any]] = {}
    for _origin, page in pages:
        for item in page.get("SessionSet") or ():
            if isinstance(item, dict) and item.get("Id"):
                sessions[str(item["Id"])] = item
    out: list[OpEvent] = []
    for origin, page in pages:
        for item in page.get("Commands") or page.get("CommandSet") or ():
            if isinstance(item, dict):
                out.extend(_event(item, sessions.get(str(item.get("Sid"))), origin, region))
        for group in page.get("CommandSessionSet") or ():
            if not isinstance(group, dict):
                continue
            session = {**group, **sessions.get(str(group.get("Id")), {})}
            for item in group.get("Commands") or ():
                if isinstance(item, dict):
                    out.extend(_event({"Sid": group.get("Id"), **item}, session, origin,
                                      region))
    return out


def _event(item: dict[str, Any], session: dict[str, Any] | None, origin: str,
           region: str | None) -> Iterator[OpEvent]:
    info = session or {}

    def pick(*keys: str) -> str | None:
        for key in keys:
            for source in (item, info):
                value = _text(source.get(key))
                if value:
                    return value
        return None

    command = (_text(item.get("Cmd")) or "").strip()
    sid = pick("Sid", "Id")
    start = _time(pick("SessionTime", "SessTime", "StartTime"))
    when = _time(item.get("Time"))
    offset = item.get("TimeOffset")
    if when is None and start is not None and isinstance(offset, int):
        when = datetime.fromtimestamp(start.timestamp() + offset / 1000, UTC)
    if not command or when is None:
        log.warning("%s: a Bastion Host command record without command or time was skipped",
                    origin)
        return
    user = pick("UserName")
    account = pick("Account")
    host = pick("DeviceName", "InstanceId", "PrivateIp", "PublicIp")
    try:
        action = int(item.get("Action") or ALLOWED)
    except (TypeError, ValueError):
        action = ALLOWED
    confirmed = _time(item.get("ConfirmTime"))
    if action == BLOCKED:
        result = "blocked by the bastion"
    elif action == CONFIRM and confirmed is None:
        result = "held for confirmation"
    else:
        result = "ok"
    record = f"{sid or ''}:{offset if offset is not None else when.isoformat()}"
    yield OpEvent(
        time=when,
        actor=Actor(user=user, session_user=account if account != user else None,
                    source_ip=pick("FromIp")),
        cloud=HOST, region=region or pick("ApCode"), service="shell",
        action=program(command) or command.split(" ", 1)[0],
        resources=(host,) if host else (), result=result, record_id=record,
        source="bh", session=f"bh:{sid}" if sid else None, host=host, command=command,
        origin=origin,
        extra={k: v for k, v in (("real_name", pick("RealName")),
                                 ("instance_id", pick("InstanceId")),
                                 ("private_ip", pick("PrivateIp")),
                                 ("bastion_action", action),
                                 ("confirmed", confirmed.isoformat() if confirmed else None))
               if v is not None})


def parse_saved(files: Iterable[tuple[str, bytes]]) -> list[OpEvent]:
    """Saved search responses (``tccli bh SearchCommand ... > file``), as (name, data)."""
    return events_of((name, page) for name, data in files
                     for page in pages_of(data, origin=name))


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def search_commands(client: Any, models: Any, *, start: datetime, end: datetime,
                    origin: str, region: str | None = None) -> list[OpEvent]:
    """Every command of ``[start, end]`` through the SDK's ``SearchCommand``, page by page
    (``Offset``/``Limit``, until ``TotalCount`` is reached or a page comes back empty);
    ``models`` is the SDK's ``bh.v20230418.models`` (or ``dasb.v20191018.models``)."""
    pages: list[tuple[str, dict[str, Any]]] = []
    offset = 0
    while True:
        request = models.SearchCommandRequest()
        request.from_json_string(json.dumps({"StartTime": _iso(start), "EndTime": _iso(end),
                                             "Offset": offset, "Limit": PAGE}))
        page = json.loads(client.SearchCommand(request).to_json_string())
        pages.append((origin, page))
        got = len(page.get("Commands") or ())
        offset += got
        if not got or offset >= int(page.get("TotalCount") or 0):
            break
    return events_of(pages, region=region)
