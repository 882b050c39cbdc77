"""The README's first steps, run literally, and what `init` and `config check` promise."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def _first_steps_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Install and first steps"):text.index("## Tour of the commands")]
    after = section[section.index("Then, in an empty folder"):]
    match = re.search(r"```sh\n(.*?)```", after, re.S)
    assert match, "README: the first-steps block is missing"
    return match.group(1)


@pytest.mark.slow
def test_readme_first_steps_run_verbatim_in_an_empty_folder(tmp_path: Path) -> None:
    """Pasted into an empty folder with drkit installed as the README says (the venv's bin
    on PATH), the block runs to a verified snapshot and a passing drill."""
    block = _first_steps_block()
    assert "drkit init --sample-data" in block and "drkit drill" in block
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "drkit").is_file(), "the console script is installed next to python"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("DRKIT_RECOVERY_PASSPHRASE", None)
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    folder = tmp_path / "drkit-first-steps"
    assert (folder / "data" / "shop.db").is_file()
    assert re.search(r"^clean$", out.stdout, re.M), out.stdout  # verify's verdict
    assert "drill PASSED: region shanghai" in out.stdout
    assert list((folder / "drill-reports").glob("*-shanghai.json"))


def test_init_without_sample_data_leaves_sources_commented(drkit, tmp_path: Path) -> None:
    res = drkit("init")
    assert res.exit_code == 0, res.stderr
    text = (tmp_path / "drkit.toml").read_text()
    assert "# [sources.shop]" in text and "\n[sources." not in text
    assert "next: add your sources" in res.stdout
    assert drkit("config", "check").exit_code == 0


def test_init_sample_data_creates_the_sources_it_configures(drkit, tmp_path: Path) -> None:
    res = drkit("--json", "init", "--sample-data")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["sample_data"]["merchants"] > 0
    assert (tmp_path / "data" / "shop.db").stat().st_size > 0
    assert len(list((tmp_path / "data" / "uploads").rglob("*.txt"))) == 20
    check = drkit("--json", "config", "check")
    assert check.exit_code == 0, check.stdout
    # a second run refuses to overwrite the database (and the config)
    again = drkit("init", "--sample-data", "--force")
    assert again.exit_code == 2
    assert "shop.db: already exists" in again.stderr and again.stderr.count("\n") == 1


def test_config_check_reports_a_source_path_that_does_not_exist(drkit, tmp_path: Path) -> None:
    assert drkit("init", "--sample-data").exit_code == 0
    (tmp_path / "data" / "shop.db").unlink()
    res = drkit("config", "check")
    assert res.exit_code == 2
    assert "sources.shop.path" in res.stdout and "does not exist" in res.stdout
    doc = json.loads(drkit("--json", "config", "check").stdout)
    assert doc["valid"] is False
    assert [p["key"] for p in doc["problems"]] == ["sources.shop.path"]
