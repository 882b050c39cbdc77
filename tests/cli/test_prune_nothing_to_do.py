"""A prune with nothing to forget or delete says so instead of asking for approvals."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

CONFIG = """\
[repository]
primary = "beijing"
keys = "keys"

[regions.beijing]
url = "file:regions/beijing"
retention_days = 30

[sources.uploads]
type = "files"
path = "data"
"""
ENV = {"DRKIT_RECOVERY_PASSPHRASE": "a long passphrase for the prune tests"}


def test_prune_with_nothing_to_do_exits_0_and_says_so(drkit, clock, tmp_path: Path) -> None:
    (tmp_path / "drkit.toml").write_text(CONFIG)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a\n")
    assert drkit("keys", "init", env=ENV).exit_code == 0
    assert drkit("snapshot").exit_code == 0
    res = drkit("prune")
    assert res.exit_code == 0, res.stderr
    assert res.stdout.startswith("nothing to prune: no snapshot beyond the newest 1")
    doc = json.loads(drkit("--json", "prune", "--older-than-days", "0").stdout)
    assert doc["nothing_to_do"] is True and doc["plan"]["forget"] == []
    # with something to forget, approval is needed as before (exit 3)
    (tmp_path / "data" / "b.txt").write_text("b\n")
    clock.advance(timedelta(hours=1))
    assert drkit("snapshot").exit_code == 0
    clock.advance(timedelta(hours=1))
    res = drkit("prune", "--older-than-days", "0")
    assert res.exit_code == 3 and "needs 2 approvals" in res.stderr
