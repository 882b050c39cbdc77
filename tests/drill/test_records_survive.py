"""The audit log and approval records are copied with the repository, so losing the
primary loses neither who did what nor the proof that it was not tampered with."""

from __future__ import annotations

import json
import shutil


def test_audit_log_is_replicated_and_verifiable_without_the_primary(make_site) -> None:
    site = make_site()
    # make_site ran keys init, snapshot, ledger build and replicate through the CLI; the
    # replicate run itself is recorded after it copied, so copy once more.
    site.run("replicate")
    assert any((site.root / "regions/shanghai/audit").rglob("*"))
    doc = site.json("audit", "verify", "--region", "shanghai", "--accept-first-contact")
    assert [f["kind"] for f in doc["findings"]] == ["first-contact"]  # a fresh verifier
    shutil.rmtree(site.root / "regions/beijing")
    res = site.run("audit", "report", "--since", "2026-11-01", "--format", "json",
                   "--region", "shanghai")
    report = json.loads(res.stdout)  # type: ignore[attr-defined]
    # keys init, snapshot, ledger build and the first replicate, read from the copy.
    assert report["log"]["ok"] is True
    assert report["events"] == 4
    assert "2026-11-23" not in report["gaps"]["days_without_snapshot"]
    # Tampering with the replica's copy is detected like tampering with the primary's.
    batches = sorted(p for p in (site.root / "regions/shanghai/audit").rglob("*")
                     if p.is_file() and "/batch/" in str(p))
    assert batches
    data = bytearray(batches[0].read_bytes())
    data[len(data) // 2] ^= 1
    batches[0].write_bytes(bytes(data))
    res = site.run("audit", "verify", "--region", "shanghai", expect=1)
    assert "NOT INTACT" in res.stdout  # type: ignore[attr-defined]


def test_replica_record_differing_in_size_is_a_finding(make_site) -> None:
    site = make_site()
    records = sorted(p for p in (site.root / "regions/nanjing/audit").rglob("*")
                     if p.is_file() and "/batch/" in str(p))
    records[0].write_bytes(records[0].read_bytes() + b"forged")
    doc = site.json("replicate", "--region", "nanjing", expect=1)
    text = json.dumps(doc)
    assert "replica-differs" in text and records[0].name in text
    assert records[0].read_bytes().endswith(b"forged")  # reported, never overwritten
