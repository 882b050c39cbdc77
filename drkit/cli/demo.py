"""``drkit demo``: the main job on the embedded default, end to end."""

from __future__ import annotations

from pathlib import Path

import click

from drkit.cli.common import emit, get_app, json_option
from drkit.cli.setup import CONFIG_TEMPLATE
from drkit.config import load_config


@click.command("demo")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default="demo-run", show_default=True, help="Scratch folder for the demo.")
@click.option("--scale", type=click.IntRange(1, 100), default=1, show_default=True,
              help="Data-set size multiplier.")
@json_option
def demo_command(directory: Path, scale: int) -> None:
    """Set up the embedded default (three local regions) and run the main job."""
    app = get_app()
    directory.mkdir(parents=True, exist_ok=True)
    cfg = directory / "drkit.toml"
    if not cfg.exists():
        cfg.write_text(CONFIG_TEMPLATE, encoding="utf-8")
    config = load_config(cfg)
    app._config = config
    emit({"config": str(cfg), "regions": sorted(config.regions)},
         f"demo configuration at {cfg}: regions {', '.join(sorted(config.regions))}")


COMMANDS = [demo_command]
