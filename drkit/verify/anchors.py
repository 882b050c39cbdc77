"""Trust anchors a verifier holds off the host: checkpoint fingerprints.

A verifier whose trusted state is gone (``rm -rf`` of its state folder, a new host) has
nothing to compare a region's log with: a rolled-back or forked log looks clean. An anchor
is what the verifier saw, or was told, that the log once was, kept somewhere the people
whose actions it checks cannot edit: a notification, a drill report, an audit report, a
file in another team's repository. Its printed form is one word::

    <origin>@<size>:<root hash, 64 hex digits>
    drkit:3f1c…e2@42:5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328

``verify --expect FINGERPRINT`` and ``audit verify --expect FINGERPRINT`` (repeatable), or
an anchor file (``--anchor FILE`` or ``verify.anchor_file``: one fingerprint a line, ``#``
comments), turn a log shorter than an anchor (rolled back) or disagreeing with it at its
size (forked) into a CRITICAL finding. An anchor for another origin is ignored by a
command that checks a different log (the repository journal's origin is ``drkit:<id>``,
the audit log's ``drkit-audit:<id>``), so one file can hold both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from drkit.errors import InputError, UsageError

if TYPE_CHECKING:
    from drkit.config import Config
    from drkit.journal import Checkpoint, LogView

_FINGERPRINT_RE = re.compile(r"^(\S+)@(0|[1-9][0-9]{0,19}):([0-9a-f]{64})$")


@dataclass(frozen=True)
class Anchor:
    origin: str
    size: int
    root: bytes

    def __str__(self) -> str:
        return f"{self.origin}@{self.size}:{self.root.hex()}"


def fingerprint(checkpoint: Checkpoint) -> str:
    """The printed form of a verified checkpoint, for notifications and reports."""
    return str(Anchor(checkpoint.origin, checkpoint.size, checkpoint.root))


def parse_anchor(text: str, where: str = "--expect") -> Anchor:
    m = _FINGERPRINT_RE.match(text.strip())
    if not m:
        raise UsageError(f"{where}: {text.strip()[:80]!r} is not a checkpoint fingerprint "
                         "(ORIGIN@SIZE:ROOT, as printed in reports and notifications)")
    return Anchor(m.group(1), int(m.group(2)), bytes.fromhex(m.group(3)))


def load_anchor_file(path: Path) -> list[Anchor]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the anchor file: {exc.strerror or exc}"
                         ) from None
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(parse_anchor(line, f"{path}:{number}"))
    return out


def collect_anchors(expect: Iterable[str], anchor_file: Path | None) -> list[Anchor]:
    """Every anchor given on the command line or in the anchor file."""
    anchors = [parse_anchor(text) for text in expect]
    if anchor_file is not None:
        anchors += load_anchor_file(anchor_file)
    return anchors


def for_origin(anchors: Sequence[Anchor], origin: str) -> list[Anchor]:
    return [a for a in anchors if a.origin == origin]


def check_anchor(view: LogView, anchor: Anchor) -> tuple[str, str] | None:
    """(check, message) when the log is below the anchor or disagrees with it; None when
    the log extends it."""
    if view.size < anchor.size:
        return ("journal-below-anchor",
                f"the log has {view.size} entries but the trust anchor {anchor.size}: it was "
                "rolled back or truncated (or its newest checkpoints were deleted)")
    if view.root_at(anchor.size) != anchor.root:
        return ("journal-fork",
                f"the log's root at size {anchor.size} differs from the trust anchor's: "
                "two different histories (a fork)")
    return None


def current_anchors(config: Config, clock: object) -> list[str]:
    """Fingerprints of the newest verified checkpoints of the primary's repository journal
    and audit log, for notifications; [] when they cannot be read (never raises: a
    notification must go out whatever happens)."""
    out: list[str] = []
    try:
        from drkit.audit import AuditLog
        from drkit.journal import read_log
        from drkit.repo.keys import load_trusted_writer_keys

        audit = AuditLog.open(config, clock)  # type: ignore[arg-type]
        trusted = load_trusted_writer_keys(config)
        view = read_log(audit.store, "drkit:" + audit.repository_id, trusted)
        if view.checkpoint is not None:
            out.append(fingerprint(view.checkpoint))
        audit_view = audit.read()
        if audit_view.checkpoint is not None:
            out.append(fingerprint(audit_view.checkpoint))
        audit.store.close()
    except Exception:  # noqa: BLE001 - see the docstring
        return out
    return out
