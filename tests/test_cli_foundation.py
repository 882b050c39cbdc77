from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from drkit.cli.setup import config_template


def test_console_script_and_module_both_work(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "drkit", "--help"], capture_output=True,
                         text=True, cwd=tmp_path)
    assert out.returncode == 0
    assert "Exit codes" in out.stdout
    for name in ("init", "config"):
        assert name in out.stdout


def test_init_writes_valid_config(drkit, tmp_path: Path) -> None:
    res = drkit("init")
    assert res.exit_code == 0, res.stderr
    assert (tmp_path / "drkit.toml").read_text() == config_template(sample_data=False)
    assert (tmp_path / "keys").is_dir()
    assert oct((tmp_path / "keys").stat().st_mode & 0o777) == "0o700"
    res = drkit("--json", "config", "check")
    assert res.exit_code == 0
    assert json.loads(res.stdout) == {"config": "drkit.toml", "valid": True, "problems": []}


def test_init_refuses_to_overwrite(drkit, tmp_path: Path) -> None:
    (tmp_path / "drkit.toml").write_text("# mine\n")
    res = drkit("init")
    assert res.exit_code == 2
    assert "already exists" in res.stderr
    assert res.stderr.count("\n") == 1
    assert (tmp_path / "drkit.toml").read_text() == "# mine\n"


def test_config_check_reports_every_problem(drkit, tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text(
        '[repository]\nprimary = "nowhere"\ncolour = "red"\n'
        '[regions.a]\nurl = "ftp://host/x"\n'
        '[regions.b]\nurl = "file:b"\nlock_days = 30\nretention_days = 7\n'
        '[regions.c]\nurl = "file:b"\n'
        '[regions.d]\nurl = "s3://Bad_Bucket/x"\nlock_days = "ten"\n'
        '[sources.s]\ntype = "oracle"\n'
    )
    res = drkit("--config", "bad.toml", "--json", "config", "check")
    assert res.exit_code == 2
    doc = json.loads(res.stdout)
    keys = {p["key"]: p["reason"] for p in doc["problems"]}
    assert keys["repository.colour"] == "unknown key"
    assert "unknown scheme" in keys["regions.a.url"]
    assert "shorter than the lock period" in keys["regions.b.retention_days"]
    assert "same location as region 'b'" in keys["regions.c.url"]
    assert "not a valid S3 bucket" in keys["regions.d.url"]
    assert "unknown source type 'oracle'" in keys["sources.s.type"]
    assert "not defined" in keys["repository.primary"]
    assert all(p["file"] == "bad.toml" for p in doc["problems"])


def test_malformed_toml_is_one_line_exit_2(drkit, tmp_path: Path) -> None:
    (tmp_path / "drkit.toml").write_text("[repository\nprimary=")
    res = drkit("config", "check")
    assert res.exit_code == 2
    assert "not valid TOML" in res.stdout
    res = drkit("verify")
    assert res.exit_code == 2
    assert res.stderr.startswith("drkit: error: drkit.toml: (syntax): not valid TOML")
    assert "Traceback" not in res.stderr


def test_missing_config_names_the_file(drkit) -> None:
    res = drkit("--config", "nope.toml", "demo", "--dir", "x")
    # demo writes its own config in --dir, so it works without ./drkit.toml
    assert res.exit_code == 0
    res = drkit("--config", "nope.toml", "config", "check")
    assert res.exit_code == 2
    assert "nope.toml: (file): not found" in res.stdout


def test_config_env_variable(drkit, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    drkit("init", "--dir", "sub")
    res = drkit("config", "check", env={"DRKIT_CONFIG": "sub/drkit.toml"})
    assert res.exit_code == 0
    assert "sub/drkit.toml: ok" in res.stdout


def test_every_command_has_help(drkit) -> None:
    from drkit.cli.main import cli

    def walk(group, path):
        for name, cmd in getattr(group, "commands", {}).items():
            yield [*path, name]
            yield from walk(cmd, [*path, name])

    seen = 0
    for path in walk(cli, []):
        res = drkit(*path, "--help")
        assert res.exit_code == 0, path
        assert "Usage:" in res.stdout
        seen += 1
    assert seen >= 3
