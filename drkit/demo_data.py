"""A realistic merchant database for the demo and the tests, and the damage a drill catches.

``generate_shop_db`` writes the sample schema that the default ledger spec reads
(``merchants``, ``members``, ``orders``; times as ISO 8601 text with ``+08:00``): about
3,000 merchants, 30,000 members and 150,000 orders per unit of ``scale``, in the spec's
industries and plans, with orders through February 2020 before the baseline window, in it
and (fewer) in the outage, VAT-inclusive amounts with their tax, refunds and cancellations.
Everything comes from ``random.Random(seed)``: the same seed and scale give the same rows.

The damage helpers (``delete_orders``, ``delete_merchant``, ``adjust_balance``) change a
database the way a lost or tampered restore would, so tests and the demo can show that the
ledger reconciliation names the merchant and the amount at stake.
"""

from __future__ import annotations

import logging
import math
import os
import random
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from drkit.errors import InputError
from drkit.ledger.spec import LedgerSpec, Window, default_spec

log = logging.getLogger(__name__)

MERCHANTS_PER_SCALE = 3_000
SHANGHAI = timezone(timedelta(hours=8))

SCHEMA = """
CREATE TABLE merchants (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    industry TEXT NOT NULL,
    plan TEXT NOT NULL
);
CREATE TABLE members (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    phone TEXT NOT NULL,
    points INTEGER NOT NULL,
    balance_fen INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    member_id INTEGER REFERENCES members(id),
    amount_fen INTEGER NOT NULL,
    tax_fen INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('paid', 'refunded', 'cancelled')),
    paid_at TEXT
);
CREATE INDEX members_merchant ON members(merchant_id);
CREATE INDEX orders_merchant ON orders(merchant_id);
"""


@dataclass(frozen=True)
class _Profile:
    """How a kind of shop trades: shop-sign suffix, typical ticket, VAT, order frequency."""

    suffix: str
    ticket_cny: float
    vat_basis_points: int
    frequency: float


# Typical small merchants of a retail-SaaS platform. VAT: 6% services, 9% farm produce,
# 13% goods. Industries of a custom spec that are not listed here use _OTHER.
_PROFILES = {
    "catering": _Profile("餐厅", 58.0, 600, 1.6),
    "retail": _Profile("便利店", 32.0, 1300, 1.6),
    "fresh_food": _Profile("生鲜店", 46.0, 900, 1.3),
    "beauty": _Profile("美容院", 280.0, 600, 0.5),
    "education": _Profile("培训中心", 760.0, 600, 0.2),
    "fitness": _Profile("健身房", 390.0, 600, 0.3),
    "apparel": _Profile("服饰", 240.0, 1300, 0.6),
}
_OTHER = _Profile("商行", 100.0, 600, 0.8)
_CITIES = ("杭州", "上海", "南京", "北京", "成都", "广州", "深圳", "武汉", "苏州", "西安",
           "长沙", "重庆", "宁波", "厦门", "青岛", "天津")
_WORDS = ("阿福", "小满", "金桥", "明月", "老街", "青禾", "一品", "春风", "好邻居", "鲜果",
          "悦色", "知行", "向阳", "云朵", "锦绣", "百味", "乐活", "初心", "拾光", "禾丰")
_PHONE_PREFIXES = ("130", "131", "132", "135", "136", "137", "138", "139", "150", "151",
                   "152", "155", "158", "159", "176", "177", "180", "181", "186", "187",
                   "188", "189")
# Share of the day's orders by local hour: breakfast, lunch and dinner peaks.
_HOUR_WEIGHTS = (1, 0, 0, 0, 0, 1, 3, 6, 7, 5, 5, 9, 12, 9, 5, 4, 5, 7, 11, 12, 9, 6, 4, 2)
_FEBRUARY_DAYS = 29  # 2020 is a leap year
# The platform was down during the outage; the few orders there were taken offline and
# entered afterwards.
_OUTAGE_INTENSITY = 0.12
_STATUS = (("paid", 0.88), ("refunded", 0.07), ("cancelled", 0.05))


@dataclass(frozen=True)
class DemoStats:
    path: Path
    scale: int
    seed: int
    merchants: int
    members: int
    orders: int
    orders_by_status: dict[str, int] = field(default_factory=dict)
    merchants_by_plan: dict[str, int] = field(default_factory=dict)
    merchants_by_industry: dict[str, int] = field(default_factory=dict)
    orders_before_baseline: int = 0
    orders_in_baseline: int = 0
    orders_in_outage: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "scale": self.scale,
            "seed": self.seed,
            "merchants": self.merchants,
            "members": self.members,
            "orders": self.orders,
            "orders_by_status": dict(sorted(self.orders_by_status.items())),
            "merchants_by_plan": dict(sorted(self.merchants_by_plan.items())),
            "merchants_by_industry": dict(sorted(self.merchants_by_industry.items())),
            "orders_before_baseline": self.orders_before_baseline,
            "orders_in_baseline": self.orders_in_baseline,
            "orders_in_outage": self.orders_in_outage,
        }


def _plan_names(spec: LedgerSpec) -> tuple[str, str]:
    cash = sorted(p for p, t in spec.plans.items() if t.compensation == "cash")
    traffic = sorted(p for p, t in spec.plans.items() if t.compensation == "traffic")
    if not cash or not traffic:
        raise InputError(f"{spec.source}: the demo needs a cash plan and a traffic plan")
    return cash[0], traffic[0]


def generate_shop_db(path: Path, *, scale: int = 1, seed: int = 2020,
                     spec: LedgerSpec | None = None, overwrite: bool = False) -> DemoStats:
    """Write the demo merchant database to ``path`` (a new SQLite file) and describe it.

    Industries and plans come from ``spec`` (the default spec when ``None``). The file is
    written under a temporary name and renamed, so ``path`` is either complete or absent.
    Refuses to replace an existing file unless ``overwrite``.
    """
    if scale < 1:
        raise InputError(f"scale must be at least 1, got {scale}")
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path}: already exists; not overwriting a database")
    spec = spec or default_spec()
    industries = spec.industries
    cash_plan, traffic_plan = _plan_names(spec)
    rng = random.Random(seed)

    merchants: list[tuple[int, str, str, str]] = []
    members: list[tuple[int, int, str, int, int, str]] = []
    orders: list[tuple[int, int, int | None, int, int, str, str | None]] = []
    member_ids_by_merchant: dict[int, list[int]] = {}
    activity: dict[int, float] = {}
    for mid in range(1, MERCHANTS_PER_SCALE * scale + 1):
        industry = rng.choice(industries)
        profile = _PROFILES.get(industry, _OTHER)
        plan = traffic_plan if rng.random() < 0.2 else cash_plan
        name = f"{rng.choice(_CITIES)}{rng.choice(_WORDS)}{profile.suffix}"
        if rng.random() < 0.3:
            name += f"（{rng.randint(1, 30)}号店）"
        merchants.append((mid, name, industry, plan))
        # A heavy-tailed activity level: most shops are small, a few are busy.
        activity[mid] = rng.lognormvariate(0.0, 0.8)

    member_id = 0
    first_member = datetime(2018, 1, 1, tzinfo=SHANGHAI)
    member_span = int((datetime(2020, 2, 23, 19, tzinfo=SHANGHAI) - first_member)
                      .total_seconds())
    for mid, _name, _industry, _plan in merchants:
        count = int(activity[mid] * 7 + rng.random() * 6)
        ids: list[int] = []
        for _ in range(count):
            member_id += 1
            ids.append(member_id)
            phone = rng.choice(_PHONE_PREFIXES) + f"{rng.randrange(100_000_000):08d}"
            points = 0 if rng.random() < 0.3 else int(rng.expovariate(1 / 800))
            balance = 0
            if rng.random() < 0.4:
                balance = rng.choice((10_000, 20_000, 30_000, 50_000, 100_000))
                balance -= rng.randrange(0, balance, 100)
            created = first_member + timedelta(seconds=rng.randrange(member_span))
            members.append((member_id, mid, phone, points, balance, created.isoformat()))
        member_ids_by_merchant[mid] = ids

    baseline, outage = spec.baseline, spec.outage
    start = datetime(2020, 2, 1, tzinfo=SHANGHAI)
    status_names = [s for s, _ in _STATUS]
    status_weights = [w for _, w in _STATUS]
    hours = list(range(24))
    before = in_baseline = in_outage = 0
    order_id = 0
    for mid, _name, industry, _plan in merchants:
        profile = _PROFILES.get(industry, _OTHER)
        mu = math.log(profile.ticket_cny * 100)
        count = int(activity[mid] * profile.frequency * 34 + rng.random() * 4)
        own_members = member_ids_by_merchant[mid]
        for _ in range(count):
            while True:
                day = rng.randrange(_FEBRUARY_DAYS)
                hour = rng.choices(hours, _HOUR_WEIGHTS)[0]
                moment = start + timedelta(days=day, hours=hour,
                                           seconds=rng.randrange(3600))
                if moment < outage.start or rng.random() < _OUTAGE_INTENSITY:
                    break
            amount = max(100, int(rng.lognormvariate(mu, 0.6)))
            bp = profile.vat_basis_points
            # VAT-inclusive price: tax = amount x rate / (1 + rate), rounded half-up.
            tax = (2 * amount * bp + 10_000 + bp) // (2 * (10_000 + bp))
            status = rng.choices(status_names, status_weights)[0]
            member = (rng.choice(own_members)
                      if own_members and rng.random() < 0.65 else None)
            order_id += 1
            paid_at = None if status == "cancelled" else moment.isoformat()
            orders.append((order_id, mid, member, amount, tax, status, paid_at))
            if moment < baseline.start:
                before += 1
            elif moment in baseline:
                in_baseline += 1
            elif moment in outage:
                in_outage += 1

    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        conn.executescript(SCHEMA)
        with conn:
            conn.executemany("INSERT INTO merchants VALUES (?, ?, ?, ?)", merchants)
            conn.executemany("INSERT INTO members VALUES (?, ?, ?, ?, ?, ?)", members)
            conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?)", orders)
    except BaseException:
        conn.close()
        tmp.unlink(missing_ok=True)
        raise
    conn.close()
    os.replace(tmp, path)
    stats = DemoStats(
        path=path,
        scale=scale,
        seed=seed,
        merchants=len(merchants),
        members=len(members),
        orders=len(orders),
        orders_by_status=dict(Counter(o[5] for o in orders)),
        merchants_by_plan=dict(Counter(m[3] for m in merchants)),
        merchants_by_industry=dict(Counter(m[2] for m in merchants)),
        orders_before_baseline=before,
        orders_in_baseline=in_baseline,
        orders_in_outage=in_outage,
    )
    log.info("demo database %s: %d merchants, %d members, %d orders", path,
             stats.merchants, stats.members, stats.orders)
    return stats


def _open_existing(path: Path) -> sqlite3.Connection:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such database")
    return sqlite3.connect(path)


def _require_merchant(conn: sqlite3.Connection, path: Path, merchant_id: int) -> None:
    row = conn.execute("SELECT 1 FROM merchants WHERE id = ?", (merchant_id,)).fetchone()
    if row is None:
        raise InputError(f"{path}: no merchant {merchant_id}")


def delete_orders(path: Path, merchant_id: int,
                  window: Window | tuple[datetime, datetime] | None = None) -> int:
    """Delete a merchant's orders paid in ``[start, end)`` (all its orders when ``None``).

    Times are compared as instants. Returns the number of orders deleted.
    """
    conn = _open_existing(path)
    try:
        _require_merchant(conn, Path(path), merchant_id)
        rows = conn.execute("SELECT id, paid_at FROM orders WHERE merchant_id = ?",
                            (merchant_id,)).fetchall()
        if window is None:
            doomed = [oid for oid, _ in rows]
        else:
            lo, hi = (window.start, window.end) if isinstance(window, Window) else window
            if lo.tzinfo is None or hi.tzinfo is None:
                raise InputError("delete_orders: the window needs timezone-aware times")
            doomed = [oid for oid, paid in rows
                      if paid is not None and lo <= datetime.fromisoformat(paid) < hi]
        with conn:
            conn.executemany("DELETE FROM orders WHERE id = ?", [(o,) for o in doomed])
        return len(doomed)
    finally:
        conn.close()


def delete_merchant(path: Path, merchant_id: int) -> int:
    """Delete a merchant with its members and orders; returns the rows deleted."""
    conn = _open_existing(path)
    try:
        _require_merchant(conn, Path(path), merchant_id)
        with conn:
            deleted = 0
            for table, column in (("orders", "merchant_id"), ("members", "merchant_id"),
                                  ("merchants", "id")):
                cur = conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (merchant_id,))
                deleted += cur.rowcount
        return deleted
    finally:
        conn.close()


def adjust_balance(path: Path, merchant_id: int, delta_fen: int) -> int:
    """Add ``delta_fen`` to the balance of the merchant's first member; returns its id."""
    conn = _open_existing(path)
    try:
        _require_merchant(conn, Path(path), merchant_id)
        row = conn.execute("SELECT MIN(id) FROM members WHERE merchant_id = ?",
                           (merchant_id,)).fetchone()
        if row is None or row[0] is None:
            raise InputError(f"{path}: merchant {merchant_id} has no members")
        with conn:
            conn.execute("UPDATE members SET balance_fen = balance_fen + ? WHERE id = ?",
                         (delta_fen, row[0]))
        return int(row[0])
    finally:
        conn.close()


def busiest_merchant(path: Path, window: Window, *, plan: str | None = "cash") -> int:
    """The merchant with the most paid orders in ``window`` (on ``plan``): a good victim."""
    conn = _open_existing(path)
    try:
        sql = ("SELECT o.merchant_id, o.paid_at FROM orders o JOIN merchants m "
               "ON m.id = o.merchant_id WHERE o.status = 'paid'")
        params: tuple[Any, ...] = ()
        if plan is not None:
            sql += " AND m.plan = ?"
            params = (plan,)
        counts: Counter[int] = Counter()
        for mid, paid in conn.execute(sql, params):
            if datetime.fromisoformat(paid).astimezone(UTC) in window:
                counts[mid] += 1
        if not counts:
            raise InputError(f"{path}: no paid orders in the window")
        return min(counts, key=lambda m: (-counts[m], m))
    finally:
        conn.close()
