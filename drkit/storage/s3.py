"""``s3://`` backend on boto3.

URL: ``s3://bucket/prefix?region=eu-west-1&endpoint=http://host:port&credentials=env:NAME``
(``profile=NAME`` picks a boto3 profile; ``addressing=path|virtual`` overrides the
addressing style, which defaults to path-style when a custom endpoint is given).

Create-only: every upload is conditional (``If-None-Match: *`` on PutObject and on
CompleteMultipartUpload), so the server itself refuses to overwrite and two writers racing
on one key cannot both win. S3 makes an object visible only once the upload completes, so
a reader never sees a partial object.

Integrity: every single-part upload carries its SHA-256 (``ChecksumSHA256``), which S3
verifies before accepting the bytes, and ``head`` reads it back with
``ChecksumMode=ENABLED``. Multipart uploads send a SHA-256 per part (S3 then keeps only a
composite checksum), so the whole-object SHA-256 is also stored as user metadata
``x-amz-meta-drkit-sha256``; ``head`` reports the server's checksum when it is a
full-object one and the metadata otherwise. ``list`` fills ``ObjectInfo.md5`` from the ETag
of single-part uploads (a plain MD5 unless SSE-KMS is used); multipart ETags are not an
MD5, so ``checksums_in_listing`` is False.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

import boto3
import botocore.exceptions
from botocore.config import Config

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
    LifecycleRule,
    ObjectInfo,
    Store,
    Transition,
    validate_key,
    validate_prefix,
)
from drkit.storage.url import StoreURL

log = logging.getLogger(__name__)

MiB = 1024 * 1024
#: Objects larger than this are uploaded in parts. drkit's packs (16-32 MiB) stay below
#: it, so they keep an MD5 ETag that listings can compare.
MULTIPART_THRESHOLD = 48 * MiB
PART_SIZE = 16 * MiB
SHA256_METADATA = "drkit-sha256"

_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_EXISTS = {"PreconditionFailed", "412", "ConditionalRequestConflict"}
_CREDENTIALS = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "InvalidClientTokenId",
    "AuthorizationHeaderMalformed",
}
_PUBLIC_GROUPS = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)


_SESSION_LOCK = threading.Lock()
_SESSION: boto3.session.Session | None = None


def _shared_session() -> boto3.session.Session:
    """One boto3 session for all stores without a profile: loading the S3 service model
    is the slow part of making a client, and a session caches it. Explicit credentials
    are passed per client, so stores never share them by accident."""
    global _SESSION
    if _SESSION is None:
        _SESSION = boto3.session.Session()
    return _SESSION


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def _error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _credentials_from_env(name: str, url: str) -> dict[str, str]:
    key_id = os.environ.get(f"{name}_ACCESS_KEY_ID")
    secret = os.environ.get(f"{name}_SECRET_ACCESS_KEY")
    if not key_id or not secret:
        raise BackendUnavailable(
            f"{url}: credentials=env:{name} but {name}_ACCESS_KEY_ID or"
            f" {name}_SECRET_ACCESS_KEY is not set"
        )
    creds = {"aws_access_key_id": key_id, "aws_secret_access_key": secret}
    token = os.environ.get(f"{name}_SESSION_TOKEN")
    if token:
        creds["aws_session_token"] = token
    return creds


class S3Store(Store):
    """An S3 bucket (plus optional key prefix) as a create-only object store."""

    checksums_in_listing = False

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        region: str | None = None,
        endpoint: str | None = None,
        credentials: dict[str, str] | None = None,
        profile: str | None = None,
        addressing: str | None = None,
        clock: Clock | None = None,
        url: str | None = None,
        max_attempts: int = 5,
        connect_timeout: float = 10.0,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        part_size: int = PART_SIZE,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.region = region
        self.endpoint = endpoint
        self.clock = clock or SystemClock()
        self.url = url or f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self._bucket_seen = False
        if addressing is None:
            addressing = "path" if endpoint else "auto"
        if addressing not in ("path", "virtual", "auto"):
            raise BackendUnavailable(f"{self.url}: addressing must be path or virtual")
        # Standard retry mode retries throttling, 5xx and connection errors with
        # exponential backoff and jitter; adaptive adds client-side rate limiting.
        config = Config(
            region_name=region,
            retries={"total_max_attempts": max_attempts, "mode": "adaptive"},
            connect_timeout=connect_timeout,
            read_timeout=60,
            s3=cast(Any, {"addressing_style": addressing}),
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        creds = credentials or {}
        if profile:
            try:
                session = boto3.session.Session(profile_name=profile)
            except botocore.exceptions.ProfileNotFound:
                raise BackendUnavailable(
                    f"{self.url}: AWS profile {profile!r} not found"
                ) from None
        else:
            session = _shared_session()
        # A boto3 session is not thread-safe while it makes clients; clients are.
        self._session = session
        self._client_args: dict[str, Any] = {
            "endpoint_url": endpoint,
            "config": config,
            "aws_access_key_id": creds.get("aws_access_key_id"),
            "aws_secret_access_key": creds.get("aws_secret_access_key"),
            "aws_session_token": creds.get("aws_session_token"),
        }
        with _SESSION_LOCK:
            self._client: Any = session.client("s3", **self._client_args)

    @classmethod
    def from_url(cls, parsed: StoreURL, *, clock: Clock | None = None) -> S3Store:
        params = parsed.params
        credentials = None
        cred = params.get("credentials")
        if cred:
            credentials = _credentials_from_env(cred.split(":", 1)[1], redact_url(parsed.text))
        return cls(
            parsed.bucket,
            prefix=parsed.prefix,
            region=params.get("region") or None,
            endpoint=params.get("endpoint") or None,
            credentials=credentials,
            profile=params.get("profile") or None,
            addressing=params.get("addressing") or None,
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
        """Translate an SDK error that is not about one object into our exception tree."""
        if isinstance(exc, botocore.exceptions.ClientError):
            code = _error_code(exc)
            if code == "NoSuchBucket":
                return BackendUnavailable(f"{self.url}: bucket {self.bucket} does not exist")
            if code in _CREDENTIALS:
                return BackendUnavailable(f"{self.url}: the service refused the credentials")
            if code in ("PermanentRedirect", "301", "IllegalLocationConstraintException"):
                return BackendUnavailable(
                    f"{self.url}: bucket {self.bucket} is in another region than"
                    f" {self.region or 'the default'}"
                )
            if code in ("AccessDenied", "403", "Forbidden"):
                return BackendUnavailable(f"{self.url}: access denied ({what})")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return StorageError(f"{self.url}: {what} failed: {code or status}")
        if isinstance(exc, botocore.exceptions.NoCredentialsError):
            return BackendUnavailable(f"{self.url}: no AWS credentials found")
        if isinstance(
            exc,
            botocore.exceptions.EndpointConnectionError
            | botocore.exceptions.ConnectTimeoutError
            | botocore.exceptions.ReadTimeoutError
            | botocore.exceptions.ConnectionClosedError,
        ):
            where = self.endpoint or "the S3 endpoint"
            return BackendUnavailable(f"{self.url}: cannot reach {where}")
        if isinstance(exc, botocore.exceptions.BotoCoreError):
            return BackendUnavailable(f"{self.url}: {type(exc).__name__} during {what}")
        return StorageError(f"{self.url}: {what} failed: {type(exc).__name__}")

    def _object_error(self, exc: Exception, key: str, what: str) -> StorageError:
        if isinstance(exc, botocore.exceptions.ClientError):
            code = _error_code(exc)
            if code in _NOT_FOUND:
                # A HEAD on a missing bucket also answers 404; tell the two apart.
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
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
                return False
            raise self._unavailable(exc, "head bucket") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise self._unavailable(exc, "head bucket") from exc
        self._bucket_seen = True
        return True

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
        digest = hashlib.sha256(data).digest()
        extra: dict[str, Any] = {"Metadata": {SHA256_METADATA: digest.hex()}}
        if storage_class:
            extra["StorageClass"] = storage_class
        if retain_until is not None:
            extra["ObjectLockMode"] = "COMPLIANCE"
            extra["ObjectLockRetainUntilDate"] = retain_until.astimezone(UTC)
        try:
            if len(data) > self.multipart_threshold:
                etag = self._put_multipart(full, data, extra)
            else:
                resp = self._client.put_object(
                    Bucket=self.bucket,
                    Key=full,
                    Body=data,
                    IfNoneMatch="*",
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=base64.b64encode(digest).decode(),
                    **extra,
                )
                etag = str(resp.get("ETag", "")).strip('"')
        except botocore.exceptions.ClientError as exc:
            code = _error_code(exc)
            if code in _EXISTS:
                raise ObjectExists(f"{self.url}: {key} already exists") from None
            if code == "InvalidRequest" and retain_until is not None:
                raise Unsupported(
                    f"{self.url}: bucket {self.bucket} has no object lock, cannot retain {key}"
                ) from None
            if code == "InvalidStorageClass":
                raise Unsupported(
                    f"{self.url}: storage class {storage_class} is not supported"
                ) from None
            raise self._unavailable(exc, f"put {key}") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise self._unavailable(exc, f"put {key}") from exc
        return ObjectInfo(
            key=key,
            size=len(data),
            sha256=digest.hex(),
            md5=etag if etag and "-" not in etag else None,
            storage_class=storage_class or "STANDARD",
            retain_until=retain_until,
            needs_thaw=(storage_class or "") in ARCHIVE_CLASSES,
        )

    def _put_multipart(self, full: str, data: bytes, extra: dict[str, Any]) -> str:
        upload = self._client.create_multipart_upload(
            Bucket=self.bucket, Key=full, ChecksumAlgorithm="SHA256", **extra
        )
        upload_id = upload["UploadId"]
        parts: builtins.list[dict[str, Any]] = []
        try:
            view = memoryview(data)
            for number, start in enumerate(range(0, len(data), self.part_size), start=1):
                chunk = bytes(view[start : start + self.part_size])
                checksum = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
                resp = self._client.upload_part(
                    Bucket=self.bucket,
                    Key=full,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=chunk,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=checksum,
                )
                parts.append(
                    {"PartNumber": number, "ETag": resp["ETag"], "ChecksumSHA256": checksum}
                )
            resp = self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=full,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )
        except BaseException:
            # An abandoned upload is invisible but billed; abort it so nothing lingers.
            try:
                self._client.abort_multipart_upload(
                    Bucket=self.bucket, Key=full, UploadId=upload_id
                )
            except Exception:  # noqa: BLE001 - the original error is the one to report
                log.warning("could not abort multipart upload of %s", full)
            raise
        return str(resp.get("ETag", "")).strip('"')

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
            return bytes(resp["Body"].read())
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc) == "InvalidRange":
                # A range that starts at or past the end is empty, as on a local file.
                self.head(key)
                return b""
            raise self._object_error(exc, key, "get") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise self._unavailable(exc, f"get {key}") from exc

    def _head_raw(self, key: str) -> dict[str, Any]:
        try:
            resp: dict[str, Any] = self._client.head_object(
                Bucket=self.bucket, Key=self._full(key), ChecksumMode="ENABLED"
            )
        except botocore.exceptions.ClientError as exc:
            raise self._object_error(exc, key, "head") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise self._unavailable(exc, f"head {key}") from exc
        return resp

    def head(self, key: str) -> ObjectInfo:
        resp = self._head_raw(key)
        storage_class = resp.get("StorageClass") or "STANDARD"
        restore = str(resp.get("Restore") or "")
        sha = None
        etag = str(resp.get("ETag", "")).strip('"')
        checksum = resp.get("ChecksumSHA256")
        # A multipart object (ETag "...-N") has a composite checksum (a hash of the part
        # checksums), whatever its text looks like: moto omits the "-N" suffix real S3 adds.
        composite = "-" in etag or resp.get("ChecksumType") == "COMPOSITE"
        if checksum and not composite and "-" not in checksum:
            try:
                sha = base64.b64decode(checksum).hex()
            except (binascii.Error, ValueError):
                sha = None
        if sha is None:
            sha = (resp.get("Metadata") or {}).get(SHA256_METADATA)
        return ObjectInfo(
            key=key,
            size=int(resp.get("ContentLength", 0)),
            sha256=sha,
            md5=etag if etag and "-" not in etag else None,
            storage_class=storage_class,
            retain_until=_utc(resp.get("ObjectLockRetainUntilDate")),
            needs_thaw=storage_class in ARCHIVE_CLASSES
            and 'ongoing-request="false"' not in restore,
            last_modified=_utc(resp.get("LastModified")),
        )

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        full_prefix = f"{self.prefix}/{prefix}" if self.prefix else prefix
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix):
                for item in page.get("Contents", []):
                    etag = str(item.get("ETag", "")).strip('"')
                    storage_class = item.get("StorageClass") or "STANDARD"
                    yield ObjectInfo(
                        key=self._rel(item["Key"]),
                        size=int(item["Size"]),
                        md5=etag if etag and "-" not in etag else None,
                        storage_class=storage_class,
                        # A listing does not say whether an archive object was restored.
                        needs_thaw=storage_class in ARCHIVE_CLASSES,
                        last_modified=_utc(item.get("LastModified")),
                    )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise self._unavailable(exc, f"list {prefix or '(all)'}") from exc

    def thaw(self, key: str, *, days: int = 1) -> bool:
        info = self.head(key)
        if not info.needs_thaw:
            return True
        try:
            self._client.restore_object(
                Bucket=self.bucket,
                Key=self._full(key),
                RestoreRequest={"Days": days, "GlacierJobParameters": {"Tier": "Standard"}},
            )
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc) != "RestoreAlreadyInProgress":
                raise self._object_error(exc, key, "thaw") from exc
        return not self.head(key).needs_thaw

    def delete(self, key: str) -> None:
        resp = self._head_raw(key)
        until = resp.get("ObjectLockRetainUntilDate")
        if until is not None and until > self.clock.now():
            raise RetentionActive(f"{self.url}: {key} is retained until {utc_iso(until)}")
        version = resp.get("VersionId")
        kwargs: dict[str, Any] = {}
        if version and version != "null":
            # Remove the version itself: a bare delete on a versioned bucket would only
            # add a delete marker and keep the bytes.
            kwargs["VersionId"] = version
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._full(key), **kwargs)
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc) == "AccessDenied" and resp.get("ObjectLockMode"):
                raise RetentionActive(f"{self.url}: {key} is under object lock") from None
            raise self._object_error(exc, key, "delete") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise self._unavailable(exc, f"delete {key}") from exc

    def bucket_settings(self) -> BucketSettings:
        c = self._client
        b = self.bucket
        try:
            versioning = c.get_bucket_versioning(Bucket=b).get("Status") or "Disabled"
            lock_enabled = False
            lock_mode = None
            lock_days = None
            try:
                lock = c.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"]
                lock_enabled = lock.get("ObjectLockEnabled") == "Enabled"
                default = lock.get("Rule", {}).get("DefaultRetention", {})
                lock_mode = default.get("Mode")
                if "Days" in default:
                    lock_days = int(default["Days"])
                elif "Years" in default:
                    lock_days = int(default["Years"]) * 365
            except botocore.exceptions.ClientError as exc:
                if _error_code(exc) != "ObjectLockConfigurationNotFoundError":
                    raise
            rules = self._lifecycle_rules()
            replication = self._replication_rules()
            policy = self._policy_text()
            public_reasons = self._public_reasons(policy)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise self._unavailable(exc, "read bucket settings") from exc
        return BucketSettings(
            versioning=versioning,
            object_lock_enabled=lock_enabled,
            object_lock_mode=lock_mode,
            default_retention_days=lock_days,
            lifecycle_rules=rules,
            replication_rules=replication,
            public_access=bool(public_reasons),
            public_reasons=public_reasons,
            policy=policy,
            owner_account=self._owner_account() if policy else None,
        )

    def _policy_text(self) -> str | None:
        try:
            return str(self._client.get_bucket_policy(Bucket=self.bucket)["Policy"])
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc) != "NoSuchBucketPolicy":
                raise
        return None

    def _owner_account(self) -> str | None:
        """The account of these credentials (the bucket owner's account in drkit's setup),
        so that a bucket policy's grants to *other* accounts can be told apart. None when
        STS cannot answer (a non-AWS endpoint): then only grants to anyone are judged."""
        try:
            with _SESSION_LOCK:
                sts = self._session.client("sts", **self._client_args)
            try:
                return str(sts.get_caller_identity()["Account"])
            finally:
                sts.close()
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError,
                KeyError) as exc:
            log.info("%s: cannot tell the account of these credentials: %s", self.url, exc)
            return None

    def _lifecycle_rules(self) -> tuple[LifecycleRule, ...]:
        try:
            raw = self._client.get_bucket_lifecycle_configuration(Bucket=self.bucket)["Rules"]
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc) == "NoSuchLifecycleConfiguration":
                return ()
            raise
        return tuple(lifecycle_rule_from_dict(rule) for rule in raw)

    def _replication_rules(self) -> tuple[dict[str, Any], ...]:
        try:
            conf = self._client.get_bucket_replication(Bucket=self.bucket)
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc) == "ReplicationConfigurationNotFoundError":
                return ()
            raise
        return tuple(conf["ReplicationConfiguration"].get("Rules", []))

    def _public_reasons(self, policy: str | None) -> tuple[str, ...]:
        # The bucket's Block Public Access settings neutralise public ACLs
        # (IgnorePublicAcls) and public policies (RestrictPublicBuckets); an account-level
        # block is not visible to a bucket-scoped role and is not taken into account.
        block: dict[str, Any] = {}
        try:
            block = self._client.get_public_access_block(Bucket=self.bucket)[
                "PublicAccessBlockConfiguration"
            ]
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
                raise
        reasons: builtins.list[str] = []
        if not block.get("IgnorePublicAcls"):
            acl = self._client.get_bucket_acl(Bucket=self.bucket)
            for grant in acl.get("Grants", []):
                uri = grant.get("Grantee", {}).get("URI", "")
                if uri in _PUBLIC_GROUPS:
                    who = uri.rsplit("/", 1)[1]
                    reasons.append(f"ACL grants {grant.get('Permission')} to {who}")
        if not block.get("RestrictPublicBuckets") and policy is not None:
            reasons.extend(public_policy_reasons(policy))
        return tuple(reasons)

    def close(self) -> None:
        self._client.close()


def lifecycle_rule_from_dict(rule: dict[str, Any]) -> LifecycleRule:
    """Parse one S3/COS lifecycle rule (as boto3 or the COS SDK return it)."""
    flt = rule.get("Filter") or {}
    prefix = rule.get("Prefix")
    if prefix is None:
        prefix = flt.get("Prefix") or (flt.get("And") or {}).get("Prefix") or ""
    # boto3 says "Transitions" / "NoncurrentVersionTransitions" (lists); the COS SDK
    # parses XML, so a single element is a dict and the names are singular.
    def _list(*names: str) -> list[dict[str, Any]]:
        for name in names:
            value = rule.get(name)
            if value:
                return [value] if isinstance(value, dict) else list(value)
        return []

    def _int(value: Any) -> int | None:
        return int(value) if value not in (None, "") else None

    def _transition(raw: dict[str, Any], days_field: str) -> Transition:
        date = raw.get("Date")
        return Transition(storage_class=raw.get("StorageClass"),
                          days=_int(raw.get(days_field)),
                          date=utc_iso(date) if isinstance(date, datetime)
                          else (str(date) if date else None))

    transitions = tuple(_transition(t, "Days") for t in _list("Transition", "Transitions"))
    noncurrent_transitions = tuple(
        _transition(t, "NoncurrentDays")
        for t in _list("NoncurrentVersionTransition", "NoncurrentVersionTransitions"))
    expiration = rule.get("Expiration") or {}
    noncurrent = rule.get("NoncurrentVersionExpiration") or {}
    abort = rule.get("AbortIncompleteMultipartUpload") or {}
    expiration_date = expiration.get("Date")
    first = transitions[0] if transitions else Transition(None)
    return LifecycleRule(
        id=str(rule.get("ID") or ""),
        enabled=rule.get("Status") == "Enabled",
        prefix=str(prefix or ""),
        expiration_days=_int(expiration.get("Days")),
        transition_days=first.days,
        transition_class=first.storage_class,
        noncurrent_expiration_days=_int(noncurrent.get("NoncurrentDays")),
        abort_multipart_days=_int(abort.get("DaysAfterInitiation")),
        expiration_date=(utc_iso(expiration_date) if isinstance(expiration_date, datetime)
                         else (str(expiration_date) if expiration_date else None)),
        transitions=transitions,
        noncurrent_transitions=noncurrent_transitions,
    )


def public_policy_reasons(policy_text: str) -> list[str]:
    """Reasons a bucket policy makes a bucket public: an Allow for Principal "*"."""
    import json

    try:
        policy = json.loads(policy_text)
    except ValueError:
        return ["bucket policy is not valid JSON"]
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    reasons = []
    for st in statements:
        if st.get("Effect") != "Allow":
            continue
        principal = st.get("Principal")
        values: list[Any] = []
        if principal == "*":
            values = ["*"]
        elif isinstance(principal, dict):
            for v in principal.values():
                values.extend(v if isinstance(v, list) else [v])
        if any(v in ("*", "qcs::cam::anyone:anyone") for v in values):
            actions = st.get("Action", [])
            if isinstance(actions, str):
                actions = [actions]
            reasons.append(f"bucket policy allows {', '.join(actions) or 'actions'} to anyone")
    return reasons
