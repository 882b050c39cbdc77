"""What every command shares: the application context, output and progress helpers."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from drkit.clock import Clock, SystemClock
from drkit.progress import NULL_PROGRESS, Progress, ProgressTask

if TYPE_CHECKING:
    from drkit.config import Config

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class AppContext:
    """State shared by all commands; tests pass one in to inject a clock."""

    clock: Clock = field(default_factory=SystemClock)
    config_file: str | None = None
    json: bool = False
    verbose: int = 0
    quiet: bool = False
    _config: Config | None = None

    @property
    def config_path(self) -> Path:
        # Imported here: 'drkit --help' and '--version' need no configuration code.
        from drkit.config import config_path

        return config_path(self.config_file)

    @property
    def config(self) -> Config:
        if self._config is None:
            from drkit.config import load_config

            self._config = load_config(self.config_path)
        return self._config

    def progress(self) -> Progress:
        """A progress bar on an interactive terminal, silence otherwise."""
        if self.json or self.quiet or not sys.stderr.isatty():
            return NULL_PROGRESS
        return RichProgress()


def get_app(ctx: click.Context | None = None) -> AppContext:
    ctx = ctx or click.get_current_context()
    app = ctx.find_object(AppContext)
    if app is None:  # pragma: no cover - main() always installs one
        app = ctx.ensure_object(AppContext)
    return app


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        get_app(ctx).json = True
    return value


def json_option(func: F) -> F:
    """``--json`` on a command: print one JSON document to stdout."""
    return click.option(
        "--json",
        "json_output",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_json,
        help="Print one JSON document to stdout.",
    )(func)


def _default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)


def emit(data: Any, text: str | Callable[[], str] | None = None, *,
         summary: str | Callable[[], str | None] | None = None) -> None:
    """Print ``data`` as JSON under --json, else ``text`` (a string or a function).

    Under ``-q`` only ``summary`` is printed (one line, and only when there is something
    to say, such as a count of findings): quiet means errors only.
    """
    app = get_app()
    # Kept for the command tree's after-command hooks (audit, run records).
    click.get_current_context().find_root().meta["drkit.result"] = data
    if app.json:
        click.echo(json.dumps(data, indent=2, sort_keys=False, default=_default))
        return
    chosen = summary if app.quiet else text
    if chosen is None:
        return
    out = chosen() if callable(chosen) else chosen
    if out:
        click.echo(out)


def info(message: str) -> None:
    """A human line on stderr unless --quiet or --json."""
    app = get_app()
    if not (app.quiet or app.json):
        click.echo(message, err=True)


def human_bytes(n: float) -> str:
    step = 1024.0
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < step or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= step
    return f"{n:.1f} TiB"  # pragma: no cover


class _RichTask:
    def __init__(self, bar: Any, task_id: Any) -> None:
        self._bar = bar
        self._id = task_id

    def advance(self, amount: float = 1) -> None:
        self._bar.advance(self._id, amount)

    def set_total(self, total: float | None) -> None:
        self._bar.update(self._id, total=total)

    def close(self) -> None:
        self._bar.stop()


def _binary_speed_column() -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class BinarySpeed(ProgressColumn):
        """Transfer rate in MiB/s (rich's own column is decimal)."""

        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text("?" if speed is None else f"{human_bytes(speed)}/s",
                        style="progress.data.speed")

    return BinarySpeed()


class RichProgress:
    """A rich progress bar per task on stderr."""

    def task(self, description: str, total: float | None = None, unit: str = "") -> ProgressTask:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        columns: list[Any] = [TextColumn("{task.description}"), BarColumn()]
        if unit == "B":
            # Binary units (MiB), as every summary line drkit prints.
            columns += [DownloadColumn(binary_units=True), _binary_speed_column()]
        else:
            columns += [MofNCompleteColumn()]
        columns.append(TimeRemainingColumn())
        bar = Progress(*columns, console=Console(stderr=True), transient=True)
        bar.start()
        task_id = bar.add_task(description, total=total)
        return _RichTask(bar, task_id)


@contextmanager
def progress_task(description: str, total: float | None = None, unit: str = ""
                  ) -> Iterator[ProgressTask]:
    task = get_app().progress().task(description, total, unit)
    try:
        yield task
    finally:
        task.close()


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING
    if quiet:
        level = logging.ERROR
    elif verbose >= 2:
        level = logging.DEBUG
    elif verbose == 1:
        level = logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr, force=True)
    # Third-party SDKs are chatty at INFO and may log request details; keep them down.
    for noisy in ("botocore", "boto3", "urllib3", "qcloud_cos", "s3transfer", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
