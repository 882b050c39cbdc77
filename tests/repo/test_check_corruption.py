"""``drkit check``: a flipped bit, a truncated, missing or swapped pack, reported by name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest


@pytest.fixture
def snapped(project, drkit):
    res = drkit("snapshot", "--json")
    assert res.exit_code == 0, res.stderr
    packs = [p for p in project.packs() if p.is_file()]
    assert len(packs) >= 3  # pack_size_mib = 1 in the test config
    return project, packs


def _check(drkit, *args: str) -> tuple[int, dict]:
    res = drkit("check", *args, "--json")
    return res.exit_code, json.loads(res.stdout)


def _key(project, pack: Path) -> str:
    return str(pack.relative_to(project.region))


def test_clean_repository_passes(snapped, drkit) -> None:
    code, report = _check(drkit, "--read-data")
    assert code == 0, report
    assert report["ok"] and report["chunks_read"] > 0 and report["packs_read"] >= 3
    res = drkit("check")
    assert res.exit_code == 0 and " ok: " in res.stdout


def test_flipped_bit(snapped, drkit, monkeypatch) -> None:
    project, packs = snapped
    victim = packs[1]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    with monkeypatch.context() as m:
        m.delenv("DRKIT_RECOVERY_PASSPHRASE")  # structure only, no tree reading
        code, report = _check(drkit)
        assert code == 0, report  # same size: the structure is intact
    code, report = _check(drkit, "--read-data")
    assert code == 1
    named = [p for p in report["problems"] if _key(project, victim) in p]
    assert any("does not match its name" in p for p in named)
    assert any("fails authentication" in p for p in named)
    res = drkit("check", "--read-data")
    assert res.exit_code == 1 and "problem" in res.stderr


def test_truncated_pack(snapped, drkit) -> None:
    project, packs = snapped
    victim = packs[0]
    victim.write_bytes(victim.read_bytes()[:-100])
    code, report = _check(drkit)
    assert code == 1
    assert any(_key(project, victim) in p and "size" in p for p in report["problems"])
    code, report = _check(drkit, "--read-data")
    assert any(_key(project, victim) in p and "truncated" in p for p in report["problems"])


def test_missing_pack(snapped, drkit) -> None:
    project, packs = snapped
    packs[2].unlink()
    code, report = _check(drkit)
    assert code == 1
    assert f"{_key(project, packs[2])}: missing" in report["problems"]


def test_swapped_pack(snapped, drkit) -> None:
    project, packs = snapped
    a, b = packs[0], packs[1]
    tmp = a.with_name("swap")
    shutil.move(a, tmp)
    shutil.move(b, a)
    shutil.move(tmp, b)
    code, report = _check(drkit, "--read-data")
    assert code == 1
    for victim in (a, b):
        assert any(_key(project, victim) in p and "does not match its name" in p
                   for p in report["problems"]), report["problems"]


def test_read_data_subset(snapped, drkit) -> None:
    code, report = _check(drkit, "--read-data", "34%")
    assert code == 0
    assert 1 <= report["packs_read"] < report["packs"]
    assert drkit("check", "--read-data", "abc").exit_code == 2
    assert drkit("check", "--read-data-subset", "34%").exit_code == 0  # the old spelling
