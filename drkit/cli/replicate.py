"""``drkit replicate``: copy the repository to every non-primary region."""

from __future__ import annotations

from typing import Any

import click

from drkit.cli.common import emit, get_app, human_bytes, json_option
from drkit.config import Config, RegionConfig
from drkit.errors import ExitCode, StorageError, UsageError
from drkit.replicate import DEFAULT_WORKERS, RegionReplication, replicate
from drkit.storage.base import Store
from drkit.storage.url import open_store
from drkit.verify.context import repository_origin, trusted_writer_keys
from drkit.verify.findings import Finding, sort_findings


def target_regions(config: Config, names: tuple[str, ...]) -> list[RegionConfig]:
    if not names:
        return [r for r in config.regions.values() if not r.primary]
    chosen = []
    for name in names:
        region = config.region(name)
        if region.primary:
            raise UsageError(f"--region {name}: that is the primary region; "
                             "replicate copies from it")
        chosen.append(region)
    return chosen


@click.command("replicate")
@click.option("--region", "region_names", multiple=True, metavar="NAME",
              help="Only this region (repeatable). Default: every non-primary region.")
@click.option("--workers", type=click.IntRange(1, 64), default=DEFAULT_WORKERS,
              show_default=True, help="Parallel copies per region.")
@json_option
def replicate_command(region_names: tuple[str, ...], workers: int) -> None:
    """Copy every logged object each region lacks, then the journal.

    Never overwrites: a region holding different bytes under a logged key is reported
    (exit 1). Resumable: run it again after an interruption.
    """
    app = get_app()
    config = app.config
    now = app.clock.now()
    regions = target_regions(config, region_names)
    trusted = trusted_writer_keys(config)
    primary_cfg = config.primary_region
    primary = open_store(primary_cfg.url, base_dir=config.base_dir, clock=app.clock)
    origin = repository_origin([(primary_cfg.name, primary)], trusted)
    targets: list[tuple[RegionConfig, Store]] = []
    unavailable: list[RegionReplication] = []
    for region in regions:
        try:
            targets.append((region, open_store(region.url, base_dir=config.base_dir,
                                               clock=app.clock)))
        except StorageError as exc:
            res = RegionReplication(region=region.name)
            res.findings.append(Finding("critical", region.name, "region-unavailable",
                                        f"cannot open the region: {exc}"))
            unavailable.append(res)
    view, results = replicate(primary, targets, origin=origin, trusted=trusted, now=now,
                              progress=app.progress(), workers=workers,
                              signer=_writer_signer(config))
    results += unavailable
    findings = sort_findings([f for r in results for f in r.findings])
    data = {"origin": origin, "primary": primary_cfg.name, "log_size": view.size,
            "regions": {r.region: r.to_dict() for r in results},
            "findings": [f.to_dict() for f in findings]}

    def text() -> str:
        lines = []
        for r in results:
            lines.append(
                f"{r.region}: copied {r.objects_copied} objects ({human_bytes(r.bytes_copied)})"
                f" and {r.journal_objects_copied} journal objects; {r.objects_present} "
                f"already there; log {r.size_before} -> {r.size_after} of {view.size}")
        lines += [f.line() for f in findings]
        if findings:
            lines.append(f"{len(findings)} finding{'s' if len(findings) != 1 else ''}")
        return "\n".join(lines)

    emit(data, text)
    for store in [primary] + [s for _r, s in targets]:
        store.close()
    if findings:
        click.get_current_context().exit(int(ExitCode.FINDINGS))


COMMANDS = [replicate_command]


def _writer_signer(config: Config) -> Any:
    """The writer key when this host holds it (it signs new regions' identity objects);
    None on a host that only copies."""
    from drkit.errors import KeyFileError
    from drkit.repo.keys import load_writer_signing_key

    if not (config.keys_dir / "writer.key").is_file():
        return None
    try:
        return load_writer_signing_key(config)
    except KeyFileError:
        return None
