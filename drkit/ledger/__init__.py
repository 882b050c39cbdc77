"""The compensation ledger: the published formula per merchant, and reconciliation.

Typical use (the drill)::

    from drkit.ledger import Ledger, compute_ledger, reconcile

    stored = Ledger.from_json(document_bytes)           # the ledger kept for a snapshot
    actual = compute_ledger(restored_conn, stored.spec)  # same spec, restored data
    result = reconcile(stored, actual)                   # result.passed, result.mismatched

See docs/ledger.md for the formula, the spec format and the JSON document.
"""

from drkit.ledger.compute import (
    cash_compensation_fen,
    compute_ledger,
    format_fen,
    parse_paid_at,
    round_half_up,
)
from drkit.ledger.model import (
    LEDGER_FORMAT,
    Ledger,
    LedgerEntry,
    LedgerFinding,
    LedgerTotals,
    MerchantId,
    ledger_document_bytes,
)
from drkit.ledger.reconcile import MerchantMismatch, Reconciliation, reconcile
from drkit.ledger.spec import (
    SPEC_FORMAT,
    LedgerSpec,
    PlanTerms,
    Window,
    default_spec,
    load_spec,
    parse_spec,
    parse_spec_text,
)

__all__ = [
    "LEDGER_FORMAT",
    "SPEC_FORMAT",
    "Ledger",
    "LedgerEntry",
    "LedgerFinding",
    "LedgerSpec",
    "LedgerTotals",
    "MerchantId",
    "MerchantMismatch",
    "PlanTerms",
    "Reconciliation",
    "Window",
    "cash_compensation_fen",
    "compute_ledger",
    "default_spec",
    "format_fen",
    "ledger_document_bytes",
    "load_spec",
    "parse_paid_at",
    "parse_spec",
    "parse_spec_text",
    "reconcile",
    "round_half_up",
]
