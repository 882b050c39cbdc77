"""Sources of operation events, named on the command line as ``KIND:WHERE``.

=====================  ===========================================================
``cloudtrail:WHERE``   trail log files in a folder, a file, or a bucket URL
                       (``s3://bucket/AWSLogs/...?region=...``, read as a drkit store)
``cloudtrail-api:R``   CloudTrail ``LookupEvents`` in region R (boto3's credentials;
                       ``?endpoint=URL`` for a test server)
``cloudaudit:WHERE``   CloudAudit log files delivered to COS (folder, file or cos:// URL)
``cloudaudit-api:R``   CloudAudit ``LookUpEvents`` in region R
                       (tencentcloud-sdk-python-cloudaudit; TENCENTCLOUD_SECRET_ID/KEY)
``auditd:PATH``        auditd's log (``?host=NAME`` when records carry no node=,
                       ``&users=1001:wang,0:root`` to name numeric ids)
``transcript:PATH``    a ``script`` transcript, or a folder of them (``?ip=ADDR``)
``history:PATH``       shell history with ``#EPOCH`` lines (``?user=U&host=H``)
``bh:PATH``            saved Tencent Cloud Bastion Host search responses (``tccli bh
                       SearchCommand ...`` output; a file or a folder of them)
``bh-api:R``           Bastion Host ``SearchCommand`` in region R
                       (tencentcloud-sdk-python-bh; TENCENTCLOUD_SECRET_ID/KEY)
``sudoio:PATH``        sudo I/O logs: sudo's iolog folder or one session folder
                       (``?host=NAME`` when ``log.json`` does not name it, ``&ip=ADDR``)
=====================  ===========================================================
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from drkit.clock import Clock
from drkit.errors import InputError
from drkit.oplog.model import OpEvent
from drkit.oplog.readers import bastion, bastionhost, cloudaudit, cloudtrail, sudoio

KINDS = ("cloudtrail", "cloudtrail-api", "cloudaudit", "cloudaudit-api", "auditd",
         "transcript", "history", "bh", "bh-api", "sudoio")
#: How far back an API source looks when nothing earlier was read (CloudTrail keeps 90 days).
API_LOOKBACK = timedelta(days=7)


@dataclass(frozen=True)
class SourceSpec:
    kind: str
    where: str
    options: dict[str, str]
    text: str

    def __str__(self) -> str:
        return self.text


def parse_spec(text: str) -> SourceSpec:
    kind, colon, rest = text.partition(":")
    if not colon or kind not in KINDS or not rest:
        raise InputError(f"{text!r}: a source is KIND:WHERE with KIND one of "
                         f"{', '.join(KINDS)}")
    options: dict[str, str] = {}
    where = rest
    # A bucket URL keeps its own query (region, endpoint, credentials); elsewhere the query
    # carries this reader's options (which may themselves hold a URL: ?endpoint=http://...).
    if "://" not in rest.partition("?")[0] and "?" in rest:
        where, _, query = rest.partition("?")
        options = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    return SourceSpec(kind, where, options, text)


def _local_files(where: str, *, suffixes: tuple[str, ...] = ()) -> list[tuple[str, bytes]]:
    path = Path(where).expanduser()
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file()
                       and (not suffixes or p.name.endswith(suffixes)))
    else:
        raise InputError(f"{where}: no such file or folder")
    out = []
    for p in files:
        try:
            out.append((str(p), p.read_bytes()))
        except OSError as exc:
            raise InputError(f"{p}: cannot read ({exc.strerror})") from None
    return out


def _store_files(url: str, clock: Clock, keep: object) -> Iterator[tuple[str, bytes]]:
    from drkit.storage.url import open_store

    store = open_store(url, clock=clock)
    for info in store.list(""):
        if keep(info.key):  # type: ignore[operator]
            yield f"{store.url.rstrip('/')}/{info.key}", store.get(info.key)


def _text(name: str, data: bytes) -> str:
    return data.decode("utf-8", "replace")


def read_source(spec: SourceSpec, *, clock: Clock, since: datetime | None = None
                ) -> list[OpEvent]:
    """Every event of one source (API sources: from ``since``, or the last week)."""
    now = clock.now()
    start = since or now - API_LOOKBACK
    if spec.kind == "cloudtrail":
        if "://" in spec.where:
            files = list(_store_files(spec.where, clock, cloudtrail.is_log_file))
        else:
            files = [(n, d) for n, d in _local_files(spec.where, suffixes=(".json", ".json.gz"))
                     if cloudtrail.is_log_file(n)]
        return list(cloudtrail.events_of(files))
    if spec.kind == "cloudtrail-api":
        import boto3

        client = boto3.client("cloudtrail", region_name=spec.where,
                              endpoint_url=spec.options.get("endpoint") or None)
        return list(cloudtrail.lookup_events(client, start=start, end=now,
                                             origin=f"cloudtrail-api:{spec.where}"))
    if spec.kind == "cloudaudit":
        if "://" in spec.where:
            files = list(_store_files(spec.where, clock, lambda k: not k.endswith("/")))
        else:
            files = _local_files(spec.where)
        return [e for name, data in files
                for e in cloudaudit.parse_log_file(data, origin=name)]
    if spec.kind == "cloudaudit-api":
        return list(_cloudaudit_api(spec, start=start, end=now))
    if spec.kind == "auditd":
        users = {}
        for pair in filter(None, spec.options.get("users", "").split(",")):
            uid, colon, name = pair.partition(":")
            if not colon or not uid.isdigit() or not name:
                raise InputError(f"{spec}: users= is a list of UID:NAME, e.g. 1001:wang,0:root")
            users[uid] = name
        return [e for name, data in _local_files(spec.where)
                for e in bastion.parse_auditd(_text(name, data), origin=name,
                                              host=spec.options.get("host"), users=users)]
    if spec.kind == "transcript":
        return [e for name, data in _local_files(spec.where)
                for e in bastion.parse_transcript(_text(name, data), origin=name,
                                                  source_ip=spec.options.get("ip"))]
    if spec.kind == "bh":
        return bastionhost.parse_saved(_local_files(spec.where, suffixes=(".json",)))
    if spec.kind == "bh-api":
        return _bastionhost_api(spec, start=start, end=now)
    if spec.kind == "sudoio":
        return sudoio.read(spec.where, host=spec.options.get("host"),
                           source_ip=spec.options.get("ip"))
    user = spec.options.get("user")
    if not user:
        raise InputError(f"{spec}: say whose history it is: history:PATH?user=NAME&host=HOST")
    return [e for name, data in _local_files(spec.where)
            for e in bastion.parse_history(_text(name, data), origin=name, user=user,
                                           host=spec.options.get("host"))]


def _tencent_credential(spec: SourceSpec) -> object:
    from tencentcloud.common import credential

    secret_id = os.environ.get("TENCENTCLOUD_SECRET_ID")
    secret_key = os.environ.get("TENCENTCLOUD_SECRET_KEY")
    if not secret_id or not secret_key:
        raise InputError(f"{spec}: set TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY")
    return credential.Credential(secret_id, secret_key)


def _bastionhost_api(spec: SourceSpec, *, start: datetime, end: datetime) -> list[OpEvent]:
    try:
        from tencentcloud.bh.v20230418 import bh_client, models
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
            TencentCloudSDKException,
        )
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
    except ImportError:
        raise InputError(f"{spec}: needs the Bastion Host SDK "
                         "(pip install tencentcloud-sdk-python-bh)") from None
    cred = _tencent_credential(spec)
    http = http_profile(HttpProfile, spec.options.get("endpoint"))
    client = bh_client.BhClient(cred, spec.where, ClientProfile(httpProfile=http))
    try:
        return bastionhost.search_commands(client, models, start=start, end=end,
                                           origin=f"bh-api:{spec.where}", region=spec.where)
    except TencentCloudSDKException as exc:
        raise InputError(f"{spec}: SearchCommand failed: {exc.get_code()}: "
                         f"{exc.get_message()}") from None


def http_profile(profile: Any, endpoint: str | None) -> Any:
    """An SDK ``HttpProfile`` for ``endpoint`` (``host`` or ``http://host:port``); the
    scheme must be given to the constructor, which derives the URL scheme from it."""
    if not endpoint:
        return profile()
    scheme, sep, host = endpoint.partition("://")
    return profile(protocol=scheme if sep else "https", endpoint=host if sep else endpoint)


def cloudaudit_client(spec: SourceSpec) -> tuple[Any, Any]:
    """A CloudAudit client for region ``spec.where`` (``?endpoint=`` for a test server)
    and the SDK's models module."""
    try:
        from tencentcloud.cloudaudit.v20190319 import cloudaudit_client, models
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
    except ImportError:
        raise InputError(f"{spec}: needs the CloudAudit SDK "
                         "(pip install tencentcloud-sdk-python-cloudaudit)") from None
    cred = _tencent_credential(spec)
    http = http_profile(HttpProfile, spec.options.get("endpoint"))
    client = cloudaudit_client.CloudauditClient(cred, spec.where,
                                                ClientProfile(httpProfile=http))
    return client, models


def _cloudaudit_api(spec: SourceSpec, *, start: datetime, end: datetime) -> Iterator[OpEvent]:
    client, models = cloudaudit_client(spec)
    yield from cloudaudit.lookup_events(client, models, start=start, end=end,
                                        origin=f"cloudaudit-api:{spec.where}")
