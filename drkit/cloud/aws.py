"""AWS: EBS volume snapshots and RDS instance snapshots through boto3.

Snapshots carry three tags: ``drkit:run-id``, ``drkit:resource-id`` (the volume or DB
instance, because a copied EBS snapshot's VolumeId is meaningless in its new region) and
``drkit:kind``. Copies to another account first share the snapshot with that account
(``createVolumePermission`` / the RDS ``restore`` attribute) and are then made with the
credentials of the configured role in that account, so a snapshot lives under two
different sets of credentials. Encrypted snapshots need a KMS key the target can use; drkit
does not manage KMS grants (see docs/cloud.md).
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

from drkit.cloud.base import (
    CloudOperationFailed,
    CloudUnavailable,
    Pending,
    Provider,
    Resource,
    parse_percent,
)
from drkit.cloud.config import RUN_TAG, AwsCloudConfig, CopyTarget
from drkit.cloud.model import SnapshotRecord

log = logging.getLogger(__name__)

RESOURCE_TAG = "drkit:resource-id"
KIND_TAG = "drkit:kind"


def _tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


def _utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    raise CloudOperationFailed(f"unexpected time value from AWS: {value!r}")


def rds_snapshot_name(instance_id: str, run_id: str) -> str:
    """A valid RDS snapshot identifier: letters, digits, single hyphens, starts with a letter."""
    raw = re.sub(r"[^A-Za-z0-9]+", "-", f"drkit-{instance_id}-{run_id}").strip("-")
    return re.sub(r"-{2,}", "-", raw)[:255].rstrip("-")


class AwsProvider(Provider):
    name = "aws"

    def __init__(self, cfg: AwsCloudConfig, session: Any = None) -> None:
        import boto3

        self.cfg = cfg
        self._session = session or boto3.session.Session()
        self._clients: dict[tuple[str, str, str | None], Any] = {}
        self._role_sessions: dict[str, Any] = {}

    # -- clients ---------------------------------------------------------------------------
    def _client(self, service: str, region: str, role_arn: str | None = None) -> Any:
        from botocore.config import Config

        key = (service, region, role_arn)
        if key not in self._clients:
            session: Any = self._session if role_arn is None else self._assumed(role_arn)
            self._clients[key] = session.client(
                service, region_name=region, endpoint_url=self.cfg.endpoint,
                config=Config(retries={"max_attempts": 3, "mode": "standard"},
                              connect_timeout=10, read_timeout=60))
        return self._clients[key]

    def _assumed(self, role_arn: str) -> Any:
        import boto3

        if role_arn not in self._role_sessions:
            sts = self._client("sts", self.cfg.region)
            creds = self._call(sts.assume_role, f"assume role {role_arn}",
                               RoleArn=role_arn, RoleSessionName="drkit-snapshot-copy")
            c = creds["Credentials"]
            self._role_sessions[role_arn] = boto3.session.Session(
                aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                aws_session_token=c["SessionToken"])
        return self._role_sessions[role_arn]

    def _call(self, method: Any, what: str, **kwargs: Any) -> Any:
        """Call a boto3 method, turning its errors into one clear drkit line."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
        )

        try:
            return method(**kwargs)
        except NoCredentialsError:
            raise CloudUnavailable(f"aws: {what}: no AWS credentials found "
                                   "(environment, profile or instance role)") from None
        except EndpointConnectionError as exc:
            raise CloudUnavailable(f"aws: {what}: cannot reach {exc.kwargs.get('endpoint_url')}"
                                   ) from None
        except ClientError as exc:
            err = exc.response.get("Error", {})
            code = err.get("Code", "Error")
            message = err.get("Message") or ""
            if code in ("AuthFailure", "UnrecognizedClientException", "InvalidClientTokenId",
                        "SignatureDoesNotMatch", "ExpiredToken"):
                raise CloudUnavailable(f"aws: {what}: credentials refused ({code})") from None
            raise CloudOperationFailed(f"aws: {what}: {code} {message}".rstrip()) from None
        except BotoCoreError as exc:
            raise CloudUnavailable(f"aws: {what}: {exc}") from None

    def regions(self) -> list[str]:
        out = [self.cfg.region]
        out += [t.region for t in self.cfg.copy_to if t.region not in out]
        return out

    def _run_tags(self, run_id: str, resource_id: str, kind: str) -> list[dict[str, str]]:
        return [{"Key": RUN_TAG, "Value": run_id}, {"Key": RESOURCE_TAG, "Value": resource_id},
                {"Key": KIND_TAG, "Value": kind}]

    # -- discovery -------------------------------------------------------------------------
    def discover(self) -> list[Resource]:
        found: list[Resource] = []
        sel = self.cfg.select
        if self.cfg.ebs:
            ec2 = self._client("ec2", self.cfg.region)
            filters = ([{"Name": f"tag:{sel.key}", "Values": [sel.value]}] if sel.value is not None
                       else [{"Name": "tag-key", "Values": [sel.key]}])
            token: str | None = None
            while True:
                kwargs: dict[str, Any] = {"Filters": filters, "MaxResults": 500}
                if token:
                    kwargs["NextToken"] = token
                page = self._call(ec2.describe_volumes, "list EBS volumes", **kwargs)
                for vol in page.get("Volumes", []):
                    found.append(Resource("aws", "ebs", vol["VolumeId"], self.cfg.region,
                                          int(vol.get("Size", 0))))
                token = page.get("NextToken")
                if not token:
                    break
        if self.cfg.rds:
            rds = self._client("rds", self.cfg.region)
            marker: str | None = None
            while True:
                kwargs = {"Marker": marker} if marker else {}
                page = self._call(rds.describe_db_instances, "list RDS instances", **kwargs)
                for inst in page.get("DBInstances", []):
                    if sel.matches(_tags(inst.get("TagList"))):
                        found.append(Resource("aws", "rds", inst["DBInstanceIdentifier"],
                                              self.cfg.region,
                                              int(inst.get("AllocatedStorage", 0))))
                marker = page.get("Marker")
                if not marker:
                    break
        return found

    # -- snapshots -------------------------------------------------------------------------
    def start_snapshot(self, resource: Resource, run_id: str) -> Pending:
        tags = self._run_tags(run_id, resource.resource_id, resource.kind)
        if resource.kind == "ebs":
            ec2 = self._client("ec2", resource.region)
            snap = self._call(ec2.create_snapshot, f"snapshot volume {resource.resource_id}",
                              VolumeId=resource.resource_id,
                              Description=f"drkit run {run_id}",
                              TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])
            record = SnapshotRecord("aws", "ebs", resource.resource_id, snap["SnapshotId"],
                                    resource.region, _utc(snap["StartTime"]), run_id,
                                    size_gib=resource.size_gib)
            return Pending(record, {}, parse_percent(snap.get("Progress")),
                           snap.get("State") == "completed")
        rds = self._client("rds", resource.region)
        name = rds_snapshot_name(resource.resource_id, run_id)
        snap = self._call(rds.create_db_snapshot, f"snapshot DB instance {resource.resource_id}",
                          DBInstanceIdentifier=resource.resource_id, DBSnapshotIdentifier=name,
                          Tags=tags)["DBSnapshot"]
        created = snap.get("SnapshotCreateTime") or snap.get("InstanceCreateTime")
        record = SnapshotRecord("aws", "rds", resource.resource_id, name, resource.region,
                                _utc(created), run_id, size_gib=resource.size_gib)
        return Pending(record, {"arn": snap["DBSnapshotArn"]},
                       parse_percent(snap.get("PercentProgress")),
                       snap.get("Status") == "available")

    def start_copies(self, record: SnapshotRecord, run_id: str) -> list[Pending]:
        return [self._copy(record, target, run_id) for target in self.cfg.copy_to]

    def _copy(self, record: SnapshotRecord, target: CopyTarget, run_id: str) -> Pending:
        tags = self._run_tags(run_id, record.resource_id, record.kind)
        where = target.region + (f" (account {target.account})" if target.account else "")
        if record.kind == "ebs":
            if target.account:
                self._call(self._client("ec2", record.region).modify_snapshot_attribute,
                           f"share {record.snapshot_id} with account {target.account}",
                           SnapshotId=record.snapshot_id, Attribute="createVolumePermission",
                           OperationType="add", UserIds=[target.account])
            ec2 = self._client("ec2", target.region, target.role_arn)
            snap = self._call(ec2.copy_snapshot, f"copy {record.snapshot_id} to {where}",
                              SourceRegion=record.region, SourceSnapshotId=record.snapshot_id,
                              Description=f"drkit run {run_id} copy of {record.snapshot_id}",
                              TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])
            copy = SnapshotRecord("aws", "ebs", record.resource_id, snap["SnapshotId"],
                                  target.region, record.created_at, run_id, target.account,
                                  record.snapshot_id, record.size_gib)
            return Pending(copy, {"role_arn": target.role_arn})
        source = self._client("rds", record.region)
        arn = self._rds_arn(record)
        if target.account:
            self._call(source.modify_db_snapshot_attribute,
                       f"share {record.snapshot_id} with account {target.account}",
                       DBSnapshotIdentifier=record.snapshot_id, AttributeName="restore",
                       ValuesToAdd=[target.account])
        rds = self._client("rds", target.region, target.role_arn)
        snap = self._call(rds.copy_db_snapshot, f"copy {record.snapshot_id} to {where}",
                          SourceDBSnapshotIdentifier=arn,
                          TargetDBSnapshotIdentifier=record.snapshot_id,
                          SourceRegion=record.region, Tags=tags)["DBSnapshot"]
        copy = SnapshotRecord("aws", "rds", record.resource_id, snap["DBSnapshotIdentifier"],
                              target.region, record.created_at, run_id, target.account,
                              record.snapshot_id, record.size_gib)
        return Pending(copy, {"role_arn": target.role_arn},
                       parse_percent(snap.get("PercentProgress")),
                       snap.get("Status") == "available")

    def _rds_arn(self, record: SnapshotRecord) -> str:
        rds = self._client("rds", record.region)
        snaps = self._call(rds.describe_db_snapshots, f"describe {record.snapshot_id}",
                           DBSnapshotIdentifier=record.snapshot_id)["DBSnapshots"]
        return str(snaps[0]["DBSnapshotArn"])

    def poll(self, pending: Pending) -> None:
        rec = pending.record
        role = pending.handle.get("role_arn")
        if rec.kind == "ebs":
            ec2 = self._client("ec2", rec.region, role)
            snap = self._call(ec2.describe_snapshots, f"describe {rec.snapshot_id}",
                              SnapshotIds=[rec.snapshot_id])["Snapshots"][0]
            state = snap.get("State")
            pending.percent = parse_percent(snap.get("Progress"))
            if state == "error":
                raise CloudOperationFailed(
                    f"aws: snapshot {rec.snapshot_id} of {rec.resource_id} in {rec.region} "
                    f"failed: {snap.get('StateMessage') or 'state error'}")
            pending.done = state == "completed"
            return
        rds = self._client("rds", rec.region, role)
        snap = self._call(rds.describe_db_snapshots, f"describe {rec.snapshot_id}",
                          DBSnapshotIdentifier=rec.snapshot_id)["DBSnapshots"][0]
        status = snap.get("Status")
        pending.percent = parse_percent(snap.get("PercentProgress"))
        if status in ("failed", "incompatible-parameters", "deleted"):
            raise CloudOperationFailed(f"aws: RDS snapshot {rec.snapshot_id} in {rec.region} "
                                       f"is {status}")
        pending.done = status == "available"

    # -- reporting -------------------------------------------------------------------------
    def _targets(self) -> list[tuple[str, str | None]]:
        return [(self.cfg.region, None)] + [(t.region, t.role_arn) for t in self.cfg.copy_to]

    @staticmethod
    def _place(region: str, role_arn: str | None, account: str | None) -> str:
        return region if role_arn is None else f"{region}@{account}"

    def snapshot_times(self, resource: Resource) -> dict[str, datetime | None]:
        out: dict[str, datetime | None] = {}
        for region, role in self._targets():
            account = CopyTarget(region, role).account
            place = self._place(region, role, account)
            newest: datetime | None = None
            for when in self._complete_times(resource, region, role):
                newest = when if newest is None or when > newest else newest
            out[place] = newest
        return out

    def _complete_times(self, resource: Resource, region: str, role: str | None
                        ) -> list[datetime]:
        source = region == resource.region and role is None
        if resource.kind == "ebs":
            ec2 = self._client("ec2", region, role)
            # In the source region any complete snapshot of the volume counts (AWS Backup,
            # DLM); in copy regions only drkit's copies can be attributed to the volume.
            filters = ([{"Name": "volume-id", "Values": [resource.resource_id]}] if source
                       else [{"Name": f"tag:{RESOURCE_TAG}", "Values": [resource.resource_id]}])
            snaps = self._paged_snapshots(ec2, filters)
            return [_utc(s["StartTime"]) for s in snaps if s.get("State") == "completed"]
        rds = self._client("rds", region, role)
        kwargs: dict[str, Any] = ({"DBInstanceIdentifier": resource.resource_id} if source
                                  else {"SnapshotType": "manual"})
        out = []
        for snap in self._paged_db_snapshots(rds, kwargs):
            if not source and _tags(snap.get("TagList")).get(RESOURCE_TAG) != resource.resource_id:
                continue
            if snap.get("Status") == "available" and snap.get("SnapshotCreateTime"):
                out.append(_utc(snap["SnapshotCreateTime"]))
        return out

    def _paged_snapshots(self, ec2: Any, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"OwnerIds": ["self"], "Filters": filters}
            if token:
                kwargs["NextToken"] = token
            page = self._call(ec2.describe_snapshots, "list EBS snapshots", **kwargs)
            out += page.get("Snapshots", [])
            token = page.get("NextToken")
            if not token:
                return out

    def _paged_db_snapshots(self, rds: Any, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        marker: str | None = None
        while True:
            page = self._call(rds.describe_db_snapshots, "list RDS snapshots",
                              **kwargs, **({"Marker": marker} if marker else {}))
            out += page.get("DBSnapshots", [])
            marker = page.get("Marker")
            if not marker:
                return out

    def drkit_snapshots(self) -> list[SnapshotRecord]:
        out: list[SnapshotRecord] = []
        for region, role in self._targets():
            account = CopyTarget(region, role).account
            if self.cfg.ebs:
                ec2 = self._client("ec2", region, role)
                for s in self._paged_snapshots(ec2, [{"Name": "tag-key", "Values": [RUN_TAG]}]):
                    tags = _tags(s.get("Tags"))
                    if s.get("State") != "completed":
                        continue
                    out.append(SnapshotRecord(
                        "aws", "ebs", tags.get(RESOURCE_TAG, s.get("VolumeId", "")),
                        s["SnapshotId"], region, _utc(s["StartTime"]), tags[RUN_TAG], account,
                        size_gib=int(s.get("VolumeSize", 0))))
            if self.cfg.rds:
                rds = self._client("rds", region, role)
                for s in self._paged_db_snapshots(rds, {"SnapshotType": "manual"}):
                    tags = _tags(s.get("TagList"))
                    if RUN_TAG not in tags or s.get("Status") != "available":
                        continue
                    out.append(SnapshotRecord(
                        "aws", "rds", tags.get(RESOURCE_TAG, s.get("DBInstanceIdentifier", "")),
                        s["DBSnapshotIdentifier"], region, _utc(s["SnapshotCreateTime"]),
                        tags[RUN_TAG], account, size_gib=int(s.get("AllocatedStorage", 0))))
        return out

    def _role_for(self, record: SnapshotRecord) -> str | None:
        if record.account is None:
            return None
        for target in self.cfg.copy_to:
            if target.account == record.account:
                return target.role_arn
        raise CloudOperationFailed(f"aws: no copy target configured for account "
                                   f"{record.account} (snapshot {record.snapshot_id})")

    def exists(self, record: SnapshotRecord, region: str) -> bool:
        from botocore.exceptions import ClientError

        role = self._role_for(record)
        try:
            if record.kind == "ebs":
                self._client("ec2", region, role).describe_snapshots(
                    SnapshotIds=[record.snapshot_id])
            else:
                self._client("rds", region, role).describe_db_snapshots(
                    DBSnapshotIdentifier=record.snapshot_id)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("InvalidSnapshot.NotFound", "DBSnapshotNotFound",
                        "DBSnapshotNotFoundFault", "InvalidSnapshotID.Malformed"):
                return False
            raise CloudOperationFailed(f"aws: look up {record.snapshot_id} in {region}: "
                                       f"{code}") from None
        return True

    def delete(self, record: SnapshotRecord) -> None:
        role = self._role_for(record)
        if record.kind == "ebs":
            ec2 = self._client("ec2", record.region, role)
            self._call(ec2.delete_snapshot, f"delete {record.snapshot_id}",
                       SnapshotId=record.snapshot_id)
        else:
            rds = self._client("rds", record.region, role)
            self._call(rds.delete_db_snapshot, f"delete {record.snapshot_id}",
                       DBSnapshotIdentifier=record.snapshot_id)
