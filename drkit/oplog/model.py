"""One event model for every source of operation events (cloud APIs and bastion sessions)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from drkit.clock import parse_iso, utc_iso

#: Where events come from (the ``source`` field).
SOURCES = ("cloudtrail", "cloudaudit", "auditd", "transcript", "history")
#: ``cloud`` of a shell event: the command ran on a host, not against a cloud API.
HOST = "host"


@dataclass(frozen=True)
class Actor:
    """Who acted: a cloud identity (user, role, access key) or a shell user on a host.

    ``user`` is the person's own name when the source has one (IAM user, CAM sub-user, the
    login user of a shell session); ``session_user`` is the name the act ran under when that
    differs (an assumed role's session name, the uid after ``sudo``)."""

    user: str | None = None
    role: str | None = None
    access_key: str | None = None
    session_user: str | None = None
    source_ip: str | None = None
    account: str | None = None

    @property
    def operator(self) -> str:
        """The name reports group by: the person where known, else what acted."""
        return (self.user or self.session_user or self.role or self.access_key
                or "unknown")

    def to_dict(self) -> dict[str, Any]:
        return {"user": self.user, "role": self.role, "access_key": self.access_key,
                "session_user": self.session_user, "source_ip": self.source_ip,
                "account": self.account}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Actor:
        return cls(**{k: (str(v) if v is not None else None) for k, v in data.items()
                      if k in ("user", "role", "access_key", "session_user", "source_ip",
                               "account")})


@dataclass(frozen=True)
class OpEvent:
    """One operation: an API call recorded by the cloud, or a command run in a session.

    ``action`` is ``service:Name`` for a cloud call (IAM / CAM spelling, so the linter's
    catalogue classes apply) and the program name for a shell command; ``command`` holds
    the whole command line of a shell event. ``record_id`` is the source's own id of the
    record (CloudTrail eventID, CloudAudit EventId, auditd serial, line number)."""

    time: datetime
    actor: Actor
    cloud: str
    region: str | None
    service: str
    action: str
    resources: tuple[str, ...] = ()
    result: str = "ok"
    record_id: str = ""
    source: str = ""
    session: str | None = None
    host: str | None = None
    command: str | None = None
    origin: str | None = None  # the file or API the record was read from
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def id(self) -> str:
        """A stable id: the same record read twice (or from two copies) has the same id."""
        basis = "\x1f".join([self.source, self.cloud, self.record_id, utc_iso(self.time),
                             self.action, self.command or "", self.session or ""])
        return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:32]

    @property
    def operator(self) -> str:
        return self.actor.operator

    @property
    def ok(self) -> bool:
        return self.result == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "time": utc_iso(self.time), "actor": self.actor.to_dict(),
                "cloud": self.cloud, "region": self.region, "service": self.service,
                "action": self.action, "resources": list(self.resources),
                "result": self.result, "record_id": self.record_id, "source": self.source,
                "session": self.session, "host": self.host, "command": self.command,
                "origin": self.origin, "extra": self.extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OpEvent:
        return cls(time=parse_iso(str(data["time"])),
                   actor=Actor.from_dict(dict(data.get("actor") or {})),
                   cloud=str(data["cloud"]), region=data.get("region"),
                   service=str(data["service"]), action=str(data["action"]),
                   resources=tuple(str(r) for r in data.get("resources") or ()),
                   result=str(data.get("result", "ok")),
                   record_id=str(data.get("record_id", "")),
                   source=str(data.get("source", "")), session=data.get("session"),
                   host=data.get("host"), command=data.get("command"),
                   origin=data.get("origin"), extra=dict(data.get("extra") or {}))
