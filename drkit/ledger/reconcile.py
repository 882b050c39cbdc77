"""Reconciliation: does a recomputed ledger match the stored one, merchant by merchant?

The drill calls ``reconcile(stored, recomputed)`` where ``stored`` is the ledger kept for
a snapshot and ``recomputed`` is ``compute_ledger`` over the restored database with the
stored ledger's own spec (``stored.spec``). Every field of every entry is compared; a
merchant matches only when all of them are equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drkit.errors import InputError
from drkit.ledger.model import Ledger, LedgerEntry, MerchantId, merchant_sort_key

# The entry fields compared, in the order differences are listed.
COMPARED_FIELDS = ("industry", "plan", "compensation", "margin", "baseline_orders",
                   "baseline_revenue_fen", "cash_fen", "impressions", "extension_months",
                   "member_count", "balance_total_fen")


@dataclass(frozen=True)
class MerchantMismatch:
    """One merchant that does not reconcile.

    ``kind`` is ``missing`` (in the expected ledger only: the restore lost the merchant),
    ``extra`` (in the actual ledger only) or ``changed``. ``differences`` maps each field
    that differs to ``(expected, actual)``; for missing and extra merchants it lists every
    field against ``None``. Differences are actual minus expected, so a lost order gives a
    negative revenue difference; ``cash_at_stake_fen`` is the absolute cash difference,
    the amount the merchant would be paid wrongly.
    """

    merchant_id: MerchantId
    kind: str
    differences: dict[str, tuple[Any, Any]]
    revenue_difference_fen: int
    cash_difference_fen: int
    balance_difference_fen: int
    member_count_difference: int

    @property
    def cash_at_stake_fen(self) -> int:
        return abs(self.cash_difference_fen)

    def to_dict(self) -> dict[str, Any]:
        return {
            "merchant_id": self.merchant_id,
            "kind": self.kind,
            "differences": {name: {"expected": _plain(exp), "actual": _plain(act)}
                            for name, (exp, act) in self.differences.items()},
            "revenue_difference_fen": self.revenue_difference_fen,
            "cash_difference_fen": self.cash_difference_fen,
            "cash_at_stake_fen": self.cash_at_stake_fen,
            "balance_difference_fen": self.balance_difference_fen,
            "member_count_difference": self.member_count_difference,
        }


@dataclass(frozen=True)
class Reconciliation:
    spec_sha256: str
    expected_merchants: int
    actual_merchants: int
    reconciled: int
    mismatched: tuple[MerchantMismatch, ...]
    expected_cash_fen: int
    actual_cash_fen: int

    @property
    def passed(self) -> bool:
        return not self.mismatched

    @property
    def missing(self) -> int:
        return sum(1 for m in self.mismatched if m.kind == "missing")

    @property
    def extra(self) -> int:
        return sum(1 for m in self.mismatched if m.kind == "extra")

    @property
    def changed(self) -> int:
        return sum(1 for m in self.mismatched if m.kind == "changed")

    @property
    def cash_at_stake_fen(self) -> int:
        """Sum over mismatched merchants of the cash each would be paid wrongly."""
        return sum(m.cash_at_stake_fen for m in self.mismatched)

    def to_dict(self, limit: int | None = None) -> dict[str, Any]:
        """JSON form; ``limit`` keeps only the first mismatches (``mismatched_count`` stays)."""
        shown = self.mismatched if limit is None else self.mismatched[:limit]
        return {
            "passed": self.passed,
            "spec_sha256": self.spec_sha256,
            "expected_merchants": self.expected_merchants,
            "actual_merchants": self.actual_merchants,
            "reconciled": self.reconciled,
            "mismatched_count": len(self.mismatched),
            "missing": self.missing,
            "extra": self.extra,
            "changed": self.changed,
            "expected_cash_fen": self.expected_cash_fen,
            "actual_cash_fen": self.actual_cash_fen,
            "cash_at_stake_fen": self.cash_at_stake_fen,
            "mismatched": [m.to_dict() for m in shown],
        }


def reconcile(expected: Ledger, actual: Ledger) -> Reconciliation:
    """Compare two ledgers merchant by merchant.

    Raises ``InputError`` when they were computed under different specs: their figures
    would differ for reasons that say nothing about the data.
    """
    if expected.spec_sha256 != actual.spec_sha256:
        raise InputError(
            f"cannot reconcile ledgers computed under different specs "
            f"({expected.spec_sha256[:12]} and {actual.spec_sha256[:12]}); recompute with "
            "the stored ledger's spec")
    ids = {e.merchant_id for e in expected.entries} | {e.merchant_id for e in actual.entries}
    mismatched: list[MerchantMismatch] = []
    reconciled = 0
    for mid in sorted(ids, key=merchant_sort_key):
        exp, act = expected.entry(mid), actual.entry(mid)
        mismatch = _compare(mid, exp, act)
        if mismatch is None:
            reconciled += 1
        else:
            mismatched.append(mismatch)
    return Reconciliation(
        spec_sha256=expected.spec_sha256,
        expected_merchants=len(expected.entries),
        actual_merchants=len(actual.entries),
        reconciled=reconciled,
        mismatched=tuple(mismatched),
        expected_cash_fen=expected.totals.cash_fen,
        actual_cash_fen=actual.totals.cash_fen,
    )


def _compare(mid: MerchantId, exp: LedgerEntry | None,
             act: LedgerEntry | None) -> MerchantMismatch | None:
    differences: dict[str, tuple[Any, Any]] = {}
    for name in COMPARED_FIELDS:
        a = getattr(exp, name) if exp is not None else None
        b = getattr(act, name) if act is not None else None
        if a != b:
            differences[name] = (a, b)
    if not differences:
        return None
    kind = "missing" if act is None else "extra" if exp is None else "changed"

    def diff(name: str) -> int:
        a = getattr(exp, name) if exp is not None else 0
        b = getattr(act, name) if act is not None else 0
        return int(b) - int(a)

    return MerchantMismatch(
        merchant_id=mid,
        kind=kind,
        differences=differences,
        revenue_difference_fen=diff("baseline_revenue_fen"),
        cash_difference_fen=diff("cash_fen"),
        balance_difference_fen=diff("balance_total_fen"),
        member_count_difference=diff("member_count"),
    )


def _plain(value: Any) -> Any:
    """Decimals become strings so the JSON form stays exact."""
    if value is None or isinstance(value, int | str):
        return value
    return str(value)
