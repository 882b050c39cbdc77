"""Every command drkit tells a person to run must be a real command with real options.

The refusals are triggered through the CLI and every ``drkit ...`` command they print is
parsed with drkit's own click command tree (``make_context`` on the subcommand, with
placeholders such as ID, NAME, TEXT filled with sample values), so a renamed command or
option breaks this test. Where the hint is the way out of the refusal, the test also runs
it, word for word, and shows that it works. A last test scans drkit's source for quoted
``'drkit ...'`` commands, so a hint added later cannot skip the check.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
import pytest

import drkit
from drkit.approval import hints
from drkit.cli.main import cli

Project = Any  # the project fixture of tests/security/conftest.py

#: Placeholders a hint may use, with a sample value each for parsing.
SAMPLES = {
    "ID": "0123456789ab",
    "NAME": "alice",
    "TEXT": "a reason",
    "FILE": "enrolment.json",
    "FILE...": "enrolment.json",
    "NEW.toml": "new.toml",
    "SNAPSHOT": "latest",
    "TARGET": "restore-here",
    "TIME": "2026-11-23T02:30:00Z",
    "PUBLIC_KEY": "drkit-ed25519:AAAA",
}

_QUOTED = re.compile(r"'(drkit [^']*)'")
_AFTER_COLON = re.compile(r"(?:^|: )(drkit [a-z][^'\n]*?)\)?$", re.MULTILINE)


def hints_in(text: str) -> list[str]:
    """Every command in a message: quoted ones, and ones that end a line after ': '."""
    found = _QUOTED.findall(text)
    found += [h for h in _AFTER_COLON.findall(text) if h not in found]
    return found


def parse_hint(hint: str) -> tuple[list[str], dict[str, Any]]:
    """Parse ``hint`` with the real command tree; return the command path and the leaf
    command's parsed parameters. Fails the test on an unknown command or option, a missing
    argument or a bad value."""
    words = shlex.split(hint)
    assert words[0] == "drkit", hint
    args = [SAMPLES.get(w, w) for w in words[1:]]
    command: click.Command = cli
    ctx = click.Context(cli, info_name="drkit")
    path = []
    while isinstance(command, click.Group):
        assert args and not args[0].startswith("-"), f"{hint!r}: names no command"
        sub = command.get_command(ctx, args[0])
        assert sub is not None, f"{hint!r}: drkit has no command {' '.join(path + args[:1])!r}"
        path.append(args.pop(0))
        ctx = click.Context(sub, info_name=path[-1], parent=ctx)
        command = sub
    try:
        leaf = command.make_context(path[-1], list(args), parent=ctx.parent)
    except click.ClickException as exc:
        pytest.fail(f"{hint!r} does not parse as 'drkit {' '.join(path)}': {exc.format_message()}")
    return path, dict(leaf.params)


def parsed_hints(text: str, at_least: int = 1) -> list[tuple[str, list[str], dict[str, Any]]]:
    found = hints_in(text)
    assert len(found) >= at_least, text
    return [(h, *parse_hint(h)) for h in found]


def run_hint(project: Project, hint: str, *, request_id: str = "", as_name: str = "",
             ok: bool = True) -> Any:
    """Run a hint word for word, filling its placeholders; requests are filed and decisions
    signed as ``as_name`` (a hint cannot know whose passphrase to read)."""
    words = [{"ID": request_id, "TEXT": "as the hint says", "NAME": as_name}.get(w, w)
             for w in shlex.split(hint)[1:]]
    if as_name:
        words += ["--passphrase-file", str(project.passphrase_file(as_name))]
        if "--as" not in words:
            words += ["--as", as_name]
    return project.run("--json", *words, ok=ok)


def follow(project: Project, refusal: str, approvers: tuple[str, str] = ("bob", "carol")
           ) -> dict[str, Any]:
    """Do what an approval refusal says: file the request with its first command, have two
    people approve with its second, run its third; return the last command's JSON."""
    steps = [h for h, _path, _params in parsed_hints(refusal, at_least=3)]
    request, approve, run = steps[0], steps[1], steps[2]
    assert request.startswith("drkit request ") and approve.startswith("drkit approve ID")
    rid = json.loads(run_hint(project, request, as_name="alice").stdout)["id"]
    for name in approvers:
        run_hint(project, approve, request_id=rid, as_name=name)
    return dict(json.loads(run_hint(project, run, request_id=rid).stdout))


def prunable(project: Project) -> None:
    project.snapshot("old")
    (project.root / "data" / "uploads" / "old.txt").unlink()
    project.clock.advance(timedelta(days=40))
    project.snapshot("new")


# -- approval refusals: parse, then follow them ----------------------------------------------
def test_prune_refusal_hints_parse_and_work(project: Project) -> None:
    prunable(project)
    res = project.run("prune", ok=False)
    assert res.exit_code == 3
    hints_found = parsed_hints(res.stderr, at_least=3)
    assert [h for h, _, _ in hints_found] == [
        "drkit request prune --keep-last 1 --older-than-days 30 --reason TEXT",
        "drkit approve ID --as NAME",
        "drkit prune --keep-last 1 --older-than-days 30 --approval ID"]
    done = follow(project, res.stderr)
    assert done["result"]["forgotten"] == 1


def test_delete_object_refusal_hints_parse_and_work(project: Project) -> None:
    project.snapshot("x")
    stray = project.region("shanghai") / "injected.bin"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"not ours")
    res = project.run("delete-object", "shanghai", "injected.bin", ok=False)
    assert res.exit_code == 3
    (_, path, params), *_rest = parsed_hints(res.stderr, at_least=3)
    assert path == ["request", "delete-object"]
    assert (params["region"], params["key"]) == ("shanghai", "injected.bin")
    assert follow(project, res.stderr)["result"]["deleted"] == 1
    assert not stray.exists()


def test_config_apply_refusal_hints_parse_and_work(project: Project) -> None:
    """The refusal used to say 'drkit config-apply ... --approval ID' (no such command)."""
    shorter = project.root / "shorter.toml"
    shorter.write_text((project.root / "drkit.toml").read_text()
                       .replace("retention_days = 365", "retention_days = 7"))
    res = project.run("config", "apply", str(shorter), ok=False)
    assert res.exit_code == 3
    found = parsed_hints(res.stderr, at_least=3)
    assert [p for _, p, _ in found] == [["request", "config-apply"], ["approve"],
                                        ["config", "apply"]]
    assert found[2][2]["new_toml"] == shorter.resolve()
    assert found[2][2]["approval_id"] == SAMPLES["ID"]
    assert "drkit config-apply" not in res.stderr
    assert follow(project, res.stderr)["result"]["pinned"] == 2  # keys init pinned 1
    assert "retention_days = 7" in (project.root / "drkit.toml").read_text()


def test_restore_production_refusal_hints_parse_and_work(project: Project) -> None:
    """The refusal used to say '--snapshot ... --target' (the snapshot is positional and the
    target is --to), and to run the approval with 'drkit execute ID', which refuses it."""
    cfg = project.root / "drkit.toml"
    cfg.write_text(cfg.read_text() + '\n[sources.shop]\ntype = "files"\npath = "data/shop"\n'
                   "production = true\n")
    shop = project.root / "data" / "shop"
    shop.mkdir()
    (shop / "orders.csv").write_text("1,2,3\n")
    snap = project.snapshot("a")
    for item in shop.iterdir():  # production lost its data; restore it there
        item.unlink()
    res = project.run("restore", snap, "--to", str(shop), ok=False)
    assert res.exit_code == 3
    found = parsed_hints(res.stderr, at_least=3)
    (_, path, params), _, (_, run_path, run_params) = found[:3]
    assert path == ["request", "restore-production"]
    assert (params["snapshot"], params["target"], params["source"]) == (
        snap, str(shop.resolve()), "shop")
    assert run_path == ["restore"] and run_params["target"] == shop.resolve()
    assert "--target" not in res.stderr and "--snapshot" not in res.stderr
    assert "drkit execute" not in res.stderr
    done = follow(project, res.stderr)
    assert done["files"] >= 1
    assert any(shop.rglob("orders.csv"))


def test_execute_of_an_operation_run_elsewhere_names_its_command(project: Project) -> None:
    snap = project.snapshot("a")
    rid = project.request("restore-production", snap, "--to", str(project.root / "data"),
                          "--source", "uploads")
    res = project.run("execute", rid, ok=False)
    assert res.exit_code == 3
    (hint, path, params), = parsed_hints(res.stderr)
    assert path == ["restore"]
    assert (params["snapshot"], params["approval_id"]) == (snap, rid[:12])


def test_keys_rotate_refusal_and_prepare_hints_parse_and_work(project: Project) -> None:
    """The refusal used to say 'drkit request keys --action rotate --public-keys [...]'."""
    prepared = project.run("keys", "rotate", "--prepare")
    new_key = json.loads(project.run("--json", "keys", "rotate", "--prepare").stdout)["prepared"]
    prepare_hints = parsed_hints(prepared.stdout, at_least=2)
    assert [p for _, p, _ in prepare_hints] == [["request", "keys"], ["keys", "rotate"]]
    assert prepare_hints[0][2]["public_keys"] == (new_key,)
    res = project.run("keys", "rotate", ok=False)
    assert res.exit_code == 3
    found = parsed_hints(res.stderr, at_least=3)
    assert [p for _, p, _ in found] == [["request", "keys"], ["approve"], ["keys", "rotate"]]
    assert found[0][2]["action"] == "rotate" and found[0][2]["public_keys"] == (new_key,)
    assert "--action" not in res.stderr and "--public-keys" not in res.stderr
    done = follow(project, res.stderr)
    assert done["new"] == new_key


def test_cloud_expire_hints_parse() -> None:
    """Not triggered here (it needs a cloud account double): the same function the refusal
    calls, with the parameters 'drkit cloud expire' passes."""
    params = {"as_of": "2026-11-23T02:30:00Z"}
    text = hints.how_to_request("cloud-expire", params)
    found = parsed_hints(text, at_least=3)
    assert [p for _, p, _ in found] == [["request", "cloud-expire"], ["approve"],
                                        ["cloud", "expire"]]
    assert found[2][2]["as_of"] == params["as_of"]


def test_values_that_need_quoting_survive_the_shell(tmp_path: Path) -> None:
    target = tmp_path / "prod data" / "shop (main)"
    params = {"snapshot": "ab12", "target": str(target), "source": "shop"}
    (_, _, request), _, (_, _, run) = parsed_hints(
        hints.how_to_request("restore-production", params), at_least=3)
    assert request["target"] == str(target) and run["target"] == target
    # What a shell would expand is single-quoted, exactly one word again.
    for odd in ('the "shop" $HOME `x`', "it's"):
        assert shlex.split(hints.shell_arg(odd)) == [odd]


# -- registry and approver refusals ----------------------------------------------------------
def test_registry_refusal_hints_parse(make_project: Any) -> None:
    project = make_project(bootstrap=False)
    res = project.run("request", "prune", "--reason", "x", ok=False)
    assert res.exit_code == 3
    paths = [p for _, p, _ in parsed_hints(res.stderr, at_least=2)]
    assert paths == [["approvers", "enroll"], ["approvers", "bootstrap"]]
    project.run("approvers", "bootstrap", *(str(project.enrollments[n])
                                            for n in ("alice", "bob", "carol", "dave")))
    res = project.run("approvers", "bootstrap", str(project.enrollments["alice"]), ok=False)
    assert res.exit_code == 3
    assert [p for _, p, _ in parsed_hints(res.stderr)] == [["request", "approvers"]]
    rid = project.request("prune", "--older-than-days", "0")
    res = project.run("approve", rid, "--as", "zed", "--passphrase-file",
                      str(project.passphrase_file("zed")), ok=False)
    assert res.exit_code != 0
    (hint, path, params), = parsed_hints(res.stderr)
    assert path == ["approvers", "enroll"] and params["name"] == "zed"


def test_edited_local_registry_hints_parse_and_work(project: Project) -> None:
    local = project.root / "approvers.json"
    project.run("approvers", "show")
    doc = json.loads(local.read_text())
    doc["approvers"] = doc["approvers"][:2]
    local.write_text(json.dumps(doc))
    res = project.run("requests", ok=False)
    assert res.exit_code == 3
    found = parsed_hints(res.stderr, at_least=2)
    assert [p for _, p, _ in found] == [["approvers", "show"], ["request", "approvers"]]
    run_hint(project, found[0][0])
    assert project.run("requests").exit_code == 0


def test_request_output_hint_parses(project: Project) -> None:
    prunable(project)
    out = project.run("request", "prune", "--reason", "x", *project.signer("alice")).stdout
    (hint, path, params), = parsed_hints(out)
    assert path == ["approve"] and params["as_name"] == SAMPLES["NAME"]


# -- setup refusals ----------------------------------------------------------------------------
def test_setup_hints_parse_and_work(drkit: Any, tmp_path: Path) -> None:
    res = drkit("snapshot")
    assert res.exit_code == 2
    (hint, path, _), = parsed_hints(res.stderr)
    assert path == ["init"]
    made = drkit(*shlex.split(hint)[1:])
    assert made.exit_code == 0 and (tmp_path / "drkit.toml").exists()
    (hint, path, _), = parsed_hints(made.stdout)
    assert path == ["keys", "init"]
    res = drkit("snapshot")
    assert res.exit_code == 2
    assert [p for _, p, _ in parsed_hints(res.stderr)] == [["keys", "init"]]
    cfg = tmp_path / "drkit.toml"
    cfg.write_text(cfg.read_text().replace('primary = "', 'primary = "nowhere-').replace(
        "[repository]", "[repository]\nbogus_key = 1"))
    res = drkit("snapshot")
    assert res.exit_code == 2
    assert [p for _, p, _ in parsed_hints(res.stderr)] == [["config", "check"]]


def test_ledger_source_hint_parses(project: Project) -> None:
    res = project.run("ledger", "build", "--source", "uploads", ok=False)
    assert res.exit_code == 2
    (hint, path, _), = parsed_hints(res.stderr)
    assert path == ["ledger", "build"]


# -- every quoted command in the source ---------------------------------------------------------
def _literal_texts(tree: ast.AST) -> list[str]:
    """Every string literal, with each f-string field replaced by a sample word."""
    texts = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            texts.append(node.value)
        elif isinstance(node, ast.JoinedStr):
            texts.append("".join(part.value if isinstance(part, ast.Constant) else "sample"
                                 for part in node.values))
    return texts


def test_every_quoted_command_in_the_source_parses() -> None:
    root = Path(drkit.__file__).parent
    seen = []
    for path in sorted(root.rglob("*.py")):
        for text in _literal_texts(ast.parse(path.read_text(encoding="utf-8"))):
            for hint in _QUOTED.findall(text):
                seen.append(hint)
                parse_hint(hint)
    assert len(seen) >= 10, seen  # the scan finds the hints it is meant to guard
