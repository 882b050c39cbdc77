"""User-side: snapshot, list, restore bit for bit, incremental runs, bad input."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from drkit.sources.sqlite import control_totals


def _tree(root: Path) -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p), st.st_mtime_ns)
            elif p.is_dir():
                out[rel] = ("dir", st.st_mode, st.st_mtime_ns)
            else:
                out[rel] = ("file", st.st_mode, st.st_mtime_ns, p.read_bytes())
    return out


def _one_error_line(stderr: str) -> bool:
    """One 'drkit: error:' line and no traceback (other modules may log beside it)."""
    return sum(line.startswith("drkit: error:") for line in stderr.splitlines()) == 1 \
        and "Traceback" not in stderr


def test_snapshot_list_restore_bit_for_bit(project, drkit, tmp_path: Path) -> None:
    res = drkit("snapshot", "--json")
    assert res.exit_code == 0, res.stderr
    first = json.loads(res.stdout)
    assert set(first) >= {"snapshot_id", "bytes_read", "bytes_new", "bytes_stored",
                          "duration_s"}
    assert first["files"] == 6  # 5 regular files in uploads (2 excluded) + the database
    assert first["bytes_new"] > 0 and first["bytes_stored"] > 0

    listing = drkit("snapshots", "--json")
    assert listing.exit_code == 0
    snaps = json.loads(listing.stdout)["snapshots"]
    assert [s["id"] for s in snaps] == [first["snapshot_id"]]
    assert {s["name"] for s in snaps[0]["sources"]} == {"shop", "uploads"}
    text = drkit("snapshots").stdout
    assert first["snapshot_id"][:12] in text and "shop, uploads" in text

    # The source keeps being written to; the restore must give the snapshot's state.
    original = _tree(project.uploads)
    totals = control_totals(project.db)
    (project.uploads / "hello.txt").write_text("changed after the snapshot")

    out = tmp_path / "restored"
    res = drkit("restore", first["snapshot_id"][:10], "--to", str(out), "--json")
    assert res.exit_code == 0, res.stderr
    restored = _tree(out / "uploads")
    assert restored == {k: v for k, v in original.items()
                        if k not in ("skip.tmp", ".cache", ".cache/x")}
    assert (out / "uploads").stat().st_mtime_ns == project.uploads.stat().st_mtime_ns
    assert control_totals(out / "shop" / "shop.db") == totals
    con = sqlite3.connect(out / "shop" / "shop.db")
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert con.execute("SELECT count(*) FROM orders").fetchone() == (5000,)
    con.close()

    # A non-empty target is refused unless --force.
    res = drkit("restore", "latest", "--to", str(out))
    assert res.exit_code == 2
    assert "not empty" in res.stderr and "--force" in res.stderr
    res = drkit("restore", "latest", "--to", str(out), "--force", "--path", "uploads/docs/*")
    assert res.exit_code == 0, res.stderr


def test_incremental_runs_read_only_what_changed(project, drkit) -> None:
    first = json.loads(drkit("snapshot", "--json").stdout)
    again = json.loads(drkit("snapshot", "--json").stdout)
    assert again["bytes_read"] == 0  # files cache and unchanged database: nothing read
    assert again["bytes_new"] == 0
    assert again["bytes_stored"] < 20_000  # session key + manifest only

    # Change one file and the database; only those are read, and little is new.
    big = project.uploads / "docs" / "deep" / "text.log"
    with big.open("ab") as fh:
        fh.write(b"one more line\n")
    con = sqlite3.connect(project.db)
    con.execute("UPDATE orders SET amount = amount + 1 WHERE id % 100 = 0")
    con.commit()
    con.close()
    third = json.loads(drkit("snapshot", "--source", "uploads", "--source", "shop",
                             "--json").stdout)
    assert 0 < third["bytes_read"] < first["bytes_read"]
    assert third["bytes_new"] < third["bytes_read"]
    assert len(json.loads(drkit("snapshots", "--json").stdout)["snapshots"]) == 3


def test_bad_input_one_line_exit_2_repository_untouched(project, drkit, tmp_path: Path,
                                                       monkeypatch) -> None:
    assert drkit("snapshot").exit_code == 0
    before = project.snapshot_objects()

    monkeypatch.setenv("DRKIT_RECOVERY_PASSPHRASE", "not the passphrase")
    res = drkit("restore", "latest", "--to", str(tmp_path / "o1"))
    assert res.exit_code == 2
    assert _one_error_line(res.stderr) and "wrong passphrase" in res.stderr
    assert "Traceback" not in res.stderr

    # Missing source path, a "database" that is not SQLite.
    project.db.rename(project.db.with_suffix(".bak"))
    res = drkit("snapshot", "--source", "shop")
    assert res.exit_code == 2 and "does not exist" in res.stderr
    project.db.write_text("this is not a database, just text that is long enough")
    res = drkit("snapshot", "--source", "shop")
    assert res.exit_code == 2 and "not a SQLite database" in res.stderr

    # A corrupted writer key.
    key = project.root / "keys" / "writer.key"
    key.write_bytes(key.read_bytes()[:20])
    res = drkit("snapshot", "--source", "uploads")
    assert res.exit_code == 2 and "writer.key" in res.stderr and "corrupted" in res.stderr
    assert project.snapshot_objects() == before


def test_restore_from_another_region(project, drkit, tmp_path: Path) -> None:
    import shutil

    snap = json.loads(drkit("snapshot", "--json").stdout)
    # A replica is a byte copy of the objects (replication is another module's job).
    shutil.copytree(project.region, project.root / "regions" / "shanghai")
    res = drkit("restore", snap["snapshot_id"], "--to", str(tmp_path / "r"),
                "--region", "shanghai", "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["files"] == 6
    assert (tmp_path / "r" / "uploads" / "docs" / "deep" / "random.bin").read_bytes() == \
        (project.uploads / "docs" / "deep" / "random.bin").read_bytes()


def test_unchanged_wal_database_is_not_copied_again(project, drkit) -> None:
    con = sqlite3.connect(project.db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("UPDATE orders SET amount = amount WHERE id = 1")
    con.commit()
    con.close()  # the last connection removes the -wal file; our own read recreates it
    assert json.loads(drkit("snapshot", "--source", "shop", "--json").stdout)["bytes_read"] > 0
    again = json.loads(drkit("snapshot", "--source", "shop", "--json").stdout)
    assert again["bytes_read"] == 0
    con = sqlite3.connect(project.db)
    con.execute("UPDATE orders SET amount = -1 WHERE id = 2")
    con.commit()  # the change sits in the WAL, the main file is untouched
    third = json.loads(drkit("snapshot", "--source", "shop", "--json").stdout)
    con.close()
    assert third["bytes_read"] > 0
    assert third["bytes_new"] > 0


def test_force_never_writes_through_a_symlink_in_the_target(project, drkit,
                                                            tmp_path: Path) -> None:
    assert drkit("snapshot").exit_code == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    os.symlink(outside, target / "uploads")  # a trap: uploads/ leads elsewhere
    res = drkit("restore", "latest", "--to", str(target), "--force")
    assert res.exit_code == 2 and "outside" in res.stderr
    assert list(outside.iterdir()) == []


def test_snapshots_in_one_second_keep_the_order_they_were_taken(project, drkit,
                                                                 tmp_path: Path) -> None:
    # Manifest times have whole seconds (and this clock is frozen): "latest" and the list
    # order must follow the journal, not the snapshot ids, or `restore latest` can bring
    # back the older of two snapshots taken in one second.
    ids = []
    for n in range(4):
        (project.uploads / f"round-{n}.txt").write_text(f"round {n}\n")
        ids.append(json.loads(drkit("snapshot", "--source", "uploads", "--json").stdout)
                   ["snapshot_id"])
    listed = [s["id"] for s in json.loads(drkit("snapshots", "--json").stdout)["snapshots"]]
    assert listed == ids
    out = tmp_path / "latest"
    res = drkit("restore", "latest", "--to", str(out))
    assert res.exit_code == 0, res.stderr
    assert (out / "uploads" / "round-3.txt").read_text() == "round 3\n"
