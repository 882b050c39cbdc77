"""Start-up: ``drkit --version`` and ``drkit --help`` import no command's module and none of
the heavy libraries (checked from ``sys.modules`` of a real process, not by timing), while
every command's own help stays what the command defines."""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import drkit
import drkit.cli
from drkit.cli.common import AppContext
from drkit.cli.main import LAZY_COMMANDS, cli

# Libraries (and drkit's own heavy parts) that the version and the command list never need.
HEAVY = ("boto3", "botocore", "cryptography", "zstandard", "pyfastcdc", "rich", "requests",
         "sqlalchemy", "apscheduler", "qcloud_cos", "tencentcloud", "zxcvbn", "drkit.lint",
         "drkit.config", "drkit.repo", "drkit.storage", "drkit.journal", "drkit.verify",
         "drkit.approval")
# Runs the console-script entry point and, at exit (click leaves through sys.exit), writes
# the names of every imported module to stderr after a marker line.
_PROBE = """
import atexit, sys
atexit.register(lambda: sys.stderr.write("\\n@@modules@@\\n" + "\\n".join(sys.modules)))
from drkit.cli.main import main
main(sys.argv[1:])
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(drkit.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    return env


def imported_modules(*args: str) -> set[str]:
    """The modules a real ``drkit ARGS`` process has imported when it exits."""
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True,
                          text=True, env=_env(), timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "@@modules@@" in done.stderr, done.stderr[-2000:]
    modules = set(done.stderr.split("@@modules@@", 1)[1].split())
    assert "drkit.cli.main" in modules
    return modules


@pytest.mark.parametrize("args", [("--version",), ("--help",), ("-h",)])
def test_version_and_help_import_no_heavy_module(args: tuple[str, ...]) -> None:
    modules = imported_modules(*args)
    heavy = sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert heavy == [], f"'drkit {' '.join(args)}' imports {heavy}"
    commands = sorted(m for m in modules if m.startswith("drkit.cli.")
                      and m not in ("drkit.cli.main", "drkit.cli.common"))
    assert commands == [], f"'drkit {' '.join(args)}' imports command modules {commands}"


def test_a_command_imports_its_own_module_and_not_the_others() -> None:
    modules = imported_modules("lint", "--help")
    assert "drkit.cli.lint" in modules
    assert not {"drkit.cli.snapshot", "drkit.cli.drill", "boto3"} & modules


def _real_commands() -> dict[str, tuple[str, click.Command]]:
    """Every command any module of drkit.cli defines, found by walking the package."""
    found: dict[str, tuple[str, click.Command]] = {}
    for info in pkgutil.iter_modules(drkit.cli.__path__):
        if info.name in ("main", "common") or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"drkit.cli.{info.name}")
        for command in getattr(module, "COMMANDS", []):
            assert command.name not in found, f"{command.name} defined twice"
            found[command.name] = (info.name, command)
    return found


def test_the_lazy_table_names_every_command_with_its_module() -> None:
    real = _real_commands()
    assert sorted(LAZY_COMMANDS) == sorted(real)
    for name, (module, _command) in real.items():
        assert LAZY_COMMANDS[name][0][0] == module, name


@pytest.mark.parametrize("limit", [20, 45, 60, 74, 200])
def test_the_summaries_give_the_short_help_click_makes_from_each_command(limit: int) -> None:
    for name, (_module, command) in _real_commands().items():
        placeholder = click.Command(name, help=LAZY_COMMANDS[name][1])
        assert placeholder.get_short_help_str(limit) == command.get_short_help_str(limit), name
        assert not command.hidden and not command.deprecated, name


def test_the_command_list_is_the_one_click_prints_for_the_real_commands() -> None:
    reference = click.Group("drkit", params=cli.params, help=cli.help,
                            context_settings=cli.context_settings)
    for _module, command in _real_commands().values():
        reference.add_command(command)
    runner = CliRunner()
    for width in (60, 80, 120):
        ours = runner.invoke(cli, ["--help"], obj=AppContext(), terminal_width=width)
        theirs = runner.invoke(reference, ["--help"], terminal_width=width)
        assert ours.exit_code == 0 and theirs.exit_code == 0
        assert ours.output.split("Commands:")[1] == theirs.output.split("Commands:")[1]
        assert "Commands:" in ours.output and "  verify  " in ours.output


def test_config_help_in_a_fresh_process_lists_apply() -> None:
    """``config apply`` is defined by the approval module: loading ``config`` alone must
    still attach it."""
    done = subprocess.run([sys.executable, "-m", "drkit", "config", "--help"],
                          capture_output=True, text=True, env=_env(), timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert re.search(r"^\s+apply\s", done.stdout, re.M), done.stdout
    assert re.search(r"^\s+check\s", done.stdout, re.M), done.stdout


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_every_command_has_its_help(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"], obj=AppContext(),
                                prog_name="drkit")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: drkit {name} ")


def test_an_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["verfy"], obj=AppContext())
    assert result.exit_code == 2
    assert "No such command 'verfy'" in result.output
