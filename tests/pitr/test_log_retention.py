"""Which archived WAL segments the approved prune may delete (drkit.repo.logretention), on a
real repository without a server: segments are archived through the writer, and the kept
bases are snapshot manifests as the snapshot path writes them (``stats.log_bases``)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drkit.config import load_config
from drkit.errors import IntegrityError
from drkit.repo import keys as keyfiles
from drkit.repo.formats import Manifest, SourceSummary
from drkit.repo.logarchive import ArchivedSegment, LogCatalog, SegmentInfo, archive_segment
from drkit.repo.logretention import check_no_new_gap, describe_bases, plan_log_prune
from drkit.repo.repository import Repository, SnapshotInfo
from drkit.repo.writer import RepositoryWriter
from drkit.sources.base import SourceResult
from drkit.storage.url import open_store

SEG = 1 << 20
T0 = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)


@pytest.fixture
def project(tmp_path: Path, drkit: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRKIT_RECOVERY_PASSPHRASE", "correct horse battery staple")
    (tmp_path / "drkit.toml").write_text("""
[repository]
primary = "beijing"
keys = "keys"
cache = ".drkit/cache"

[regions.beijing]
url = "file:regions/beijing"

[sources.shop]
type = "postgres"
database = "shop"
""")
    assert drkit("keys", "init").exit_code == 0
    return tmp_path


def push(root: Path, n: int, *, tli: int = 1, end: int | None = None, minute: int = 0
         ) -> ArchivedSegment:
    partial = end is not None
    info = SegmentInfo("shop", "postgres-wal", f"{tli:08X}{0:08X}{n:08X}", f"{tli:08X}",
                       start=(n * SEG,), end=(end if partial else (n + 1) * SEG,),
                       partial=partial)
    at = T0 + timedelta(minutes=minute)
    with RepositoryWriter.for_config(load_config(root / "drkit.toml"), now=at) as writer:
        segment, written = archive_segment(writer, info, os.urandom(3000), now=at)
    assert written
    return segment


def catalog(root: Path) -> LogCatalog:
    config = load_config(root / "drkit.toml")
    store = open_store(config.region("beijing").url, base_dir=config.base_dir)
    repo = Repository.open(store, keyfiles.load_trusted_writer_keys(config), region="beijing")
    return LogCatalog.from_entries(repo.visible.values())


def base(wal_start: str, timeline: int = 1, *, minute: int = 100,
         recorded: bool = True) -> SnapshotInfo:
    """A base backup snapshot's manifest, its ``stats`` as the snapshot path writes it."""
    result = SourceResult("shop", "postgres-base", "postgres://x")
    result.entries.append({"path": "shop/base.tar", "wal_start": wal_start,
                           "timeline": timeline})
    stats: dict[str, Any] = {"files": 1}
    if recorded:
        stats["log_bases"] = describe_bases([result])
    manifest = Manifest("r", (T0 + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "h", (SourceSummary("shop", "postgres-base", 1, 1),), stats, "s", (),
                        0, "", (), 0)
    return SnapshotInfo(f"{minute:064x}", f"snapshots/{minute:064x}", manifest)


def names(plan: Any) -> list[tuple[str, str]]:
    return [(p.segment.info.name[-2:] + ("p" if p.segment.info.partial else ""), p.reason)
            for p in plan.segments]


def test_segments_before_every_kept_base_and_superseded_versions(project: Path) -> None:
    for n in range(1, 7):
        push(project, n, minute=n)
    p1 = push(project, 7, end=7 * SEG + 100, minute=7)
    p2 = push(project, 7, end=7 * SEG + 900, minute=8)
    push(project, 7, end=7 * SEG + 1500, minute=200)  # after the newest snapshot
    cat = catalog(project)
    never = lambda _seg: False  # noqa: E731 - nothing under lock

    # A base in segment 4 (and an older-looking forged one further on changes nothing:
    # the oldest position counts).
    bases = [base("0/400100"), base("0/600000", minute=150)]
    plan = plan_log_prune(cat, bases, newest_snapshot=bases[-1].manifest.time, locked=never)
    assert names(plan) == [("01", "before-base"), ("02", "before-base"),
                           ("03", "before-base"), ("07p", "superseded")]
    assert plan.segments[-1].segment.key == p1.key and p2.key not in plan.keys
    assert plan.to_dict()["bases"]["shop"][0]["start"] == [0x400100]

    # A base exactly at a segment boundary needs that segment, not the one before.
    plan = plan_log_prune(cat, [base("0/400000")], newest_snapshot=bases[-1].manifest.time,
                          locked=never)
    assert [n for n, r in names(plan) if r == "before-base"] == ["01", "02", "03"]

    # Under lock: position pruning stops there (no hole), superseded versions still go.
    plan = plan_log_prune(cat, bases, newest_snapshot=bases[-1].manifest.time,
                          locked=lambda seg: seg.info.name.endswith("02"))
    assert names(plan) == [("01", "before-base"), ("07p", "superseded")]

    # A kept snapshot that does not say where it stands holds position pruning back.
    plan = plan_log_prune(cat, [*bases, base("0/0", recorded=False, minute=120)],
                          newest_snapshot=bases[-1].manifest.time, locked=never)
    assert names(plan) == [("07p", "superseded")]
    assert "does not record where" in plan.held_back["shop"]

    # Only what was archived before the newest snapshot is planned.
    plan = plan_log_prune(cat, [base("0/400100", minute=5)],
                          newest_snapshot=base("0/0", minute=5).manifest.time, locked=never)
    assert names(plan) == [("01", "before-base"), ("02", "before-base"),
                           ("03", "before-base")]
    # No base kept, or no snapshot at all: the whole log stays except superseded versions.
    plan = plan_log_prune(cat, [], newest_snapshot=bases[-1].manifest.time, locked=never)
    assert names(plan) == [("07p", "superseded")] and plan.held_back
    assert plan_log_prune(cat, [], newest_snapshot=None, locked=never).segments == []


def test_later_timelines_stay_for_a_base_on_an_earlier_one(project: Path) -> None:
    for n in range(1, 4):
        push(project, n, minute=n)
    push(project, 3, tli=2, minute=4)
    push(project, 4, tli=2, minute=5)
    cat = catalog(project)
    on_one = plan_log_prune(cat, [base("0/500000", timeline=1)],
                            newest_snapshot=base("0/0").manifest.time, locked=lambda _s: False)
    assert [p.segment.info.lineage for p in on_one.segments] == ["00000001"] * 3
    on_two = plan_log_prune(cat, [base("0/500000", timeline=2)],
                            newest_snapshot=base("0/0").manifest.time, locked=lambda _s: False)
    assert sorted(p.segment.info.name for p in on_two.segments) == sorted(
        s.info.name for s in cat.of("shop"))


def test_removing_a_segment_in_the_middle_is_refused(project: Path) -> None:
    segs = [push(project, n, minute=n) for n in range(1, 5)]
    cat = catalog(project)
    check_no_new_gap(cat, {segs[0].key, segs[1].key})  # a prefix: fine
    with pytest.raises(IntegrityError, match="would open a hole in the kept log"):
        check_no_new_gap(cat, {segs[1].key})
