"""An archive-class region: listed and judged by status without a thaw; `drkit thaw`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CONFIG = """\
[repository]
primary = "beijing"
keys = "keys"
pack_size_mib = 1

[regions.beijing]
url = "file:regions/beijing"

[regions.shanghai]
url = "file:regions/shanghai"
storage_class = "ARCHIVE"

[sources.uploads]
type = "files"
path = "data"

[verify]
state_dir = ".drkit/state"
"""
ENV = {"DRKIT_RECOVERY_PASSPHRASE": "a long passphrase for the cold region tests"}


@pytest.fixture
def cold(drkit, tmp_path: Path) -> Path:
    (tmp_path / "drkit.toml").write_text(CONFIG)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a\n" * 5000)
    assert drkit("keys", "init", env=ENV).exit_code == 0
    assert drkit("snapshot").exit_code == 0
    assert drkit("replicate").exit_code == 0
    return tmp_path


def test_snapshots_and_status_of_an_archive_region_need_no_thaw(drkit, cold: Path) -> None:
    primary = json.loads(drkit("--json", "snapshots").stdout)["snapshots"]
    res = drkit("--json", "snapshots", "--region", "shanghai")
    assert res.exit_code == 0, res.stderr
    assert [s["id"] for s in json.loads(res.stdout)["snapshots"]] == [s["id"] for s in primary]
    status = drkit("--json", "status")
    rows = json.loads(status.stdout)["replication"]
    [row] = [r for r in rows if r["region"] == "shanghai"]
    assert row["ok"] is True and "error" not in row, row
    # nothing was thawed by reading
    assert "thawed" not in "".join(p.read_text() for p in
                                   (cold / "regions" / "shanghai").rglob("*.json")
                                   if ".drkit-meta" in p.parts)


def test_thaw_makes_the_region_readable_for_a_restore(drkit, cold: Path) -> None:
    # without the primary, an archived region cannot be read until it is thawed
    (cold / "drkit.toml").write_text(CONFIG.replace('url = "file:regions/beijing"',
                                                    'url = "file:regions/gone"'))
    res = drkit("restore", "latest", "--to", "out", "--region", "shanghai", env=ENV)
    assert res.exit_code == 2 and "drkit thaw --region" in res.stderr, res.stderr
    res = drkit("--json", "thaw", "--region", "shanghai", "latest", "--timeout", "60")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["metadata"]["requested"] > 0 and doc["metadata"]["waiting"] == 0
    assert doc["packs"]["requested"] >= 1 and doc["packs"]["waiting"] == 0
    res = drkit("restore", "latest", "--to", "out", "--region", "shanghai", env=ENV)
    assert res.exit_code == 0, res.stderr
    assert (cold / "out" / "uploads" / "a.txt").read_text() == "a\n" * 5000
