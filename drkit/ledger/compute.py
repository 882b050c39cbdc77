"""The compensation formula, computed exactly over a DB-API connection.

cash = (baseline revenue / baseline days) x industry margin x outage days, rounded half-up
(half away from zero) to the fen. Every step is a ``Fraction``: margins are decimal strings
turned into exact fractions, window lengths are exact fractions of a day, and nothing is
rounded until the final fen. Times are compared as instants, never as text.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from drkit.errors import InputError
from drkit.ledger.model import Ledger, LedgerEntry, LedgerFinding, MerchantId, merchant_sort_key
from drkit.ledger.spec import LedgerSpec
from drkit.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)
_BATCH = 10_000


def round_half_up(value: Fraction) -> int:
    """Round to the nearest integer; exact halves go away from zero (2.5 -> 3, -2.5 -> -3)."""
    quotient, remainder = divmod(abs(value.numerator), value.denominator)
    if 2 * remainder >= value.denominator:
        quotient += 1
    return quotient if value >= 0 else -quotient


def cash_compensation_fen(baseline_revenue_fen: int, margin: Decimal | Fraction,
                          baseline_days: Fraction, outage_days: Fraction) -> int:
    """The published formula for one merchant, exactly, rounded half-up to the fen."""
    daily_revenue = Fraction(baseline_revenue_fen) / baseline_days
    return round_half_up(daily_revenue * Fraction(margin) * outage_days)


def parse_paid_at(value: Any, where: str) -> datetime:
    """An ISO 8601 text with an offset (or a timezone-aware datetime) -> aware datetime."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise InputError(f"{where}: paid_at {value!r} is not an ISO 8601 time") from None
    else:
        raise InputError(f"{where}: paid_at must be an ISO 8601 time, got {value!r}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InputError(f"{where}: paid_at {value!r} has no UTC offset, so it is not an "
                         "instant; store times with their offset")
    return moment


def _fen(value: Any, name: str, where: str) -> int:
    if type(value) is int:
        return value
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    raise InputError(f"{where}: {name} must be an integer, got {value!r}")


def _merchant_id(value: Any, where: str) -> MerchantId:
    if isinstance(value, int | str) and not isinstance(value, bool):
        return value
    raise InputError(f"{where}: merchant_id must be an integer or text, got {value!r}")


def _rows(conn: Any, spec: LedgerSpec, name: str, columns: int) -> Iterator[Sequence[Any]]:
    """Run one spec query (no parameters, so any paramstyle works) and stream its rows."""
    sql = spec.queries[name]
    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)
    driver_error = getattr(conn, "Error", None)
    if isinstance(driver_error, type) and issubclass(driver_error, BaseException):
        errors = (sqlite3.Error, driver_error)
    where = f"{spec.source}: queries.{name}"
    try:
        cursor = conn.cursor()
        cursor.execute(sql)
        first = True
        while True:
            batch = cursor.fetchmany(_BATCH)
            if not batch:
                break
            if first:
                if len(batch[0]) != columns:
                    raise InputError(f"{where}: returns {len(batch[0])} columns, "
                                     f"expected {columns}")
                first = False
            yield from batch
        cursor.close()
    except errors as exc:
        raise InputError(f"{where}: the query failed: {exc}") from None


def compute_ledger(conn: Any, spec: LedgerSpec, *,
                   progress: Progress = NULL_PROGRESS) -> Ledger:
    """Compute every merchant's compensation from a DB-API connection under ``spec``.

    Reads with the spec's three queries only (read-only; nothing is written). Raises
    ``InputError`` for data that cannot be read correctly (a query failing, a wrong column
    count, a paid_at without offset, a non-integer amount); data that can be read but
    needs a person (unknown industry or plan, orders of unknown merchants, the provision
    exceeded) becomes a ``LedgerFinding``.
    """
    src = spec.source
    merchants: dict[MerchantId, tuple[str, str]] = {}
    for n, (mid, industry, plan) in enumerate(_rows(conn, spec, "merchants", 3), 1):
        where = f"{src}: queries.merchants row {n}"
        mid = _merchant_id(mid, where)
        if mid in merchants:
            raise InputError(f"{where}: merchant {mid!r} appears twice")
        merchants[mid] = ("" if industry is None else str(industry),
                          "" if plan is None else str(plan))

    findings: list[LedgerFinding] = []
    members: dict[MerchantId, tuple[int, int]] = {}
    orphan_members: dict[MerchantId, int] = {}
    for n, (mid, count, balance) in enumerate(_rows(conn, spec, "members", 3), 1):
        where = f"{src}: queries.members row {n}"
        mid = _merchant_id(mid, where)
        count, balance = _fen(count, "member_count", where), _fen(balance, "balance", where)
        if mid not in merchants:
            orphan_members[mid] = orphan_members.get(mid, 0) + count
            continue
        old_count, old_balance = members.get(mid, (0, 0))
        members[mid] = (old_count + count, old_balance + balance)

    counted = frozenset(spec.counted_statuses)
    baseline = spec.baseline
    revenue: dict[MerchantId, int] = {}
    orders: dict[MerchantId, int] = {}
    orphan_orders: dict[MerchantId, int] = {}
    task = progress.task("reading orders", None, "orders")
    try:
        for n, (mid, amount, tax, status, paid_at) in enumerate(
                _rows(conn, spec, "orders", 5), 1):
            if n % _BATCH == 0:
                task.advance(_BATCH)
            if mid not in merchants:
                where = f"{src}: queries.orders row {n}"
                mid = _merchant_id(mid, where)
                orphan_orders[mid] = orphan_orders.get(mid, 0) + 1
                continue
            if status not in counted:
                continue
            where = f"{src}: queries.orders row {n}"
            if parse_paid_at(paid_at, where) not in baseline:
                continue
            net = _fen(amount, "amount_fen", where) - _fen(tax, "tax_fen", where)
            revenue[mid] = revenue.get(mid, 0) + net
            orders[mid] = orders.get(mid, 0) + 1
    finally:
        task.close()

    baseline_days = spec.baseline.days
    outage_days = spec.outage.days
    entries: list[LedgerEntry] = []
    for mid in sorted(merchants, key=merchant_sort_key):
        industry, plan = merchants[mid]
        margin = spec.margins.get(industry)
        terms = spec.plans.get(plan)
        base = revenue.get(mid, 0)
        member_count, balance_total = members.get(mid, (0, 0))
        cash = impressions = extension = 0
        if margin is None:
            findings.append(LedgerFinding(
                "unknown-industry",
                f"merchant {mid!r}: industry {industry!r} has no margin in the spec; "
                "no cash computed", mid))
        if terms is None:
            findings.append(LedgerFinding(
                "unknown-plan", f"merchant {mid!r}: plan {plan!r} is not in the spec; "
                                "no compensation computed", mid))
        elif terms.compensation == "traffic":
            impressions, extension = terms.impressions, terms.extension_months
        elif margin is not None:
            cash = cash_compensation_fen(base, margin, baseline_days, outage_days)
            if cash < 0:
                findings.append(LedgerFinding(
                    "negative-revenue", f"merchant {mid!r}: baseline revenue after tax is "
                                        f"{base} fen; cash set to 0", mid))
                cash = 0
        entries.append(LedgerEntry(
            merchant_id=mid,
            industry=industry,
            plan=plan,
            compensation=terms.compensation if terms else None,
            margin=margin,
            baseline_orders=orders.get(mid, 0),
            baseline_revenue_fen=base,
            cash_fen=cash,
            impressions=impressions,
            extension_months=extension,
            member_count=member_count,
            balance_total_fen=balance_total,
        ))

    for mid in sorted(orphan_orders, key=merchant_sort_key):
        findings.append(LedgerFinding(
            "orphan-orders", f"{orphan_orders[mid]} orders name merchant {mid!r}, which "
                             "the merchants query does not return", mid))
    for mid in sorted(orphan_members, key=merchant_sort_key):
        findings.append(LedgerFinding(
            "orphan-members", f"{orphan_members[mid]} members name merchant {mid!r}, which "
                              "the merchants query does not return", mid))
    ledger = Ledger(spec=spec, entries=tuple(entries), findings=tuple(findings))
    total = ledger.totals.cash_fen
    if total > spec.cap_fen:
        findings.append(LedgerFinding(
            "provision-exceeded",
            f"total cash compensation {format_fen(total)} {spec.currency} exceeds the "
            f"provision of {format_fen(spec.cap_fen)} {spec.currency} by "
            f"{format_fen(total - spec.cap_fen)}"))
        ledger = Ledger(spec=spec, entries=ledger.entries, findings=tuple(findings))
    log.info("ledger: %d merchants, %d findings, cash %s", len(entries), len(findings),
             format_fen(total))
    return ledger


def format_fen(fen: int) -> str:
    """12345678 -> '123,456.78' (exact; for people, never parsed back)."""
    sign = "-" if fen < 0 else ""
    units, cents = divmod(abs(fen), 100)
    return f"{sign}{units:,}.{cents:02d}"
