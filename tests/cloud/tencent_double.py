"""A TEST DOUBLE of the Tencent Cloud API 3.0 for CBS, TencentDB for MySQL (cdb), VPC and CVM.

This is not Tencent Cloud and not an emulator of it: it is a small HTTP server bound to
127.0.0.1 that speaks the API 3.0 wire shape closely enough for the real
``tencentcloud-sdk-python`` clients to talk to it, so drkit's Tencent code runs through the
real SDK, real HTTP and real request signing in tests. What it does:

- accepts ``POST /`` with a JSON body, the action in ``X-TC-Action``, the API version in
  ``X-TC-Version`` and the region in ``X-TC-Region``;
- checks the ``TC3-HMAC-SHA256`` ``Authorization`` header against its secret key exactly
  as the service does (canonical request over content-type and host, derived signing key)
  and answers ``AuthFailure.SignatureFailure`` / ``AuthFailure.SecretIdNotFound`` otherwise;
- answers ``{"Response": {..., "RequestId": ...}}``, and errors as
  ``{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`` with HTTP 200, as the
  service does;
- implements, for CBS (2017-03-12): DescribeDisks, CreateSnapshot, DescribeSnapshots,
  CopySnapshotCrossRegions, DeleteSnapshots; for cdb (2017-03-20): DescribeDBInstances,
  CreateBackup, DescribeBackups, DeleteBackup; for VPC (2017-03-12), read only:
  DescribeVpcs, DescribeSubnets, DescribeSecurityGroups, DescribeSecurityGroupPolicies,
  DescribeVpcPeeringConnections, DescribeRouteTables, DescribeCcnAttachedInstances; for CVM
  (2017-03-12): DescribeInstances; for CloudAudit (2019-03-19): ListAudits, DescribeAudit,
  LookUpEvents (``CloudAuditDouble``); for Bastion Host (bh 2023-04-18, and the same
  actions under its former name dasb 2019-10-18): SearchCommand, SearchCommandBySid,
  SearchSession (``BastionHostDouble``).

The VPC and CVM lists page as the service does: ``Offset``/``Limit`` (strings for the VPC
actions whose SDK model types them so, integers for the others), ``TotalCount`` of the
whole list in every page, a ``Limit`` above ``max_limit`` (100, as documented) refused with
``InvalidParameterValue.Range``. Their items are stored as given (``add_network``,
``set_security_group_policies``), so tests put in fixtures shaped like the SDK's models.

Time-dependent behaviour is simulated: a new snapshot or backup is ``CREATING``/``RUNNING``
and advances by ``step`` percent each time it is described; ``stuck`` keeps it there for
ever (to test timeouts); ``refuse_regions`` makes a cross-region copy to those regions fail
with the per-region error the real API reports in ``SnapshotCopyResultSet``. Times are
"YYYY-MM-DD HH:MM:SS" in Asia/Shanghai (UTC+8), as the real API returns them.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SHANGHAI = timezone(timedelta(hours=8))


class ApiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _sign(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def tc3_signature(secret_key: str, *, method: str, uri: str, query: str, content_type: str,
                  host: str, payload: bytes, timestamp: str, service: str) -> str:
    """The TC3-HMAC-SHA256 signature as documented for Tencent Cloud API 3.0."""
    canonical_request = "\n".join([
        method, uri, query, f"content-type:{content_type}\nhost:{host}\n",
        "content-type;host", hashlib.sha256(payload).hexdigest()])
    date = datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join([
        "TC3-HMAC-SHA256", timestamp, scope,
        hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()])
    k_date = _sign(("TC3" + secret_key).encode("utf-8"), date)
    k_service = _sign(k_date, service)
    k_signing = _sign(k_service, "tc3_request")
    return hmac.new(k_signing, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


class CloudAuditDouble:
    """CloudAudit (2019-03-19) for the test double: tracking sets (``ListAudits``,
    ``DescribeAudit``) and the operation events ``LookUpEvents`` pages through.

    Kept apart from the CBS/cdb handlers: its state is created on first use, so the
    double's constructor is unchanged. ``add_audit`` makes a tracking set (``status`` 1 on,
    0 off; ``read_write`` 1 reads only, 2 writes only, 3 all); ``add_audit_event`` records
    one event in the shape of a LookUpEvents ``Events`` item, with the ``CloudAuditEvent``
    JSON string inside as the service returns it.
    """

    def _cloudaudit_state(self) -> dict[str, Any]:
        state: dict[str, Any] | None = self.__dict__.get("_cloudaudit")
        if state is None:
            state = {"audits": {}, "events": []}
            self.__dict__["_cloudaudit"] = state
        return state

    def add_audit(self, name: str, *, bucket: str, cos_region: str, status: int = 1,
                  read_write: int = 3, prefix: str = "cloudaudit") -> None:
        self._cloudaudit_state()["audits"][name] = {
            "AuditName": name, "AuditStatus": status, "CosBucketName": bucket,
            "CosRegion": cos_region, "LogFilePrefix": prefix, "ReadWriteAttribute": read_write,
            "IsEnableCmqNotify": 0, "CmqQueueName": "", "CmqRegion": "",
            "IsEnableKmsEncry": 0, "KeyId": "", "KmsAlias": "", "KmsRegion": ""}

    def set_audit_status(self, name: str, status: int) -> None:
        self._cloudaudit_state()["audits"][name]["AuditStatus"] = status

    def add_audit_event(self, *, at: datetime, name: str, resource_type: str,
                        resource: str = "", user: str = "", secret_id: str = "",
                        source_ip: str = "", region: str = "ap-guangzhou",
                        account: int = 100000000001, error_code: int = 0,
                        identity_type: str = "CAMUser") -> str:
        event_id = str(uuid.uuid4())
        request_id = str(uuid.uuid4())
        inner = {
            "userIdentity": {"principalId": str(account + 1), "accountId": str(account),
                             "secretId": secret_id, "type": identity_type,
                             "userName": user, "sessionContext": ""},
            "eventTime": str(int(at.timestamp())), "eventVersion": 2,
            "eventSource": f"{resource_type}.api.qcloud.com", "eventType": "ApiCall",
            "eventName": name, "eventRegion": region, "resourceType": resource_type,
            "resourceName": resource, "errorCode": error_code, "errorMessage": "",
            "requestID": request_id, "sourceIPAddress": source_ip, "apiVersion": "",
            "actionType": "Write", "eventId": event_id}
        self._cloudaudit_state()["events"].append({
            "EventId": event_id, "Username": user, "EventTime": str(int(at.timestamp())),
            "CloudAuditEvent": json.dumps(inner), "ResourceTypeCn": resource_type,
            "ErrorCode": error_code, "EventName": name, "SecretId": secret_id,
            "EventSource": f"{resource_type}.api.qcloud.com", "RequestID": request_id,
            "ResourceRegion": region, "AccountID": account, "SourceIPAddress": source_ip,
            "EventNameCn": name, "EventRegion": region, "Location": "",
            "Resources": {"ResourceType": resource_type, "ResourceName": resource}})
        return event_id

    def _cloudaudit_ListAudits(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"AuditSummarys": [
            {k: a[k] for k in ("AuditName", "AuditStatus", "CosBucketName", "LogFilePrefix")}
            for a in self._cloudaudit_state()["audits"].values()]}

    def _cloudaudit_DescribeAudit(self, region: str, params: dict[str, Any]
                                  ) -> dict[str, Any]:
        audit = self._cloudaudit_state()["audits"].get(params.get("AuditName", ""))
        if audit is None:
            raise ApiError("ResourceNotFound.AuditNotExist",
                           f"tracking set {params.get('AuditName')} does not exist")
        return dict(audit)

    def _cloudaudit_LookUpEvents(self, region: str, params: dict[str, Any]
                                 ) -> dict[str, Any]:
        start, end = int(params.get("StartTime", 0)), int(params.get("EndTime", 0))
        if end <= start:
            raise ApiError("InvalidParameterValue.Time", "EndTime must be after StartTime")
        limit = int(params.get("MaxResults", 10))
        if not 1 <= limit <= 50:
            raise ApiError("InvalidParameterValue.MaxResult", "MaxResults is 1 to 50")
        # Newest first, as the service returns them; NextToken is an offset here.
        chosen = sorted((e for e in self._cloudaudit_state()["events"]
                         if start <= int(e["EventTime"]) <= end),
                        key=lambda e: int(e["EventTime"]), reverse=True)
        offset = int(params.get("NextToken") or 0)
        page = chosen[offset:offset + limit]
        over = offset + limit >= len(chosen)
        return {"Events": page, "ListOver": over, "TotalCount": len(chosen),
                "NextToken": "" if over else str(offset + limit)}


class BastionHostDouble:
    """Bastion Host (bh 2023-04-18; dasb 2019-10-18 answers the same) for the test double:
    the command and session search an auditor pages through.

    Kept apart like ``CloudAuditDouble``: state created on first use. ``add_bastion_session``
    records a session (``SessionResult`` fields), ``add_bastion_command`` one command typed
    in it (``SearchCommandResult`` fields: ``Action`` 1 ran, 2 blocked, 3 held for
    confirmation). Times are ISO 8601 in UTC+8 as the service returns them; the searches
    take ``StartTime``/``EndTime`` in ISO 8601 and page with ``Offset``/``Limit`` (default
    20, at most 200, a larger ``Limit`` refused as the service does).
    """

    def _bastion_state(self) -> dict[str, Any]:
        state: dict[str, Any] | None = self.__dict__.get("_bastion")
        if state is None:
            state = {"sessions": {}, "commands": []}
            self.__dict__["_bastion"] = state
        return state

    def add_bastion_session(self, *, at: datetime, user: str, account: str = "root",
                            device: str = "db-prod-1", instance_id: str = "ins-0000001",
                            private_ip: str = "10.0.1.20", from_ip: str = "10.0.8.15",
                            real_name: str = "", minutes: float = 30.0,
                            region: str = "ap-guangzhou") -> str:
        sid = str(uuid.uuid4())
        self._bastion_state()["sessions"][sid] = {
            "Id": sid, "UserName": user, "RealName": real_name, "Account": account,
            "StartTime": at.astimezone(SHANGHAI).isoformat(timespec="seconds"),
            "EndTime": (at + timedelta(minutes=minutes)).astimezone(SHANGHAI).isoformat(
                timespec="seconds"),
            "Size": 4096, "InstanceId": instance_id, "DeviceName": device,
            "PrivateIp": private_ip, "PublicIp": "", "FromIp": from_ip,
            "Duration": minutes * 60, "Count": 0, "DangerCount": 0, "Status": 2,
            "ApCode": region, "Protocol": "ssh", "DeviceKind": "Linux"}
        return sid

    def add_bastion_command(self, sid: str, *, at: datetime, cmd: str, action: int = 1,
                            confirmed: datetime | None = None) -> None:
        session = self._bastion_state()["sessions"][sid]
        start = datetime.fromisoformat(session["StartTime"])
        session["Count"] += 1
        self._bastion_state()["commands"].append({
            "Time": at.astimezone(SHANGHAI).isoformat(timespec="seconds"),
            "UserName": session["UserName"], "RealName": session["RealName"],
            "InstanceId": session["InstanceId"], "DeviceName": session["DeviceName"],
            "PublicIp": session["PublicIp"], "PrivateIp": session["PrivateIp"], "Cmd": cmd,
            "Action": action, "Sid": sid,
            "TimeOffset": int((at - start).total_seconds() * 1000),
            "Account": session["Account"], "FromIp": session["FromIp"],
            "SessionTime": session["StartTime"], "SessTime": session["StartTime"],
            "ConfirmTime": confirmed.astimezone(SHANGHAI).isoformat(timespec="seconds")
            if confirmed else "",
            "UserDepartmentId": "1", "UserDepartmentName": "ops", "DeviceDepartmentId": "1",
            "DeviceDepartmentName": "ops", "Size": 0, "SignValue": "", "DeviceKind": "Linux"})

    @staticmethod
    def _bastion_window(params: dict[str, Any], *, required: bool = True
                        ) -> tuple[datetime, datetime]:
        try:
            if "StartTime" not in params:
                if required:
                    raise ApiError("MissingParameter", "StartTime is required")
                return datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
            start = datetime.fromisoformat(params["StartTime"])
            end = (datetime.fromisoformat(params["EndTime"]) if params.get("EndTime")
                   else datetime.now(UTC))
        except (TypeError, ValueError):
            raise ApiError("InvalidParameterValue.Time",
                           "StartTime and EndTime are ISO 8601 times") from None
        if start.tzinfo is None or end.tzinfo is None:
            raise ApiError("InvalidParameterValue.Time", "times need a UTC offset")
        return start, end

    @staticmethod
    def _bastion_page(items: list[dict[str, Any]], params: dict[str, Any]
                      ) -> tuple[int, list[dict[str, Any]]]:
        offset, limit = int(params.get("Offset", 0)), int(params.get("Limit", 20))
        if offset < 0 or not 1 <= limit <= 200:
            raise ApiError("InvalidParameterValue", "Limit is 1 to 200")
        return len(items), [dict(i) for i in items[offset:offset + limit]]

    def _bh_SearchCommand(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        start, end = self._bastion_window(params)
        chosen = [c for c in self._bastion_state()["commands"]
                  if start <= datetime.fromisoformat(c["Time"]) <= end]
        if params.get("AuditAction"):
            chosen = [c for c in chosen if c["Action"] in set(params["AuditAction"])]
        if params.get("UserName"):
            chosen = [c for c in chosen if c["UserName"] == params["UserName"]]
        total, page = self._bastion_page(chosen, params)
        return {"TotalCount": total, "Commands": page}

    def _bh_SearchCommandBySid(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        sid = params.get("Sid")
        if not sid:
            raise ApiError("MissingParameter", "Sid is required")
        keys = ("Cmd", "Time", "TimeOffset", "Action", "Sid", "UserName", "Account",
                "InstanceId", "FromIp", "SessionTime", "SessTime", "ConfirmTime",
                "UserDepartmentId", "UserDepartmentName", "DeviceDepartmentId",
                "DeviceDepartmentName", "Size", "SignValue", "DeviceKind")
        chosen = [{k: c[k] for k in keys} for c in self._bastion_state()["commands"]
                  if c["Sid"] == sid]
        total, page = self._bastion_page(chosen, params)
        return {"TotalCount": total, "CommandSet": page}

    def _bh_SearchSession(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        sessions = list(self._bastion_state()["sessions"].values())
        if params.get("Id"):
            chosen = [s for s in sessions if s["Id"] == params["Id"]]
        else:
            if "Kind" not in params:
                raise ApiError("MissingParameter", "Kind is required unless Id is given")
            start, end = self._bastion_window(params)
            chosen = [s for s in sessions
                      if start <= datetime.fromisoformat(s["StartTime"]) <= end]
            if params.get("UserName"):
                chosen = [s for s in chosen if s["UserName"] == params["UserName"]]
        total, page = self._bastion_page(chosen, params)
        return {"TotalCount": total, "SessionSet": page}

    _dasb_SearchCommand = _bh_SearchCommand
    _dasb_SearchCommandBySid = _bh_SearchCommandBySid
    _dasb_SearchSession = _bh_SearchSession


class TencentDouble(CloudAuditDouble, BastionHostDouble):
    """The test double's state and HTTP server. Use ``start()``/``stop()``."""

    def __init__(self, secret_id: str, secret_key: str, *, step: float = 50.0) -> None:
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.step = step
        self.stuck = False
        self.refuse_regions: set[str] = set()
        self.calls: list[tuple[str, str, dict[str, Any]]] = []  # (action, region, params)
        self.disks: dict[str, dict[str, dict[str, Any]]] = {}
        self.snapshots: dict[str, dict[str, dict[str, Any]]] = {}
        self.instances: dict[str, dict[str, dict[str, Any]]] = {}
        self.backups: dict[str, list[dict[str, Any]]] = {}
        self.remote_regions: dict[str, list[str]] = {}
        self.max_limit = 100
        # region -> list action (DescribeVpcs, ...) -> items; region -> group -> policy set
        self.network: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.policies: dict[str, dict[str, dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> TencentDouble:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, data = double.handle(self.command, self.path, dict(self.headers), body)
                out = json.dumps(data).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.server_address[1]}"

    # -- test helpers ----------------------------------------------------------------------
    def _now(self) -> str:
        return datetime.now(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")

    def add_disk(self, region: str, tags: dict[str, str], size: int = 50) -> str:
        disk_id = f"disk-{next(self._ids):08d}"
        self.disks.setdefault(region, {})[disk_id] = {
            "DiskId": disk_id, "DiskSize": size, "DiskState": "ATTACHED",
            "Placement": {"Zone": f"{region}-1"},
            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        return disk_id

    def add_instance(self, region: str, tags: dict[str, str],
                     remote_regions: list[str] | None = None) -> str:
        inst_id = f"cdb-{next(self._ids):08d}"
        self.instances.setdefault(region, {})[inst_id] = {
            "InstanceId": inst_id, "Region": region, "Volume": 100, "Status": 1,
            "TagList": [{"TagKey": k, "TagValue": v} for k, v in tags.items()]}
        self.backups[inst_id] = []
        self.remote_regions[inst_id] = list(remote_regions or [])
        return inst_id

    def add_db_item(self, region: str, item: dict[str, Any]) -> str:
        """A TencentDB for MySQL instance given as a whole ``DescribeDBInstances`` item."""
        inst_id = str(item["InstanceId"])
        self.instances.setdefault(region, {})[inst_id] = dict(item)
        self.backups.setdefault(inst_id, [])
        self.remote_regions.setdefault(inst_id, [])
        return inst_id

    def add_network(self, region: str, action: str, items: list[dict[str, Any]]) -> None:
        """Append items to what a VPC/CVM list action (``DescribeVpcs``, ...) returns."""
        if action not in _NETWORK_LISTS:
            raise ValueError(f"{action} is not a list action of this double")
        self.network.setdefault(region, {}).setdefault(action, []).extend(
            dict(i) for i in items)

    def set_security_group_policies(self, region: str, group_id: str,
                                    policy_set: dict[str, Any]) -> None:
        """What DescribeSecurityGroupPolicies returns for ``group_id``: a
        ``SecurityGroupPolicySet`` (``Version``, ``Ingress``, ``Egress``)."""
        self.policies.setdefault(region, {})[group_id] = dict(policy_set)

    def age_snapshot(self, region: str, snapshot_id: str, days: float) -> None:
        """Move a snapshot's CreateTime ``days`` into the past."""
        snap = self.snapshots[region][snapshot_id]
        when = datetime.strptime(snap["CreateTime"], "%Y-%m-%d %H:%M:%S")
        snap["CreateTime"] = (when - timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")

    # -- protocol --------------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes
               ) -> tuple[int, dict[str, Any]]:
        request_id = str(uuid.uuid4())
        lower = {k.lower(): v for k, v in headers.items()}
        try:
            if method != "POST" or path != "/":
                raise ApiError("UnsupportedProtocol", "only POST / is supported")
            service = self._authenticate(lower, body)
            action = lower.get("x-tc-action", "")
            region = lower.get("x-tc-region", "")
            try:
                params = json.loads(body or b"{}")
            except ValueError:
                raise ApiError("InvalidParameter", "body is not JSON") from None
            handler = getattr(self, f"_{service}_{action}", None)
            if handler is None:
                raise ApiError("InvalidAction", f"action {action} not found for {service}")
            with self._lock:
                self.calls.append((action, region, params))
                result = handler(region, params)
            result["RequestId"] = request_id
            return 200, {"Response": result}
        except ApiError as err:
            return 200, {"Response": {"Error": {"Code": err.code, "Message": err.message},
                                      "RequestId": request_id}}

    def _authenticate(self, headers: dict[str, str], body: bytes) -> str:
        auth = headers.get("authorization", "")
        if not auth.startswith("TC3-HMAC-SHA256 "):
            raise ApiError("AuthFailure.SignatureFailure", "unsupported signature method")
        fields = dict(part.strip().split("=", 1) for part in auth[16:].split(","))
        secret_id, date, service, _ = fields.get("Credential", "///").split("/", 3)
        if secret_id != self.secret_id:
            raise ApiError("AuthFailure.SecretIdNotFound", "the SecretId is not found")
        expected = tc3_signature(
            self.secret_key, method="POST", uri="/", query="",
            content_type=headers.get("content-type", ""), host=headers.get("host", ""),
            payload=body, timestamp=headers.get("x-tc-timestamp", "0"), service=service)
        if not hmac.compare_digest(expected, fields.get("Signature", "")):
            raise ApiError("AuthFailure.SignatureFailure", "the provided signature is invalid")
        if service not in ("cbs", "cdb", "vpc", "cvm", "cloudaudit", "bh", "dasb"):
            raise ApiError("InvalidAction", f"service {service} is not in this test double")
        return service

    def _advance(self, item: dict[str, Any], key: str, done: str) -> None:
        if self.stuck or item[key] == done:
            return
        item["Percent"] = min(100, item.get("Percent", 0) + self.step)
        if item["Percent"] >= 100:
            item[key] = done

    # -- CBS -------------------------------------------------------------------------------
    def _cbs_DescribeDisks(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        disks = list(self.disks.get(region, {}).values())
        for flt in params.get("Filters") or []:
            values = set(flt.get("Values", []))
            if flt["Name"] == "tag-key":
                disks = [d for d in disks if values & {t["Key"] for t in d["Tags"]}]
            elif flt["Name"] == "tag-value":
                disks = [d for d in disks if values & {t["Value"] for t in d["Tags"]}]
            elif flt["Name"] == "disk-id":
                disks = [d for d in disks if d["DiskId"] in values]
        offset, limit = int(params.get("Offset", 0)), int(params.get("Limit", 20))
        return {"TotalCount": len(disks), "DiskSet": disks[offset:offset + limit]}

    def _cbs_CreateSnapshot(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        disk = self.disks.get(region, {}).get(params.get("DiskId", ""))
        if disk is None:
            raise ApiError("InvalidDisk.NotExist", f"disk {params.get('DiskId')} not found")
        snap_id = f"snap-{next(self._ids):08d}"
        self.snapshots.setdefault(region, {})[snap_id] = {
            "SnapshotId": snap_id, "DiskId": disk["DiskId"], "DiskSize": disk["DiskSize"],
            "SnapshotName": params.get("SnapshotName", snap_id), "SnapshotState": "CREATING",
            "Percent": 0, "CreateTime": self._now(), "Placement": {"Zone": f"{region}-1"},
            "CopyFromRemote": False, "Tags": list(params.get("Tags") or [])}
        return {"SnapshotId": snap_id}

    def _cbs_DescribeSnapshots(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        snaps = self.snapshots.get(region, {})
        ids = params.get("SnapshotIds")
        if ids:
            for sid in ids:
                if sid not in snaps:
                    raise ApiError("InvalidSnapshotId.NotExist", f"snapshot {sid} not found")
            chosen = [snaps[s] for s in ids]
        else:
            chosen = list(snaps.values())
        for flt in params.get("Filters") or []:
            values = set(flt.get("Values", []))
            if flt["Name"] == "disk-id":
                chosen = [s for s in chosen if s["DiskId"] in values]
            elif flt["Name"] == "snapshot-name":
                chosen = [s for s in chosen if s["SnapshotName"] in values]
        for snap in chosen:
            self._advance(snap, "SnapshotState", "NORMAL")
        offset, limit = int(params.get("Offset", 0)), int(params.get("Limit", 20))
        return {"TotalCount": len(chosen),
                "SnapshotSet": [dict(s) for s in chosen[offset:offset + limit]]}

    def _cbs_CopySnapshotCrossRegions(self, region: str, params: dict[str, Any]
                                      ) -> dict[str, Any]:
        source = self.snapshots.get(region, {}).get(params.get("SnapshotId", ""))
        if source is None:
            raise ApiError("InvalidSnapshotId.NotExist", "source snapshot not found")
        if source["SnapshotState"] != "NORMAL":
            raise ApiError("InvalidSnapshot.NotNormal", "snapshot is not in NORMAL state")
        results = []
        for dest in params.get("DestinationRegions", []):
            if dest in self.refuse_regions:
                results.append({"DestinationRegion": dest, "SnapshotId": "",
                                "Code": "UnsupportedOperation.RegionNotSupport",
                                "Message": f"copy to {dest} is not allowed"})
                continue
            snap_id = f"snap-{next(self._ids):08d}"
            self.snapshots.setdefault(dest, {})[snap_id] = {
                **source, "SnapshotId": snap_id, "SnapshotState": "COPYING_FROM_REMOTE",
                "Percent": 0, "CopyFromRemote": True, "Tags": [],
                "SnapshotName": params.get("SnapshotName", source["SnapshotName"]),
                "Placement": {"Zone": f"{dest}-1"}}
            results.append({"DestinationRegion": dest, "SnapshotId": snap_id,
                            "Code": "Success", "Message": ""})
        return {"SnapshotCopyResultSet": results}

    def _cbs_DeleteSnapshots(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        snaps = self.snapshots.get(region, {})
        for sid in params.get("SnapshotIds", []):
            if sid not in snaps:
                raise ApiError("InvalidSnapshotId.NotExist", f"snapshot {sid} not found")
        for sid in params.get("SnapshotIds", []):
            del snaps[sid]
        return {}

    # -- cdb (TencentDB for MySQL) ---------------------------------------------------------
    def _cdb_DescribeDBInstances(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        items = list(self.instances.get(region, {}).values())
        offset, limit = int(params.get("Offset", 0)), int(params.get("Limit", 20))
        return {"TotalCount": len(items), "Items": items[offset:offset + limit]}

    def _instance(self, region: str, inst_id: str) -> dict[str, Any]:
        inst = self.instances.get(region, {}).get(inst_id)
        if inst is None:
            raise ApiError("InvalidParameter.InstanceNotFound", f"instance {inst_id} not found")
        return inst

    def _cdb_CreateBackup(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        inst = self._instance(region, params.get("InstanceId", ""))
        backup_id = next(self._ids)
        now = self._now()
        self.backups[inst["InstanceId"]].append({
            "BackupId": backup_id, "InstanceId": inst["InstanceId"], "Status": "RUNNING",
            "Percent": 0, "Method": params.get("BackupMethod", "physical"), "Way": "manual",
            "ManualBackupName": params.get("ManualBackupName", ""), "Date": now,
            "StartTime": now, "FinishTime": "", "Size": 1024 * 1024, "Region": region,
            "RemoteInfo": []})
        return {"BackupId": backup_id}

    def _cdb_DescribeBackups(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        inst = self._instance(region, params.get("InstanceId", ""))
        items = self.backups[inst["InstanceId"]]
        for item in items:
            was = item["Status"]
            self._advance(item, "Status", "SUCCESS")
            if was != "SUCCESS" and item["Status"] == "SUCCESS":
                item["FinishTime"] = self._now()
                item["RemoteInfo"] = [
                    {"SubBackupId": next(self._ids), "Region": r, "Status": "SUCCESS",
                     "StartTime": item["StartTime"], "FinishTime": item["FinishTime"], "Url": ""}
                    for r in self.remote_regions[inst["InstanceId"]]]
        offset, limit = int(params.get("Offset", 0)), int(params.get("Limit", 20))
        out = [{k: v for k, v in b.items() if k != "Percent"} for b in items]
        return {"TotalCount": len(out), "Items": out[offset:offset + limit]}

    def _cdb_DeleteBackup(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        inst = self._instance(region, params.get("InstanceId", ""))
        items = self.backups[inst["InstanceId"]]
        wanted = int(params.get("BackupId", -1))
        if not any(b["BackupId"] == wanted for b in items):
            raise ApiError("InvalidParameter", f"backup {wanted} not found")
        self.backups[inst["InstanceId"]] = [b for b in items if b["BackupId"] != wanted]
        return {}


    # -- VPC and CVM (read only) -----------------------------------------------------------
    def _page(self, region: str, action: str, params: dict[str, Any],
              id_key: str, ids_param: str | None = None) -> dict[str, Any]:
        offset_raw, limit_raw = params.get("Offset", 0), params.get("Limit", 20)
        want = str if _NETWORK_LISTS[action] == "string" else int
        for name, value in (("Offset", offset_raw), ("Limit", limit_raw)):
            if name in params and not isinstance(value, want):
                raise ApiError("InvalidParameter",
                               f"{name} must be {'a String' if want is str else 'an Integer'}")
        try:
            offset, limit = int(offset_raw), int(limit_raw)
        except ValueError:
            raise ApiError("InvalidParameterValue", "Offset and Limit are numbers") from None
        if offset < 0 or not 0 < limit <= self.max_limit:
            raise ApiError("InvalidParameterValue.Range",
                           f"Limit must be between 1 and {self.max_limit}")
        items = list(self.network.get(region, {}).get(action, []))
        wanted = params.get(ids_param) if ids_param else None
        if wanted:
            items = [i for i in items if i.get(id_key) in set(wanted)]
        if action == "DescribeCcnAttachedInstances" and params.get("CcnId"):
            items = [i for i in items if i.get("CcnId") == params["CcnId"]]
        return {"TotalCount": len(items), _SET_KEYS[action]: items[offset:offset + limit]}

    def _vpc_DescribeVpcs(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._page(region, "DescribeVpcs", params, "VpcId", "VpcIds")

    def _vpc_DescribeSubnets(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._page(region, "DescribeSubnets", params, "SubnetId", "SubnetIds")

    def _vpc_DescribeSecurityGroups(self, region: str, params: dict[str, Any]
                                    ) -> dict[str, Any]:
        return self._page(region, "DescribeSecurityGroups", params, "SecurityGroupId",
                          "SecurityGroupIds")

    def _vpc_DescribeSecurityGroupPolicies(self, region: str, params: dict[str, Any]
                                           ) -> dict[str, Any]:
        gid = params.get("SecurityGroupId")
        if not gid:
            raise ApiError("MissingParameter", "SecurityGroupId is required")
        known = {g["SecurityGroupId"] for g in
                 self.network.get(region, {}).get("DescribeSecurityGroups", [])}
        if gid not in known:
            raise ApiError("ResourceNotFound", f"security group {gid} not found")
        policy_set = self.policies.get(region, {}).get(
            gid, {"Version": "1", "Ingress": [], "Egress": []})
        return {"SecurityGroupPolicySet": policy_set}

    def _vpc_DescribeVpcPeeringConnections(self, region: str, params: dict[str, Any]
                                           ) -> dict[str, Any]:
        return self._page(region, "DescribeVpcPeeringConnections", params,
                          "PeeringConnectionId", "PeeringConnectionIds")

    def _vpc_DescribeRouteTables(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._page(region, "DescribeRouteTables", params, "RouteTableId",
                          "RouteTableIds")

    def _vpc_DescribeCcnAttachedInstances(self, region: str, params: dict[str, Any]
                                          ) -> dict[str, Any]:
        return self._page(region, "DescribeCcnAttachedInstances", params, "CcnId")

    def _cvm_DescribeInstances(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._page(region, "DescribeInstances", params, "InstanceId", "InstanceIds")


#: The VPC/CVM list actions and the type their SDK request models give Offset/Limit.
_NETWORK_LISTS = {
    "DescribeVpcs": "string", "DescribeSubnets": "string", "DescribeSecurityGroups": "string",
    "DescribeRouteTables": "string", "DescribeVpcPeeringConnections": "integer",
    "DescribeCcnAttachedInstances": "integer", "DescribeInstances": "integer",
}
_SET_KEYS = {
    "DescribeVpcs": "VpcSet", "DescribeSubnets": "SubnetSet",
    "DescribeSecurityGroups": "SecurityGroupSet", "DescribeRouteTables": "RouteTableSet",
    "DescribeVpcPeeringConnections": "PeerConnectionSet",
    "DescribeCcnAttachedInstances": "InstanceSet", "DescribeInstances": "InstanceSet",
}
