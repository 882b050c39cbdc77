"""``drkit thaw``: make an archive-class region readable (metadata, then a snapshot's data)."""

from __future__ import annotations

import click

from drkit.approval.proof import live_objects
from drkit.cli.common import emit, get_app, json_option
from drkit.journal import read_log
from drkit.numbers import THAW_SECONDS, Number
from drkit.repo import keys as keyfiles
from drkit.repo.repository import Repository
from drkit.storage.url import open_store
from drkit.thaw import thaw_objects


@click.command("thaw")
@click.argument("snapshot", required=False)
@click.option("--region", required=True, metavar="NAME", help="The region to thaw.")
@click.option("--timeout", type=THAW_SECONDS, default=6 * 3600.0,
              show_default=True, help="Seconds to wait for the thaw to complete.")
@click.option("--poll", type=Number(0.1, 3600), default=30.0,
              show_default=True, help="Seconds between checks while waiting.")
@click.option("--no-wait", is_flag=True,
              help="Request the thaw and return at once (rerun to see whether it is done).")
@json_option
def thaw_command(snapshot: str | None, region: str, timeout: float, poll: float,
                 no_wait: bool) -> None:
    """Thaw an archive-class region: every metadata object (manifests, indexes, session
    keys, ledgers), and with SNAPSHOT (an id prefix or 'latest') the packs it needs, so a
    restore or drill can read it. Exit 1 if the thaw did not complete within --timeout."""
    app = get_app()
    config = app.config
    reg = config.region(region)
    store = open_store(reg.url, base_dir=config.base_dir, clock=app.clock)
    trusted = keyfiles.load_trusted_writer_keys(config)
    repo_config = keyfiles.read_repository_config(store, trusted)
    view = read_log(store, repo_config.origin, trusted)
    view.raise_for_errors(store.url)
    live = live_objects(store, repo_config.repository_id, view.entries, region=region)
    progress = app.progress()
    meta = thaw_objects(store, [k for k in live if not k.startswith("packs/")],
                        what="metadata", timeout=timeout, poll=poll, wait=not no_wait,
                        progress=progress)
    data: dict[str, object] = {"region": region, "metadata": meta.to_dict()}
    lines = [f"{region}: metadata: {len(meta.requested)} archived objects, "
             f"{len(meta.ready)} readable, {len(meta.waiting)} still thawing"]
    if snapshot is not None and not meta.waiting:
        snap = Repository.open(store, trusted, region=region).find_snapshot(snapshot)
        wanted = set(snap.manifest.packs)
        packs = thaw_objects(store, [k for k in live if k.startswith("packs/")
                                     and k.rsplit("/", 1)[-1] in wanted],
                             what="packs", timeout=timeout, poll=poll, wait=not no_wait,
                             progress=progress)
        data.update(snapshot=snap.id, packs=packs.to_dict())
        lines.append(f"{region}: snapshot {snap.short_id}: {len(packs.requested)} archived "
                     f"packs, {len(packs.ready)} readable, {len(packs.waiting)} still thawing")
    elif snapshot is not None:
        lines.append(f"{region}: rerun when the metadata is readable to thaw the packs of "
                     f"{snapshot}")
    emit(data, "\n".join(lines))


COMMANDS = [thaw_command]
