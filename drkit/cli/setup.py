"""``drkit init`` and ``drkit config check``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from drkit.cli.common import emit, get_app, json_option
from drkit.config import Config, Problem, check_config
from drkit.errors import ConfigError, DrkitError, ExitCode, InputError
from drkit.redact import redact_text

_BASE_TEMPLATE = """\
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

{sources}
[objectives]
rto_minutes = 240   # a drill fails if recovery takes longer
rpo_hours = 26      # ... or if the snapshot it restores is older than this
"""

SAMPLE_SOURCES = """\
# What gets snapshotted{note}.
[sources.shop]
type = "sqlite"
path = "data/shop.db"
production = true

[sources.uploads]
type = "files"
path = "data/uploads"
exclude = ["*.tmp", ".cache/**"]
"""


def _commented(text: str) -> str:
    return "".join(line if line.startswith("#") or not line.strip() else "# " + line
                   for line in text.splitlines(keepends=True))


def config_template(*, sample_data: bool) -> str:
    """The commented drkit.toml; the sample sources are live only with the sample data."""
    if sample_data:
        sources = SAMPLE_SOURCES.format(note=" (the sample data 'drkit init --sample-data' "
                                              "made: replace with your own)")
    else:
        sources = _commented(SAMPLE_SOURCES.format(
            note=": uncomment and point at your data (these paths do not exist yet)"))
    return _BASE_TEMPLATE.replace("{sources}", sources)


# The configuration with the sample sources live (what the demo and tests start from).
CONFIG_TEMPLATE = config_template(sample_data=True)


def write_sample_data(directory: Path) -> dict[str, object]:
    """The demo merchant database and a few uploaded files, so a first snapshot has
    something real to protect."""
    from drkit.demo_data import generate_shop_db

    uploads = directory / "data" / "uploads" / "invoices"
    uploads.mkdir(parents=True, exist_ok=True)
    db = directory / "data" / "shop.db"
    stats = generate_shop_db(db, scale=1)
    for i in range(20):
        (uploads / f"{i:04d}.txt").write_text(
            f"invoice {i:04d}\n" + "line item, 1 unit, 100.00 CNY\n" * 40, encoding="utf-8")
    return {"database": str(db), "merchants": stats.merchants, "uploads": str(uploads.parent)}


@click.command("init")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=".", show_default=True, help="Folder to create drkit.toml in.")
@click.option("--force", is_flag=True, help="Overwrite an existing drkit.toml.")
@click.option("--sample-data", is_flag=True,
              help="Also create a sample merchant database (data/shop.db) and uploaded files "
                   "(data/uploads) and protect them; without it the sample sources are "
                   "commented out.")
@json_option
def init_command(directory: Path, force: bool, sample_data: bool) -> None:
    """Write a commented drkit.toml for the embedded default (three local regions)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "drkit.toml"
    if target.exists() and not force:
        raise InputError(f"{target}: already exists (use --force to overwrite)")
    if sample_data and (directory / "data" / "shop.db").exists():
        raise InputError(f"{directory / 'data' / 'shop.db'}: already exists; not overwriting "
                         "a database (drop --sample-data)")
    keys = directory / "keys"
    keys.mkdir(exist_ok=True)
    keys.chmod(0o700)
    (directory / "regions").mkdir(parents=True, exist_ok=True)
    sample = write_sample_data(directory) if sample_data else None
    target.write_text(config_template(sample_data=sample_data), encoding="utf-8")
    next_step = "'drkit keys init'" if sample_data else \
        f"add your sources to {target.name} (see the commented examples), then " \
        "'drkit keys init'"
    lines = [f"wrote {target}", f"created {keys}/"]
    if sample is not None:
        lines.append(f"created sample data: {sample['database']} ({sample['merchants']} "
                     f"merchants) and {sample['uploads']}/")
    lines.append(f"next: {next_step}")
    emit({"config": str(target), "keys": str(keys), "sample_data": sample}, "\n".join(lines))


def missing_source_paths(config: Config) -> list[Problem]:
    """Sources whose path does not exist on this host: a snapshot would fail on them.

    Only ``config check`` reports these; loading the config does not, because verifiers
    and approvers use the same drkit.toml on hosts that hold no source data.
    """
    out = []
    for source in config.sources.values():
        if source.path is not None and not source.path.exists():
            out.append(Problem(str(config.path), f"sources.{source.name}.path",
                               f"{source.path} does not exist"))
    return out


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
        problems += missing_source_paths(config)
    data = {
        "config": str(path),
        "valid": not problems,
        "problems": [{"file": p.file, "key": p.key, "reason": redact_text(p.reason)}
                     for p in problems],
    }

    def text() -> str:
        if not problems:
            return f"{path}: ok"
        lines = [redact_text(str(p)) for p in problems]
        lines.append(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {path}")
        return "\n".join(lines)

    emit(data, text)
    if problems:
        click.get_current_context().exit(int(ExitCode.USAGE))


COMMANDS = [init_command, config_group]
