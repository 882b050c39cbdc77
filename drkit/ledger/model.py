"""The compensation ledger as data: entries, findings, and its canonical JSON document.

The document format is ``drkit-ledger/1`` (docs/ledger.md). ``ledger_document_bytes`` gives
the exact bytes to sign and store; ``Ledger.from_json`` reads them back, checks the format
version, recomputes the spec hash and the totals, and refuses a document whose stored
values disagree with its own entries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from drkit.canonical import canonical_json
from drkit.clock import utc_iso
from drkit.errors import ConfigError, FormatVersionError, InputError, IntegrityError
from drkit.ledger.spec import LedgerSpec
from drkit.numbers import MAX_INTEGER, number_problem

LEDGER_FORMAT = "drkit-ledger/1"
MerchantId = int | str


def merchant_sort_key(merchant_id: MerchantId) -> tuple[int, int, str]:
    """Integers first in numeric order, then text ids: a total order over mixed ids."""
    if isinstance(merchant_id, int):
        return (0, merchant_id, "")
    return (1, 0, merchant_id)


def fraction_text(value: Fraction) -> str:
    """Exact text of a fraction: "6", "103/12"."""
    return str(value)


@dataclass(frozen=True)
class LedgerEntry:
    """One merchant's compensation and the figures it was computed from.

    ``baseline_revenue_fen`` is the sum of ``amount_fen - tax_fen`` over the merchant's
    counted orders in the baseline window (a total, not the daily average; the daily
    average is ``baseline_revenue_fen / baseline days``). ``margin`` is ``None`` when the
    merchant's industry has no rate in the spec; ``compensation`` is ``None`` when its plan
    is not in the spec. Both cases pay nothing and are findings.
    """

    merchant_id: MerchantId
    industry: str
    plan: str
    compensation: str | None
    margin: Decimal | None
    baseline_orders: int
    baseline_revenue_fen: int
    cash_fen: int
    impressions: int
    extension_months: int
    member_count: int
    balance_total_fen: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "merchant_id": self.merchant_id,
            "industry": self.industry,
            "plan": self.plan,
            "compensation": self.compensation,
            "margin": None if self.margin is None else str(self.margin),
            "baseline_orders": self.baseline_orders,
            "baseline_revenue_fen": self.baseline_revenue_fen,
            "cash_fen": self.cash_fen,
            "impressions": self.impressions,
            "extension_months": self.extension_months,
            "member_count": self.member_count,
            "balance_total_fen": self.balance_total_fen,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> LedgerEntry:
        if not isinstance(data, dict):
            raise InputError(f"{where}: must be an object")
        ints = ("baseline_orders", "baseline_revenue_fen", "cash_fen", "impressions",
                "extension_months", "member_count", "balance_total_fen")
        for name in (*ints, "merchant_id", "industry", "plan", "compensation", "margin"):
            if name not in data:
                raise InputError(f"{where}: missing {name!r}")
        for name in ints:
            # Bounded like every number drkit reads: a 5,000-digit amount would crash
            # every later str() of it (the report, ``ledger show``) instead of being refused.
            if not _is_int(data[name]):
                raise InputError(f"{where}.{name}: must be an integer, got {data[name]!r}")
            problem = number_problem(data[name], minimum=-MAX_INTEGER, maximum=MAX_INTEGER,
                                     integer=True)
            if problem:
                raise InputError(f"{where}.{name}: {problem}")
        mid = data["merchant_id"]
        if not (_is_int(mid) or isinstance(mid, str)) or (
                _is_int(mid) and abs(mid) > MAX_INTEGER):
            raise InputError(f"{where}.merchant_id: must be an integer or a string")
        margin: Decimal | None = None
        if data["margin"] is not None:
            try:
                margin = Decimal(data["margin"]) if isinstance(data["margin"], str) else None
            except InvalidOperation:
                margin = None
            if margin is None:
                raise InputError(f"{where}.margin: must be a decimal string or null")
        for name in ("industry", "plan"):
            if not isinstance(data[name], str):
                raise InputError(f"{where}.{name}: must be a string")
        if data["compensation"] not in (None, "cash", "traffic"):
            raise InputError(f"{where}.compensation: must be cash, traffic or null")
        return cls(
            merchant_id=mid,
            industry=data["industry"],
            plan=data["plan"],
            compensation=data["compensation"],
            margin=margin,
            **{name: data[name] for name in ints},
        )


@dataclass(frozen=True)
class LedgerFinding:
    """Something about the ledger a person must look at (exit 1 from ``ledger build``)."""

    code: str  # unknown-industry, unknown-plan, provision-exceeded, orphan-orders, ...
    message: str
    merchant_id: MerchantId | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.merchant_id is not None:
            data["merchant_id"] = self.merchant_id
        return data


@dataclass(frozen=True)
class LedgerTotals:
    merchants: int
    cash_fen: int
    cash_merchants: int
    traffic_merchants: int
    impressions: int
    baseline_orders: int
    baseline_revenue_fen: int
    member_count: int
    balance_total_fen: int

    def to_dict(self) -> dict[str, int]:
        return {
            "merchants": self.merchants,
            "cash_fen": self.cash_fen,
            "cash_merchants": self.cash_merchants,
            "traffic_merchants": self.traffic_merchants,
            "impressions": self.impressions,
            "baseline_orders": self.baseline_orders,
            "baseline_revenue_fen": self.baseline_revenue_fen,
            "member_count": self.member_count,
            "balance_total_fen": self.balance_total_fen,
        }


@dataclass(frozen=True)
class Ledger:
    """Every merchant's compensation under one spec, sorted by merchant id."""

    spec: LedgerSpec
    entries: tuple[LedgerEntry, ...]
    findings: tuple[LedgerFinding, ...] = ()
    _by_id: dict[MerchantId, LedgerEntry] = field(default_factory=dict, init=False,
                                                  repr=False, compare=False)

    def __post_init__(self) -> None:
        for entry in self.entries:
            if entry.merchant_id in self._by_id:
                raise InputError(f"ledger lists merchant {entry.merchant_id!r} twice")
            self._by_id[entry.merchant_id] = entry

    def entry(self, merchant_id: MerchantId) -> LedgerEntry | None:
        return self._by_id.get(merchant_id)

    @property
    def spec_sha256(self) -> str:
        return self.spec.sha256

    @property
    def totals(self) -> LedgerTotals:
        entries = self.entries
        return LedgerTotals(
            merchants=len(entries),
            cash_fen=sum(e.cash_fen for e in entries),
            cash_merchants=sum(1 for e in entries if e.compensation == "cash"),
            traffic_merchants=sum(1 for e in entries if e.compensation == "traffic"),
            impressions=sum(e.impressions for e in entries),
            baseline_orders=sum(e.baseline_orders for e in entries),
            baseline_revenue_fen=sum(e.baseline_revenue_fen for e in entries),
            member_count=sum(e.member_count for e in entries),
            balance_total_fen=sum(e.balance_total_fen for e in entries),
        )

    def to_dict(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "format": LEDGER_FORMAT,
            "incident": spec.incident,
            "spec": spec.to_dict(),
            "spec_sha256": spec.sha256,
            "baseline": {"start": utc_iso(spec.baseline.start), "end": utc_iso(spec.baseline.end),
                         "days": fraction_text(spec.baseline.days)},
            "outage": {"start": utc_iso(spec.outage.start), "end": utc_iso(spec.outage.end),
                       "days": fraction_text(spec.outage.days)},
            "provision": {"currency": spec.currency, "cap_fen": spec.cap_fen},
            "entries": [e.to_dict() for e in self.entries],
            "totals": self.totals.to_dict(),
            "findings": [f.to_dict() for f in self.findings],
        }

    def to_json(self) -> bytes:
        """Canonical JSON (drkit.canonical): the same ledger always gives the same bytes."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "ledger") -> Ledger:
        if not isinstance(data, dict):
            raise InputError(f"{source}: not a drkit ledger (expected a JSON object)")
        fmt = data.get("format")
        if not isinstance(fmt, str) or not fmt.startswith("drkit-ledger/"):
            raise InputError(f"{source}: not a drkit ledger (format {fmt!r})")
        if fmt != LEDGER_FORMAT:
            raise FormatVersionError(f"{source}: ledger format {fmt!r} is newer than this "
                                     f"drkit understands ({LEDGER_FORMAT})")
        for name, kind in (("spec", dict), ("entries", list), ("findings", list),
                           ("totals", dict), ("spec_sha256", str)):
            if not isinstance(data.get(name), kind):
                raise InputError(f"{source}: {name!r} missing or not a JSON {kind.__name__}")
        try:
            spec = LedgerSpec.from_dict(data["spec"], source=f"{source}: spec")
        except ConfigError as exc:
            raise InputError(str(exc)) from None
        if spec.sha256 != data["spec_sha256"]:
            raise IntegrityError(f"{source}: spec_sha256 does not match the embedded spec")
        entries = tuple(LedgerEntry.from_dict(e, f"{source}: entries[{i}]")
                        for i, e in enumerate(data["entries"]))
        findings: list[LedgerFinding] = []
        for i, f in enumerate(data["findings"]):
            if not (isinstance(f, dict) and isinstance(f.get("code"), str)
                    and isinstance(f.get("message"), str)):
                raise InputError(f"{source}: findings[{i}]: needs code and message strings")
            findings.append(LedgerFinding(f["code"], f["message"], f.get("merchant_id")))
        ledger = cls(spec=spec, entries=entries, findings=tuple(findings))
        if ledger.totals.to_dict() != data["totals"]:
            raise IntegrityError(f"{source}: totals do not match the entries")
        return ledger

    @classmethod
    def from_json(cls, raw: bytes | str, *, source: str = "ledger") -> Ledger:
        try:
            data = json.loads(raw, parse_float=_refuse_float)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"{source}: not valid ledger JSON: {exc}") from None
        return cls.from_dict(data, source=source)


def ledger_document_bytes(ledger: Ledger) -> bytes:
    """The bytes of the ledger document to sign and store in the repository.

    This is the one place the stored form is produced; the repository's document API signs
    exactly these bytes, and ``Ledger.from_json`` reads them back.
    """
    return ledger.to_json()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _refuse_float(text: str) -> Any:
    # Money and rates are integers or decimal strings in a ledger; a JSON float means the
    # document was produced by something else and would lose exactness.
    raise ValueError(f"floating-point number {text} where only integers are allowed")
