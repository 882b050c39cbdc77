"""The shared log archive (drkit.repo.logarchive) on a real repository, without a server:
segments are archived, refused, read back, catalogued from the journal, and gaps found."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drkit.config import load_config
from drkit.errors import IntegrityError
from drkit.journal import Journal
from drkit.repo import keys as keyfiles
from drkit.repo.logarchive import (
    LogCatalog,
    SegmentConflict,
    SegmentInfo,
    archive_segment,
    archive_status,
    find_gaps,
    needed_objects,
    read_segment,
)
from drkit.repo.repository import Repository
from drkit.repo.writer import RepositoryWriter

PASSPHRASE = "correct horse battery staple"
SEG = 1 << 20  # small "segments" keep the test quick; the layer does not care
NOW = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)


@pytest.fixture
def project(tmp_path: Path, drkit: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRKIT_RECOVERY_PASSPHRASE", PASSPHRASE)
    (tmp_path / "drkit.toml").write_text("""
[repository]
primary = "beijing"
keys = "keys"
cache = ".drkit/cache"
pack_size_mib = 4

[regions.beijing]
url = "file:regions/beijing"

[regions.shanghai]
url = "file:regions/shanghai"

[sources.shop]
type = "postgres"
database = "shop"
""")
    assert drkit("keys", "init").exit_code == 0
    return tmp_path


def wal(n: int, tli: int = 1, *, partial: bool = False, end: int | None = None
        ) -> SegmentInfo:
    name = f"{tli:08X}{0:08X}{n:08X}" + (".partial" if partial else "")
    return SegmentInfo(archive="shop", kind="postgres-wal", name=name, lineage=f"{tli:08X}",
                       start=(n * SEG,), end=(end if end is not None else (n + 1) * SEG,),
                       partial=partial)


def push(root: Path, info: SegmentInfo, data: bytes, at: datetime = NOW) -> tuple[Any, bool]:
    config = load_config(root / "drkit.toml")
    with RepositoryWriter.for_config(config, now=at) as writer:
        return archive_segment(writer, info, data, now=at)


def open_repo(root: Path, region: str = "beijing") -> Repository:
    config = load_config(root / "drkit.toml")
    from drkit.storage.url import open_store

    store = open_store(config.region(region).url, base_dir=config.base_dir)
    return Repository.open(store, keyfiles.load_trusted_writer_keys(config), region=region)


def journal_size(root: Path) -> int:
    repo = open_repo(root)
    cp = Journal(repo.store, repo.config.origin).latest(repo.trusted)
    assert cp is not None
    return cp.size


def test_segment_round_trip_and_idempotent_push(project: Path) -> None:
    data = os.urandom(SEG // 2) + bytes(SEG // 2)  # WAL is often zero-padded
    seg, written = push(project, wal(3), data)
    assert written and seg.key.startswith("logs/") and seg.size == SEG
    size = journal_size(project)
    again, written = push(project, wal(3), data)
    assert not written and again.key == seg.key
    assert journal_size(project) == size  # nothing appended for the same bytes

    repo = open_repo(project)
    config = load_config(project / "drkit.toml")
    recovery = keyfiles.unlock_recovery_key(config.keys_dir / "recovery.key", PASSPHRASE)
    _rid, id_key = keyfiles.load_id_key(config)
    assert read_segment(repo, seg.key, recovery, id_key) == data
    # The bytes are stored encrypted: the random half does not appear in any pack.
    packs = list((project / "regions/beijing/packs").rglob("*"))
    assert packs and not any(data[:64] in p.read_bytes() for p in packs if p.is_file())


def test_other_bytes_under_an_archived_name_are_refused(project: Path) -> None:
    push(project, wal(4), b"a" * 1000)
    size = journal_size(project)
    with pytest.raises(SegmentConflict, match="already archived with other content"):
        push(project, wal(4), b"b" * 1000)
    assert journal_size(project) == size


def test_partial_versions_grow_and_the_complete_file_wins(project: Path) -> None:
    first, w1 = push(project, wal(5, partial=True, end=5 * SEG + 100), b"x" * 100)
    second, w2 = push(project, wal(5, partial=True, end=5 * SEG + 300), b"x" * 300)
    stale, w3 = push(project, wal(5, partial=True, end=5 * SEG + 200), b"y" * 200)
    assert w1 and w2 and not w3 and stale.key == second.key
    catalog = LogCatalog.from_entries(open_repo(project).visible.values())
    assert catalog.current("shop", wal(5, partial=True).name) == second
    # A partial reaching only part of the segment is a hole before segment 6.
    push(project, wal(6), b"z" * 10)
    catalog = LogCatalog.from_entries(open_repo(project).visible.values())
    gaps = find_gaps(catalog.of("shop"))
    assert [(g.after, g.before) for g in gaps] == [(wal(5, partial=True).name, wal(6).name)]


def test_catalogue_gaps_rpo_and_prune_needs(project: Path) -> None:
    t0 = NOW
    for n in (1, 2, 4):
        push(project, wal(n), os.urandom(2000), at=t0 + timedelta(minutes=n))
    repo = open_repo(project)
    catalog = LogCatalog.from_entries(repo.visible.values())
    assert catalog.archives() == ["shop"]
    assert [s.info.name for s in catalog.of("shop")] == [wal(n).name for n in (1, 2, 4)]
    status = archive_status(catalog, "shop", t0 + timedelta(minutes=10))
    assert status.segments == 3 and status.newest == wal(4).name
    assert status.rpo_seconds == 6 * 60
    assert len(status.gaps) == 1 and "00000001000000000000000[2]" not in status.gaps[0].describe()
    gap = status.gaps[0]
    assert (gap.after, gap.before, gap.missing_from, gap.missing_to) == (
        wal(2).name, wal(4).name, (3 * SEG,), (4 * SEG,))
    # Filling the hole closes it.
    push(project, wal(3), os.urandom(2000), at=t0 + timedelta(minutes=11))
    catalog = LogCatalog.from_entries(open_repo(project).visible.values())
    assert find_gaps(catalog.of("shop")) == []
    packs, sessions = needed_objects(open_repo(project).visible.values())
    assert len(sessions) == 4 and len(packs) == 4
    assert all(f"sessions/{s}" in open_repo(project).visible for s in sessions)


def test_a_record_is_signed_and_checked(project: Path) -> None:
    seg, _ = push(project, wal(7), b"q" * 5000)
    repo = open_repo(project)
    path = project / "regions/beijing" / seg.key
    original = path.read_bytes()
    path.chmod(0o600)
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    config = load_config(project / "drkit.toml")
    recovery = keyfiles.unlock_recovery_key(config.keys_dir / "recovery.key", PASSPHRASE)
    with pytest.raises(IntegrityError, match="does not match the journal"):
        read_segment(repo, seg.key, recovery)


def test_segment_info_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="unknown log kind"):
        SegmentInfo("a", "oracle-redo", "x", "1")
    with pytest.raises(ValueError, match="bad position range"):
        SegmentInfo("a", "postgres-wal", "x", "1", start=(5,), end=(4,))


def test_verify_and_status_report_a_gap_and_the_rpo(project: Path, drkit: Any) -> None:
    import json

    for n in (1, 2, 4):
        push(project, wal(n), os.urandom(3000), at=NOW - timedelta(minutes=20 - n))
    assert drkit("replicate").exit_code == 0
    res = drkit("--json", "verify")
    assert res.exit_code == 1, res.stderr
    found = json.loads(res.stdout)["findings"]
    gaps = [f for f in found if f["check"] == "log-gap"]
    # Both regions hold the same log, with the same hole; nothing else is wrong.
    assert sorted(f["region"] for f in gaps) == ["beijing", "shanghai"]
    assert all(f["key"] == wal(4).name and wal(2).name in f["message"] for f in gaps)
    assert [f for f in found if f["check"] != "log-gap"] == []

    res = drkit("--json", "status")
    doc = json.loads(res.stdout)
    (row,) = doc["logs"]
    assert row["archive"] == "shop" and row["newest"] == wal(4).name
    assert row["rpo_seconds"] == 16 * 60 and row["ok"] is False and len(row["gaps"]) == 1
    assert any("newest segment archived 960 s ago" in p for p in doc["problems"])
    assert any("log missing between" in p for p in doc["problems"])
    assert res.exit_code == 1
