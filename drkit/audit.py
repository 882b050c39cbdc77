"""drkit's own actions as a tamper-evident log, and the security audit report.

Every drkit action appends one *event* (who, what, when, parameters without secrets,
result) to the audit log of the repository. The log is a second journal
(``drkit.journal.Journal``: RFC 6962 Merkle tree, C2SP signed checkpoints) kept under the
``audit/`` prefix of the primary store, with origin ``drkit-audit:<repository id>``. Each
event is one leaf: a journal entry of kind ``external`` whose ``note`` is the event and
whose ``sha256`` is the hash of the event's canonical JSON.

Hosts without the writer key (approvers, verifiers) must be able to log too, so every
host signs audit checkpoints with its own *audit host key* (Ed25519, created on first use
in the host's state directory, mode 0600) and registers the public half once as
``audit/hosts/<id>.json``. The design choice and its limits are in docs/audit.md.

``record_event`` never raises: a failure to record is logged at ERROR and the event is
kept in a local spool (``<state dir>/audit/spool/``) that the next successful call flushes,
so the original outcome of a command is never hidden by the audit log.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import platformdirs
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from drkit.canonical import canonical_json
from drkit.clock import Clock, parse_iso, utc_iso
from drkit.config import Config
from drkit.errors import (
    CheckFailed,
    DrkitError,
    InputError,
    IntegrityError,
    KeyFileError,
    ObjectExists,
    ObjectNotFound,
)
from drkit.storage.base import BucketSettings, ObjectInfo, Store

log = logging.getLogger(__name__)

AUDIT_PREFIX = "audit/"
HOSTS_PREFIX = "hosts/"
EVENT_FORMAT = "drkit-audit-event"
HOST_FORMAT = "drkit-audit-host"
RESULTS = ("ok", "findings", "refused", "error")
_SECRET_WORDS = re.compile(r"pass(word|phrase)?|secret|token|credential|private|api_?key",
                           re.IGNORECASE)
_APPEND_ATTEMPTS = 5


# -- a store view under audit/ -------------------------------------------------------------------
class PrefixedStore(Store):
    """A store seen through a key prefix, so a second journal can live beside the first."""

    def __init__(self, base: Store, prefix: str) -> None:
        self.base = base
        self.prefix = prefix
        self.url = base.url.rstrip("/") + "/" + prefix
        self.checksums_in_listing = base.checksums_in_listing

    def _strip(self, info: ObjectInfo) -> ObjectInfo:
        return ObjectInfo(key=info.key[len(self.prefix):], size=info.size, sha256=info.sha256,
                          md5=info.md5, storage_class=info.storage_class,
                          retain_until=info.retain_until, needs_thaw=info.needs_thaw,
                          last_modified=info.last_modified)

    def put(self, key: str, data: bytes, *, storage_class: str | None = None,
            retain_until: datetime | None = None) -> ObjectInfo:
        return self._strip(self.base.put(self.prefix + key, data, storage_class=storage_class,
                                         retain_until=retain_until))

    def get(self, key: str, *, offset: int = 0, length: int | None = None) -> bytes:
        return self.base.get(self.prefix + key, offset=offset, length=length)

    def head(self, key: str) -> ObjectInfo:
        return self._strip(self.base.head(self.prefix + key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for info in self.base.list(self.prefix + prefix):
            yield self._strip(info)

    def thaw(self, key: str, *, days: int = 1) -> bool:
        return self.base.thaw(self.prefix + key, days=days)

    def delete(self, key: str) -> None:
        self.base.delete(self.prefix + key)

    def bucket_settings(self) -> BucketSettings:
        return self.base.bucket_settings()


# -- identity and keys --------------------------------------------------------------------------
def state_dir(config: Config) -> Path:
    return config.verify_state_dir or Path(platformdirs.user_state_dir("drkit"))


def _who() -> dict[str, str]:
    from drkit.approval.identity import actor

    return actor()


def host_key(config: Config) -> Ed25519PrivateKey:
    """This host's audit signing key, created on first use (never leaves the host)."""
    path = state_dir(config) / "audit" / "host.key"
    try:
        doc = json.loads(path.read_bytes())
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(doc["key"]))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"{path}: audit host key is unreadable ({exc})") from None
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # created by a concurrent process: use theirs
        return host_key(config)
    with os.fdopen(fd, "w") as fh:
        json.dump({"format": "drkit-key", "version": 1, "kind": "audit-host-key",
                   "key": key.private_bytes_raw().hex()}, fh)
    return key


def _key_hex(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(key.public_bytes_raw()).hexdigest()[:16]


def _register_host(view: Store, key: Ed25519PrivateKey, now: datetime) -> None:
    from drkit.repo.encoding import ed25519_text

    public = key.public_key()
    name = f"{HOSTS_PREFIX}{_key_hex(public)}.json"
    if view.exists(name):
        return
    doc = {"format": HOST_FORMAT, "version": 1, "key": ed25519_text(public),
           "registered": utc_iso(now), **_who()}
    with contextlib.suppress(ObjectExists):  # registered concurrently: same key, fine
        view.put(name, canonical_json(doc))


def host_keys(view: Store) -> dict[str, dict[str, Any]]:
    """Registered audit host keys: key id -> registration (with the parsed key)."""
    from drkit.repo.encoding import parse_ed25519

    out: dict[str, dict[str, Any]] = {}
    for info in view.list(HOSTS_PREFIX):
        try:
            doc = json.loads(view.get(info.key))
            public = parse_ed25519(str(doc["key"]))
        except (ValueError, KeyError, TypeError, ObjectNotFound):
            log.warning("%s: %s: unreadable audit host registration", view.url, info.key)
            continue
        if info.key != f"{HOSTS_PREFIX}{_key_hex(public)}.json":
            log.warning("%s: %s: registration name does not match its key", view.url, info.key)
            continue
        out[_key_hex(public)] = {**doc, "public": public}
    return out


# -- events -------------------------------------------------------------------------------------
def scrub(value: Any, *, depth: int = 0) -> Any:
    """Parameters as JSON data with anything that looks like a secret redacted."""
    if depth > 6:
        return "…"
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            key = str(k)
            out[key] = "[redacted]" if _SECRET_WORDS.search(key) else scrub(v, depth=depth + 1)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub(v, depth=depth + 1) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) \
            else str(value)
    if isinstance(value, datetime):
        return utc_iso(value)
    return str(value)


def make_event(*, action: str, result: str, params: Mapping[str, Any] | None,
               details: Mapping[str, Any] | None, now: datetime, key_fp: str
               ) -> dict[str, Any]:
    event: dict[str, Any] = {
        "format": EVENT_FORMAT, "version": 1, "action": action, "result": result,
        "at": utc_iso(now), "who": {**_who(), "key": key_fp},
        "params": scrub(params or {}), "details": scrub(details or {}),
        "nonce": secrets.token_hex(8),
    }
    return json.loads(canonical_json(event))


def _entry(event: dict[str, Any]) -> Any:
    from drkit.journal import JournalEntry

    data = canonical_json(event)
    digest = hashlib.sha256(data).hexdigest()
    return JournalEntry(kind="external", key=f"audit-event/{digest[:32]}", size=len(data),
                        sha256=digest, note=event)


@dataclass
class AuditLog:
    """The audit journal of one repository, opened on its primary store."""

    config: Config
    store: Store
    repository_id: str

    @classmethod
    def open(cls, config: Config, clock: Clock, region: str | None = None) -> AuditLog:
        """The log in the primary, or its replicated copy in ``region``."""
        from drkit.repo.keys import load_trusted_writer_keys, read_repository_id
        from drkit.storage.url import open_store

        where = config.region(region) if region else config.primary_region
        store = open_store(where.url, clock=clock)
        return cls(config, store, read_repository_id(store, load_trusted_writer_keys(config)))

    @property
    def view(self) -> Store:
        return PrefixedStore(self.store, AUDIT_PREFIX)

    @property
    def origin(self) -> str:
        return "drkit-audit:" + self.repository_id

    def trusted_keys(self) -> list[Ed25519PublicKey]:
        return [h["public"] for h in host_keys(self.view).values()]

    def journal(self) -> Any:
        from drkit.journal import Journal

        # The write-ahead record of this host's appends lives beside its host key, so an
        # append interrupted by a crash is completed, not reported as a deleted checkpoint.
        return Journal(self.view, self.origin, intents_dir=state_dir(self.config) / "audit")

    def append(self, events: Sequence[dict[str, Any]], now: datetime) -> None:
        signer = host_key(self.config)
        view = self.view
        _register_host(view, signer, now)
        entries = [_entry(e) for e in events]
        if self._append_fast(entries, signer, now):
            return
        last: Exception | None = None
        for _attempt in range(_APPEND_ATTEMPTS):
            try:
                self.journal().append(entries, signer, now=now, trusted=self.trusted_keys())
                break
            except IntegrityError as exc:
                # Another host appended at the same moment (its checkpoint took the size we
                # wanted): read the log again and retry. Tampering fails every attempt.
                last = exc
                if "already exists" not in str(exc):
                    raise
        else:
            assert last is not None
            raise last
        self._save_cache(self.read())

    # Appending through Journal.append re-reads and re-verifies the whole log each time
    # (seconds per event after a year of hourly runs). This host instead keeps the leaf
    # hashes of the log as it last wrote or verified it; when the newest signed checkpoint
    # in the store is still exactly that one, it adds a batch and a checkpoint on top
    # without reading anything else. Anything unexpected falls back to the full path, and
    # ``drkit audit verify`` still reads and checks everything.
    def _cache_path(self) -> Path:
        return state_dir(self.config) / "audit" / f"{self.repository_id}.append.json"

    def _save_cache(self, view: Any) -> None:
        if view.checkpoint is None or view.errors:
            return
        path = self._cache_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"size": view.size, "root": view.checkpoint.root.hex(),
                                   "batch": view.batch_keys[-1] if view.batch_keys else None,
                                   "leaves": [h.hex() for h in view.leaf_hashes]}))
        os.replace(tmp, path)

    def _append_fast(self, entries: Sequence[Any], signer: Ed25519PrivateKey,
                     now: datetime) -> bool:
        from drkit.journal import Checkpoint, batch_key, checkpoint_key
        from drkit.journal.log import BATCH_PREFIX, encode_batch
        from drkit.journal.merkle import RootBuilder, hash_leaf

        try:
            cache = json.loads(self._cache_path().read_text())
            size, batch = int(cache["size"]), str(cache["batch"])
            leaves = [bytes.fromhex(h) for h in cache["leaves"]]
            root = bytes.fromhex(cache["root"])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        view = self.view
        if len(leaves) != size:
            return False
        # Every append after size N writes a batch starting at N (even one whose checkpoint
        # never landed), so one narrow listing tells whether the log moved on without us.
        if any(True for _ in view.list(f"{BATCH_PREFIX}{size:016d}-")):
            return False
        try:
            current = Checkpoint.open(view.get(checkpoint_key(size)), self.trusted_keys(),
                                      origin=self.origin)
        except (IntegrityError, ObjectNotFound):
            return False
        if current.size != size or current.root != root or current.batch != batch:
            return False
        data = encode_batch(self.origin, size, list(entries), batch, signer=signer)
        bkey = batch_key(size, size + len(entries), data)
        builder = RootBuilder()
        for leaf in leaves:
            builder.add(leaf)
        if builder.root() != root:
            return False
        for entry in entries:
            leaf = hash_leaf(entry.to_bytes())
            leaves.append(leaf)
            builder.add(leaf)
        intents = self.journal().intents
        intents.add(bkey)  # write-ahead, as Journal.append does
        try:
            view.put(bkey, data)
            checkpoint = Checkpoint(origin=self.origin, size=builder.size, root=builder.root(),
                                    time=now, batch=bkey)
            view.put(checkpoint_key(checkpoint.size), checkpoint.sign(signer))
        except ObjectExists:
            return False  # another host appended first: take the full path
        intents.discard({bkey})
        path = self._cache_path()
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"size": checkpoint.size, "root": checkpoint.root.hex(),
                                   "batch": bkey, "leaves": [h.hex() for h in leaves]}))
        os.replace(tmp, path)
        return True

    def read(self) -> Any:
        return self.journal().read(self.trusted_keys())


# -- recording ----------------------------------------------------------------------------------
def _spool_dir(config: Config) -> Path:
    # One spool per audit log (the primary's location), so an event kept while one
    # repository's primary was unreachable is never delivered into another repository's log.
    where = config.primary_region.url.location
    return state_dir(config) / "audit" / "spool" / hashlib.sha256(where.encode()).hexdigest()[:16]


def _spool(config: Config, event: dict[str, Any]) -> None:
    folder = _spool_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(canonical_json(event)).hexdigest()[:16]
    name = f"{event['at'].replace(':', '')}-{digest}"
    (folder / f"{name}.json").write_bytes(canonical_json(event))


def _spooled(config: Config) -> list[tuple[Path, dict[str, Any]]]:
    folder = _spool_dir(config)
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.json")):
        try:
            out.append((path, json.loads(path.read_bytes())))
        except (OSError, ValueError):
            log.error("audit spool: %s is unreadable; left in place", path)
    return out


def record_event(config: Config, *, action: str, result: str,
                 params: Mapping[str, Any] | None = None,
                 details: Mapping[str, Any] | None = None, clock: Clock) -> None:
    """Append one event to the audit log. Never raises: a failure is logged at ERROR and
    the event is spooled locally for the next call to deliver."""
    try:
        now = clock.now()
        key = host_key(config)
        event = make_event(action=action, result=result, params=params, details=details,
                           now=now, key_fp=f"audit-host/{_key_hex(key.public_key())}")
    except Exception as exc:  # noqa: BLE001 - recording must never hide the real outcome
        log.error("audit: cannot build the event for %s: %s", action, exc)
        return
    try:
        audit = AuditLog.open(config, clock)
        pending = _spooled(config)
        audit.append([e for _p, e in pending] + [event], now)
        for path, _e in pending:
            path.unlink(missing_ok=True)
    except Exception as exc:  # noqa: BLE001 - see above
        try:
            _spool(config, event)
            where = f"kept in {_spool_dir(config)}"
        except OSError as spool_exc:
            where = f"and could not be spooled ({spool_exc})"
        level = logging.WARNING if isinstance(exc, InputError) else logging.ERROR
        log.log(level, "audit: could not record %s (%s); event %s", action, exc, where)


# -- verification -------------------------------------------------------------------------------
@dataclass
class AuditFinding:
    severity: str  # "error" or "warning"
    kind: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"severity": self.severity, "kind": self.kind, "message": self.message}


@dataclass
class AuditVerification:
    size: int = 0
    trusted_size: int = 0
    findings: list[AuditFinding] = field(default_factory=list)
    hosts: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    first_contact: bool = False  # no trusted checkpoint on this host (new, or state lost)
    fingerprint: str | None = None  # of the newest verified checkpoint: a trust anchor
    anchors: list[str] = field(default_factory=list)  # the anchors checked

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "size": self.size, "trusted_size": self.trusted_size,
                "first_contact": self.first_contact, "fingerprint": self.fingerprint,
                "anchors": self.anchors,
                "findings": [f.to_dict() for f in self.findings], "hosts": self.hosts}


def _trusted_state_path(config: Config, repository_id: str, region: str | None = None
                        ) -> Path:
    # A replica lags the primary, so each copy has its own trusted checkpoint.
    suffix = "" if region in (None, config.primary) else f".{region}"
    return state_dir(config) / "audit" / f"{repository_id}{suffix}.trusted.json"


def verify_log(config: Config, clock: Clock, *, update_state: bool = True,
               region: str | None = None, accept_first_contact: bool = False,
               anchors: Sequence[Any] = ()) -> AuditVerification:
    """Check the audit log is intact and extends the last checkpoint this host trusted.

    Findings (never an exception) for: an edited, removed or reordered entry (batch hash,
    root or chain mismatch), a log shorter than the trusted checkpoint (truncation or
    rollback), a log that does not extend the trusted one (rewritten history), an event
    whose content does not match its leaf, a deleted checkpoint or a signed batch no
    checkpoint covers (the events in it are named), a log below or diverging from a trust
    anchor (``drkit.verify.anchors``; those for other origins are ignored). The trusted
    state moves forward only when the log is clean; when there is none (first contact) it
    is started only with ``accept_first_contact``."""
    from drkit.journal.merkle import consistency_proof, verify_consistency
    from drkit.verify.anchors import check_anchor, fingerprint, for_origin

    audit = AuditLog.open(config, clock, region)
    result = AuditVerification()
    hosts = host_keys(audit.view)
    result.hosts = [{"id": k, "host": h.get("host"), "os_user": h.get("os_user"),
                     "registered": h.get("registered")} for k, h in sorted(hosts.items())]
    view = audit.read()
    for problem in view.problems:
        result.findings.append(AuditFinding(problem.severity, problem.kind, str(problem)))
    result.size = view.size
    if view.checkpoint is not None:
        result.fingerprint = fingerprint(view.checkpoint)
    for anchor in for_origin(list(anchors), audit.origin):
        result.anchors.append(str(anchor))
        problem = check_anchor(view, anchor)
        if problem is not None:
            result.findings.append(AuditFinding("error", problem[0].removeprefix("journal-"),
                                                f"audit log: {problem[1]}"))
    for index, entry in enumerate(view.entries):
        event = entry.note or {}
        if entry.kind != "external" or hashlib.sha256(canonical_json(event)).hexdigest() \
                != entry.sha256:
            result.findings.append(AuditFinding(
                "error", "event-mismatch", f"audit entry {index}: event content does not match "
                "its logged hash"))
            continue
        result.events.append(event)
    state_path = _trusted_state_path(config, audit.repository_id, region)
    trusted: dict[str, Any] = {}
    try:
        trusted = json.loads(state_path.read_text())
    except FileNotFoundError:
        result.first_contact = True
        result.findings.append(AuditFinding(
            "warning", "first-contact",
            f"FIRST-CONTACT: this host holds no trusted audit checkpoint ({state_path} is "
            "missing: a new host, or the state was deleted), so a truncated or rewritten log "
            "cannot be told from a good one"
            + ("" if accept_first_contact else
               "; nothing recorded (give --accept-first-contact to start the state)")))
    except (OSError, ValueError) as exc:
        result.findings.append(AuditFinding("error", "state-unreadable",
                                            f"{state_path}: unreadable ({exc})"))
    trusted_size = int(trusted.get("size", 0))
    result.trusted_size = trusted_size
    if trusted_size:
        trusted_root = bytes.fromhex(str(trusted.get("root", "")))
        if view.size < trusted_size:
            result.findings.append(AuditFinding(
                "error", "truncated",
                f"audit log has {view.size} entries but this host trusted a checkpoint of "
                f"{trusted_size} entries ({state_path}): the log was truncated or rolled back"))
        elif view.checkpoint is not None:
            try:
                proof = consistency_proof(trusted_size, view.leaf_hashes)
                verify_consistency(trusted_size, view.size, proof, trusted_root,
                                   view.checkpoint.root)
            except (IntegrityError, ValueError) as exc:
                result.findings.append(AuditFinding(
                    "error", "inconsistent",
                    f"audit log of {view.size} entries does not extend the trusted checkpoint "
                    f"of {trusted_size} entries (entries edited, removed or reordered): {exc}"))
        seen_hosts = set(trusted.get("hosts", []))
        for key_id_, h in sorted(hosts.items()):
            if key_id_ not in seen_hosts:
                result.findings.append(AuditFinding(
                    "warning", "new-audit-host",
                    f"new audit host key {key_id_} ({h.get('os_user')}@{h.get('host')}, "
                    f"registered {h.get('registered')})"))
    spooled = len(_spooled(config))
    if spooled:
        result.findings.append(AuditFinding(
            "warning", "spooled", f"{spooled} event(s) of this host are not yet in the log "
            f"({_spool_dir(config)})"))
    if (update_state and result.ok and view.checkpoint is not None
            and (accept_first_contact or not result.first_contact)):
        state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = state_path.with_name(state_path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"size": view.size, "root": view.checkpoint.root.hex(),
                                   "hosts": sorted(hosts), "verified": utc_iso(clock.now())}))
        os.replace(tmp, state_path)
    return result


def require_intact(verification: AuditVerification) -> None:
    errors = [f for f in verification.findings if f.severity == "error"]
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise CheckFailed(f"audit log: {errors[0].message}{more}")


# -- the report ---------------------------------------------------------------------------------
def _day(text: str) -> date:
    return parse_iso(text).date()


ERROR_RESULTS = ("error", "crashed", "terminated", "missed")


def action_kind(action: Any) -> str:
    """What an action is about, whoever ran it: ``snapshot``, ``schedule.snapshot`` and
    ``cli.snapshot`` are all ``snapshot``."""
    parts = str(action or "").split(".")
    while len(parts) > 1 and parts[0] in ("schedule", "cli"):
        parts = parts[1:]
    return parts[0]


def build_report(config: Config, clock: Clock, *, since: datetime,
                 region: str | None = None) -> dict[str, Any]:
    """The security audit report from ``since`` until now, from the verified log (the
    primary's, or the copy in ``region`` when the primary is gone)."""
    from drkit.verify.anchors import current_anchors

    verification = verify_log(config, clock, update_state=False, region=region)
    now = clock.now()
    # Trust anchors for a verifier that loses its state: the newest checkpoints of the
    # repository journal and of this audit log, as fingerprints (drkit.verify.anchors).
    anchors = [a for a in current_anchors(config, clock) if a != verification.fingerprint]
    if verification.fingerprint:
        anchors.append(verification.fingerprint)
    events = [e for e in verification.events if parse_iso(str(e.get("at"))) >= since]

    def pick(pred: Any) -> list[dict[str, Any]]:
        return [e for e in events if pred(e)]

    def summary(e: dict[str, Any]) -> dict[str, Any]:
        return {"at": e.get("at"), "action": e.get("action"), "result": e.get("result"),
                "who": f"{e['who'].get('os_user')}@{e['who'].get('host')}",
                "params": e.get("params"), "details": e.get("details")}

    executed = [{**summary(e), "operation": e["details"].get("operation"),
                 "request": e["details"].get("request"),
                 "requester": e["details"].get("requester"),
                 "approved_by": e["details"].get("approved_by", [])}
                for e in pick(lambda e: e.get("action") == "approval.execute"
                              and e.get("result") != "refused")]
    decisions = [summary(e) for e in pick(
        lambda e: e.get("action") in ("approval.approve", "approval.deny")
        and e.get("result") == "ok")]
    refusals = [summary(e) for e in pick(lambda e: e.get("result") == "refused")]
    verifies = [summary(e) for e in pick(
        lambda e: action_kind(e.get("action")) == "verify"
        and e.get("result") in ("findings", *ERROR_RESULTS))]
    drills = [summary(e) for e in pick(lambda e: action_kind(e.get("action")) == "drill")]
    errors = [summary(e) for e in pick(lambda e: e.get("result") in ERROR_RESULTS)]
    snapshot_days = {_day(e["at"]) for e in events
                     if action_kind(e.get("action")) == "snapshot" and e.get("result") == "ok"}
    # A verify that ran counts, whatever it found: the gap report is about not looking.
    verify_days = {_day(e["at"]) for e in events
                   if action_kind(e.get("action")) == "verify"
                   and e.get("result") not in ("skipped", "missed")}
    days = []
    day = since.date()
    while day <= now.date():
        days.append(day)
        day += timedelta(days=1)
    return {
        "format": "drkit-audit-report", "version": 1,
        "repository": config.primary, "since": utc_iso(since), "until": utc_iso(now),
        "log": verification.to_dict(),
        "anchors": anchors,
        "events": len(events),
        "dangerous_operations": executed,
        "decisions": decisions,
        "refusals": refusals,
        "verify_findings": verifies,
        "drills": drills,
        "errors": errors,
        "gaps": {
            "days_without_snapshot": [d.isoformat() for d in days if d not in snapshot_days],
            "days_without_verify": [d.isoformat() for d in days if d not in verify_days],
        },
    }


def _md_table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    if not rows:
        return ["None.", ""]
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for c in columns:
            value = row.get(c)
            if isinstance(value, list | tuple):
                value = ", ".join(str(v) for v in value)
            elif isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
            cells.append(str(value if value is not None else "").replace("|", "\\|"))
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    return out


def render_markdown(report: dict[str, Any]) -> str:
    log_state = report["log"]
    lines = ["# drkit security audit report", "",
             f"Period: {report['since']} to {report['until']} · {report['events']} events",
             "",
             "## Audit log integrity", "",
             ("Intact" if log_state["ok"] else "**NOT INTACT**")
             + f": {log_state['size']} entries (trusted checkpoint: "
             f"{log_state['trusted_size']}).", ""]
    for f in log_state["findings"]:
        lines.append(f"- {f['severity']}: {f['message']}")
    if log_state["findings"]:
        lines.append("")
    if report.get("anchors"):
        lines += ["Trust anchors (newest checkpoints; keep them off the verifying host, "
                  "give them to `drkit verify --expect` / `drkit audit verify --expect`):", ""]
        lines += [f"- `{a}`" for a in report["anchors"]] + [""]
    sections = [
        ("Dangerous operations and who approved them", "dangerous_operations",
         ["at", "operation", "request", "requester", "approved_by", "result", "who"]),
        ("Approvals and denials", "decisions", ["at", "action", "who", "params", "details"]),
        ("Refusals", "refusals", ["at", "action", "who", "params", "details"]),
        ("Verify findings", "verify_findings", ["at", "action", "result", "details"]),
        ("Drills and their outcomes", "drills", ["at", "action", "result", "details"]),
        ("Errors", "errors", ["at", "action", "who", "details"]),
    ]
    for title, key, columns in sections:
        lines += [f"## {title}", ""] + _md_table(report[key], columns)
    gaps = report["gaps"]
    lines += ["## Gaps", "",
              "Days without a successful snapshot: "
              + (", ".join(gaps["days_without_snapshot"]) or "none"),
              "",
              "Days without a verify: " + (", ".join(gaps["days_without_verify"]) or "none"),
              ""]
    return "\n".join(lines)


def render_html(report: dict[str, Any]) -> str:
    """A self-contained HTML page (no scripts, every value escaped)."""
    from drkit.htmlpage import markdown_page

    return markdown_page(render_markdown(report), "drkit security audit report", max_width_em=70)


def parse_since(text: str, now: datetime) -> datetime:
    """``YYYY-MM-DD`` (UTC midnight), an ISO time with offset, or ``Nd`` (N days ago)."""
    m = re.fullmatch(r"(\d{1,4})d", text.strip())
    if m:
        return now - timedelta(days=int(m.group(1)))
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
            since = parse_iso(text.strip() + "T00:00:00Z")
        else:
            since = parse_iso(text.strip())
    except ValueError:
        raise InputError(f"--since {text!r}: use YYYY-MM-DD, an ISO time with an offset, "
                         "or Nd") from None
    if since > now:
        # A period that starts after it ends would print as an empty, reversed report.
        raise InputError(f"--since {text!r}: is in the future (now is {utc_iso(now)})")
    return since


__all__ = ["RESULTS", "AuditLog", "AuditVerification", "DrkitError", "build_report",
           "record_event", "render_html", "render_markdown", "verify_log"]
