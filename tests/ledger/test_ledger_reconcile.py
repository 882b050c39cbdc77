"""Reconciliation of a stored ledger with one recomputed from damaged data, and the
ledger document's round trip and integrity checks."""

from __future__ import annotations

import json
from contextlib import closing

import pytest

from drkit.demo_data import adjust_balance, delete_merchant, delete_orders
from drkit.errors import FormatVersionError, InputError, IntegrityError
from drkit.ledger import (
    LEDGER_FORMAT,
    Ledger,
    compute_ledger,
    default_spec,
    ledger_document_bytes,
    parse_spec,
    reconcile,
)

MERCHANTS = [(1, "catering", "cash"), (2, "retail", "cash"), (3, "beauty", "traffic"),
             (4, "catering", "cash")]
ORDERS = [
    (1, 20_000, 0, "paid", "2020-02-18T09:00:00+08:00"),     # cash 5,150
    (1, 10_000, 0, "paid", "2020-02-12T09:00:00+08:00"),     # before the baseline
    (2, 10_600, 600, "paid", "2020-02-19T12:00:00+08:00"),   # cash 1,717
    (2, 3_000, 0, "paid", "2020-02-20T12:00:00+08:00"),      # +3,000 x 0.12 x 103/72
    (3, 50_000, 0, "paid", "2020-02-21T12:00:00+08:00"),
    (4, 600, 0, "paid", "2020-02-22T12:00:00+08:00"),        # cash 154.5 -> 155
]
MEMBERS = [(1, 1_000), (1, 0), (2, 5_000), (3, 0), (4, 700)]


@pytest.fixture
def shop(make_db):
    return make_db(MERCHANTS, ORDERS, MEMBERS, name="shop.db")


def build(path, ro_connect, spec=None) -> Ledger:
    with closing(ro_connect(path)) as conn:
        return compute_ledger(conn, spec or default_spec())


def test_identical_data_reconciles(shop, ro_connect) -> None:
    stored = build(shop, ro_connect)
    result = reconcile(stored, build(shop, ro_connect))
    assert result.passed
    assert (result.reconciled, result.mismatched, result.cash_at_stake_fen) == (4, (), 0)
    assert result.to_dict()["mismatched_count"] == 0


def test_lost_orders_in_the_window_name_the_merchant_and_the_amount(shop,
                                                                    ro_connect) -> None:
    stored = build(shop, ro_connect)
    two = stored.entry(2)
    assert two is not None
    # 13,000 fen x 0.12 x 103/72 = 2,231.666... -> 2,232
    assert (two.baseline_revenue_fen, two.cash_fen) == (13_000, 2_232)
    spec = default_spec()
    # Lose merchant 2's orders in the baseline window only.
    assert delete_orders(shop, 2, spec.baseline) == 2
    result = reconcile(stored, build(shop, ro_connect))
    assert not result.passed
    assert (result.reconciled, result.changed, result.missing) == (3, 1, 0)
    [m] = result.mismatched
    assert (m.merchant_id, m.kind) == (2, "changed")
    assert m.differences == {"baseline_orders": (2, 0), "baseline_revenue_fen": (13_000, 0),
                             "cash_fen": (2_232, 0)}
    assert (m.revenue_difference_fen, m.cash_difference_fen, m.cash_at_stake_fen) == (
        -13_000, -2_232, 2_232)
    assert result.cash_at_stake_fen == 2_232
    doc = result.to_dict()
    assert doc["mismatched"][0]["differences"]["cash_fen"] == {"expected": 2_232, "actual": 0}


def test_orders_lost_outside_the_window_do_not_change_compensation(shop,
                                                                   ro_connect) -> None:
    stored = build(shop, ro_connect)
    assert delete_orders(shop, 1, default_spec().outage) == 0
    spec = default_spec()
    before = (spec.baseline.start.replace(month=1), spec.baseline.start)
    assert delete_orders(shop, 1, before) == 1
    assert reconcile(stored, build(shop, ro_connect)).passed


def test_missing_extra_and_changed_balances(shop, ro_connect, make_db) -> None:
    stored = build(shop, ro_connect)
    assert delete_merchant(shop, 1) == 1 + 2 + 2  # merchant, members, orders
    adjust_balance(shop, 4, -700)
    result = reconcile(stored, build(shop, ro_connect))
    kinds = {m.merchant_id: m for m in result.mismatched}
    assert sorted(kinds) == [1, 4]
    assert kinds[1].kind == "missing"
    assert kinds[1].cash_at_stake_fen == 5_150 and kinds[1].member_count_difference == -2
    assert kinds[1].differences["cash_fen"] == (5_150, None)
    assert kinds[4].kind == "changed"
    assert kinds[4].differences == {"balance_total_fen": (700, 0)}
    assert (kinds[4].balance_difference_fen, kinds[4].cash_at_stake_fen) == (-700, 0)
    assert (result.reconciled, result.missing, result.changed, result.extra) == (2, 1, 1, 0)
    assert result.to_dict(limit=1)["mismatched_count"] == 2
    assert len(result.to_dict(limit=1)["mismatched"]) == 1

    grown = make_db([*MERCHANTS, (5, "retail", "traffic")], ORDERS, MEMBERS)
    extra = reconcile(stored, build(grown, ro_connect))
    [m] = extra.mismatched
    assert (m.merchant_id, m.kind, m.cash_at_stake_fen) == (5, "extra", 0)
    assert m.differences["impressions"] == (None, 50_000)


def test_ledgers_under_different_specs_are_not_compared(shop, ro_connect,
                                                        spec_data) -> None:
    spec_data["margins"]["catering"] = "0.19"
    with pytest.raises(InputError, match="different specs"):
        reconcile(build(shop, ro_connect), build(shop, ro_connect, parse_spec(spec_data)))


def test_document_round_trip_is_canonical_and_recomputable(shop, ro_connect) -> None:
    ledger = build(shop, ro_connect)
    raw = ledger_document_bytes(ledger)
    assert raw == ledger.to_json()
    doc = json.loads(raw)
    assert doc["format"] == LEDGER_FORMAT == "drkit-ledger/1"
    assert raw == json.dumps(doc, sort_keys=True, separators=(",", ":"),
                             ensure_ascii=False).encode()
    assert doc["outage"] == {"start": "2020-02-23T11:00:00Z", "end": "2020-03-03T01:00:00Z",
                             "days": "103/12"}
    assert doc["entries"][0]["margin"] == "0.18"
    assert doc["totals"]["cash_fen"] == 5_150 + 2_232 + 155
    again = Ledger.from_json(raw, source="l.json")
    assert again == ledger and ledger_document_bytes(again) == raw
    # The embedded spec is enough to recompute: this is what the drill does.
    assert reconcile(again, build(shop, ro_connect, again.spec)).passed


def test_document_checks(shop, ro_connect) -> None:
    doc = build(shop, ro_connect).to_dict()

    def load(d: dict) -> Ledger:
        return Ledger.from_json(json.dumps(d), source="l.json")

    with pytest.raises(IntegrityError, match="l.json: totals do not match the entries"):
        load({**doc, "entries": doc["entries"][1:]})
    tampered = json.loads(json.dumps(doc))
    tampered["spec"]["margins"]["catering"] = "0.99"
    with pytest.raises(IntegrityError, match="spec_sha256 does not match"):
        load(tampered)
    with pytest.raises(FormatVersionError, match="drkit-ledger/2"):
        load({**doc, "format": "drkit-ledger/2"})
    with pytest.raises(InputError, match="not a drkit ledger"):
        load({"format": "restic-snapshot"})
    with pytest.raises(InputError, match="floating-point number 51.5"):
        Ledger.from_json(json.dumps(doc).replace('"cash_fen": 5150', '"cash_fen": 51.5'))
    with pytest.raises(InputError, match=r"entries\[0\].cash_fen: must be an integer"):
        bad = json.loads(json.dumps(doc))
        bad["entries"][0]["cash_fen"] = "5150"
        load(bad)
    with pytest.raises(InputError, match="not valid ledger JSON"):
        Ledger.from_json(b"{", source="l.json")
