"""``cos://`` backend on cos-python-sdk-v5 (Tencent Cloud Object Storage).

URL: ``cos://bucket-appid/prefix?region=ap-shanghai&credentials=env:NAME&endpoint=...``.
``credentials=env:NAME`` reads ``NAME_SECRET_ID`` / ``NAME_SECRET_KEY`` (optional
``NAME_SESSION_TOKEN``); without it ``TENCENTCLOUD_SECRET_ID`` / ``TENCENTCLOUD_SECRET_KEY``
(and ``TENCENTCLOUD_SESSION_TOKEN``) are used. ``endpoint=`` overrides where requests go:
``http://127.0.0.1:PORT`` (an IP address or localhost) sends every request to that address
with the usual virtual-host ``Host`` header; a host name (``https://cos.ap-shanghai.
tencentcos.cn``) replaces the regional endpoint domain.

Create-only: uploads carry ``x-cos-forbid-overwrite: true`` (PutObject and
CompleteMultipartUpload), so COS itself refuses to overwrite; a COS object becomes visible
only when its upload completes. Uploads carry ``Content-MD5`` so COS rejects damaged bytes,
and the SHA-256 is stored as user metadata ``x-cos-meta-drkit-sha256`` (COS has no SHA-256
checksum of its own; ``head`` reports that metadata).

What COS cannot do that S3 can: object lock is a bucket-level COMPLIANCE setting only, with
no per-object retain-until. ``put(retain_until=...)`` is accepted only when the bucket's
default retention already keeps the object at least that long; otherwise it raises
``Unsupported``. ``head`` reports retain-until as last-modified plus the bucket's default
retention.

Tests route the real SDK through a transport adapter (``COSStore.session_factory``); see
``tests/cos_adapter.py``.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import ipaddress
import logging
import os
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosClientError, CosServiceError

from drkit.clock import Clock, SystemClock, utc_iso
from drkit.errors import (
    BackendUnavailable,
    NeedsThaw,
    ObjectExists,
    ObjectNotFound,
    RetentionActive,
    StorageError,
    Unsupported,
)
from drkit.redact import redact_url
from drkit.storage.base import (
    ARCHIVE_CLASSES,
    BucketSettings,
    ObjectInfo,
    Store,
    validate_key,
    validate_prefix,
)
from drkit.storage.s3 import lifecycle_rule_from_dict, public_policy_reasons
from drkit.storage.url import StoreURL

log = logging.getLogger(__name__)

MiB = 1024 * 1024
MULTIPART_THRESHOLD = 48 * MiB
PART_SIZE = 16 * MiB
SHA256_METADATA = "x-cos-meta-drkit-sha256"
COS_CLASSES = ("STANDARD", "STANDARD_IA", "ARCHIVE", "DEEP_ARCHIVE", "INTELLIGENT_TIERING",
               "MAZ_STANDARD", "MAZ_STANDARD_IA", "MAZ_INTELLIGENT_TIERING")

_NOT_FOUND = {"NoSuchKey", "NoSuchResource", "NoSuchVersion"}
# COS answers a refused x-cos-forbid-overwrite with 409 FileAlreadyExists; the S3 dialect
# (moto through the test adapter) with 412 PreconditionFailed.
_EXISTS = {"PreconditionFailed", "FileAlreadyExists", "ObjectAlreadyExists"}
_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                "InvalidSecretId", "AccessDenied", "InvalidAccessKey", "InvalidToken"}
_PUBLIC_URIS = ("http://cam.qcloud.com/groups/global/AllUsers",
                "http://acs.amazonaws.com/groups/global/AllUsers",
                "http://cam.qcloud.com/groups/global/AuthenticatedUsers")


def _header(resp: dict[str, Any], name: str) -> str | None:
    low = name.lower()
    for k, v in resp.items():
        if k.lower() == low:
            return str(v)
    return None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class COSStore(Store):
    """A COS bucket (plus optional key prefix) as a create-only object store."""

    checksums_in_listing = False
    #: Injection seam for tests: when set, every COSStore builds its HTTP session with it
    #: (``CosS3Client(config, session=...)``). Production leaves it None (SDK's own pool).
    session_factory: Callable[[], requests.Session] | None = None

    def __init__(
        self,
        bucket: str,
        *,
        region: str,
        prefix: str = "",
        secret_id: str,
        secret_key: str,
        token: str | None = None,
        endpoint: str | None = None,
        clock: Clock | None = None,
        url: str | None = None,
        retries: int = 3,
        session: requests.Session | None = None,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        part_size: int = PART_SIZE,
    ) -> None:
        self.bucket = bucket
        self.region = region
        self.prefix = prefix.strip("/")
        self.endpoint = endpoint
        self.clock = clock or SystemClock()
        self.url = url or f"cos://{bucket}/{self.prefix}".rstrip("/")
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self._bucket_seen = False
        conf: dict[str, Any] = {
            "Region": region,
            "SecretId": secret_id,
            "SecretKey": secret_key,
            "Token": token,
            "Scheme": "https",
            "Timeout": 60,
        }
        if endpoint:
            parts = urlsplit(endpoint if "://" in endpoint else "https://" + endpoint)
            conf["Scheme"] = parts.scheme or "https"
            host = parts.hostname or ""
            if _is_ip_or_localhost(host):
                conf["IP"] = host
                conf["Port"] = parts.port
            else:
                conf["Endpoint"] = parts.netloc
        try:
            config = CosConfig(**conf)
        except CosClientError as exc:
            raise BackendUnavailable(f"{self.url}: bad COS configuration: {exc}") from None
        if session is None and type(self).session_factory is not None:
            factory = type(self).session_factory
            assert factory is not None
            session = factory()
        self._client: Any = CosS3Client(config, retry=retries, session=session)
        self._lock_days: int | None | bool = False  # False: not read yet

    @classmethod
    def from_url(cls, parsed: StoreURL, *, clock: Clock | None = None) -> COSStore:
        params = parsed.params
        cred = params.get("credentials")
        if cred:
            name = cred.split(":", 1)[1]
            id_var, key_var, token_var = (f"{name}_SECRET_ID", f"{name}_SECRET_KEY",
                                          f"{name}_SESSION_TOKEN")
        else:
            id_var, key_var, token_var = ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY",
                                          "TENCENTCLOUD_SESSION_TOKEN")
        secret_id = os.environ.get(id_var)
        secret_key = os.environ.get(key_var)
        if not secret_id or not secret_key:
            raise BackendUnavailable(
                f"{redact_url(parsed.text)}: no COS credentials: {id_var} or {key_var} is not set"
            )
        endpoint = params.get("endpoint") or None
        if params.get("scheme") and endpoint is None:
            endpoint = f"{params['scheme']}://cos.{params['region']}.myqcloud.com"
        return cls(
            parsed.bucket,
            region=params["region"],
            prefix=parsed.prefix,
            secret_id=secret_id,
            secret_key=secret_key,
            token=os.environ.get(token_var) or None,
            endpoint=endpoint,
            clock=clock,
            url=redact_url(parsed.text),
        )

    # -- helpers -------------------------------------------------------------------------
    def _full(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _rel(self, full_key: str) -> str:
        return full_key[len(self.prefix) + 1 :] if self.prefix else full_key

    def _unavailable(self, exc: Exception, what: str) -> StorageError:
        if isinstance(exc, CosServiceError):
            code = exc.get_error_code()
            status = exc.get_status_code()
            if code == "NoSuchBucket":
                return BackendUnavailable(f"{self.url}: bucket {self.bucket} does not exist")
            if code in _CREDENTIALS or status in (401, 403):
                return BackendUnavailable(
                    f"{self.url}: the service refused the credentials or access ({what})"
                )
            return StorageError(f"{self.url}: {what} failed: {code} (HTTP {status})")
        if isinstance(exc, CosClientError):
            where = self.endpoint or f"the COS endpoint of {self.region}"
            return BackendUnavailable(f"{self.url}: cannot reach {where}")
        return StorageError(f"{self.url}: {what} failed: {type(exc).__name__}")

    def _object_error(self, exc: Exception, key: str, what: str) -> StorageError:
        if isinstance(exc, CosServiceError):
            code = exc.get_error_code()
            status = exc.get_status_code()
            if code in _NOT_FOUND or (status == 404 and code != "NoSuchBucket"):
                if what == "head" and not self._bucket_exists():
                    return BackendUnavailable(
                        f"{self.url}: bucket {self.bucket} does not exist"
                    )
                return ObjectNotFound(f"{self.url}: {key} not found")
            if code == "InvalidObjectState":
                return NeedsThaw(f"{self.url}: {key} is in an archive class and must be thawed")
        return self._unavailable(exc, f"{what} {key}")

    def _bucket_exists(self) -> bool:
        """True if the bucket exists (asked once: a 404 on a key usually means the key)."""
        if self._bucket_seen:
            return True
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except CosServiceError as exc:
            if exc.get_status_code() == 404:
                return False
            raise self._unavailable(exc, "head bucket") from exc
        except CosClientError as exc:
            raise self._unavailable(exc, "head bucket") from exc
        self._bucket_seen = True
        return True

    def _default_retention_days(self) -> int | None:
        """The bucket's object-lock default retention in days (None: no lock). Cached."""
        if self._lock_days is False:
            try:
                self._lock_days = self._read_lock()[1]
            except CosServiceError as exc:
                if exc.get_status_code() != 403:
                    raise self._unavailable(exc, "read bucket object lock") from exc
                # A least-privilege writer may not read the bucket's lock: then retention
                # is unknown here (the bucket still enforces it).
                log.warning("%s: no permission to read the bucket's object lock", self.url)
                self._lock_days = None
            except CosClientError as exc:
                raise self._unavailable(exc, "read bucket object lock") from exc
        return self._lock_days if isinstance(self._lock_days, int) else None

    def _read_lock(self) -> tuple[bool, int | None]:
        try:
            conf = self._client.get_bucket_object_lock(Bucket=self.bucket) or {}
        except CosServiceError as exc:
            if exc.get_status_code() == 404 and exc.get_error_code() != "NoSuchBucket":
                return False, None
            raise
        enabled = conf.get("ObjectLockEnabled") == "Enabled"
        retention = (conf.get("Rule") or {}).get("DefaultRetention") or {}
        days: int | None = None
        if retention.get("Days"):
            days = int(retention["Days"])
        elif retention.get("Years"):
            days = int(retention["Years"]) * 365
        return enabled, days if enabled else None

    # -- interface -------------------------------------------------------------------------
    def put(
        self,
        key: str,
        data: bytes,
        *,
        storage_class: str | None = None,
        retain_until: datetime | None = None,
    ) -> ObjectInfo:
        full = self._full(key)
        if storage_class and storage_class not in COS_CLASSES:
            raise Unsupported(f"{self.url}: COS has no storage class {storage_class}")
        try:
            if retain_until is not None:
                days = self._default_retention_days()
                if days is None or self.clock.now() + timedelta(days=days) < retain_until:
                    raise Unsupported(
                        f"{self.url}: COS has no per-object retention; the bucket's default"
                        f" retention ({days or 0} days) does not reach {utc_iso(retain_until)}"
                    )
            sha = hashlib.sha256(data).hexdigest()
            md5 = hashlib.md5(data, usedforsecurity=False).digest()
            headers: dict[str, Any] = {
                "Metadata": {"x-cos-forbid-overwrite": "true", SHA256_METADATA: sha}
            }
            if storage_class:
                headers["StorageClass"] = storage_class
            if len(data) > self.multipart_threshold:
                etag = self._put_multipart(full, data, headers)
            else:
                resp = self._client.put_object(
                    Bucket=self.bucket,
                    Key=full,
                    Body=data,
                    ContentMD5=base64.b64encode(md5).decode(),
                    **headers,
                )
                etag = (_header(resp, "ETag") or "").strip('"')
        except CosServiceError as exc:
            if exc.get_error_code() in _EXISTS or exc.get_status_code() == 412:
                raise ObjectExists(f"{self.url}: {key} already exists") from None
            raise self._unavailable(exc, f"put {key}") from exc
        except CosClientError as exc:
            raise self._unavailable(exc, f"put {key}") from exc
        return ObjectInfo(
            key=key,
            size=len(data),
            sha256=sha,
            md5=etag if etag and "-" not in etag else None,
            storage_class=storage_class or "STANDARD",
            retain_until=retain_until,
            needs_thaw=(storage_class or "") in ARCHIVE_CLASSES,
        )

    def _put_multipart(self, full: str, data: bytes, headers: dict[str, Any]) -> str:
        upload = self._client.create_multipart_upload(Bucket=self.bucket, Key=full, **headers)
        upload_id = upload["UploadId"]
        parts: builtins.list[dict[str, Any]] = []
        try:
            view = memoryview(data)
            for number, start in enumerate(range(0, len(data), self.part_size), start=1):
                chunk = bytes(view[start : start + self.part_size])
                resp = self._client.upload_part(
                    Bucket=self.bucket, Key=full, Body=chunk, PartNumber=number,
                    UploadId=upload_id, EnableMD5=True,
                )
                parts.append({"PartNumber": number, "ETag": _header(resp, "ETag")})
            resp = self._client.complete_multipart_upload(
                Bucket=self.bucket, Key=full, UploadId=upload_id,
                MultipartUpload={"Part": parts},
                Metadata={"x-cos-forbid-overwrite": "true"},
            )
        except BaseException:
            try:
                self._client.abort_multipart_upload(
                    Bucket=self.bucket, Key=full, UploadId=upload_id
                )
            except Exception:  # noqa: BLE001 - the original error is the one to report
                log.warning("could not abort multipart upload of %s", full)
            raise
        return str(resp.get("ETag") or "").strip('"')

    def get(self, key: str, *, offset: int = 0, length: int | None = None) -> bytes:
        full = self._full(key)
        if length == 0:
            self.head(key)
            return b""
        kwargs: dict[str, Any] = {}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            kwargs["Range"] = f"bytes={offset}-{end}"
        try:
            resp = self._client.get_object(Bucket=self.bucket, Key=full, **kwargs)
            raw = resp["Body"].get_raw_stream()
            return bytes(raw.read())
        except CosServiceError as exc:
            if exc.get_error_code() == "InvalidRange" or exc.get_status_code() == 416:
                self.head(key)
                return b""
            raise self._object_error(exc, key, "get") from exc
        except CosClientError as exc:
            raise self._unavailable(exc, f"get {key}") from exc

    def _head_raw(self, key: str) -> dict[str, Any]:
        try:
            resp: dict[str, Any] = self._client.head_object(Bucket=self.bucket, Key=self._full(key))
        except CosServiceError as exc:
            raise self._object_error(exc, key, "head") from exc
        except CosClientError as exc:
            raise self._unavailable(exc, f"head {key}") from exc
        return resp

    def head(self, key: str) -> ObjectInfo:
        resp = self._head_raw(key)
        storage_class = _header(resp, "x-cos-storage-class") or "STANDARD"
        restore = _header(resp, "x-cos-restore") or ""
        etag = (_header(resp, "ETag") or "").strip('"')
        modified_text = _header(resp, "Last-Modified")
        modified = parsedate_to_datetime(modified_text) if modified_text else None
        retain_until = None
        until_text = _header(resp, "x-cos-object-lock-retain-until-date")
        if until_text:
            retain_until = datetime.fromisoformat(until_text.replace("Z", "+00:00"))
        elif modified is not None:
            days = self._default_retention_days()
            if days:
                retain_until = modified + timedelta(days=days)
        return ObjectInfo(
            key=key,
            size=int(_header(resp, "Content-Length") or 0),
            sha256=_header(resp, SHA256_METADATA),
            md5=etag if etag and "-" not in etag else None,
            storage_class=storage_class,
            retain_until=retain_until,
            needs_thaw=storage_class in ARCHIVE_CLASSES
            and 'ongoing-request="false"' not in restore,
            last_modified=modified,
        )

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        full_prefix = f"{self.prefix}/{prefix}" if self.prefix else prefix
        marker = ""
        while True:
            try:
                page = self._client.list_objects(
                    Bucket=self.bucket, Prefix=full_prefix, Marker=marker, MaxKeys=1000
                )
            except (CosServiceError, CosClientError) as exc:
                raise self._unavailable(exc, f"list {prefix or '(all)'}") from exc
            contents = _as_list(page.get("Contents"))
            for item in contents:
                etag = str(item.get("ETag", "")).strip('"')
                storage_class = item.get("StorageClass") or "STANDARD"
                modified = item.get("LastModified")
                yield ObjectInfo(
                    key=self._rel(item["Key"]),
                    size=int(item.get("Size", 0)),
                    md5=etag if etag and "-" not in etag else None,
                    storage_class=storage_class,
                    needs_thaw=storage_class in ARCHIVE_CLASSES,
                    last_modified=datetime.fromisoformat(modified.replace("Z", "+00:00"))
                    if modified
                    else None,
                )
            if str(page.get("IsTruncated", "false")).lower() != "true" or not contents:
                return
            marker = page.get("NextMarker") or contents[-1]["Key"]

    def thaw(self, key: str, *, days: int = 1) -> bool:
        info = self.head(key)
        if not info.needs_thaw:
            return True
        try:
            self._client.restore_object(
                Bucket=self.bucket,
                Key=self._full(key),
                RestoreRequest={"Days": days, "CASJobParameters": {"Tier": "Standard"}},
            )
        except CosServiceError as exc:
            if exc.get_error_code() != "RestoreAlreadyInProgress":
                raise self._object_error(exc, key, "thaw") from exc
        except CosClientError as exc:
            raise self._unavailable(exc, f"thaw {key}") from exc
        return not self.head(key).needs_thaw

    def delete(self, key: str) -> None:
        resp = self._head_raw(key)
        info = self.head(key)
        if info.retain_until is not None and info.retain_until > self.clock.now():
            raise RetentionActive(
                f"{self.url}: {key} is retained until {utc_iso(info.retain_until)}"
            )
        version = _header(resp, "x-cos-version-id")
        kwargs: dict[str, Any] = {}
        if version and version != "null":
            # Remove the version itself: a bare delete on a versioned bucket only adds a
            # delete marker and keeps the bytes.
            kwargs["VersionId"] = version
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._full(key), **kwargs)
        except CosServiceError as exc:
            if exc.get_error_code() == "AccessDenied" and info.retain_until is not None:
                raise RetentionActive(f"{self.url}: {key} is under object lock") from None
            raise self._object_error(exc, key, "delete") from exc
        except CosClientError as exc:
            raise self._unavailable(exc, f"delete {key}") from exc

    def bucket_settings(self) -> BucketSettings:
        c = self._client
        b = self.bucket
        try:
            versioning = (c.get_bucket_versioning(Bucket=b) or {}).get("Status") or "Disabled"
            lock_enabled, lock_days = self._read_lock()
            rules: builtins.list[Any] = []
            try:
                rules = _as_list((c.get_bucket_lifecycle(Bucket=b) or {}).get("Rule"))
            except CosServiceError as exc:
                if exc.get_status_code() != 404 or exc.get_error_code() == "NoSuchBucket":
                    raise
            replication: builtins.list[Any] = []
            try:
                replication = _as_list((c.get_bucket_replication(Bucket=b) or {}).get("Rule"))
            except CosServiceError as exc:
                if exc.get_status_code() != 404 or exc.get_error_code() == "NoSuchBucket":
                    raise
            acl = c.get_bucket_acl(Bucket=b) or {}
            policy = self._policy_text()
            reasons = self._public_reasons(acl, policy)
        except (CosServiceError, CosClientError) as exc:
            raise self._unavailable(exc, "read bucket settings") from exc
        return BucketSettings(
            versioning=versioning,
            object_lock_enabled=lock_enabled,
            # COS object lock has one mode only.
            object_lock_mode="COMPLIANCE" if lock_enabled else None,
            default_retention_days=lock_days,
            lifecycle_rules=tuple(lifecycle_rule_from_dict(r) for r in rules),
            replication_rules=tuple(replication),
            public_access=bool(reasons),
            public_reasons=tuple(reasons),
            policy=policy,
            owner_account=cos_owner_uin(str((acl.get("Owner") or {}).get("ID") or "")),
        )

    def _policy_text(self) -> str | None:
        try:
            policy = self._client.get_bucket_policy(Bucket=self.bucket)
        except CosServiceError as exc:
            if exc.get_status_code() != 404 or exc.get_error_code() == "NoSuchBucket":
                raise
            return None
        text = policy.get("Policy") if isinstance(policy, dict) else policy
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return str(text) if text else None

    def _public_reasons(self, acl: dict[str, Any], policy: str | None
                        ) -> builtins.list[str]:
        reasons: builtins.list[str] = []
        grants = _as_list((acl.get("AccessControlList") or {}).get("Grant"))
        for grant in grants:
            grantee = grant.get("Grantee") or {}
            uri = str(grantee.get("URI") or "")
            ident = str(grantee.get("ID") or "")
            if uri in _PUBLIC_URIS or "anyone" in ident:
                who = uri.rsplit("/", 1)[-1] if uri else ident
                reasons.append(f"ACL grants {grant.get('Permission')} to {who}")
        if policy:
            reasons.extend(public_policy_reasons(policy))
        return reasons

    def close(self) -> None:
        session = getattr(self._client, "_session", None)
        if session is not None and not getattr(self._client, "_use_built_in_pool", True):
            session.close()


def cos_owner_uin(owner_id: str) -> str | None:
    """The root account UIN in a COS owner or principal id such as
    ``qcs::cam::uin/100000000001:uin/100000000011`` (main account, then sub-user)."""
    import re

    m = re.search(r"uin/(\d+)", owner_id)
    return m.group(1) if m else None


def _is_ip_or_localhost(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
