"""``drkit ledger build|show|reconcile``: the compensation ledger from the command line."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path
from typing import Any

import click

from drkit.canonical import canonical_hash
from drkit.cli.common import emit, get_app, json_option
from drkit.config import Config
from drkit.errors import ConfigError, ExitCode, InputError
from drkit.ledger import (
    Ledger,
    LedgerSpec,
    Reconciliation,
    Window,
    compute_ledger,
    format_fen,
    ledger_document_bytes,
    load_spec,
    reconcile,
)
from drkit.ledger.model import MerchantId


def resolve_spec(config: Config | None, spec_file: Path | None) -> LedgerSpec:
    """--spec, else ``[ledger] spec`` in drkit.toml (relative to it), else the default."""
    if spec_file is not None:
        return load_spec(spec_file)
    if config is not None:
        value = config.ledger.get("spec")
        if value is not None:
            if not isinstance(value, str) or not value:
                raise ConfigError("must be the path of a ledger spec file",
                                  file=str(config.path), key="ledger.spec")
            return load_spec(config.base_dir / value)
    return load_spec(None)


def open_sqlite_source(config: Config, name: str) -> sqlite3.Connection:
    """Open a configured sqlite source's live database read-only."""
    source = config.source(name)
    if source.type != "sqlite" or source.path is None:
        raise InputError(f"source {name!r} is a {source.type} source; "
                         "'drkit ledger build --source NAME' reads sqlite sources")
    if not source.path.is_file():
        raise InputError(f"source {name!r}: database {source.path} does not exist")
    # mode=ro: the ledger must never write to production, not even a journal.
    return sqlite3.connect(f"{source.path.resolve().as_uri()}?mode=ro", uri=True)


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write the ledger: {exc}") from None


def _duration(window: Window) -> str:
    seconds = int((window.end - window.start).total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    parts = [f"{days} day{'s' if days != 1 else ''}"]
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if rest:
        parts.append(f"{rest} s")
    text = " ".join(parts)
    return text if len(parts) == 1 else f"{text} = {window.days} days"


def ledger_summary(ledger: Ledger) -> str:
    spec, totals = ledger.spec, ledger.totals
    cur = spec.currency
    lines = [
        f"incident       {spec.incident} (spec {spec.sha256[:12]})",
        f"merchants      {totals.merchants:,} ({totals.cash_merchants:,} cash, "
        f"{totals.traffic_merchants:,} traffic)",
        f"baseline       {spec.baseline.start_text} .. {spec.baseline.end_text} "
        f"{spec.time_zone} ({_duration(spec.baseline)}): {totals.baseline_orders:,} orders, "
        f"{format_fen(totals.baseline_revenue_fen)} {cur} after tax",
        f"outage         {spec.outage.start_text} .. {spec.outage.end_text} "
        f"{spec.time_zone} ({_duration(spec.outage)})",
        f"cash           {format_fen(totals.cash_fen)} {cur} "
        f"(provision {format_fen(spec.cap_fen)} {cur})",
        f"traffic plan   {totals.impressions:,} impressions in total",
        f"members        {totals.member_count:,}, balances "
        f"{format_fen(totals.balance_total_fen)} {cur}",
    ]
    if ledger.findings:
        lines.append(f"findings       {len(ledger.findings)}")
        lines.extend(f"  {f.code}: {f.message}" for f in ledger.findings[:20])
        if len(ledger.findings) > 20:
            lines.append(f"  ... and {len(ledger.findings) - 20} more (see --json)")
    else:
        lines.append("findings       none")
    return "\n".join(lines)


@click.group("ledger")
def ledger_group() -> None:
    """The compensation ledger: each merchant's compensation from pre-incident revenue."""


@ledger_group.command("build")
@click.option("--source", "source_name", required=True, metavar="NAME",
              help="A configured sqlite source (read-only).")
@click.option("--spec", "spec_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Ledger spec (default: [ledger] spec in drkit.toml, else the built-in "
                   "February 2020 spec).")
@click.option("--out", "-o", "--output", "out_file",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Write the ledger document (canonical JSON) here.")
@click.option("--store/--no-store", default=True, show_default=True,
              help="Sign the ledger and store it in the repository (journaled and "
                   "replicated like a snapshot), where drills reconcile against it.")
@json_option
def build_command(source_name: str, spec_file: Path | None, out_file: Path | None,
                  store: bool) -> None:
    """Compute the ledger from a source's live database and store it, signed, in the
    repository. Exit 1 when it has findings."""
    app = get_app()
    config = app.config
    spec = resolve_spec(config, spec_file)
    conn = open_sqlite_source(config, source_name)
    try:
        ledger = compute_ledger(conn, spec, progress=app.progress())
    finally:
        conn.close()
    document = ledger_document_bytes(ledger)
    if out_file is not None:
        write_atomically(out_file, document)
    data: dict[str, Any] = ledger.to_dict()
    data["source"] = source_name
    data["out"] = str(out_file) if out_file is not None else None
    stored = None
    if store:
        from drkit.ledger.store import store_ledger

        stored = store_ledger(config, source_name, ledger, now=app.clock.now())
        data["stored"] = {"key": stored.key, "size": stored.size}

    def text() -> str:
        out = ledger_summary(ledger)
        if out_file is not None:
            out += f"\nwrote {out_file} ({len(document):,} bytes)"
        if stored is not None:
            out += (f"\nstored in the repository as {stored.key} "
                    f"(signed, sealed to the recovery key, journaled)")
        return out

    emit(data, text)
    if ledger.findings:
        click.get_current_context().exit(int(ExitCode.FINDINGS))


def read_ledger(path: Path) -> Ledger:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such ledger file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    return Ledger.from_json(raw, source=str(path))


def _merchant_arg(text: str) -> MerchantId:
    # ASCII digits only ("²".isdigit() is true but int() refuses it), and no longer than any
    # real id, so int() never meets its 4,300-digit limit; anything else is a text id.
    return int(text) if re.fullmatch(r"-?[0-9]{1,18}", text) else text


@ledger_group.command("show")
@click.argument("ledger_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--merchant", "merchant", metavar="ID", help="Show one merchant's entry.")
@json_option
def show_command(ledger_file: Path, merchant: str | None) -> None:
    """Print a ledger document (from --out or the repository) as text or JSON."""
    ledger = read_ledger(ledger_file)
    if merchant is None:
        data = ledger.to_dict()
        data["document_sha256"] = canonical_hash(data)
        emit(data, lambda: ledger_summary(ledger))
        return
    entry = ledger.entry(_merchant_arg(merchant))
    if entry is None:
        raise InputError(f"{ledger_file}: no merchant {merchant!r} in the ledger")
    days = ledger.spec.baseline.days

    def text() -> str:
        rows = entry.to_dict()
        rows["daily_revenue_fen"] = f"{entry.baseline_revenue_fen} / {days}"
        width = max(len(k) for k in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows.items())

    emit(entry.to_dict(), text)


def reconciliation_text(result: Reconciliation, cur: str, limit: int) -> str:
    lines = [f"{result.reconciled:,} of {result.expected_merchants:,} merchants reconcile"]
    if result.passed:
        return lines[0]
    lines[0] += (f"; {len(result.mismatched):,} do not ({result.missing} missing, "
                 f"{result.extra} extra, {result.changed} changed), "
                 f"{format_fen(result.cash_at_stake_fen)} {cur} at stake")
    for m in result.mismatched[:limit]:
        if m.kind == "missing":
            detail = "in the stored ledger only"
        elif m.kind == "extra":
            detail = "in the recomputed ledger only"
        else:
            detail = ", ".join(f"{k} {_short(a)} -> {_short(b)}"
                               for k, (a, b) in m.differences.items())
        lines.append(f"  merchant {m.merchant_id}: {m.kind}: {detail}; cash at stake "
                     f"{format_fen(m.cash_at_stake_fen)} {cur}")
    if len(result.mismatched) > limit:
        lines.append(f"  ... and {len(result.mismatched) - limit:,} more")
    return "\n".join(lines)


def _short(value: Any) -> str:
    return "-" if value is None else str(value)


@ledger_group.command("reconcile")
@click.argument("expected_file", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("actual_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--limit", type=click.IntRange(0), default=100, show_default=True,
              help="List at most this many mismatched merchants.")
@json_option
def reconcile_command(expected_file: Path, actual_file: Path, limit: int) -> None:
    """Compare two ledger documents merchant by merchant. Exit 1 when any differ."""
    expected, actual = read_ledger(expected_file), read_ledger(actual_file)
    result = reconcile(expected, actual)
    emit(result.to_dict(limit=limit),
         lambda: reconciliation_text(result, expected.spec.currency, limit))
    if not result.passed:
        click.get_current_context().exit(int(ExitCode.FINDINGS))


COMMANDS = [ledger_group]
