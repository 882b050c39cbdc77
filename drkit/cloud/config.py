"""The ``[cloud]`` section of drkit.toml -> a typed ``CloudConfig``.

The section is validated here rather than in ``drkit.config`` so the cloud code owns its
own settings; every error names drkit.toml and the dotted key. Secrets never appear in the
file: AWS credentials come from boto3's usual chain (environment, profile, instance role),
Tencent Cloud credentials from ``TENCENTCLOUD_SECRET_ID`` / ``TENCENTCLOUD_SECRET_KEY``
(or the variables named by ``credentials = "env:NAME"``).

Example::

    [cloud]
    max_age_hours = 26          # a resource whose newest snapshot is older is reported
    wait_timeout_minutes = 120  # a snapshot or copy not complete by then fails the run
    poll_seconds = 15

    [cloud.aws]
    region = "ap-east-1"
    select_tag = "backup=daily" # EBS volumes and RDS instances carrying this tag
    ebs = true
    rds = true
    retention_days = 35
    keep_min = 7
    copy_to = [{ region = "ap-southeast-1" },
               { region = "eu-west-1", role_arn = "arn:aws:iam::222233334444:role/drkit-copy" }]

    [cloud.tencent]
    region = "ap-beijing"
    select_tag = "backup=daily" # CBS disks and TencentDB for MySQL instances
    cbs = true
    cdb = true
    copy_to = ["ap-shanghai", "ap-nanjing"]
    retention_days = 35
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from drkit.config import Config
from drkit.errors import ConfigError

SECTION = "cloud"
_TOP = {"max_age_hours", "wait_timeout_minutes", "poll_seconds", "aws", "tencent"}
_AWS = {"region", "endpoint", "select_tag", "ebs", "rds", "copy_to", "retention_days",
        "keep_min"}
_AWS_TARGET = {"region", "role_arn", "account"}
_TENCENT = {"region", "endpoint", "protocol", "select_tag", "cbs", "cdb", "copy_to",
            "retention_days", "keep_min", "credentials", "backup_method"}
_REGION_RE = re.compile(r"^[a-z]{2,}(-[a-z0-9]+)+$")
_ROLE_RE = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]+$")
_ENV_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
RUN_TAG = "drkit:run-id"


@dataclass(frozen=True)
class TagSelector:
    key: str
    value: str | None = None  # None: any value

    def matches(self, tags: dict[str, str]) -> bool:
        return self.key in tags and (self.value is None or tags[self.key] == self.value)

    def __str__(self) -> str:
        return self.key if self.value is None else f"{self.key}={self.value}"


@dataclass(frozen=True)
class CopyTarget:
    region: str
    role_arn: str | None = None  # another account: assume this role there

    @property
    def account(self) -> str | None:
        if self.role_arn is None:
            return None
        match = _ROLE_RE.match(self.role_arn)
        return match.group(1) if match else None


@dataclass(frozen=True)
class AwsCloudConfig:
    region: str
    select: TagSelector
    endpoint: str | None = None
    ebs: bool = True
    rds: bool = True
    copy_to: tuple[CopyTarget, ...] = ()
    retention_days: int = 35
    keep_min: int = 7


@dataclass(frozen=True)
class TencentCloudConfig:
    region: str
    select: TagSelector
    endpoint: str | None = None
    protocol: str = "https"
    cbs: bool = True
    cdb: bool = True
    copy_to: tuple[str, ...] = ()
    retention_days: int = 35
    keep_min: int = 7
    credentials_env: str = "TENCENTCLOUD"
    backup_method: str = "physical"


@dataclass(frozen=True)
class CloudConfig:
    file: str
    max_age_hours: float = 26.0
    wait_timeout_minutes: float = 120.0
    poll_seconds: float = 15.0
    aws: AwsCloudConfig | None = None
    tencent: TencentCloudConfig | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        return self.aws is not None or self.tencent is not None


class _Reader:
    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(reason, file=self.file, key=key)

    def table(self, data: dict[str, Any], key: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(key, f"must be a table, got {type(data).__name__}")
        for name in data:
            if name not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.fail(f"{key}.{name}", f"unknown key (known: {known})")
        return data

    def get(self, data: dict[str, Any], key: str, name: str, kind: type, default: Any) -> Any:
        if name not in data:
            return default
        value = data[name]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise self.fail(f"{key}.{name}", f"must be {kind.__name__}, got {type(value).__name__}")
        return value

    def number(self, data: dict[str, Any], key: str, name: str, default: float,
               minimum: float) -> float:
        value = data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"{key}.{name}", f"must be a number, got {type(value).__name__}")
        if value < minimum:
            raise self.fail(f"{key}.{name}", f"must be at least {minimum:g}, got {value}")
        return float(value)

    def region(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not _REGION_RE.match(value):
            raise self.fail(key, f"not a region name: {value!r}")
        return value

    def selector(self, data: dict[str, Any], key: str) -> TagSelector:
        text = self.get(data, key, "select_tag", str, None)
        if not text:
            raise self.fail(f"{key}.select_tag",
                            "missing: name the tag that selects resources, e.g. \"backup=daily\"")
        tag_key, sep, tag_value = text.partition("=")
        if not tag_key.strip():
            raise self.fail(f"{key}.select_tag", f"empty tag key in {text!r}")
        return TagSelector(tag_key.strip(), tag_value.strip() if sep else None)


def _aws(reader: _Reader, data: Any) -> AwsCloudConfig:
    key = "cloud.aws"
    data = reader.table(data, key, _AWS)
    if "region" not in data:
        raise reader.fail(f"{key}.region", "missing: the region the resources live in")
    region = reader.region(data["region"], f"{key}.region")
    targets: list[CopyTarget] = []
    raw_targets = reader.get(data, key, "copy_to", list, [])
    for i, item in enumerate(raw_targets):
        tkey = f"{key}.copy_to[{i}]"
        if isinstance(item, str):
            item = {"region": item}
        item = reader.table(item, tkey, _AWS_TARGET)
        if "region" not in item:
            raise reader.fail(f"{tkey}.region", "missing")
        role = reader.get(item, tkey, "role_arn", str, None)
        if role is not None and not _ROLE_RE.match(role):
            raise reader.fail(f"{tkey}.role_arn", f"not an IAM role ARN: {role!r}")
        target = CopyTarget(reader.region(item["region"], f"{tkey}.region"), role)
        if target.region == region and role is None:
            raise reader.fail(f"{tkey}.region",
                              "is the source region; a copy must go to another region or account")
        if target in targets:
            raise reader.fail(tkey, "duplicate copy target")
        targets.append(target)
    endpoint = reader.get(data, key, "endpoint", str, None)
    retention = int(reader.number(data, key, "retention_days", 35, 1))
    return AwsCloudConfig(
        region=region,
        select=reader.selector(data, key),
        endpoint=endpoint,
        ebs=reader.get(data, key, "ebs", bool, True),
        rds=reader.get(data, key, "rds", bool, True),
        copy_to=tuple(targets),
        retention_days=retention,
        keep_min=int(reader.number(data, key, "keep_min", 7, 1)),
    )


def _tencent(reader: _Reader, data: Any) -> TencentCloudConfig:
    key = "cloud.tencent"
    data = reader.table(data, key, _TENCENT)
    if "region" not in data:
        raise reader.fail(f"{key}.region", "missing: the region the resources live in")
    region = reader.region(data["region"], f"{key}.region")
    copy_to: list[str] = []
    for i, item in enumerate(reader.get(data, key, "copy_to", list, [])):
        target = reader.region(item, f"{key}.copy_to[{i}]")
        if target == region:
            raise reader.fail(f"{key}.copy_to[{i}]", "is the source region")
        if target in copy_to:
            raise reader.fail(f"{key}.copy_to[{i}]", "duplicate copy target")
        copy_to.append(target)
    protocol = reader.get(data, key, "protocol", str, "https")
    if protocol not in ("https", "http"):
        raise reader.fail(f"{key}.protocol", f"must be https or http, got {protocol!r}")
    credentials = reader.get(data, key, "credentials", str, "env:TENCENTCLOUD")
    env_name = credentials.removeprefix("env:")
    if not credentials.startswith("env:") or not _ENV_RE.match(env_name):
        raise reader.fail(f"{key}.credentials",
                          "must be \"env:NAME\" (reads NAME_SECRET_ID and NAME_SECRET_KEY)")
    method = reader.get(data, key, "backup_method", str, "physical")
    if method not in ("physical", "logical", "snapshot"):
        raise reader.fail(f"{key}.backup_method",
                          f"must be physical, logical or snapshot, got {method!r}")
    return TencentCloudConfig(
        region=region,
        select=reader.selector(data, key),
        endpoint=reader.get(data, key, "endpoint", str, None),
        protocol=protocol,
        cbs=reader.get(data, key, "cbs", bool, True),
        cdb=reader.get(data, key, "cdb", bool, True),
        copy_to=tuple(copy_to),
        retention_days=int(reader.number(data, key, "retention_days", 35, 1)),
        keep_min=int(reader.number(data, key, "keep_min", 7, 1)),
        credentials_env=env_name,
        backup_method=method,
    )


def parse_cloud_config(data: Any, file: str = "drkit.toml") -> CloudConfig:
    """Validate a ``[cloud]`` table (already parsed from TOML); raise ConfigError (exit 2)."""
    reader = _Reader(file)
    data = reader.table(data if data is not None else {}, SECTION, _TOP)
    return CloudConfig(
        file=file,
        max_age_hours=reader.number(data, SECTION, "max_age_hours", 26.0, 0.01),
        wait_timeout_minutes=reader.number(data, SECTION, "wait_timeout_minutes", 120.0, 0.0),
        poll_seconds=reader.number(data, SECTION, "poll_seconds", 15.0, 0.0),
        aws=_aws(reader, data["aws"]) if "aws" in data else None,
        tencent=_tencent(reader, data["tencent"]) if "tencent" in data else None,
    )


def load_cloud_config(config: Config) -> CloudConfig:
    """The validated ``[cloud]`` section of a loaded drkit config."""
    return parse_cloud_config(config.raw.get(SECTION, {}), str(config.path))
