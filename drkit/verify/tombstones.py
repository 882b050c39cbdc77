"""Verify checks owned by the deletion rules: tombstone proofs and the region's identity.

- Every tombstone in a region's journal must carry a valid proof of approval
  (``drkit.approval.proof``), checked against the approval records in *that* region. An
  unproven one is CRITICAL ("tombstone-unproven") and the object it names stays expected,
  so deleting it everywhere is still found ("object-missing").
- The region's ``region-identity`` object must exist (once the region holds a journal)
  and name this region of this repository; otherwise HIGH.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from drkit.config import RegionConfig
from drkit.errors import DrkitError, IntegrityError
from drkit.journal import LogView
from drkit.storage.base import Store

if TYPE_CHECKING:
    from drkit.verify.core import RegionReport


def repository_id_of(view: LogView) -> str:
    return view.origin.removeprefix("drkit:")


def check_tombstones(report: RegionReport, store: Store, view: LogView) -> set[int]:
    """Add a finding per unproven tombstone; return their positions in ``view.entries``."""
    from drkit.approval.proof import unproven_tombstones

    if not any(e.kind == "tombstone" for e in view.entries):
        return set()
    try:
        unproven = unproven_tombstones(store, repository_id_of(view), view.entries)
    except DrkitError as exc:  # an unreadable approval area proves nothing
        unproven = {i: f"cannot check the proof: {exc}" for i, e in enumerate(view.entries)
                    if e.kind == "tombstone"}
    for index, why in sorted(unproven.items()):
        entry = view.entries[index]
        report.add("critical", "tombstone-unproven",
                   f"journal entry {index} deletes this object without proof of approval "
                   f"({why}); the object is still expected", entry.key,
                   "a quorum-approved, executed request naming it", "none")
    return set(unproven)


def check_region_identity(report: RegionReport, store: Store, region: RegionConfig,
                          view: LogView, trusted: Sequence[Ed25519PublicKey]) -> None:
    from drkit.repo.region_identity import check_identity

    try:
        identity = check_identity(store, trusted, region=region.name,
                                  repository_id=repository_id_of(view))
    except IntegrityError as exc:
        report.add("high", "region-identity", str(exc).split(": ", 1)[-1], "region-identity",
                   f"region {region.name}", "another region, repository or a forged object")
        return
    if identity is None and view.checkpoint is not None:
        report.add("high", "region-identity",
                   "the region carries no identity object (written by 'drkit keys init' or "
                   "the first 'drkit replicate'): approvals cannot be bound to it",
                   "region-identity", f"region {region.name}", "absent")
