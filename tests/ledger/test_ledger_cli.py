"""``drkit ledger build|show|reconcile`` as a user runs them, on real SQLite files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from drkit.demo_data import busiest_merchant, delete_orders, generate_shop_db
from drkit.ledger import Ledger, default_spec
from drkit.ledger.spec import default_spec_text

CONFIG = """\
[repository]
primary = "beijing"
[regions.beijing]
url = "file:regions/beijing"
[sources.shop]
type = "sqlite"
path = "data/shop.db"
production = true
[sources.uploads]
type = "files"
path = "data/uploads"
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "drkit.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "data").mkdir()
    return tmp_path


def test_build_json_on_the_demo_database(drkit, site: Path) -> None:
    db = site / "data/shop.db"
    stats = generate_shop_db(db)
    before = hashlib.sha256(db.read_bytes()).hexdigest()

    res = drkit("--json", "ledger", "build", "--no-store", "--source", "shop",
                "--out", "ledger.json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["findings"] == []
    assert doc["totals"]["merchants"] == stats.merchants == len(doc["entries"]) == 3_000
    assert doc["totals"]["cash_fen"] == sum(e["cash_fen"] for e in doc["entries"]) > 0
    assert doc["totals"]["cash_fen"] < 150_000_000 * 100
    required = {"merchant_id", "industry", "plan", "margin", "baseline_revenue_fen",
                "cash_fen", "impressions", "extension_months"}
    for entry in doc["entries"]:
        assert required <= set(entry)
        assert isinstance(entry["margin"], str)
        if entry["plan"] == "traffic":
            assert (entry["cash_fen"], entry["impressions"], entry["extension_months"]) == (
                0, 50_000, 2)
        else:
            assert entry["impressions"] == 0
    plans = {e["plan"] for e in doc["entries"]}
    assert plans == {"cash", "traffic"}
    # The live database was opened read-only and is unchanged.
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    # --out holds the canonical document; it loads back to what was printed.
    stored = Ledger.from_json((site / "ledger.json").read_bytes())
    assert stored.to_dict() == {k: v for k, v in doc.items() if k not in ("source", "out")}

    # A restore that lost one merchant's orders in the window does not reconcile.
    victim = busiest_merchant(db, default_spec().baseline)
    lost = delete_orders(db, victim, default_spec().baseline)
    assert lost > 0
    res = drkit("ledger", "build", "--no-store", "--source", "shop", "--out", "after.json")
    assert res.exit_code == 0, res.stderr
    res = drkit("--json", "ledger", "reconcile", "ledger.json", "after.json")
    assert res.exit_code == 1
    result = json.loads(res.stdout)
    assert result["passed"] is False
    assert result["reconciled"] == 2_999
    [m] = result["mismatched"]
    entry = stored.entry(victim)
    assert entry is not None and entry.baseline_orders <= lost
    assert m["merchant_id"] == victim and m["cash_at_stake_fen"] == entry.cash_fen > 0
    res = drkit("ledger", "reconcile", "ledger.json", "after.json")
    assert res.exit_code == 1
    assert (f"merchant {victim}: changed: baseline_orders {entry.baseline_orders} -> 0"
            in res.stdout)


def test_build_text_show_and_spec_from_config(drkit, site: Path, write_db) -> None:
    write_db(site / "data/shop.db", [(1, "catering", "cash"), (2, "retail", "traffic")],
             [(1, 20_000, 0, "paid", "2020-02-18T09:00:00+08:00")])
    res = drkit("ledger", "build", "--no-store", "--source", "shop", "--out", "l.json")
    assert res.exit_code == 0, res.stderr
    assert "merchants      2 (1 cash, 1 traffic)" in res.stdout
    assert "8 days 14 hours = 103/12 days" in res.stdout
    assert "cash           51.50 CNY (provision 150,000,000.00 CNY)" in res.stdout
    assert "findings       none" in res.stdout
    assert "wrote l.json" in res.stdout

    res = drkit("ledger", "show", "l.json", "--merchant", "1")
    assert res.exit_code == 0
    assert "cash_fen              5150" in res.stdout
    assert "daily_revenue_fen     20000 / 6" in res.stdout
    res = drkit("--json", "ledger", "show", "l.json")
    assert json.loads(res.stdout)["totals"]["cash_fen"] == 5_150
    res = drkit("ledger", "show", "l.json", "--merchant", "77")
    assert (res.exit_code, res.stderr) == (2, "drkit: error: l.json: no merchant '77' in "
                                              "the ledger\n")

    # [ledger] spec in drkit.toml replaces the default; its findings make exit 1.
    (site / "tight.toml").write_text(
        default_spec_text().replace("cap_fen = 15_000_000_000", "cap_fen = 5_000"))
    with (site / "drkit.toml").open("a") as f:
        f.write('[ledger]\nspec = "tight.toml"\n')
    res = drkit("--json", "ledger", "build", "--no-store", "--source", "shop")
    assert res.exit_code == 1
    assert [f["code"] for f in json.loads(res.stdout)["findings"]] == ["provision-exceeded"]


def test_build_errors_are_one_line_with_exit_2(drkit, site: Path) -> None:
    res = drkit("ledger", "build", "--no-store", "--source", "nope")
    assert res.exit_code == 2
    assert res.stderr == "drkit: error: unknown source 'nope' (configured: shop, uploads)\n"
    res = drkit("ledger", "build", "--no-store", "--source", "uploads")
    assert res.exit_code == 2 and "is a files source" in res.stderr
    res = drkit("ledger", "build", "--no-store", "--source", "shop")
    assert res.exit_code == 2 and "data/shop.db does not exist" in res.stderr
    (site / "data/shop.db").write_bytes(b"this is not a database" * 100)
    res = drkit("ledger", "build", "--no-store", "--source", "shop")
    assert res.exit_code == 2
    assert "queries.merchants: the query failed: file is not a database" in res.stderr
    (site / "bad.toml").write_text("[incident]\n")
    res = drkit("ledger", "build", "--no-store", "--source", "shop", "--spec", "bad.toml")
    assert res.exit_code == 2
    assert res.stderr.startswith("drkit: error: bad.toml: format: must be")
    assert res.stderr.count("\n") == 1
    res = drkit("ledger", "show", "missing.json")
    assert (res.exit_code, res.stderr) == (2, "drkit: error: missing.json: no such ledger "
                                              "file\n")
