"""Tencent Cloud: CBS disk snapshots and TencentDB for MySQL (cdb) backups.

Uses the official ``tencentcloud-sdk-python`` clients (``CbsClient`` 2017-03-12,
``CdbClient`` 2017-03-20) through their generic ``call_json``, so requests are signed with
TC3-HMAC-SHA256 by the SDK itself. Conventions:

- A CBS snapshot drkit makes is named ``drkit-<run id>-<disk id>`` and tagged with
  ``drkit:run-id``; ``CopySnapshotCrossRegions`` keeps the name (copies cannot be tagged
  in the same call), so the name is what identifies drkit's copies in other regions.
- A cdb backup is a manual backup named ``drkit-<run id>``. TencentDB copies backups to
  other regions itself when "remote backup" is enabled on the instance
  (``ModifyRemoteBackupConfig``); drkit does not change that setting, it waits for the
  remote copy of each configured ``copy_to`` region to show ``SUCCESS`` in the backup's
  ``RemoteInfo`` and records it (id ``<backup id>/<sub-backup id>``). An instance without
  remote backup to a configured region makes the run time out with that copy named.
- Times from the API are Asia/Shanghai wall-clock strings; they are read as UTC+8.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from drkit.cloud.base import (
    CloudOperationFailed,
    CloudUnavailable,
    Pending,
    Provider,
    Resource,
    parse_percent,
)
from drkit.cloud.config import RUN_TAG, TencentCloudConfig
from drkit.cloud.model import SnapshotRecord

log = logging.getLogger(__name__)
SHANGHAI = timezone(timedelta(hours=8))
NAME_PREFIX = "drkit-"
_PAGE = 100
_NOT_FOUND = ("InvalidSnapshotId.NotExist", "ResourceNotFound.SnapshotNotExist",
              "InvalidParameter.InstanceNotFound", "ResourceNotFound.InstanceNotFound",
              "CdbError.BackupNotFound")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI
                                                                    ).astimezone(UTC)
    except ValueError:
        return None


def snapshot_name(run_id: str, disk_id: str) -> str:
    return f"{NAME_PREFIX}{run_id}-{disk_id}"


def _split_name(name: str) -> tuple[str, str] | None:
    """'drkit-<run>-disk-xxxx' -> (run, 'disk-xxxx')."""
    if not name.startswith(NAME_PREFIX) or "-disk-" not in name:
        return None
    run, disk = name[len(NAME_PREFIX):].rsplit("-disk-", 1)
    return run, f"disk-{disk}"


class TencentProvider(Provider):
    name = "tencent"

    def __init__(self, cfg: TencentCloudConfig) -> None:
        self.cfg = cfg
        self._clients: dict[tuple[str, str], Any] = {}

    def _credential(self) -> Any:
        from tencentcloud.common.credential import Credential

        prefix = self.cfg.credentials_env
        secret_id = os.environ.get(f"{prefix}_SECRET_ID", "")
        secret_key = os.environ.get(f"{prefix}_SECRET_KEY", "")
        if not secret_id or not secret_key:
            raise CloudUnavailable(f"tencent: no credentials: set {prefix}_SECRET_ID and "
                                   f"{prefix}_SECRET_KEY")
        return Credential(secret_id, secret_key, os.environ.get(f"{prefix}_TOKEN") or None)

    def _client(self, service: str, region: str) -> Any:
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile

        key = (service, region)
        if key not in self._clients:
            http = HttpProfile(protocol=self.cfg.protocol, endpoint=self.cfg.endpoint,
                               reqTimeout=60)
            profile = ClientProfile(httpProfile=http, language="en-US")
            if service == "cbs":
                from tencentcloud.cbs.v20170312.cbs_client import CbsClient

                self._clients[key] = CbsClient(self._credential(), region, profile)
            else:
                from tencentcloud.cdb.v20170320.cdb_client import CdbClient

                self._clients[key] = CdbClient(self._credential(), region, profile)
        return self._clients[key]

    def _call(self, service: str, region: str, action: str, params: dict[str, Any],
              what: str) -> dict[str, Any]:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
            TencentCloudSDKException,
        )

        try:
            result: dict[str, Any] = self._client(service, region).call_json(action, params)
        except TencentCloudSDKException as exc:
            code = str(exc.get_code() or "Error")
            if code.startswith("AuthFailure"):
                raise CloudUnavailable(f"tencent: {what}: credentials refused ({code})"
                                       ) from None
            if code in ("ClientNetworkError", "ServerNetworkError"):
                raise CloudUnavailable(f"tencent: {what}: cannot reach the {service} API in "
                                       f"{region}") from None
            raise _ApiFailed(code, f"tencent: {what}: {code} {exc.get_message() or ''}".rstrip()
                             ) from None
        return result.get("Response", result)

    def regions(self) -> list[str]:
        return [self.cfg.region] + [r for r in self.cfg.copy_to if r != self.cfg.region]

    # -- discovery -------------------------------------------------------------------------
    def discover(self) -> list[Resource]:
        found: list[Resource] = []
        sel = self.cfg.select
        if self.cfg.cbs:
            offset = 0
            while True:
                page = self._call("cbs", self.cfg.region, "DescribeDisks", {
                    "Filters": [{"Name": "tag-key", "Values": [sel.key]}],
                    "Offset": offset, "Limit": _PAGE}, "list CBS disks")
                disks = page.get("DiskSet") or []
                for disk in disks:
                    tags = {t["Key"]: t["Value"] for t in disk.get("Tags") or []}
                    if sel.matches(tags):
                        found.append(Resource("tencent", "cbs", disk["DiskId"], self.cfg.region,
                                              int(disk.get("DiskSize", 0))))
                offset += len(disks)
                if not disks or offset >= int(page.get("TotalCount", 0)):
                    break
        if self.cfg.cdb:
            offset = 0
            while True:
                page = self._call("cdb", self.cfg.region, "DescribeDBInstances",
                                  {"Offset": offset, "Limit": _PAGE},
                                  "list TencentDB instances")
                items = page.get("Items") or []
                for inst in items:
                    tags = {t["TagKey"]: t["TagValue"] for t in inst.get("TagList") or []}
                    if sel.matches(tags):
                        found.append(Resource("tencent", "cdb", inst["InstanceId"],
                                              self.cfg.region, int(inst.get("Volume", 0))))
                offset += len(items)
                if not items or offset >= int(page.get("TotalCount", 0)):
                    break
        return found

    # -- snapshots -------------------------------------------------------------------------
    def start_snapshot(self, resource: Resource, run_id: str) -> Pending:
        if resource.kind == "cbs":
            resp = self._call("cbs", resource.region, "CreateSnapshot", {
                "DiskId": resource.resource_id,
                "SnapshotName": snapshot_name(run_id, resource.resource_id),
                "Tags": [{"Key": RUN_TAG, "Value": run_id}]},
                f"snapshot disk {resource.resource_id}")
            snap_id = str(resp["SnapshotId"])
            snap = self._describe_snapshot(resource.region, snap_id)
            created = parse_time(snap.get("CreateTime") if snap else None)
            if created is None:
                raise CloudOperationFailed(f"tencent: new snapshot {snap_id} of "
                                           f"{resource.resource_id} has no creation time")
            record = SnapshotRecord("tencent", "cbs", resource.resource_id, snap_id,
                                    resource.region, created, run_id,
                                    size_gib=resource.size_gib)
            pending = Pending(record, {})
            if snap:
                self._apply_snapshot_state(pending, snap)
            return pending
        resp = self._call("cdb", resource.region, "CreateBackup", {
            "InstanceId": resource.resource_id, "BackupMethod": self.cfg.backup_method,
            "ManualBackupName": f"{NAME_PREFIX}{run_id}"},
            f"back up TencentDB instance {resource.resource_id}")
        backup_id = str(resp["BackupId"])
        backup = self._find_backup(resource.resource_id, backup_id)
        created = parse_time(backup.get("StartTime") if backup else None)
        if created is None:
            raise CloudOperationFailed(f"tencent: new backup {backup_id} of "
                                       f"{resource.resource_id} is not listed with a start time")
        record = SnapshotRecord("tencent", "cdb", resource.resource_id, backup_id,
                                resource.region, created, run_id,
                                size_gib=resource.size_gib)
        return Pending(record, {"backup_id": backup_id})

    def start_copies(self, record: SnapshotRecord, run_id: str) -> list[Pending]:
        if not self.cfg.copy_to:
            return []
        if record.kind == "cdb":
            return [Pending(SnapshotRecord("tencent", "cdb", record.resource_id,
                                           f"{record.snapshot_id}/?", region,
                                           record.created_at, run_id, None,
                                           record.snapshot_id, record.size_gib),
                            {"backup_id": record.snapshot_id, "remote_region": region})
                    for region in self.cfg.copy_to]
        resp = self._call("cbs", record.region, "CopySnapshotCrossRegions", {
            "SnapshotId": record.snapshot_id, "DestinationRegions": list(self.cfg.copy_to),
            "SnapshotName": snapshot_name(run_id, record.resource_id)},
            f"copy {record.snapshot_id} to {', '.join(self.cfg.copy_to)}")
        out: list[Pending] = []
        refused: list[str] = []
        for result in resp.get("SnapshotCopyResultSet") or []:
            if result.get("Code") not in ("Success", "", None) or not result.get("SnapshotId"):
                refused.append(f"{result.get('DestinationRegion')}: {result.get('Code')} "
                               f"{result.get('Message') or ''}".rstrip())
                continue
            out.append(Pending(SnapshotRecord(
                "tencent", "cbs", record.resource_id, str(result["SnapshotId"]),
                str(result["DestinationRegion"]), record.created_at, run_id, None,
                record.snapshot_id, record.size_gib), {}))
        if refused:
            raise CloudOperationFailed(f"tencent: copy of {record.snapshot_id} refused: "
                                       + "; ".join(refused))
        return out

    def _describe_snapshot(self, region: str, snapshot_id: str) -> dict[str, Any] | None:
        try:
            resp = self._call("cbs", region, "DescribeSnapshots",
                              {"SnapshotIds": [snapshot_id]}, f"describe {snapshot_id}")
        except _ApiFailed as exc:
            if exc.code in _NOT_FOUND:
                return None
            raise
        snaps = resp.get("SnapshotSet") or []
        return snaps[0] if snaps else None

    @staticmethod
    def _apply_snapshot_state(pending: Pending, snap: dict[str, Any]) -> None:
        state = snap.get("SnapshotState")
        pending.percent = parse_percent(snap.get("Percent"))
        if state in ("NORMAL",):
            pending.done = True
        elif state not in ("CREATING", "COPYING_FROM_REMOTE", "CHECKING_COPIED"):
            rec = pending.record
            raise CloudOperationFailed(f"tencent: snapshot {rec.snapshot_id} in {rec.region} "
                                       f"is {state}")

    def _backups(self, instance_id: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self._call("cdb", self.cfg.region, "DescribeBackups",
                              {"InstanceId": instance_id, "Offset": offset, "Limit": _PAGE},
                              f"list backups of {instance_id}")
            items = page.get("Items") or []
            out += items
            offset += len(items)
            if not items or offset >= int(page.get("TotalCount", 0)):
                return out

    def _find_backup(self, instance_id: str, backup_id: str) -> dict[str, Any] | None:
        for item in self._backups(instance_id):
            if str(item.get("BackupId")) == backup_id:
                return item
        return None

    def poll(self, pending: Pending) -> None:
        rec = pending.record
        if rec.kind == "cbs":
            snap = self._describe_snapshot(rec.region, rec.snapshot_id)
            if snap is None:
                raise CloudOperationFailed(f"tencent: snapshot {rec.snapshot_id} vanished from "
                                           f"{rec.region} while drkit waited for it")
            self._apply_snapshot_state(pending, snap)
            return
        backup = self._find_backup(rec.resource_id, pending.handle["backup_id"])
        if backup is None:
            raise CloudOperationFailed(f"tencent: backup {pending.handle['backup_id']} of "
                                       f"{rec.resource_id} vanished while drkit waited for it")
        remote = pending.handle.get("remote_region")
        if remote is None:
            status = backup.get("Status")
            if status == "FAILED":
                raise CloudOperationFailed(f"tencent: backup {rec.snapshot_id} of "
                                           f"{rec.resource_id} failed")
            pending.done = status == "SUCCESS"
            pending.percent = 100.0 if pending.done else 50.0
            return
        for info in backup.get("RemoteInfo") or []:
            if info.get("Region") != remote:
                continue
            if info.get("Status") == "FAILED":
                raise CloudOperationFailed(f"tencent: remote backup of {rec.copy_of} to "
                                           f"{remote} failed")
            if info.get("Status") == "SUCCESS":
                pending.record = SnapshotRecord(
                    "tencent", "cdb", rec.resource_id,
                    f"{rec.copy_of}/{info.get('SubBackupId')}", remote, rec.created_at,
                    rec.run_id, None, rec.copy_of, rec.size_gib)
                pending.done = True
                pending.percent = 100.0

    # -- reporting -------------------------------------------------------------------------
    def _all_snapshots(self, region: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self._call("cbs", region, "DescribeSnapshots",
                              {"Offset": offset, "Limit": _PAGE}, f"list snapshots in {region}")
            snaps = page.get("SnapshotSet") or []
            out += snaps
            offset += len(snaps)
            if not snaps or offset >= int(page.get("TotalCount", 0)):
                return out

    def snapshot_times(self, resource: Resource) -> dict[str, datetime | None]:
        out: dict[str, datetime | None] = {}
        if resource.kind == "cbs":
            for region in self.regions():
                newest: datetime | None = None
                for snap in self._all_snapshots(region):
                    if snap.get("SnapshotState") != "NORMAL":
                        continue
                    parts = _split_name(str(snap.get("SnapshotName", "")))
                    ours = parts is not None and parts[1] == resource.resource_id
                    if snap.get("DiskId") == resource.resource_id or ours:
                        when = parse_time(snap.get("CreateTime"))
                        if when and (newest is None or when > newest):
                            newest = when
                out[region] = newest
            return out
        backups = [b for b in self._backups(resource.resource_id) if b.get("Status") == "SUCCESS"]
        out[resource.region] = max((t for b in backups
                                    if (t := parse_time(b.get("StartTime"))) is not None),
                                   default=None)
        for region in self.cfg.copy_to:
            out[region] = max((t for b in backups for info in b.get("RemoteInfo") or []
                               if info.get("Region") == region and info.get("Status") == "SUCCESS"
                               and (t := parse_time(b.get("StartTime"))) is not None),
                              default=None)
        return out

    def drkit_snapshots(self) -> list[SnapshotRecord]:
        out: list[SnapshotRecord] = []
        if self.cfg.cbs:
            for region in self.regions():
                for snap in self._all_snapshots(region):
                    parts = _split_name(str(snap.get("SnapshotName", "")))
                    when = parse_time(snap.get("CreateTime"))
                    if parts is None or when is None or snap.get("SnapshotState") != "NORMAL":
                        continue
                    out.append(SnapshotRecord("tencent", "cbs", parts[1], snap["SnapshotId"],
                                              region, when, parts[0],
                                              size_gib=int(snap.get("DiskSize", 0))))
        if self.cfg.cdb:
            for resource in (r for r in self.discover() if r.kind == "cdb"):
                for b in self._backups(resource.resource_id):
                    name = str(b.get("ManualBackupName") or "")
                    when = parse_time(b.get("StartTime"))
                    if not name.startswith(NAME_PREFIX) or when is None or \
                            b.get("Status") != "SUCCESS":
                        continue
                    out.append(SnapshotRecord("tencent", "cdb", resource.resource_id,
                                              str(b["BackupId"]), resource.region, when,
                                              name[len(NAME_PREFIX):]))
        return out

    def exists(self, record: SnapshotRecord, region: str) -> bool:
        if record.kind == "cbs":
            return self._describe_snapshot(region, record.snapshot_id) is not None
        backup_id, _, sub_id = record.snapshot_id.partition("/")
        try:
            backup = self._find_backup(record.resource_id, backup_id)
        except _ApiFailed as exc:
            if exc.code in _NOT_FOUND:
                return False
            raise
        if backup is None:
            return False
        if not sub_id:
            return region == self.cfg.region
        return any(str(i.get("SubBackupId")) == sub_id and i.get("Region") == region
                   for i in backup.get("RemoteInfo") or [])

    def delete(self, record: SnapshotRecord) -> None:
        if record.kind == "cbs":
            self._call("cbs", record.region, "DeleteSnapshots",
                       {"SnapshotIds": [record.snapshot_id]}, f"delete {record.snapshot_id}")
            return
        backup_id = record.snapshot_id.partition("/")[0]
        self._call("cdb", self.cfg.region, "DeleteBackup",
                   {"InstanceId": record.resource_id, "BackupId": int(backup_id)},
                   f"delete backup {backup_id} of {record.resource_id}")


class _ApiFailed(CloudOperationFailed):
    """A Tencent Cloud API error other than credentials or network."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
