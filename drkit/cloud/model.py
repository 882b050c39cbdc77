"""What the cloud-snapshot code reports: snapshot records, stale resources, expiry plans.

A ``SnapshotRecord`` is one snapshot (or one copy, or one TencentDB backup) in one region
and account. Every record of a run becomes one journal leaf of kind ``"external"`` whose
key is ``external/<provider>/<kind>/<account-or-dash>/<region>/<snapshot-id>`` and whose
``sha256`` is the hash of the record's canonical JSON, so the journal proves what drkit
created and ``find_missing`` can later check that each one still exists.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from drkit.canonical import canonical_hash
from drkit.clock import parse_iso, utc_iso

RECORD_VERSION = 1
#: Kinds of snapshot: AWS EBS and RDS, Tencent CBS and TencentDB for MySQL (cdb).
KINDS = ("ebs", "rds", "cbs", "cdb")
JOURNAL_PREFIX = "external/"


@dataclass(frozen=True)
class SnapshotRecord:
    provider: str            # "aws" | "tencent"
    kind: str                # one of KINDS
    resource_id: str         # volume id, DB instance id, disk id, cdb instance id
    snapshot_id: str         # snap-..., RDS snapshot identifier, CBS snap-..., cdb backup id
    region: str
    created_at: datetime
    run_id: str
    account: str | None = None     # None: the configured (source) account
    copy_of: str | None = None     # snapshot id this is a cross-region/account copy of
    size_gib: int = 0

    @property
    def journal_key(self) -> str:
        account = self.account or "-"
        return (f"{JOURNAL_PREFIX}{self.provider}/{self.kind}/{account}/{self.region}/"
                f"{self.snapshot_id}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = utc_iso(self.created_at)
        data["version"] = RECORD_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SnapshotRecord:
        fields = {k: v for k, v in data.items() if k != "version"}
        fields["created_at"] = parse_iso(str(fields["created_at"]))
        return cls(**fields)

    def journal_fields(self) -> dict[str, Any]:
        """Keyword arguments for ``drkit.journal.JournalEntry`` (kind "external")."""
        note = self.to_dict()
        return {"kind": "external", "key": self.journal_key, "size": 0,
                "sha256": canonical_hash(note), "note": note}


@dataclass(frozen=True)
class StaleResource:
    """A selected volume/instance/disk whose newest complete snapshot is too old or absent."""

    provider: str
    kind: str
    resource_id: str
    region: str
    latest: datetime | None
    max_age_hours: float

    def to_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "kind": self.kind, "resource_id": self.resource_id,
                "region": self.region,
                "latest": utc_iso(self.latest) if self.latest else None,
                "max_age_hours": self.max_age_hours}

    def __str__(self) -> str:
        when = f"newest snapshot {utc_iso(self.latest)}" if self.latest else "no snapshot"
        return (f"{self.provider} {self.kind} {self.resource_id} in {self.region}: {when} "
                f"(limit {self.max_age_hours:g} h)")


@dataclass(frozen=True)
class MissingSnapshot:
    """A finding: a snapshot id recorded in the journal that no longer exists anywhere."""

    record: SnapshotRecord
    regions_checked: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"finding": "cloud-snapshot-missing", "key": self.record.journal_key,
                "snapshot_id": self.record.snapshot_id, "provider": self.record.provider,
                "kind": self.record.kind, "region": self.record.region,
                "regions_checked": list(self.regions_checked)}

    def __str__(self) -> str:
        return (f"recorded {self.record.provider} {self.record.kind} snapshot "
                f"{self.record.snapshot_id} (region {self.record.region}) no longer exists in "
                f"any of {', '.join(self.regions_checked)}")


@dataclass(frozen=True)
class ExpiryCandidate:
    """A drkit-made snapshot that retention would expire; deleting it needs approval."""

    record: SnapshotRecord
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"snapshot": self.record.to_dict(), "reason": self.reason}


@dataclass(frozen=True)
class CloudRunResult:
    run_id: str
    started_at: datetime
    records: tuple[SnapshotRecord, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "started_at": utc_iso(self.started_at),
                "snapshots": [r.to_dict() for r in self.records]}
