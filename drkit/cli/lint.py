"""``drkit lint``: the least-privilege policy check for CI."""

from __future__ import annotations

import json
from pathlib import Path

import click

from drkit.cli.common import get_app
from drkit.errors import ExitCode
from drkit.lint.engine import lint_paths
from drkit.lint.findings import SEVERITIES
from drkit.lint.output import render_sarif, render_text
from drkit.progress import NULL_PROGRESS


@click.command("lint")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif"]), default=None,
              help="Output format (default text; --json means --format json).")
@click.option("--json", "json_output", is_flag=True, help="Same as --format json.")
@click.option("--severity-threshold", type=click.Choice(SEVERITIES), default="low",
              show_default=True, help="Exit 1 if any finding is at or above this severity.")
@click.option("--principals", "principals_file", type=click.Path(path_type=Path),
              help="Principals file for the separation-of-duties check "
                   "(default: principals.toml in a PATH folder).")
@click.option("--suppressions", "suppressions_file", type=click.Path(path_type=Path),
              help="Suppressions file (TOML [[suppress]] entries with reason, owner, expires).")
@click.option("--output", "-o", "--out", "output", type=click.Path(path_type=Path),
              help="Write the report to this file instead of stdout.")
def lint_command(paths: tuple[Path, ...], fmt: str | None, json_output: bool,
                 severity_threshold: str, principals_file: Path | None,
                 suppressions_file: Path | None, output: Path | None) -> None:
    """Lint AWS IAM and Tencent Cloud CAM policies (files or folders, recursively).

    Checks least privilege, data destruction, backup tampering, privilege escalation and,
    with a principals file, that no single principal can destroy production and every
    backup copy. Exit 0 when nothing reaches the threshold, 1 when something does,
    2 on usage or input errors.
    """
    app = get_app()
    if fmt is None:
        fmt = "json" if (json_output or app.json) else "text"
    report = lint_paths(list(paths), now=app.clock.now(), threshold=severity_threshold,
                        principals_file=principals_file, suppressions_file=suppressions_file,
                        progress=app.progress() if fmt == "text" else NULL_PROGRESS)
    if fmt == "json":
        text = json.dumps(report.to_dict(), indent=2)
    elif fmt == "sarif":
        text = json.dumps(render_sarif(report), indent=2)
    else:
        text = render_text(report)
    if output is not None:
        output.write_text(text + "\n", "utf-8")
    else:
        click.echo(text)
    if report.failed:
        click.get_current_context().exit(int(ExitCode.FINDINGS))


COMMANDS = [lint_command]
