"""``drkit drill`` as operators run it: one region, real files, the real CLI."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

from drkit.demo_data import busiest_merchant, delete_orders
from drkit.ledger import default_spec


def test_drill_passes_reports_and_cleans_up(make_site) -> None:
    site = make_site()
    scratch = site.root / "scratch"
    doc = site.json("drill", "--region", "shanghai", "--scratch", str(scratch),
                    "--report", "reports/sh.md", *site.pw())
    assert doc["passed"] is True
    assert doc["region"] == "shanghai"
    assert len(doc["snapshot"]) == 64
    assert doc["mismatched"] == [] and doc["mismatched_count"] == 0
    assert doc["reconciled"] == 3000
    assert doc["rto_seconds"] > 0 and doc["rto_ok"] is True
    assert doc["rpo_seconds"] == 0 and doc["rpo_ok"] is True  # frozen clock
    assert doc["checkpoint"]["size"] > 0
    assert [s["name"] for s in doc["steps"]] == ["verify region", "thaw and open", "restore",
                                                  "control totals", "reconcile ledger"]
    assert all(s["ok"] for s in doc["steps"])
    # The region is an archive class: objects had to be thawed before reading.
    assert doc["steps"][1]["data"]["thawed"] > 0
    assert doc["ledger"]["cash_fen"] == doc["ledger"]["restored_cash_fen"] > 0
    for suffix in (".md", ".html", ".json"):
        assert (site.root / "reports" / f"sh{suffix}").is_file()
    saved = json.loads((site.root / "reports/sh.json").read_text())
    assert saved["passed"] is True and saved["snapshot"] == doc["snapshot"]
    assert "PASSED" in (site.root / "reports/sh.md").read_text()
    assert not (scratch / "restore").exists()  # cleaned unless --keep


def test_drill_keep_leaves_a_working_database(make_site) -> None:
    site = make_site()
    scratch = site.root / "scratch"
    site.run("drill", "--region", "nanjing", "--scratch", str(scratch), "--keep", *site.pw())
    restored = scratch / "restore/shop/shop.db"
    assert restored.read_bytes()[:16] == b"SQLite format 3\x00"
    assert (scratch / "restore/uploads/readme.txt").read_text() == "uploaded file\n" * 100


def test_drill_never_reads_the_primary(make_site) -> None:
    site = make_site()
    shutil.rmtree(site.root / "regions/beijing")
    site.db.unlink()
    doc = site.json("drill", "--region", "shanghai", *site.pw())
    assert doc["passed"] is True
    assert not (site.root / "regions/beijing").exists()  # nothing recreated it either


def test_lost_orders_fail_and_name_the_merchant_and_amount(make_site, clock) -> None:
    site = make_site()
    spec = default_spec()
    victim = busiest_merchant(site.db, spec.baseline)
    stored = site.json("ledger", "build", "--no-store", "--source", "shop")
    expected_cash = next(e["cash_fen"] for e in stored["entries"]
                         if e["merchant_id"] == victim)
    assert expected_cash > 0
    # Orders of one merchant are lost, then the next daily snapshot is taken and copied.
    assert delete_orders(site.db, victim, spec.baseline) > 0
    clock.advance(timedelta(hours=1))
    site.run("snapshot")
    site.run("replicate")
    doc = site.json("drill", "--region", "shanghai", *site.pw(), expect=1)
    assert doc["passed"] is False
    assert doc["reconciled"] == 2999
    assert doc["mismatched_count"] == 1
    [m] = doc["mismatched"]
    assert m["merchant_id"] == victim
    assert m["cash_at_stake_fen"] == expected_cash
    assert "baseline_revenue_fen" in m["differences"]
    # The control totals match: the snapshot is a faithful copy of damaged data; only the
    # business check sees the loss.
    steps = {s["name"]: s for s in doc["steps"]}
    assert steps["control totals"]["ok"] is True
    assert steps["reconcile ledger"]["ok"] is False
    assert f"merchant {victim}" in steps["reconcile ledger"]["detail"]


def test_damaged_region_is_refused_then_fails_with_accept_findings(make_site) -> None:
    site = make_site()
    packs = sorted((site.root / "regions/nanjing/packs").rglob("*"),
                   key=lambda p: p.stat().st_size if p.is_file() else -1)
    victim = packs[-1]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 1
    victim.write_bytes(bytes(data))
    res = site.run("drill", "--region", "nanjing", *site.pw(), expect=1)
    assert "refusing to trust this region" in res.stdout
    assert victim.name in res.stdout
    doc = site.json("drill", "--region", "nanjing", "--accept-findings", *site.pw(), expect=1)
    assert doc["passed"] is False
    assert doc["accepted_findings"] and victim.name in doc["accepted_findings"][0]["key"]
    restore = next(s for s in doc["steps"] if s["name"] == "restore")
    assert restore["ok"] is False and victim.name in restore["detail"]


def test_rpo_objective_missed_fails_the_drill(make_site, clock) -> None:
    site = make_site()
    clock.advance(timedelta(hours=30))  # objective 26 h
    doc = site.json("drill", "--region", "shanghai", *site.pw(), expect=1)
    assert doc["rpo_seconds"] == 30 * 3600
    assert doc["rpo_ok"] is False and doc["passed"] is False
    assert all(s["ok"] for s in doc["steps"])


def test_bad_input(make_site) -> None:
    site = make_site()
    res = site.run("drill", "--region", "mars", *site.pw(), expect=2)
    assert "unknown region 'mars'" in res.stderr
    bad = site.root / "bad.txt"
    bad.write_text("wrong passphrase")
    res = site.run("drill", "--region", "shanghai", "--passphrase-file", str(bad), expect=2)
    assert "passphrase" in res.stderr.lower() and "Traceback" not in res.stderr
    full = site.root / "full"
    full.mkdir()
    (full / "x").write_text("x")
    res = site.run("drill", "--region", "shanghai", "--scratch", str(full), *site.pw(),
                   expect=2)
    assert "scratch folder is not empty" in res.stderr
    res = site.run("drill", "--region", "shanghai", "--snapshot", "ffff", *site.pw(),
                   expect=2)
    assert "no snapshot 'ffff'" in res.stdout + res.stderr


def test_archive_region_on_s3_is_thawed_before_reading(make_site, store_url_env) -> None:
    url = store_url_env.s3(region="ap-east-1", versioning=True, object_lock_days=30)
    site = make_site({"shanghai": (url, "GLACIER")})
    doc = site.json("drill", "--region", "shanghai", *site.pw(), expect=None)
    assert doc["passed"] is True, doc["steps"]
    thaw = next(s for s in doc["steps"] if s["name"] == "thaw and open")
    assert thaw["data"]["thawed"] > 0


def test_demo_tells_the_story(drkit, tmp_path: Path) -> None:
    res = drkit("--json", "demo", "--dir", "demo")
    assert res.exit_code == 0, res.stdout[-2000:] + res.stderr[-2000:]
    doc = json.loads(res.stdout)
    assert doc["story_as_expected"] is True
    codes = {" ".join(s["command"][1:3]): s["exit_code"] for s in doc["steps"]}
    assert codes["drill --region"] in (0, 1)
    assert doc["shanghai_drill"]["passed"] is True
    assert doc["shanghai_drill"]["reconciled"] == 3000
    # A second run starts afresh in the same folder.
    res = drkit("--json", "demo", "--dir", "demo")
    assert res.exit_code == 0
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/file").write_text("keep me")
    res = drkit("demo", "--dir", "mine")
    assert res.exit_code == 2 and "not a drkit demo folder" in res.stderr
    assert (tmp_path / "mine/file").read_text() == "keep me"


def test_hand_run_verify_and_drill_count_in_status(make_site) -> None:
    site = make_site()
    before = site.json("status", expect=1)
    assert any("verify: never completed" in p for p in before["problems"])
    site.run("verify", "--accept-first-contact")  # a fresh host: first contact
    site.run("drill", "--region", "shanghai", *site.pw())
    after = site.json("status", expect=None)
    verify = next(v for v in after["verify"] if v["job"] == "verify")
    assert verify["last"] is not None and verify["outcome"] == "ok"
    drill = next(d for d in after["drills"] if d["region"] == "shanghai")
    assert drill["outcome"] == "ok" and drill["rto_seconds"] is not None
    assert not any("shanghai" in p and "drill" in p for p in after["problems"])
    # A verify of one region does not stand for the scheduled verify of every region.
    assert not any(p.startswith("verify:") for p in after["problems"])


def test_restore_over_production_needs_approval(make_site) -> None:
    site = make_site()
    before = site.db.read_bytes()
    uploads = sorted((site.root / "data").rglob("*"))
    res = site.run("restore", "latest", "--to", "data", "--force", *site.pw(), expect=3)
    assert "approver" in res.stderr  # no registry pinned yet: nobody can approve
    assert res.stderr.count("\n") == 1
    assert site.db.read_bytes() == before  # nothing was written
    assert sorted((site.root / "data").rglob("*")) == uploads
    # A scratch folder is not production: no approval needed.
    site.run("restore", "latest", "--to", "elsewhere", *site.pw())
    assert (site.root / "elsewhere/shop/shop.db").read_bytes()[:6] == b"SQLite"
