"""Reading state that is not set up yet is an input error (exit 2), never a refusal (3)."""

from __future__ import annotations

from pathlib import Path

CONFIG = """\
[repository]
primary = "beijing"
keys = "keys"

[regions.beijing]
url = "file:regions/beijing"

[sources.uploads]
type = "files"
path = "data"
"""
ENV = {"DRKIT_RECOVERY_PASSPHRASE": "a long passphrase for the set-up state tests"}


def test_no_registry_yet_and_a_future_audit_period(drkit, tmp_path: Path) -> None:
    (tmp_path / "drkit.toml").write_text(CONFIG)
    (tmp_path / "data").mkdir()
    assert drkit("keys", "init", env=ENV).exit_code == 0
    for argv in (("requests",), ("approvers", "show")):
        res = drkit(*argv)
        assert res.exit_code == 2, (argv, res.stderr)
        assert "no approver registry is pinned" in res.stderr
        assert "drkit approvers bootstrap" in res.stderr
    # a dangerous operation is still refused for want of approval
    res = drkit("request", "prune", "--older-than-days", "30", "--reason", "x")
    assert res.exit_code == 3
    res = drkit("audit", "report", "--since", "2099-01-01")
    assert res.exit_code == 2 and "is in the future" in res.stderr
    assert res.stderr.count("drkit: error:") == 1
