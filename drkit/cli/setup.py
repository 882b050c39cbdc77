"""``drkit init`` and ``drkit config check``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from drkit.cli.common import emit, get_app, json_option
from drkit.config import Config, Problem, check_config
from drkit.errors import ConfigError, DrkitError, ExitCode, InputError

CONFIG_TEMPLATE = """\
# drkit configuration. Paths are relative to this file.
# Every key is described in docs/configuration.md; check with `drkit config check`.

[repository]
# The region every snapshot is written to first; the others receive cold copies.
primary = "beijing"
# Key files: repository ID key, writer signing key, recovery public key and the
# passphrase-protected recovery private key (create them with `drkit keys init`).
keys = "keys"
# Local cache (files cache, locks); safe to delete.
cache = ".drkit/cache"
pack_size_mib = 16

# Regions: local folders here. For clouds use for example
#   url = "s3://bucket/drkit?region=ap-east-1&credentials=env:DRKIT_SHANGHAI"
#   url = "cos://bucket-1250000000/drkit?region=ap-shanghai&credentials=env:DRKIT_NANJING"
[regions.beijing]
url = "file:regions/beijing"
storage_class = "STANDARD"
lock_days = 30          # objects cannot be deleted for this long (COMPLIANCE lock)
retention_days = 90     # snapshots are kept at least this long; never shorter than lock_days

[regions.shanghai]
url = "file:regions/shanghai"
storage_class = "ARCHIVE"   # cold copy: thawed before a drill reads it
lock_days = 365
retention_days = 365
max_lag_hours = 26          # verify reports a finding when this region lags longer

[regions.nanjing]
url = "file:regions/nanjing"
storage_class = "STANDARD_IA"
lock_days = 365
retention_days = 365
max_lag_hours = 26

# What gets snapshotted.
[sources.shop]
type = "sqlite"
path = "data/shop.db"
production = true

[sources.uploads]
type = "files"
path = "data/uploads"
exclude = ["*.tmp", ".cache/**"]

[objectives]
rto_minutes = 240   # a drill fails if recovery takes longer
rpo_hours = 26      # ... or if the snapshot it restores is older than this
"""


@click.command("init")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=".", show_default=True, help="Folder to create drkit.toml in.")
@click.option("--force", is_flag=True, help="Overwrite an existing drkit.toml.")
@json_option
def init_command(directory: Path, force: bool) -> None:
    """Write a commented drkit.toml for the embedded default (three local regions)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "drkit.toml"
    if target.exists() and not force:
        raise InputError(f"{target}: already exists (use --force to overwrite)")
    target.write_text(CONFIG_TEMPLATE, encoding="utf-8")
    keys = directory / "keys"
    keys.mkdir(exist_ok=True)
    keys.chmod(0o700)
    for sub in ("data/uploads", "regions"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    emit(
        {"config": str(target), "keys": str(keys)},
        f"wrote {target}\ncreated {keys}/ (next: drkit keys init)",
    )


@click.group("config")
def config_group() -> None:
    """Inspect and validate drkit.toml."""


def section_problems(config: Config) -> list[Problem]:
    """Problems in the sections their own modules read ([schedule], [approval]).

    Their numbers (grace periods, timeouts, quorum, expiry) are validated where they are
    used; running those readers here means ``config check`` sees what ``status``,
    ``schedule`` and the approval gate would refuse, instead of saying "ok".
    """
    from drkit.approval import policy
    from drkit.schedule.spec import load_schedule

    found: list[Problem] = []
    checks: list[Callable[[], object]] = [
        lambda: load_schedule(config),
        lambda: policy.quorum_for(config, "prune"),
        lambda: policy.expiry(config),
        lambda: policy.max_skew(config),
    ]
    for check in checks:
        try:
            check()
        except ConfigError as exc:
            file, key = exc.file or str(config.path), exc.key or "(file)"
            reason = exc.message.removeprefix(f"{exc.file}: ").removeprefix(f"{exc.key}: ")
            found.append(Problem(file, key, reason))
        except DrkitError as exc:
            found.append(Problem(str(config.path), "(file)", str(exc)))
    return found


@config_group.command("check")
@json_option
def config_check() -> None:
    """Validate the configuration and report every problem with file, key and reason."""
    app = get_app()
    path = app.config_path
    config, problems = check_config(path)
    if config is not None:
        problems += section_problems(config)
    data = {
        "config": str(path),
        "valid": not problems,
        "problems": [{"file": p.file, "key": p.key, "reason": p.reason} for p in problems],
    }

    def text() -> str:
        if not problems:
            return f"{path}: ok"
        lines = [str(p) for p in problems]
        lines.append(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {path}")
        return "\n".join(lines)

    emit(data, text)
    if problems:
        click.get_current_context().exit(int(ExitCode.USAGE))


COMMANDS = [init_command, config_group]
