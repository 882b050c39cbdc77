"""``drkit demo``: the whole story on the embedded default, with the real commands' output.

Three local folders play Beijing (primary), Shanghai (archive-class cold copy) and Nanjing;
a generated SQLite database plays production. The demo snapshots, builds the compensation
ledger, replicates, then plays the insider: deletes production and the primary copy and
damages the Nanjing copy on disk. Verify finds exactly that, a drill from Shanghai restores
and reconciles every merchant, and a drill from Nanjing fails naming what is wrong.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import click

from drkit.cli.common import AppContext, emit, get_app, json_option
from drkit.cli.setup import CONFIG_TEMPLATE
from drkit.errors import InputError

MARKER = ".drkit-demo"
# The demo's recovery passphrase is public on purpose: the demo data is generated.
DEMO_PASSPHRASE = "demo passphrase, not for production"  # noqa: S105


def _reset(directory: Path) -> None:
    if directory.exists() and any(directory.iterdir()):
        if not (directory / MARKER).exists():
            raise InputError(f"{directory}: not empty and not a drkit demo folder; "
                             "choose another --dir")
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text("created by drkit demo; safe to delete\n")


class _Story:
    """Runs drkit commands in-process and shows them as a user would see them."""

    def __init__(self, app: AppContext, config: Path) -> None:
        self.app = app
        self.config = config
        self.steps: list[dict[str, Any]] = []

    def say(self, text: str) -> None:
        if not self.app.json:
            click.echo(f"\n## {text}")

    def run(self, *args: str, expect: int = 0) -> int:
        from drkit.cli.main import cli

        if not self.app.json:
            click.echo(f"$ drkit {' '.join(args)}")
        sub = AppContext(clock=self.app.clock, config_file=str(self.config),
                         quiet=self.app.quiet or self.app.json, json=self.app.json)
        started = time.monotonic()
        code = 0
        captured = io.StringIO()
        # Under --json each step prints its own JSON document; it is captured into the
        # demo's one document instead of going to stdout.
        redirect = (contextlib.redirect_stdout(captured) if self.app.json
                    else contextlib.nullcontext())
        with redirect:
            try:
                # Without standalone mode click returns the exit code a command asked for.
                rv = cli.main(args=list(args), prog_name="drkit", standalone_mode=False,
                              obj=sub)
                code = rv if isinstance(rv, int) else 0
            except click.exceptions.Exit as exc:
                code = exc.exit_code
            except click.ClickException as exc:
                exc.show()
                code = exc.exit_code
        seconds = time.monotonic() - started
        step: dict[str, Any] = {"command": ["drkit", *args], "exit_code": code,
                                "expected": expect, "seconds": round(seconds, 3)}
        if self.app.json:
            try:
                step["result"] = json.loads(captured.getvalue())
            except ValueError:
                step["output"] = captured.getvalue()
        else:
            click.echo(f"(exit {code})")
        self.steps.append(step)
        return code


@click.command("demo")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default="demo-run", show_default=True,
              help="Scratch folder for the demo (recreated on every run).")
@click.option("--scale", type=click.IntRange(1, 100), default=1, show_default=True,
              help="Data-set size multiplier (1: 3,000 merchants, ~125,000 orders).")
@json_option
def demo_command(directory: Path, scale: int) -> None:
    """Play the insider disaster on local folders and recover from it.

    Snapshot, ledger, replicate to three local regions; then delete production and the
    primary copy and damage one cold copy; then verify, and drill from each surviving
    region. Exit 0 when the story turns out as it should.
    """
    from drkit.demo_data import generate_shop_db

    app = get_app()
    directory = directory.resolve()
    _reset(directory)
    config = directory / "drkit.toml"
    # The demo keeps its verify state, audit host key and spool inside its own folder.
    config.write_text(CONFIG_TEMPLATE + '\n[verify]\nstate_dir = ".drkit/state"\n',
                      encoding="utf-8")
    for sub in ("keys", "data/uploads/invoices", "regions"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    (directory / "keys").chmod(0o700)
    secret = directory / "keys" / "demo-passphrase"
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(DEMO_PASSPHRASE + "\n")
    pw = ("--passphrase-file", str(secret))
    story = _Story(app, config)

    story.say(f"Production: a merchant database and uploaded files in {directory / 'data'}")
    stats = generate_shop_db(directory / "data/shop.db", scale=scale)
    for i in range(20 * scale):
        (directory / f"data/uploads/invoices/{i:04d}.txt").write_text(
            f"invoice {i}\n" * (50 + i))
    if not app.json:
        click.echo(f"{stats.merchants:,} merchants, {stats.members:,} members, "
                   f"{stats.orders:,} orders in February 2020")

    story.say("Keys, then the daily snapshot, the compensation ledger and the cold copies")
    story.run("keys", "init", *pw)
    story.run("snapshot")
    story.run("ledger", "build", "--source", "shop")
    story.run("replicate")
    # The demo's verifier is a new host: its first verify is a first contact, said aloud.
    story.run("verify", "--all", "--accept-first-contact")

    story.say("The insider: delete production, the primary copy, and damage Nanjing on disk")
    os.remove(directory / "data/shop.db")
    shutil.rmtree(directory / "regions/beijing")
    nanjing = directory / "regions/nanjing"
    packs = sorted((nanjing / "packs").rglob("*"), key=lambda p: p.stat().st_size
                   if p.is_file() else -1)
    victim = packs[-1]
    data = bytearray(victim.read_bytes())
    for i in range(0, len(data), 4096):  # same size, different bytes
        data[i] ^= 0x5A
    victim.write_bytes(bytes(data))
    ledgers = sorted((nanjing / "ledgers").iterdir())
    for path in ledgers:
        path.unlink()
    if not app.json:
        click.echo("rm data/shop.db; rm -r regions/beijing; "
                   f"overwrote {victim.relative_to(directory)}; "
                   f"deleted {', '.join(str(p.relative_to(directory)) for p in ledgers)}")

    story.say("Detect: verify every region from this host's trusted state")
    story.run("verify", "--all", expect=1)
    story.say("Recover: a drill from the Shanghai cold copy alone")
    story.run("drill", "--region", "shanghai", *pw)
    story.say("A drill from the damaged Nanjing copy must fail and say why")
    story.run("drill", "--region", "nanjing", *pw, expect=1)

    ok = all(s["exit_code"] == s["expected"] for s in story.steps)
    reports = sorted((directory / "drill-reports").glob("*-shanghai.json"))
    summary: dict[str, Any] = {"dir": str(directory), "story_as_expected": ok,
                               "data": stats.to_dict(), "steps": story.steps}
    if reports:
        report = json.loads(reports[-1].read_text())
        summary["shanghai_drill"] = {k: report.get(k) for k in (
            "passed", "rto_seconds", "rpo_seconds", "reconciled", "ledger")}

    def text() -> str:
        lines = ["", "## Outcome"]
        drill = summary.get("shanghai_drill") or {}
        ledger = drill.get("ledger") or {}
        if drill:
            cash = int(ledger.get("cash_fen") or 0)
            lines.append(f"Recovered from Shanghai: {drill.get('reconciled'):,} merchants "
                         f"reconciled, RTO {drill.get('rto_seconds')}s, RPO "
                         f"{drill.get('rpo_seconds')}s, compensation {cash // 100:,}."
                         f"{cash % 100:02d} CNY cash")
        lines.append("story as expected" if ok else "story NOT as expected: see the exit "
                     "codes above")
        return "\n".join(lines)

    emit(summary, text)
    if not ok:
        click.get_current_context().exit(1)


COMMANDS = [demo_command]
