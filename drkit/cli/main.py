"""The ``drkit`` entry point: global options, command discovery and error mapping."""

from __future__ import annotations

import importlib
import json
import logging
import re
import sys
import traceback
from typing import Any

import click

from drkit import __version__
from drkit.cli.common import AppContext, get_app, setup_logging
from drkit.errors import DrkitError, ExitCode
from drkit.redact import redact_text

log = logging.getLogger(__name__)

#: Every command of the tree: name -> (the ``drkit.cli`` modules that define it, its summary
#: as ``drkit --help`` lists it). A command's module is imported only when the command is
#: run or its own help is asked for, so ``drkit --version`` and ``drkit --help`` load click
#: and this module, not boto3, cryptography or the lint catalogue. The summary is the first
#: sentence of the command's help; tests/cli/test_startup.py checks both columns against
#: the real commands (a command missing here, or a summary that drifted, fails it).
#: ``config apply`` lives in the approval module, so ``config`` needs both modules.
LAZY_COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "approve": (("approval",),
                "Approve request ID with your enrolled key (review its plan first: drkit "
                "requests)."),
    "approvers": (("approval",),
                  "Enrol approvers and show the approver registry pinned in the repository."),
    "audit": (("audit",), "drkit's own tamper-evident audit log."),
    "binlog": (("binlog",), "Archive MySQL/MariaDB binlogs for point-in-time recovery."),
    "check": (("snapshot",),
              "Check the repository structure and, with --read-data, every byte of it."),
    "cloud": (("cloud",),
              "Daily snapshots of tagged cloud disks and databases, copied to other regions."),
    "config": (("setup", "approval"), "Inspect and validate drkit.toml."),
    "delete-object": (("approval",), "Delete KEY in REGION (needs an approved request)."),
    "demo": (("demo",), "Play the insider disaster on local folders and recover from it."),
    "deny": (("approval",),
             "Deny request ID; a single denial by an enrolled person vetoes it."),
    "drill": (("drill",),
              "Restore a snapshot from one region's copy and reconcile every merchant."),
    "execute": (("approval",),
                "Run an approved request: checks quorum, denials, expiry, single use and "
                "that the plan recomputed now is exactly the approved one."),
    "incident": (("incident",), "Look for what destroyed data, in the archived log."),
    "init": (("setup",),
             "Write a commented drkit.toml for the embedded default (three local regions)."),
    "keys": (("keys",), "Create and show the repository keys."),
    "ledger": (("ledger",),
               "The compensation ledger: each merchant's compensation from pre-incident "
               "revenue."),
    "lint": (("lint",),
             "Lint AWS IAM and Tencent Cloud CAM policies (files or folders, recursively)."),
    "oplog": (("oplog",),
              "Watch the operators: cloud operation logs and bastion sessions against "
              "approvals."),
    "prune": (("prune",),
              "Forget snapshots beyond retention and delete objects no remaining snapshot "
              "needs (needs an approved request; exit 3 without one)."),
    "replicate": (("replicate",),
                  "Copy every logged object each region lacks, then the journal."),
    "request": (("approval",),
                "File an approval request for a dangerous operation (its exact plan is "
                "computed now)."),
    "requests": (("approval",),
                 "List approval requests: pending, approved, denied, expired, executed."),
    "restore": (("snapshot",),
                "Restore SNAPSHOT (an id prefix or 'latest') bit for bit into --to."),
    "schedule": (("schedule",), "Run drkit on a schedule: as a daemon, or as crontab lines."),
    "snapshot": (("snapshot",),
                 "Take an encrypted, deduplicated snapshot of the configured sources."),
    "snapshots": (("snapshot",), "List the snapshots (id, time, sources, size, new data)."),
    "status": (("status",),
               "Show how old the last snapshot, copy, verify and drill are; exit 1 if any is "
               "too old."),
    "thaw": (("thaw",),
             "Thaw an archive-class region: every metadata object (manifests, indexes, "
             "session keys, ledgers), and with SNAPSHOT (an id prefix or 'latest') the packs "
             "it needs, so a restore or drill can read it."),
    "verify": (("verify",),
               "Prove every region still holds everything ever logged, unchanged."),
    "wal": (("wal",), "Archive PostgreSQL's write-ahead log for point-in-time recovery."),
}


# Commands whose outcome the central hook records in the audit log. The approval commands
# (request, approve, deny, execute, prune, delete-object, config apply) record richer events
# themselves; read-only and set-up commands (status, snapshots, config check, init, demo)
# are not actions on the backups.
AUDITED_COMMANDS = frozenset({"snapshot", "restore", "check", "replicate", "verify", "drill",
                              "ledger", "lint", "keys", "cloud", "oplog"})
# 4 (verify's FIRST-CONTACT) is logged as findings: something a reader must look at.
_RESULTS = {0: "ok", 1: "findings", 2: "error", 3: "refused", 4: "findings"}


def _audit(ctx: click.Context, code: int, error: str | None) -> None:
    """Record a finished command in the audit log; never raises, never hides the outcome."""
    argv: list[str] = ctx.meta.get("drkit.argv", [])
    error = error or ctx.meta.get("drkit.error")
    if not argv or argv[0] not in AUDITED_COMMANDS or "--help" in argv or "-h" in argv:
        return
    if argv[0] in ("keys", "ledger") and argv[1:2] != [{"keys": "init",
                                                         "ledger": "build"}[argv[0]]]:
        return
    app = get_app(ctx)
    try:
        config = app.config
    except DrkitError:
        return  # no usable drkit.toml (lint in a CI checkout): nothing to record into
    from drkit.repo.keys import WRITER_PUB_FILE

    if not (config.keys_dir / WRITER_PUB_FILE).exists() and not config.writer_keys:
        # No repository has been set up from here: there is no log to record into.
        log.debug("audit: no writer key in %s; %s not recorded", config.keys_dir, argv[0])
        return
    from drkit.audit import record_event

    details: dict[str, Any] = {"exit_code": code}
    if error:
        details["error"] = error
    record_event(config, action=" ".join(a for a in argv[:2] if not a.startswith("-")),
                 result=_RESULTS.get(code, "internal-error"), params={"argv": argv},
                 details=details, clock=app.clock)
    if argv[0] in ("verify", "drill") and code in (0, 1):
        # A verify or drill run by hand counts for 'drkit status' like a scheduled one.
        from drkit.schedule.state import record_manual_run

        try:
            record_manual_run(config, argv, code, ctx.meta.get("drkit.result"),
                              started=ctx.meta.get("drkit.started", app.clock.now()),
                              finished=app.clock.now())
        except (DrkitError, OSError) as exc:
            log.warning("could not keep the run record of %s: %s", argv[0], exc)


def _json_error(app: AppContext, message: str, code: int, kind: str) -> None:
    """Under --json a failure still prints one JSON document to stdout (scripts parse stdout
    and should not have to scrape stderr), unless the command already printed its own."""
    if app.json and not click.get_current_context().find_root().meta.get("drkit.result"):
        click.echo(json.dumps({"error": {"message": message, "exit_code": code,
                                         "kind": kind}}, indent=2))


_GLOBAL_FLAGS = re.compile(r"^(-q|--quiet|-v+|--verbose)$")


def hoist_global_options(args: list[str]) -> list[str]:
    """Move the global options ``-q``, ``-v``/``-vv`` and ``--config PATH`` written after the
    subcommand to the front, so ``drkit verify -q`` means ``drkit -q verify`` (no subcommand
    has options of those names). Arguments after ``--`` are left alone."""
    front: list[str] = []
    rest: list[str] = []
    in_command = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        valued = arg == "--config" and i + 1 < len(args)
        if not in_command and not arg.startswith("-"):
            in_command = True
        if _GLOBAL_FLAGS.match(arg) or arg.startswith("--config="):
            (front if in_command else rest).append(arg)
        elif valued:
            (front if in_command else rest).extend(args[i:i + 2])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


class DrkitGroup(click.Group):
    """Maps drkit's exceptions to one line on stderr and their exit code, and records
    every action's outcome in the audit log. Subcommands load lazily (``LAZY_COMMANDS``),
    as in click's documentation "Lazily loading subcommands"."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(LAZY_COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            self._load(cmd_name)
        return self.commands.get(cmd_name)

    def _load(self, cmd_name: str) -> None:
        modules = [importlib.import_module(f"drkit.cli.{name}")
                   for name in LAZY_COMMANDS[cmd_name][0]]
        for module in modules:
            for command in getattr(module, "COMMANDS", []):
                if command.name == cmd_name:
                    self.add_command(command)
                    return
        raise RuntimeError(f"drkit.cli.{LAZY_COMMANDS[cmd_name][0][0]} defines no command "
                           f"{cmd_name!r}")

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``drkit --help`` from the summaries, without importing
        any command's module (the same text click makes from each command's help)."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            command = self.commands.get(name) or click.Command(name,
                                                               help=LAZY_COMMANDS[name][1])
            if not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(list(args)))

    def invoke(self, ctx: click.Context) -> Any:
        code, error = 0, None
        try:
            return self._invoke(ctx)
        except click.exceptions.Exit as exc:
            code = exc.exit_code
            raise
        except click.ClickException as exc:
            code, error = exc.exit_code, exc.format_message()
            raise
        except BaseException as exc:
            code, error = 70, type(exc).__name__
            raise
        finally:
            _audit(ctx, code, error)

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        ctx.meta["drkit.argv"] = list(args)
        ctx.meta["drkit.started"] = get_app(ctx).clock.now()
        return super().resolve_command(ctx, args)

    def _invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DrkitError as exc:
            ctx.meta["drkit.error"] = redact_text(str(exc))
            app = get_app(ctx)
            if exc.show_traceback or app.verbose >= 2:
                traceback.print_exc(file=sys.stderr)
            message = redact_text(str(exc))
            click.echo(f"drkit: error: {message}", err=True)
            _json_error(app, message, int(exc.exit_code), type(exc).__name__)
            ctx.exit(int(exc.exit_code))
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("drkit: interrupted", err=True)
            _json_error(get_app(ctx), "interrupted", 130, "Interrupted")
            ctx.exit(130)
        except Exception as exc:  # an unexpected error is a bug: say so, keep the detail
            app = get_app(ctx)
            if app.verbose:
                traceback.print_exc(file=sys.stderr)
                hint = ""
            else:
                hint = " (run with -v for the traceback)"
            message = f"{type(exc).__name__}: {redact_text(str(exc))}"
            click.echo(f"drkit: internal error: {message}{hint}", err=True)
            _json_error(app, message, 70, "InternalError")
            ctx.exit(70)


@click.group(cls=DrkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_file", metavar="PATH", envvar="DRKIT_CONFIG",
              help="Configuration file (default ./drkit.toml, or $DRKIT_CONFIG).")
@click.option("--json", "json_output", is_flag=True,
              help="Print one JSON document to stdout.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors; no progress.")
@click.version_option(__version__, prog_name="drkit")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None, json_output: bool, verbose: int,
        quiet: bool) -> None:
    """drkit: survive an insider deleting production and the backups.

    Encrypted deduplicated snapshots, append-only cold copies in several regions
    verified from outside, a policy linter, two-person approval and restore drills.

    Exit codes: 0 clean, 1 findings or failed check, 2 usage/config/input error,
    3 refused for want of approval, 70 internal error, 130 interrupted.
    """
    app = ctx.ensure_object(AppContext)
    if config_file:
        app.config_file = config_file
    app.json = app.json or json_output
    app.verbose = verbose
    app.quiet = quiet
    setup_logging(verbose, quiet)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="drkit", obj=AppContext())


__all__ = ["ExitCode", "cli", "main"]
