"""``drkit keys init`` and ``drkit keys show``."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from drkit.approval.configpin import check_approval_section
from drkit.cli.common import emit, get_app, json_option
from drkit.config import Config
from drkit.errors import InputError, KeyFileError
from drkit.passphrase import check_new_passphrase
from drkit.repo import keys as keyfiles
from drkit.repo.keyhistory import record_anchor
from drkit.repo.writer import initialise_repository
from drkit.storage.base import Store
from drkit.storage.url import open_store

log = logging.getLogger(__name__)


def read_passphrase(passphrase_file: Path | None, *, confirm: bool = False) -> str:
    """--passphrase-file, then $DRKIT_RECOVERY_PASSPHRASE, then a prompt on a terminal."""
    if passphrase_file is not None:
        try:
            text = passphrase_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{passphrase_file}: cannot read passphrase file: "
                             f"{exc.strerror}") from None
        value = text.rstrip("\r\n")
    elif os.environ.get(keyfiles.PASSPHRASE_ENV):
        value = os.environ[keyfiles.PASSPHRASE_ENV]
    elif sys.stdin.isatty():
        value = click.prompt("Recovery passphrase", hide_input=True,
                             confirmation_prompt=confirm, err=True)
    else:
        raise InputError(f"no recovery passphrase: set {keyfiles.PASSPHRASE_ENV} or pass "
                         "--passphrase-file")
    if not value:
        raise InputError("the recovery passphrase is empty")
    if confirm:  # a new passphrase: it will guard the key that decrypts every backup
        check_new_passphrase(value, what="recovery passphrase", context=("drkit", "recovery"))
    return value


passphrase_file_option = click.option(
    "--passphrase-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help=f"Read the recovery passphrase from this file (else ${keyfiles.PASSPHRASE_ENV} "
         "or a prompt).")


@click.group("keys")
def keys_group() -> None:
    """Create and show the repository keys."""


@keys_group.command("init")
@passphrase_file_option
@json_option
def keys_init(passphrase_file: Path | None) -> None:
    """Create the keys and initialise the repository in the primary region."""
    app = get_app()
    config = app.config
    config_text = config.path.read_text(encoding="utf-8")
    # Refuse an [approval] table the gate could not use before anything is created.
    check_approval_section(config.raw, where=str(config.path))
    passphrase = read_passphrase(passphrase_file, confirm=True)
    made = keyfiles.init_keys(config.keys_dir, passphrase)
    region = config.primary_region
    store = open_store(region.url, base_dir=config.base_dir, clock=app.clock)
    initialise_repository(store, region, made, now=app.clock.now(),
                          cache_dir=config.cache_dir)
    # This host's trust anchor for the writer key history (docs/keys.md): the key it
    # created, not whatever key file lies in the folder later.
    record_anchor(config, made.repository_id, made.signing_key.public_key(),
                  now=app.clock.now(), how="keys init")
    pinned = _pin_initial_config(config, store, config_text)
    prints = keyfiles.public_fingerprints(config)
    emit({**prints, "keys_dir": str(config.keys_dir), "store": store.url,
          "pinned_config": pinned},
         f"created keys in {config.keys_dir} and repository {made.repository_id} in "
         f"{region.name} ({store.url})\n"
         + (f"pinned {config.path} as pinned config {pinned} (later changes: "
            "'drkit config apply NEW.toml')\n" if pinned else "")
         + f"writer   {prints['writer']}\nrecovery {prints['recovery']}\n"
         f"move {config.keys_dir / keyfiles.RECOVERY_KEY_FILE} to the recovery team's "
         "offline storage: writers do not need it")


def _pin_initial_config(config: Config, store: Store, text: str) -> int | None:
    """Pin drkit.toml as it is now, right after the repository's first journal leaf: from
    here on the gate takes quorum, expiry and production sources from this pinned copy,
    and 'config apply' compares with it, never with the editable live file."""
    from drkit.approval.configpin import journal_entries, pin, pinned_versions
    from drkit.approval.identity import actor

    app = get_app()
    trusted = keyfiles.load_trusted_writer_keys(config)
    entries = journal_entries(store, keyfiles.read_repository_id(store, trusted), trusted)
    if pinned_versions(store, entries):
        return None  # already pinned (keys init run again on an existing repository)
    if len(entries) != 1:
        log.warning("%s: repository has history but no pinned configuration; pin this "
                    "drkit.toml with an approved 'drkit config apply NEW.toml'", store.url)
        return None
    return pin(config, store, text, now=app.clock.now(), request_id=None,
               actor={"bootstrap": "keys init", **actor()}, clock=app.clock).number


@keys_group.command("show")
@json_option
def keys_show() -> None:
    """Print the repository id and the public key fingerprints."""
    config = get_app().config
    prints = keyfiles.public_fingerprints(config)
    recovery_here = (config.keys_dir / keyfiles.RECOVERY_KEY_FILE).exists()
    prints_json = {**prints, "recovery_private_key_present": recovery_here}
    if not (config.keys_dir / keyfiles.WRITER_KEY_FILE).exists():
        raise KeyFileError(f"{config.keys_dir / keyfiles.WRITER_KEY_FILE}: not found")
    emit(prints_json,
         f"repository {prints['repository_id']}\n"
         f"writer     {prints['writer']}  {prints['writer_public_key']}\n"
         f"recovery   {prints['recovery']}  {prints['recovery_public_key']}"
         + ("\nnote: the recovery private key is on this host" if recovery_here else ""))


@keys_group.command("rotate")
@click.option("--prepare", is_flag=True,
              help="Create the next writer key and print the request approvers must sign.")
@click.option("--approval", "approval_id", metavar="ID", default=None,
              help="An approved 'keys rotate' request for the prepared key.")
@json_option
def keys_rotate(prepare: bool, approval_id: str | None) -> None:
    """Replace the writer signing key: a dangerous operation (two other people approve the
    exact new public key; exit 3 without). The old public key stays trusted for the
    history it signed."""
    from drkit.approval import keys_plan, require_approval
    from drkit.repo.encoding import ed25519_text

    app = get_app()
    config = app.config
    new_key = ed25519_text(keyfiles.prepare_writer_rotation(config.keys_dir))
    plan = keys_plan("rotate", {"public_keys": [new_key]})
    if prepare:
        emit({"prepared": new_key, "plan": plan},
             f"next writer key {new_key}\n"
             f"request it: drkit request keys rotate --public-key {new_key} --reason TEXT\n"
             "then, once approved: drkit keys rotate --approval ID")
        return
    # The gate raises ApprovalRequired (exit 3) unless an approved, unused request names
    # exactly this new public key.
    grant = require_approval("keys", plan, plan, config=config, clock=app.clock,
                             approval_id=approval_id)
    # Journal the rotation first, signed by the old key under a checkpoint the old key
    # signs: that record, not the key files, is what makes the new key a writer
    # everywhere. A crash before the files are swapped leaves the old key a writer still.
    from drkit.repo.journal_writer import append_to_primary
    from drkit.repo.keyhistory import rotation_entry

    repository_id, _id_key = keyfiles.load_id_key(config)
    append_to_primary(config, [rotation_entry(
        repository_id, keyfiles.load_writer_signing_key(config),
        keyfiles.prepare_writer_rotation(config.keys_dir), approval=grant.request_id,
        now=app.clock.now())], now=app.clock.now(), clock=app.clock)
    old, new = keyfiles.complete_writer_rotation(config.keys_dir)
    emit({"old": old, "new": new, "approval": grant.request_id,
          "approved_by": list(grant.approved_by)},
         f"writer key rotated (approved by {', '.join(grant.approved_by)}): new {new}; the "
         "rotation is journaled, so every host that verifies the repository trusts the "
         "new key and keeps trusting the old one for the history it signed.")


COMMANDS = [keys_group]
