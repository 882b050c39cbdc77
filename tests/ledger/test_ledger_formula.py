"""The compensation formula on hand-computed cases, over real SQLite databases."""

from __future__ import annotations

from contextlib import closing
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drkit.errors import InputError
from drkit.ledger import (
    compute_ledger,
    default_spec,
    parse_spec,
    round_half_up,
)

# With the default windows: cash = R / 6 x margin x 103/12 = R x margin x 103/72.
# For catering (0.18 = 9/50): cash = R x 927/3600 = R x 103/400.


def ledger_of(make_db, ro_connect, merchants, orders=(), members=(), spec=None):
    path = make_db(merchants, orders, members)
    with closing(ro_connect(path)) as conn:
        return compute_ledger(conn, spec or default_spec())


def test_outage_duration_counts_the_leap_day(spec_data) -> None:
    spec = default_spec()
    # 2020-02-23 19:00 -> 2020-03-03 09:00 is 8 days 14 hours because 2020-02-29 exists.
    assert spec.outage.days == Fraction(8) + Fraction(14, 24) == Fraction(103, 12)
    assert spec.baseline.days == 6
    # The same calendar dates a year later, with no 29 February, are one day shorter.
    spec_data["outage"]["start"] = "2021-02-23T19:00:00"
    spec_data["outage"]["end"] = "2021-03-03T09:00:00"
    assert parse_spec(spec_data).outage.days == Fraction(91, 12)


def test_window_edges_are_instants_and_half_open(make_db, ro_connect) -> None:
    orders = [
        # exactly at the start, in Shanghai time: counts
        (1, 10_000, 600, "paid", "2020-02-17T19:00:00+08:00"),
        # exactly at the end: does not count
        (1, 50_000, 0, "paid", "2020-02-23T19:00:00+08:00"),
        # the end again, written in UTC: still the same instant, does not count
        (1, 50_000, 0, "paid", "2020-02-23T11:00:00Z"),
        # one second before the start, written in UTC: does not count
        (1, 70_000, 0, "paid", "2020-02-17T10:59:59+00:00"),
        # one second before the end, in UTC: counts
        (1, 2_000, 0, "paid", "2020-02-23T10:59:59Z"),
        # in the window, at an offset of -06:00 (2020-02-20T11:00Z): counts
        (1, 4_000, 400, "paid", "2020-02-20T05:00:00-06:00"),
        # as text after the end, but the instant (18:30+08:00) is inside: counts
        (1, 5_000, 0, "paid", "2020-02-23T19:30:00+09:00"),
        # as text after the start, but the instant (18:30+08:00) is before it: does not
        (1, 80_000, 0, "paid", "2020-02-17T19:30:00+09:00"),
    ]
    ledger = ledger_of(make_db, ro_connect, [(1, "catering", "cash")], orders)
    entry = ledger.entry(1)
    assert entry is not None
    # 9,400 + 2,000 + 3,600 + 5,000 = 20,000 fen; 20,000 x 103/400 = 5,150 exactly.
    assert entry.baseline_orders == 4
    assert entry.baseline_revenue_fen == 20_000
    assert entry.cash_fen == 5_150
    assert entry.margin == Decimal("0.18")
    assert ledger.findings == ()


def test_refunds_and_cancellations_do_not_count_and_tax_is_subtracted(make_db,
                                                                     ro_connect) -> None:
    orders = [
        (1, 10_600, 600, "paid", "2020-02-19T12:00:00+08:00"),
        (1, 99_900, 900, "refunded", "2020-02-19T12:30:00+08:00"),
        (1, 88_800, 800, "cancelled", None),
        (1, 77_700, 700, "cancelled", "2020-02-19T13:00:00+08:00"),
        # paid but outside the window: before it and during the outage
        (1, 66_600, 600, "paid", "2020-02-10T12:00:00+08:00"),
        (1, 55_500, 500, "paid", "2020-02-25T12:00:00+08:00"),
    ]
    ledger = ledger_of(make_db, ro_connect, [(1, "retail", "cash")], orders)
    entry = ledger.entry(1)
    assert entry is not None
    assert (entry.baseline_orders, entry.baseline_revenue_fen) == (1, 10_000)
    # retail 0.12: 10,000 / 6 x 0.12 x 103/12 = 10,000 x 12.36 / 72 = 1,716.666... -> 1,717
    assert entry.cash_fen == 1_717


def test_rounding_is_half_up_at_exactly_half_a_fen(make_db, ro_connect) -> None:
    # 600 x 103/400 = 154.5 exactly: half-up gives 155 (banker's rounding would give 154).
    # 200 x 103/400 = 51.5 -> 52; 100 x 103/400 = 25.75 -> 26; 60 x 103/400 = 15.45 -> 15.
    orders = [(mid, revenue, 0, "paid", "2020-02-18T09:00:00+08:00")
              for mid, revenue in ((1, 600), (2, 200), (3, 100), (4, 60))]
    merchants = [(mid, "catering", "cash") for mid in (1, 2, 3, 4)]
    ledger = ledger_of(make_db, ro_connect, merchants, orders)
    assert [e.cash_fen for e in ledger.entries] == [155, 52, 26, 15]
    with localcontext() as ctx:
        ctx.rounding = ROUND_HALF_EVEN
        assert Decimal("154.5").quantize(Decimal(1)) == 154  # what we must not do


@settings(database=None)  # no .hypothesis folder in the working tree
@given(st.integers(-10**12, 10**12), st.integers(1, 10**6))
def test_round_half_up_matches_decimal(numerator: int, denominator: int) -> None:
    with localcontext() as ctx:
        ctx.prec = 60
        expected = (Decimal(numerator) / Decimal(denominator)).quantize(
            Decimal(1), rounding=ROUND_HALF_UP)
    assert round_half_up(Fraction(numerator, denominator)) == int(expected)


def test_traffic_plan_gets_impressions_and_extension_not_cash(make_db, ro_connect) -> None:
    orders = [(1, 1_000_000, 0, "paid", "2020-02-18T09:00:00+08:00"),
              (2, 1_000_000, 0, "paid", "2020-02-18T09:00:00+08:00")]
    ledger = ledger_of(make_db, ro_connect,
                       [(1, "beauty", "traffic"), (2, "beauty", "cash")], orders)
    traffic, cash = ledger.entry(1), ledger.entry(2)
    assert traffic is not None and cash is not None
    assert (traffic.compensation, traffic.cash_fen, traffic.impressions,
            traffic.extension_months) == ("traffic", 0, 50_000, 2)
    assert traffic.baseline_revenue_fen == 1_000_000
    # beauty 0.35: 1,000,000 x 0.35 x 103/72 = 500,694.44... -> 500,694
    assert (cash.compensation, cash.cash_fen, cash.impressions) == ("cash", 500_694, 0)
    totals = ledger.totals
    assert (totals.cash_fen, totals.cash_merchants, totals.traffic_merchants,
            totals.impressions) == (500_694, 1, 1, 50_000)


def test_provision_cap_exceeded_is_a_finding(make_db, ro_connect, spec_data) -> None:
    orders = [(1, 20_000, 0, "paid", "2020-02-18T09:00:00+08:00")]  # cash 5,150
    spec_data["provision"]["cap_fen"] = 5_150
    at_cap = ledger_of(make_db, ro_connect, [(1, "catering", "cash")], orders,
                       spec=parse_spec(spec_data))
    assert at_cap.findings == ()
    spec_data["provision"]["cap_fen"] = 5_149
    over = ledger_of(make_db, ro_connect, [(1, "catering", "cash")], orders,
                     spec=parse_spec(spec_data))
    assert [f.code for f in over.findings] == ["provision-exceeded"]
    assert "51.50 CNY exceeds the provision of 51.49 CNY by 0.01" in over.findings[0].message


def test_unknown_industry_and_plan_are_findings_and_pay_nothing(make_db, ro_connect) -> None:
    orders = [(1, 20_000, 0, "paid", "2020-02-18T09:00:00+08:00"),
              (2, 20_000, 0, "paid", "2020-02-18T09:00:00+08:00")]
    ledger = ledger_of(make_db, ro_connect,
                       [(1, "aerospace", "cash"), (2, "catering", "platinum")], orders)
    one, two = ledger.entry(1), ledger.entry(2)
    assert one is not None and two is not None
    assert (one.margin, one.cash_fen, one.baseline_revenue_fen) == (None, 0, 20_000)
    assert (two.compensation, two.cash_fen, two.impressions) == (None, 0, 0)
    assert [(f.code, f.merchant_id) for f in ledger.findings] == [
        ("unknown-industry", 1), ("unknown-plan", 2)]
    assert "'aerospace'" in ledger.findings[0].message


def test_members_balances_and_orphans(make_db, ro_connect) -> None:
    ledger = ledger_of(make_db, ro_connect, [(1, "retail", "cash"), (2, "retail", "cash")],
                       orders=[(9, 100, 0, "paid", "2020-02-18T09:00:00+08:00")],
                       members=[(1, 500), (1, 250), (9, 10)])
    one, two = ledger.entry(1), ledger.entry(2)
    assert one is not None and two is not None
    assert (one.member_count, one.balance_total_fen) == (2, 750)
    assert (two.member_count, two.balance_total_fen, two.cash_fen) == (0, 0, 0)
    assert [(f.code, f.merchant_id) for f in ledger.findings] == [
        ("orphan-orders", 9), ("orphan-members", 9)]


@pytest.mark.parametrize("paid_at, message", [
    ("2020-02-18 09:00:00", "has no UTC offset"),
    ("yesterday", "is not an ISO 8601 time"),
    (None, "must be an ISO 8601 time"),
])
def test_unreadable_paid_at_is_an_input_error(make_db, ro_connect, paid_at, message) -> None:
    with pytest.raises(InputError, match=message) as info:
        ledger_of(make_db, ro_connect, [(1, "retail", "cash")],
                  [(1, 100, 0, "paid", paid_at)])
    assert "queries.orders row 1" in str(info.value)


def test_a_failing_query_names_the_spec_key(make_db, ro_connect, spec_data) -> None:
    spec_data["queries"]["members"] = "SELECT merchant_id, COUNT(*) FROM members_v2"
    with pytest.raises(InputError, match=r"\(spec\): queries.members: the query failed: "
                                         r"no such table: members_v2"):
        ledger_of(make_db, ro_connect, [(1, "retail", "cash")], spec=parse_spec(spec_data))
    spec_data["queries"]["members"] = (
        "SELECT merchant_id, COUNT(*) FROM members GROUP BY merchant_id")
    with pytest.raises(InputError, match="queries.members: returns 2 columns, expected 3"):
        ledger_of(make_db, ro_connect, [(1, "retail", "cash")], members=[(1, 5)],
                  spec=parse_spec(spec_data))


def test_text_merchant_ids_and_a_different_schema_need_only_a_new_spec(
        tmp_path, ro_connect, spec_data) -> None:
    import sqlite3

    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE shop (code TEXT, trade TEXT, tier TEXT);
        CREATE TABLE sale (shop_code TEXT, gross INTEGER, vat INTEGER, state TEXT,
                           at TEXT);
        INSERT INTO shop VALUES ('S-2', 'catering', 'basic'), ('S-10', 'catering', 'basic');
        INSERT INTO sale VALUES ('S-2', 20600, 600, 'settled', '2020-02-18T01:00:00Z'),
                                ('S-10', 999, 0, 'void', '2020-02-18T01:00:00Z');
    """)
    conn.close()
    spec_data["plans"] = {"basic": {"compensation": "cash"}}
    spec_data["revenue"]["counted_statuses"] = ["settled"]
    spec_data["queries"] = {
        "merchants": "SELECT code, trade, tier FROM shop",
        "members": "SELECT code, 0, 0 FROM shop",
        "orders": "SELECT shop_code, gross, vat, state, at FROM sale",
    }
    with closing(ro_connect(path)) as ro:
        ledger = compute_ledger(ro, parse_spec(spec_data))
    assert [e.merchant_id for e in ledger.entries] == ["S-10", "S-2"]
    s2 = ledger.entry("S-2")
    assert s2 is not None and (s2.baseline_revenue_fen, s2.cash_fen) == (20_000, 5_150)
