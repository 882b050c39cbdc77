"""Global options (-q, -v, --config) work before or after the subcommand; -q is quiet."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from drkit.cli.main import hoist_global_options

CONFIG = """\
[repository]
primary = "beijing"
keys = "keys"
pack_size_mib = 1

[regions.beijing]
url = "file:regions/beijing"

[regions.shanghai]
url = "file:regions/shanghai"

[sources.uploads]
type = "files"
path = "data/uploads"

[verify]
state_dir = ".drkit/state"
"""
ENV = {"DRKIT_RECOVERY_PASSPHRASE": "a long passphrase for the global options tests"}


@pytest.fixture
def project(drkit, tmp_path: Path) -> Path:
    (tmp_path / "drkit.toml").write_text(CONFIG)
    (tmp_path / "data" / "uploads").mkdir(parents=True)
    (tmp_path / "data" / "uploads" / "a.txt").write_text("invoice\n" * 100)
    assert drkit("keys", "init", env=ENV).exit_code == 0
    assert drkit("snapshot").exit_code == 0
    assert drkit("replicate").exit_code == 0
    return tmp_path


@pytest.mark.parametrize(("argv", "expected"), [
    (["verify", "-q"], ["-q", "verify"]),
    (["verify", "--all", "-vv", "--config", "x.toml"], ["-vv", "--config", "x.toml", "verify",
                                                        "--all"]),
    (["--config", "x.toml", "verify"], ["--config", "x.toml", "verify"]),
    (["config", "check", "--config=x.toml"], ["--config=x.toml", "config", "check"]),
    (["restore", "SNAP", "--", "-q"], ["restore", "SNAP", "--", "-q"]),
])
def test_global_options_are_hoisted_in_front_of_the_command(argv: list[str],
                                                            expected: list[str]) -> None:
    assert hoist_global_options(argv) == expected


def test_config_option_after_the_subcommand(drkit, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "mine.toml").write_text(CONFIG)
    (other / "data" / "uploads").mkdir(parents=True)
    res = drkit("config", "check", "--config", str(other / "mine.toml"))
    assert res.exit_code == 0, res.stderr
    assert res.stdout.strip() == f"{other / 'mine.toml'}: ok"


def test_quiet_prints_nothing_on_success_and_one_line_on_findings(drkit, project: Path
                                                                  ) -> None:
    first = drkit("verify", "--all", "--accept-first-contact")  # this host's first contact
    assert first.exit_code == 0, first.stderr
    for argv in (("-q", "verify", "--all"), ("verify", "--all", "-q")):
        res = drkit(*argv)
        assert res.exit_code == 0, res.stderr
        assert res.stdout == "" and res.stderr == ""
    loud = drkit("verify", "--all")
    assert "clean" in loud.stdout
    # damage the cold copy: -q says so in one line, and the exit code carries the verdict
    shutil.rmtree(project / "regions" / "shanghai" / "packs")
    res = drkit("verify", "--all", "-q")
    assert res.exit_code == 1
    lines = res.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("drkit verify: ") and "shanghai" in lines[0]
    # --json is unaffected by -q: one JSON document
    doc = json.loads(drkit("-q", "--json", "verify", "--all").stdout)
    assert doc["clean"] is False


def test_verbose_after_the_subcommand_is_accepted(drkit, project: Path) -> None:
    res = drkit("snapshots", "-vv")
    assert res.exit_code == 0, res.stderr
    assert "uploads" in res.stdout
    res = drkit("snapshots", "--bogus")
    assert res.exit_code == 2 and "No such option" in res.stderr


def test_json_failure_prints_one_json_error_document(drkit, tmp_path: Path) -> None:
    res = drkit("--json", "snapshots")  # no drkit.toml here
    assert res.exit_code == 2
    doc = json.loads(res.stdout)
    assert doc["error"]["exit_code"] == 2 and "drkit.toml" in doc["error"]["message"]
    assert res.stderr.startswith("drkit: error: ")
    res = drkit("snapshots", "--json")  # the same after the subcommand
    assert json.loads(res.stdout)["error"]["kind"] == "ConfigError"
