"""``drkit lint``: the least-privilege policy check for CI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from drkit.cli.common import get_app
from drkit.errors import ExitCode, InputError
from drkit.lint.engine import INPUT_ERROR_MODES, LintReport, lint_paths
from drkit.lint.findings import SEVERITIES
from drkit.lint.output import printable, render_sarif, render_text, to_json
from drkit.progress import NULL_PROGRESS

R = TypeVar("R", bound=LintReport)


class LintCommand(click.Command):
    """``drkit lint PATH...`` as always; ``drkit lint network ...`` runs the network
    isolation check (drkit/cli/lint_network.py). A folder named ``network`` is linted as a
    policy folder when written ``./network``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args[:1] == ["network"]:
            ctx.meta["drkit.lint.network"] = args[1:]
            return []
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        rest = ctx.meta.pop("drkit.lint.network", None)
        if rest is None:
            return super().invoke(ctx)
        from drkit.cli.lint_network import network_command

        # Beside this command rather than under it, so usage reads "drkit lint network".
        with network_command.make_context("lint network", rest, parent=ctx.parent) as sub:
            return network_command.invoke(sub)


@click.command("lint", cls=LintCommand,
               epilog="Network isolation (dev/test must not reach production): "
                      "drkit lint network --help")
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
@click.option("--input-errors", type=click.Choice(INPUT_ERROR_MODES), default="error",
              show_default=True,
              help="A file that cannot be read as a policy: 'error' lists it and exits 2 "
                   "after writing the report; 'finding' makes it a critical input-error "
                   "finding (exit by --severity-threshold).")
def lint_command(paths: tuple[Path, ...], fmt: str | None, json_output: bool,
                 severity_threshold: str, principals_file: Path | None,
                 suppressions_file: Path | None, output: Path | None,
                 input_errors: str) -> None:
    """Lint AWS IAM and Tencent Cloud CAM policies (files or folders, recursively).

    Checks least privilege, data destruction, backup tampering, privilege escalation and,
    with a principals file, that no single principal can destroy production and every
    backup copy. Exit 0 when nothing reaches the threshold, 1 when something does,
    2 on usage or input errors (a file that is not a readable policy: the report for
    every other file is still written first).
    """
    app = get_app()
    if fmt is None:
        fmt = "json" if (json_output or app.json) else "text"
    report = lint_paths(list(paths), now=app.clock.now(), threshold=severity_threshold,
                        principals_file=principals_file, suppressions_file=suppressions_file,
                        progress=app.progress() if fmt == "text" else NULL_PROGRESS,
                        input_errors=input_errors)
    emit_lint_report(report, fmt, render_text, output, unchecked="file(s)")


def emit_lint_report(report: R, fmt: str, render_text: Callable[[R], str],
                     output: Path | None, unchecked: str) -> None:
    """Write a lint report as text, JSON or SARIF to ``output`` (stdout when None), then
    exit 2 when inputs could not be checked (``unchecked`` names them in the message) or
    1 when findings reach the threshold."""
    if fmt == "json":
        text = to_json(report.to_dict())
    elif fmt == "sarif":
        text = to_json(render_sarif(report))
    else:
        text = render_text(report)
    if output is not None:
        try:
            output.write_text(text + "\n", "utf-8")
        except OSError as exc:
            raise InputError(f"{output}: cannot write the report: {exc.strerror}") from None
    else:
        click.echo(text)
    if report.input_errors:
        for error in report.input_errors:
            click.echo(printable(f"drkit: error: {error}"), err=True)
        raise InputError(f"{len(report.input_errors)} {unchecked} could not be checked; the "
                         "report covers everything else")
    if report.failed:
        click.get_current_context().exit(int(ExitCode.FINDINGS))


COMMANDS = [lint_command]
