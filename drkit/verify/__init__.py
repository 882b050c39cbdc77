"""Append-only verification of every region, and bucket guardrails; see docs/verify.md."""

from drkit.verify.core import RegionReport, VerifyReport, verify_region, verify_regions
from drkit.verify.findings import SEVERITIES, Finding
from drkit.verify.guardrails import check_bucket
from drkit.verify.state import TrustedState, default_state_dir

__all__ = [
    "SEVERITIES",
    "Finding",
    "RegionReport",
    "TrustedState",
    "VerifyReport",
    "check_bucket",
    "default_state_dir",
    "verify_region",
    "verify_regions",
]
