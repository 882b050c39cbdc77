"""``drkit verify`` covers every object of a region: the audit log and approval records.

The repository journal names the repository's own objects; two other areas live beside
them in every region and are copied by ``drkit replicate``: the audit log (``audit/``, its
own Merkle journal with per-host signed checkpoints) and the approval records
(``approval/``: requests, decisions, execution claims, results, approver registry versions
and pinned configurations, each a signed or hash-named document). Leaving them out made
them blind spots: a deleted audit host key, a removed decision or a 3 MB object injected
under ``approval/`` passed verify. Here each region's copy of both areas is checked:

* the audit log is verified by its owner (``drkit.audit.verify_log`` on that region's
  copy): any error is a CRITICAL ``audit-log`` finding, warnings are notes;
* every object under ``approval/`` must be a record drkit writes, at its own name, that
  parses and verifies (request id = hash of its content, plan = plan hash, requester and
  decision signatures, registry and pinned-config chains) and is referenced consistently
  (a decision, claim or result names a request the region holds; a result follows a claim;
  a registry version after the first names an executed request);
* objects under ``audit/`` must be the audit log's own (journal batches and checkpoints,
  host registrations);
* none may disappear or change once seen: this host keeps the hash of every record it
  verified per region (``<state dir>/<origin>.records.json``), and a replica is compared
  with the primary: a primary record older than the replica's newest journal checkpoint
  (less the tolerated clock skew) was there when that checkpoint was copied, because
  ``drkit replicate`` copies records before the journal, so its absence is a finding.

Checks and severities: ``record-injected`` (HIGH, an object no drkit record lives at),
``record-invalid`` (HIGH, at a record's name but does not verify, never seen valid),
``record-inconsistent`` (HIGH, names a request or claim the region lacks),
``record-unknown`` (HIGH, a valid record in a replica that the primary lacks),
``record-changed`` and ``record-missing`` (CRITICAL, differs from or is absent where the
primary or this host's earlier verification had it), ``audit-log`` (CRITICAL),
``audit-unverifiable`` (HIGH).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from drkit.clock import Clock, parse_iso
from drkit.config import Config, RegionConfig
from drkit.errors import DrkitError, IntegrityError, ObjectNotFound, StorageError
from drkit.journal import LogView
from drkit.storage.base import Store

RECORDS_FORMAT = "drkit-verify-records"
RECORDS_VERSION = 1
APPROVAL_PREFIX = "approval/"
AUDIT_PREFIX = "audit/"
_HEX64 = r"[0-9a-f]{64}"

#: Every object name drkit writes under approval/ and audit/, by kind. An object at any
#: other name was put there by someone else. (A new kind of record must be added here.)
LAYOUT: dict[str, re.Pattern[str]] = {
    "request": re.compile(rf"^approval/requests/({_HEX64})\.json$"),
    "decision": re.compile(rf"^approval/decisions/({_HEX64})/({_HEX64})\.json$"),
    "executed": re.compile(rf"^approval/executed/({_HEX64})\.json$"),
    "result": re.compile(rf"^approval/results/({_HEX64})\.json$"),
    "registry": re.compile(r"^approval/registry/(\d{6})\.json$"),
    "config": re.compile(r"^approval/config/(\d{6})\.json$"),
    "audit-host": re.compile(r"^audit/hosts/([0-9a-f]{16})\.json$"),
    "audit-journal": re.compile(r"^audit/journal/(batch|checkpoint)/[^/]+$"),
}


def record_kind(key: str) -> tuple[str, tuple[str, ...]] | None:
    for kind, pattern in LAYOUT.items():
        m = pattern.match(key)
        if m:
            return kind, m.groups()
    return None


@dataclass
class _Record:
    key: str
    kind: str
    parts: tuple[str, ...]
    data: bytes
    sha256: str
    time: datetime | None = None  # when drkit wrote it, from the document itself
    problem: str | None = None


@dataclass
class _PrimaryCopy:
    records: dict[str, _Record] = field(default_factory=dict)


class RecordsCheck:
    """Checks audit/ and approval/ of each region; one per ``drkit verify`` run."""

    def __init__(self, config: Config, clock: Clock, *, repository_id: str, state_dir: Path,
                 origin: str, primary: tuple[RegionConfig, Store] | None,
                 accept_first_contact: bool = False) -> None:
        self.config = config
        # verify --accept-first-contact starts this host's audit-log state too (one word
        # from the person covers both logs of the repository).
        self.accept_first_contact = accept_first_contact
        self.clock = clock
        self.repository_id = repository_id
        self.primary = primary
        self.path = Path(state_dir) / (re.sub(r"[^A-Za-z0-9_.-]", "_", origin)
                                       + ".records.json")
        skew = config.approval.get("max_skew_minutes", 5) if isinstance(
            config.approval, dict) else 5
        self.skew = timedelta(minutes=float(skew) if isinstance(skew, int | float) else 5.0)
        self._primary_copy: _PrimaryCopy | None = None
        self.seen: dict[str, dict[str, str]] = {}
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if raw.get("format") == RECORDS_FORMAT and isinstance(raw.get("regions"), dict):
                self.seen = {str(k): dict(v) for k, v in raw["regions"].items()
                             if isinstance(v, dict)}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError) as exc:
            raise IntegrityError(f"{self.path}: verify records state unreadable ({exc})") \
                from None

    # -- reading and checking one region's records ------------------------------------------
    def _load(self, store: Store) -> tuple[dict[str, _Record], list[tuple[str, int]]]:
        """Records under approval/ and audit/hosts/ (read), and unknown objects."""
        records: dict[str, _Record] = {}
        unknown: list[tuple[str, int]] = []
        for prefix in (APPROVAL_PREFIX, AUDIT_PREFIX):
            for info in store.list(prefix):
                found = record_kind(info.key)
                if found is None:
                    unknown.append((info.key, info.size))
                    continue
                kind, parts = found
                if kind == "audit-journal":
                    continue  # the audit log's own objects: verified by audit.verify_log
                try:
                    data = store.get(info.key)
                except ObjectNotFound:
                    continue  # deleted while listing
                records[info.key] = _Record(info.key, kind, parts, data,
                                            hashlib.sha256(data).hexdigest())
        self._validate(store, records)
        return records, unknown

    def _validate(self, store: Store, records: dict[str, _Record]) -> None:
        from drkit.approval.requests import parse_request, verify_decision

        keys = set(records)
        for rec in records.values():
            try:
                if rec.kind == "request":
                    req = parse_request(rec.data, rec.parts[0], where=rec.key)
                    if req.doc.get("repository") != self.repository_id:
                        raise IntegrityError("request names another repository")
                    rec.time = req.created
                elif rec.kind == "decision":
                    if rec.sha256 != rec.parts[1]:
                        raise IntegrityError("content does not match the hash in its name")
                    decision = verify_decision(rec.key, rec.data, rec.parts[0])
                    rec.time = parse_iso(str(decision.body.get("at")))
                    self._require(keys, "request", rec.parts[0], rec)
                elif rec.kind in ("executed", "result"):
                    doc = _json_object(rec.data)
                    if doc.get("request") != rec.parts[0]:
                        raise IntegrityError("names another request")
                    stamp = doc.get("started" if rec.kind == "executed" else "finished")
                    rec.time = parse_iso(str(stamp)) if stamp else None
                    self._require(keys, "request", rec.parts[0], rec)
                    if rec.kind == "result":
                        self._require(keys, "executed", rec.parts[0], rec)
                elif rec.kind in ("registry", "config"):
                    doc = _json_object(rec.data)
                    stamp = doc.get("created" if rec.kind == "registry" else "applied")
                    rec.time = parse_iso(str(stamp)) if stamp else None
                    authorised = doc.get("authorized_by") if rec.kind == "registry" \
                        else {"request": doc.get("request")}
                    request = authorised.get("request") if isinstance(authorised, dict) \
                        else None
                    if request:
                        self._require(keys, "request", str(request), rec)
                        self._require(keys, "executed", str(request), rec)
                elif rec.kind == "audit-host":
                    from drkit.repo.encoding import parse_ed25519

                    doc = _json_object(rec.data)
                    public = parse_ed25519(str(doc.get("key")))
                    if hashlib.sha256(public.public_bytes_raw()).hexdigest()[:16] \
                            != rec.parts[0]:
                        raise IntegrityError("registration name does not match its key")
                    stamp = doc.get("registered")
                    rec.time = parse_iso(str(stamp)) if stamp else None
            except _Inconsistent as exc:
                rec.problem = f"inconsistent: {exc}"
            except (DrkitError, ValueError, TypeError, AttributeError, KeyError) as exc:
                rec.problem = str(exc).replace(f"{rec.key}: ", "") or type(exc).__name__
        # A registry version or pinned config names the request that authorised it: that
        # request must be of the operation that changes it.
        wanted_ops = {"registry": "approvers", "config": "config-apply"}
        for rec in records.values():
            if rec.kind not in wanted_ops or rec.problem is not None:
                continue
            doc = json.loads(rec.data)
            authorised = doc.get("authorized_by") if rec.kind == "registry" \
                else {"request": doc.get("request")}
            request = authorised.get("request") if isinstance(authorised, dict) else None
            source = records.get(f"approval/requests/{request}.json") if request else None
            if source is None or source.problem is not None:
                continue
            operation = json.loads(source.data)["request"].get("operation")
            if operation != wanted_ops[rec.kind]:
                rec.problem = (f"inconsistent: authorised by a {operation!r} request, not "
                               f"{wanted_ops[rec.kind]!r}")
        # The chains as a whole (numbering, previous hashes, canonical form), with the
        # owners' own checks; a failure names the object it found wrong.
        self._check_chain(store, records, "registry")
        self._check_chain(store, records, "config")

    def _check_chain(self, store: Store, records: dict[str, _Record], kind: str) -> None:
        from drkit.approval.configpin import latest_pinned
        from drkit.approval.registry import anchored_entries, load_versions

        if not any(r.kind == kind for r in records.values()):
            return
        try:
            if kind == "registry":
                load_versions(store, self.repository_id,
                              anchored_entries(getattr(self, "_entries", [])))
            else:
                latest_pinned(store, getattr(self, "_entries", []))
        except (DrkitError, ValueError, TypeError, KeyError) as exc:
            text = str(exc)
            named = [r for r in records.values() if r.kind == kind and r.key in text]
            for rec in named or [max((r for r in records.values() if r.kind == kind),
                                     key=lambda r: r.key)]:
                if rec.problem is None:
                    rec.problem = text.split(f"{rec.key}: ", 1)[-1]

    @staticmethod
    def _require(keys: set[str], kind: str, request_id: str, rec: _Record) -> None:
        wanted = f"approval/{'requests' if kind == 'request' else 'executed'}/{request_id}.json"
        if wanted not in keys:
            raise _Inconsistent(f"names {kind} {request_id[:12]}, which this region lacks")

    def _primary_records(self) -> dict[str, _Record] | None:
        if self.primary is None:
            return None
        if self._primary_copy is None:
            try:
                records, _unknown = self._load(self.primary[1])
            except StorageError:
                return None
            self._primary_copy = _PrimaryCopy(records)
        return self._primary_copy.records

    # -- the check --------------------------------------------------------------------------
    def check(self, report: Any, region: RegionConfig, store: Store, view: LogView,
              logged_keys: set[str]) -> None:
        """Add this region's record findings to ``report`` (a RegionReport)."""
        self._entries = view.entries  # pinned configs are checked against their leaves
        try:
            records, unknown = self._load(store)
        except StorageError as exc:
            report.add("high", "record-unreadable", f"cannot read audit/ and approval/: {exc}")
            return
        for key, size in unknown:
            if key in logged_keys:
                continue  # journaled by the repository: checked as an object
            report.add("high", "record-injected",
                       "object under audit/ or approval/ that is no drkit record "
                       "(injected data)", key, "absent", f"{size} B")
        primary = None if region.primary else self._primary_records()
        seen = self.seen.setdefault(region.name, {})
        for key in sorted(records):
            rec = records[key]
            if key in logged_keys or rec.kind == "registry":
                # Journaled control objects (pinned configs) are checked as journal objects,
                # and every registry object by verify's own registry checks (anchored,
                # replaced, missing, unanchored); a second finding here would only repeat
                # (or, after a rollback, blur) theirs.
                continue
            before = seen.get(key)
            theirs = primary.get(key) if primary is not None else None
            if rec.problem is not None:
                if (before is not None and before != rec.sha256) or (
                        theirs is not None and theirs.sha256 != rec.sha256):
                    report.add("critical", "record-changed",
                               f"{rec.kind} record differs from the copy verified before or "
                               f"the primary's ({rec.problem})", key,
                               (before or (theirs.sha256 if theirs else ""))[:16],
                               rec.sha256[:16])
                elif rec.problem.startswith("inconsistent: "):
                    report.add("high", "record-inconsistent",
                               f"{rec.kind} record {rec.problem[len('inconsistent: '):]}",
                               key)
                else:
                    report.add("high", "record-invalid",
                               f"{rec.kind} record does not verify ({rec.problem}): "
                               "injected or damaged", key, "a valid drkit record",
                               f"{len(rec.data)} B")
                continue
            if before is not None and before != rec.sha256:
                report.add("critical", "record-changed",
                           f"{rec.kind} record was replaced since this host verified it",
                           key, before[:16], rec.sha256[:16])
                continue
            if theirs is not None and theirs.sha256 != rec.sha256:
                report.add("critical", "record-changed",
                           f"{rec.kind} record differs from the primary's copy", key,
                           theirs.sha256[:16], rec.sha256[:16])
                continue
            if primary is not None and theirs is None and before is None:
                report.add("high", "record-unknown",
                           f"{rec.kind} record is in this region but not in the primary "
                           "(injected here, or deleted from the primary)", key)
                continue
            seen[key] = rec.sha256
        for key, sha in sorted(seen.items()):
            if key not in records:
                report.add("critical", "record-missing",
                           "record this host verified before is gone", key, sha[:16],
                           "absent")
        if primary is not None:
            self._compare_with_primary(report, records, primary, seen, view)
        self._check_audit_log(report, region)

    def _compare_with_primary(self, report: Any, records: dict[str, _Record],
                              primary: dict[str, _Record], seen: dict[str, str],
                              view: LogView) -> None:
        checkpoint = view.checkpoint
        if checkpoint is None or checkpoint.time is None:
            return
        # Records are copied before the journal, so every primary record written before
        # this region's newest checkpoint was there when that checkpoint was copied.
        cutoff = checkpoint.time - self.skew
        for key, rec in sorted(primary.items()):
            if key in records or key in seen or rec.problem is not None:
                continue
            if rec.time is not None and rec.time <= cutoff:
                report.add("critical", "record-missing",
                           f"{rec.kind} record of the primary is missing here although it "
                           "was replicated", key, rec.sha256[:16], "absent")

    def _check_audit_log(self, report: Any, region: RegionConfig) -> None:
        from drkit.audit import verify_log

        try:
            result = verify_log(self.config, self.clock,
                                region=None if region.primary else region.name,
                                accept_first_contact=self.accept_first_contact)
        except Exception as exc:  # noqa: BLE001 - a crash must be a finding, never "clean"
            report.add("high", "audit-unverifiable", "cannot verify the audit log: "
                       f"{exc if isinstance(exc, DrkitError) else type(exc).__name__}")
            return
        for finding in result.findings:
            if finding.kind == "spooled":
                continue  # about this host's spool, not about the region
            if finding.severity == "error":
                report.add("critical", "audit-log", f"audit log: {finding.message}",
                           "audit/")
            else:
                report.notes.append(f"audit log: {finding.message}")

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".records-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"format": RECORDS_FORMAT, "version": RECORDS_VERSION,
                           "regions": self.seen}, fh, indent=1, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


class _Inconsistent(Exception):
    pass


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise IntegrityError("not JSON") from None
    if not isinstance(doc, dict):
        raise IntegrityError("not a JSON object")
    return doc
