"""restore from the user's side: a glob that matches nothing is a failure, not a success."""

from __future__ import annotations

from pathlib import Path

CONFIG = """\
[repository]
primary = "beijing"
keys = "keys"
pack_size_mib = 1

[regions.beijing]
url = "file:regions/beijing"

[sources.uploads]
type = "files"
path = "data/uploads"
"""
ENV = {"DRKIT_RECOVERY_PASSPHRASE": "a long passphrase for the restore contract tests"}


def test_restore_path_that_matches_nothing_exits_1_and_says_so(drkit, tmp_path: Path) -> None:
    (tmp_path / "drkit.toml").write_text(CONFIG)
    (tmp_path / "data" / "uploads" / "inv").mkdir(parents=True)
    (tmp_path / "data" / "uploads" / "inv" / "a.txt").write_text("a\n")
    assert drkit("keys", "init", env=ENV).exit_code == 0
    assert drkit("snapshot").exit_code == 0
    res = drkit("restore", "latest", "--to", "out", "--path", "nomatch/*", env=ENV)
    assert res.exit_code == 1
    assert res.stderr.strip().endswith("matches; nothing was restored")
    assert "nomatch/*" in res.stderr and res.stderr.count("\n") == 1
    ok = drkit("restore", "latest", "--to", "out2", "--path", "uploads/inv/*", env=ENV)
    assert ok.exit_code == 0, ok.stderr
    assert (tmp_path / "out2" / "uploads" / "inv" / "a.txt").read_text() == "a\n"
