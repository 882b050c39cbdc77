"""``drkit approvers``, ``drkit request``, ``approve``, ``deny``, ``requests``, ``execute``,
``delete-object`` and ``config apply``: the two-person rule (docs/approval.md)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from drkit.approval import gate, operations
from drkit.approval.identity import actor
from drkit.approval.keys import (
    PASSPHRASE_ENV,
    ApproverKey,
    enroll,
    find_key_file,
    read_enrollment,
    unlock,
)
from drkit.approval.registry import write_local_copy
from drkit.approval.requests import (
    load_request,
    new_request,
    put_decision,
    put_request,
    resolve_id,
    sign_decision,
)
from drkit.audit import record_event
from drkit.cli.common import emit, get_app, json_option
from drkit.errors import ApprovalRequired, DrkitError, InputError, IntegrityError
from drkit.numbers import AGE_DAYS, KEEP_LAST
from drkit.passphrase import check_new_passphrase

PassphraseFile = click.Path(dir_okay=False, path_type=Path)


# -- helpers ------------------------------------------------------------------------------------
def read_approver_passphrase(passphrase_file: Path | None, *, confirm: bool = False) -> str:
    """--passphrase-file, then $DRKIT_APPROVER_PASSPHRASE, then a prompt on a terminal."""
    if passphrase_file is not None:
        try:
            value = passphrase_file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise InputError(f"{passphrase_file}: cannot read passphrase file: "
                             f"{exc.strerror}") from None
    elif os.environ.get(PASSPHRASE_ENV):
        value = os.environ[PASSPHRASE_ENV]
    elif sys.stdin.isatty():
        value = click.prompt("Approver passphrase", hide_input=True,
                             confirmation_prompt=confirm, err=True)
    else:
        raise InputError(f"no approver passphrase: set {PASSPHRASE_ENV} or pass "
                         "--passphrase-file")
    if not value:
        raise InputError("the approver passphrase is empty")
    if confirm:  # a new passphrase: it guards a signature that can release a deletion
        check_new_passphrase(value, what="approver passphrase", context=("drkit", "approver"))
    return value


def signer_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--passphrase-file", type=PassphraseFile,
                        help=f"File holding the approver passphrase (else ${PASSPHRASE_ENV} "
                        "or a prompt).")(func)
    func = click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path),
                        help="Approver key file (default: the one of --as in "
                        "KEYS/approvers/).")(func)
    func = click.option("--as", "as_name", metavar="NAME",
                        help="Act as this enrolled person.")(func)
    return func


def unlock_signer(as_name: str | None, key_file: Path | None,
                  passphrase_file: Path | None, *, required: bool) -> ApproverKey | None:
    app = get_app()
    if key_file is None and as_name is None:
        if required:
            raise InputError("say who you are: --as NAME (or --key FILE)")
        return None
    path = key_file or find_key_file(app.config.keys_dir, str(as_name))
    key = unlock(path, read_approver_passphrase(passphrase_file))
    if as_name is not None and key.name != as_name:
        raise InputError(f"{path}: is the key of {key.name!r}, not {as_name!r}")
    return key


def audit(action: str, result: str, params: Mapping[str, Any] | None = None,
          details: Mapping[str, Any] | None = None) -> None:
    app = get_app()
    record_event(app.config, action=action, result=result, params=params, details=details,
                 clock=app.clock)


def _context() -> gate.ApprovalContext:
    app = get_app()
    return gate.ApprovalContext.open(app.config, app.clock, app.progress())


def refused(action: str, exc: DrkitError, params: Mapping[str, Any]) -> None:
    """Log a refusal in the audit log, then let the error reach the user (exit 3)."""
    audit(action, "refused", params, {"reason": str(exc)})


# -- approvers ------------------------------------------------------------------------------------
@click.group("approvers")
def approvers_group() -> None:
    """Enrol approvers and show the approver registry pinned in the repository."""


@approvers_group.command("enroll")
@click.argument("name")
@click.option("--role", "roles", multiple=True, help="Role of this person (repeatable).")
@click.option("--passphrase-file", type=PassphraseFile,
              help=f"File holding the new passphrase (else ${PASSPHRASE_ENV} or a prompt).")
@json_option
def approvers_enroll(name: str, roles: tuple[str, ...], passphrase_file: Path | None) -> None:
    """Create NAME's approver key (private half sealed under their passphrase) and write the
    signed enrolment statement to hand to whoever maintains the registry."""
    app = get_app()
    passphrase = read_approver_passphrase(passphrase_file, confirm=True)
    enrollment, key_path, pub_path = enroll(app.config.keys_dir, name, passphrase,
                                            roles=roles, now=app.clock.now())
    audit("approvers.enroll", "ok", {"name": name, "roles": list(roles)},
          {"fingerprint": enrollment.fingerprint})
    emit({"name": name, "public_key": enrollment.key, "fingerprint": enrollment.fingerprint,
          "key_file": str(key_path), "enrollment": str(pub_path)},
         f"{enrollment.key}\nfingerprint {enrollment.fingerprint}\n"
         f"private key (sealed): {key_path}\nenrolment to send: {pub_path}")


@approvers_group.command("bootstrap")
@click.argument("enrollments", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@json_option
def approvers_bootstrap(enrollments: tuple[Path, ...]) -> None:
    """Pin the first approver registry (one time only, on the set-up host where the writer
    key is: it is anchored in the repository journal; every attempt is audited)."""
    params = {"enrollments": [str(p) for p in enrollments]}
    try:
        ctx = _context()
        people = [read_enrollment(p) for p in enrollments]
        minimum = max(gate.quorum_for(ctx, op) for op in operations.OPERATIONS) + 1
        version = gate.bootstrap_registry(ctx, people, min_people=minimum, who=actor())
        gate.load_registry_chain(ctx)  # record this host's view of version 1
    except (ApprovalRequired, IntegrityError) as exc:
        refused("approvers.bootstrap", exc, params)
        raise
    except DrkitError as exc:
        audit("approvers.bootstrap", "error", params, {"error": str(exc)})
        raise
    path = write_local_copy(ctx.config, version)
    audit("approvers.bootstrap", "ok", params,
          {"registry_version": 1, "sha256": version.sha256,
           "approvers": [e.name for e in version.approvers]})
    emit(version.summary(),
         f"pinned approver registry version 1 (sha256 {version.sha256}) with "
         f"{len(version.people())} people, anchored in the repository journal; local copy "
         f"{path}\nrecord this hash somewhere the approvers can check it")


@approvers_group.command("show")
@click.option("--write-local", is_flag=True,
              help="Rewrite the local copy from the pinned registry.")
@json_option
def approvers_show(write_local: bool) -> None:
    """The approver registry in force (pinned in the repository) and its history."""
    ctx = _context()
    versions = gate.load_registry_chain(ctx)
    if not versions:
        _no_registry_is_a_setup_problem(ctx)
    if write_local:
        write_local_copy(ctx.config, versions[-1])
    else:
        gate.current_registry(ctx)
    current = versions[-1]

    def text() -> str:
        lines = [f"approver registry version {current.number} (sha256 {current.sha256})"]
        for e in current.approvers:
            roles = f" [{', '.join(e.roles)}]" if e.roles else ""
            lines.append(f"  {e.name:<16} {e.fingerprint}{roles}")
        for v in versions:
            how = v.authorized_by
            lines.append(f"  v{v.number} {v.doc.get('created')} "
                         + (f"bootstrap by {how['bootstrap'].get('os_user')}@"
                            f"{how['bootstrap'].get('host')}" if "bootstrap" in how
                            else f"request {str(how.get('request'))[:12]}"))
        return "\n".join(lines)

    emit({"current": current.summary(), "history": [v.summary() for v in versions]}, text)


# -- requests -------------------------------------------------------------------------------------
def file_request(operation: str, params: dict[str, Any], reason: str, as_name: str | None,
                 key_file: Path | None, passphrase_file: Path | None) -> None:
    ctx = _context()
    gate.current_registry(ctx)
    requester = unlock_signer(as_name, key_file, passphrase_file, required=False)
    plan = operations.get_operation(operation).plan(ctx, params)
    request = new_request(operation=operation, params=params, plan=plan,
                          repository_id=ctx.repository_id, requester=requester,
                          actor=actor(), reason=reason, now=ctx.now(),
                          expires_in=gate.expiry(ctx),
                          quorum=gate.quorum_for(ctx, operation))
    put_request(ctx.store, request)
    quorum = gate.required_quorum(ctx, request)
    audit("approval.request", "ok", {"operation": operation, **params},
          {"request": request.id, "plan_sha256": request.plan_sha256, "reason": reason,
           "requester": request.requester_name})
    emit({"id": request.id, "operation": operation, "params": params, "plan": plan,
          "plan_sha256": request.plan_sha256, "expires": request.doc["expires"],
          "quorum": quorum},
         f"request {request.id}\n{operation}: {describe_plan(operation, plan)}\n"
         f"needs {quorum} approvals by enrolled people other than the requester before "
         f"{request.doc['expires']}: drkit approve {request.id[:12]} --as NAME")


def _no_registry_is_a_setup_problem(ctx: gate.ApprovalContext) -> None:
    """Reading approval state before any registry exists: exit 2 (a set-up step is
    missing), not 3 (nothing was refused)."""
    try:
        gate.current_registry(ctx)
    except gate.RegistryMissing as exc:
        raise InputError(str(exc)) from None


def _nothing_to_do(operation: str, plan: Mapping[str, Any]) -> bool:
    """A prune that would forget and delete nothing needs no approvals: say so (exit 0)
    instead of asking two people to sign an empty plan."""
    if operation != "prune" or plan["forget"] or plan["delete"]:
        return False
    emit({"operation": operation, "plan": dict(plan), "nothing_to_do": True},
         f"nothing to prune: no snapshot beyond the newest {plan['keep_last']} is older than "
         f"{plan['older_than_days']:g} days and nothing unneeded is stored"
         + (f" ({len(plan['retained'])} objects are still under lock)" if plan["retained"]
            else ""))
    return True


def describe_plan(operation: str, plan: Mapping[str, Any]) -> str:
    if operation == "prune":
        size = sum(int(i["size"]) for i in plan["delete"])
        return (f"forget {len(plan['forget'])} snapshot(s), delete {len(plan['delete'])} "
                f"object(s) ({size} bytes) in {plan['region']}, keep {len(plan['keep'])}")
    if operation == "delete-object":
        return f"delete {plan['region']}:{plan['key']} ({plan['size']} bytes)"
    if operation == "config-apply":
        changes = ", ".join(_change_text(c) for c in plan["changes"]) or "no dangerous change"
        return f"apply config {plan['new_sha256'][:12]} over {plan['baseline']}: {changes}"
    if operation == "approvers":
        added = ", ".join(a["name"] for a in plan["added"]) or "nobody"
        return (f"registry version {plan['registry']['registry_version']}: add {added}; "
                f"remove {', '.join(plan['removed']) or 'nobody'}")
    return ", ".join(f"{k}={v}" for k, v in sorted(plan.items()))


def _change_text(change: Mapping[str, Any]) -> str:
    rest = ", ".join(f"{k}={v}" for k, v in change.items() if k != "change")
    return f"{change['change']} ({rest})"


reason_option = click.option("--reason", required=True, help="Why this must happen.")


@click.group("request")
def request_group() -> None:
    """File an approval request for a dangerous operation (its exact plan is computed now)."""


@request_group.command("prune")
@click.option("--keep-last", type=KEEP_LAST, default=None, help="Always keep the newest N (1).")
@click.option("--older-than-days", type=AGE_DAYS, default=None,
              help="Forget snapshots older than this (default: the primary's retention_days).")
@reason_option
@signer_options
@json_option
def request_prune(keep_last: int | None, older_than_days: float | None, reason: str,
                  as_name: str | None, key_file: Path | None,
                  passphrase_file: Path | None) -> None:
    """Request a prune."""
    app = get_app()
    params = operations.prune_params(app.config.primary_region.retention_days,
                                     keep_last=keep_last, older_than_days=older_than_days)
    file_request("prune", params, reason, as_name, key_file, passphrase_file)


@request_group.command("delete-object")
@click.argument("region")
@click.argument("key")
@reason_option
@signer_options
@json_option
def request_delete_object(region: str, key: str, reason: str, as_name: str | None,
                          key_file: Path | None, passphrase_file: Path | None) -> None:
    """Request deleting KEY in REGION."""
    file_request("delete-object", {"region": region, "key": key}, reason, as_name, key_file,
                 passphrase_file)


@request_group.command("config-apply")
@click.argument("new_toml", type=click.Path(dir_okay=False, path_type=Path))
@reason_option
@signer_options
@json_option
def request_config_apply(new_toml: Path, reason: str, as_name: str | None,
                         key_file: Path | None, passphrase_file: Path | None) -> None:
    """Request applying NEW_TOML (removing a region, shortening retention, ...)."""
    file_request("config-apply", operations.config_apply_params(new_toml), reason, as_name,
                 key_file, passphrase_file)


@request_group.command("approvers")
@click.option("--add", "add", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Enrolment file of a person (or key) to add.")
@click.option("--remove", "remove", multiple=True, metavar="NAME|FINGERPRINT",
              help="Person (every key of theirs) or one key to remove.")
@reason_option
@signer_options
@json_option
def request_approvers(add: tuple[Path, ...], remove: tuple[str, ...], reason: str,
                      as_name: str | None, key_file: Path | None,
                      passphrase_file: Path | None) -> None:
    """Request a change of the approver registry."""
    params = operations.approvers_params([read_enrollment(p) for p in add], list(remove))
    file_request("approvers", params, reason, as_name, key_file, passphrase_file)


@request_group.command("restore-production")
@click.argument("snapshot")
@click.option("--to", "target", required=True, help="The production target.")
@click.option("--source", required=True, help="The source being restored.")
@reason_option
@signer_options
@json_option
def request_restore(snapshot: str, target: str, source: str, reason: str,
                    as_name: str | None, key_file: Path | None,
                    passphrase_file: Path | None) -> None:
    """Request restoring SNAPSHOT into a production target (run by 'drkit restore SNAPSHOT
    --to TARGET --approval ID')."""
    from drkit.repo.keys import load_trusted_writer_keys
    from drkit.repo.repository import Repository

    ctx = _context()
    snap = Repository.open(ctx.store, load_trusted_writer_keys(ctx.config),
                           region=ctx.config.primary).find_snapshot(snapshot)
    params = operations.restore_production_plan(snap.id, target, source)
    file_request("restore-production", params, reason, as_name, key_file, passphrase_file)


@request_group.command("keys")
@click.argument("action", type=click.Choice(["rotate", "add"]))
@click.option("--public-key", "public_keys", multiple=True, required=True,
              help="The new public key(s), drkit-ed25519:... or drkit-x25519:...")
@reason_option
@signer_options
@json_option
def request_keys(action: str, public_keys: tuple[str, ...], reason: str, as_name: str | None,
                 key_file: Path | None, passphrase_file: Path | None) -> None:
    """Request rotating or adding keys (a rotation is run by 'drkit keys rotate --approval
    ID')."""
    params = operations.keys_plan(action, {"public_keys": sorted(public_keys)})
    file_request("keys", params, reason, as_name, key_file, passphrase_file)


@request_group.command("cloud-expire")
@click.option("--as-of", "as_of", required=True, metavar="TIME",
              help="Retention is computed as of this ISO 8601 time (run with the same "
                   "--as-of by 'drkit cloud expire').")
@reason_option
@signer_options
@json_option
def request_cloud_expire(as_of: str, reason: str, as_name: str | None, key_file: Path | None,
                         passphrase_file: Path | None) -> None:
    """Request deleting drkit's cloud snapshots past retention (run by 'drkit cloud
    expire --as-of TIME')."""
    from drkit.clock import parse_iso, utc_iso

    try:
        when = parse_iso(as_of)
    except ValueError as exc:
        raise InputError(f"--as-of: {exc}") from None
    file_request("cloud-expire", {"as_of": utc_iso(when)}, reason, as_name, key_file,
                 passphrase_file)


# -- decisions ----------------------------------------------------------------------------------
def decide(request_id: str, verdict: str, reason: str, as_name: str | None,
           key_file: Path | None, passphrase_file: Path | None) -> None:
    ctx = _context()
    registry = gate.current_registry(ctx)
    request = load_request(ctx.store, resolve_id(ctx.store, request_id))
    signer = unlock_signer(as_name, key_file, passphrase_file, required=True)
    assert signer is not None
    params = {"request": request.id, "operation": request.operation}
    try:
        person = registry.person_for_key(signer.public_text)
        if person is None:
            raise ApprovalRequired(f"key {signer.fingerprint} of {signer.name!r} is not "
                                   f"enrolled in approver registry version {registry.number}")
        if person != signer.name:
            raise ApprovalRequired(f"key {signer.fingerprint} is enrolled as {person!r}, "
                                   f"not {signer.name!r}")
        before = gate.evaluate(ctx, request, registry)
        if before.state in ("executed", "expired", "invalid"):
            raise ApprovalRequired(f"request {request.id[:12]} is {before.state}; it can no "
                                   "longer be approved or denied")
        if verdict == "approve":
            if person == request.requester_name:
                raise ApprovalRequired(f"{person} filed request {request.id[:12]} and cannot "
                                       "approve it: two other people must")
            if person in before.approvers:
                raise ApprovalRequired(f"{person} already approved request "
                                       f"{request.id[:12]}; approvals count people, not keys")
    except ApprovalRequired as exc:
        refused(f"approval.{verdict}", exc, params)
        raise
    put_decision(ctx.store, request.id, sign_decision(
        request.id, verdict, signer, reason=reason, now=ctx.now(), actor=actor()))
    after = gate.evaluate(ctx, request, registry)
    audit(f"approval.{verdict}", "ok", params,
          {"name": person, "fingerprint": signer.fingerprint, "reason": reason,
           "state": after.state})
    emit(after.to_dict(),
         f"{'approved' if verdict == 'approve' else 'denied'} {request.id[:12]} "
         f"({request.operation}) as {person}: now {after.state}, {after.describe()}")


@click.command("approve")
@click.argument("request_id", metavar="ID")
@click.option("--reason", default="", help="A note for the record.")
@signer_options
@json_option
def approve_command(request_id: str, reason: str, as_name: str | None, key_file: Path | None,
                    passphrase_file: Path | None) -> None:
    """Approve request ID with your enrolled key (review its plan first: drkit requests)."""
    decide(request_id, "approve", reason, as_name, key_file, passphrase_file)


@click.command("deny")
@click.argument("request_id", metavar="ID")
@click.option("--reason", required=True, help="Why (one denial vetoes the request).")
@signer_options
@json_option
def deny_command(request_id: str, reason: str, as_name: str | None, key_file: Path | None,
                 passphrase_file: Path | None) -> None:
    """Deny request ID; a single denial by an enrolled person vetoes it."""
    decide(request_id, "deny", reason, as_name, key_file, passphrase_file)


@click.command("requests")
@click.option("--state", "states", multiple=True,
              type=click.Choice(["pending", "approved", "denied", "expired", "executed",
                                 "invalid"]),
              help="Only these states (repeatable).")
@click.option("--plan", "show_plan", is_flag=True, help="Include each request's plan.")
@json_option
def requests_command(states: tuple[str, ...], show_plan: bool) -> None:
    """List approval requests: pending, approved, denied, expired, executed."""
    ctx = _context()
    if not gate.load_registry_chain(ctx):
        _no_registry_is_a_setup_problem(ctx)
    rows = [e for e in gate.list_requests(ctx) if not states or e.state in states]
    data = []
    for e in rows:
        item = e.to_dict()
        if show_plan:
            item["plan"] = e.request.plan
        data.append(item)

    def text() -> str:
        if not rows:
            return "no requests"
        lines = []
        for e in rows:
            req = e.request
            lines.append(f"{req.id[:12]}  {e.state:<8}  {req.operation:<14} "
                         f"{describe_plan(req.operation, req.plan)}")
            lines.append(f"{'':14}requested by {req.requester_name or 'unsigned'} "
                         f"({req.requester.get('os_user')}@{req.requester.get('host')}) "
                         f"{req.doc['created']}, expires {req.doc['expires']}: "
                         f"{req.doc.get('reason')}")
            lines.append(f"{'':14}{e.describe()}")
            for problem in e.problems:
                lines.append(f"{'':14}! {problem}")
        return "\n".join(lines)

    emit({"requests": data}, text)


def run_approved(request_id: str, *, expect: tuple[str, Mapping[str, Any]] | None = None
                 ) -> None:
    ctx = _context()
    params: dict[str, Any] = {"request": request_id}
    try:
        grant, result = gate.execute(ctx, request_id, expect=expect)
    except ApprovalRequired as exc:
        refused("approval.execute", exc, params)
        raise
    except DrkitError as exc:
        audit("approval.execute", "error", params, {"error": str(exc)})
        raise
    request = load_request(ctx.store, grant.request_id)
    audit("approval.execute", "ok", {"operation": request.operation, **request.params},
          {"request": grant.request_id, "operation": request.operation,
           "requester": grant.requester, "approved_by": list(grant.approved_by),
           "plan_sha256": request.plan_sha256, "result": result})
    emit({"request": grant.request_id, "operation": request.operation,
          "approved_by": list(grant.approved_by), "result": result},
         f"executed {grant.request_id[:12]} ({request.operation}), approved by "
         f"{', '.join(grant.approved_by)}: "
         + ", ".join(f"{k}={v}" for k, v in result.items() if not isinstance(v, list | dict)))


@click.command("execute")
@click.argument("request_id", metavar="ID")
@json_option
def execute_command(request_id: str) -> None:
    """Run an approved request: checks quorum, denials, expiry, single use and that the plan
    recomputed now is exactly the approved one."""
    run_approved(request_id)


def refuse_without_approval(operation: str, params: dict[str, Any]) -> None:
    """Compute the plan so the user sees what approval is needed, log, and exit 3."""
    ctx = _context()
    plan = operations.get_operation(operation).plan(ctx, params)
    if _nothing_to_do(operation, plan):
        return
    exc = ApprovalRequired(
        f"{operation} is a dangerous operation ({describe_plan(operation, plan)}) and needs "
        f"{gate.quorum_for(ctx, operation)} approvals by enrolled people other than "
        f"the requester; {gate.how_to_request(operation, params)}")
    refused(operation, exc, params)
    raise exc


@click.command("delete-object")
@click.argument("region")
@click.argument("key")
@click.option("--approval", "approval_id", metavar="ID", help="An approved request for this.")
@json_option
def delete_object_command(region: str, key: str, approval_id: str | None) -> None:
    """Delete KEY in REGION (needs an approved request)."""
    params = {"region": region, "key": key}
    if approval_id is None:
        refuse_without_approval("delete-object", params)
    else:
        run_approved(approval_id, expect=("delete-object", params))


@click.command("apply")
@click.argument("new_toml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--approval", "approval_id", metavar="ID",
              help="An approved request (needed when the change removes or shortens).")
@json_option
def config_apply_command(new_toml: Path, approval_id: str | None) -> None:
    """Make NEW_TOML the configuration and pin it in the repository. Removing a region or
    source, shortening retention or lock, adding a writer key or lowering a quorum needs an
    approval; other changes apply at once."""
    params = operations.config_apply_params(new_toml)
    if approval_id is not None:
        run_approved(approval_id, expect=("config-apply", params))
        return
    ctx = _context()
    plan = operations.plan_config_apply(ctx, params)
    if plan["changes"]:
        refuse_without_approval("config-apply", params)
    result = operations.apply_config(ctx, params, plan, None)
    audit("config.apply", "ok", params, result)
    emit(result, f"applied {new_toml} to {result['config']}; pinned as config "
                 f"{result['pinned']} (no dangerous change)")


def _attach_config_apply() -> None:
    from drkit.cli.setup import config_group

    if "apply" not in config_group.commands:
        config_group.add_command(config_apply_command)


_attach_config_apply()

COMMANDS = [approvers_group, request_group, approve_command, deny_command, requests_command,
            execute_command, delete_object_command]
