"""Which operations are dangerous: the linter's action classes for cloud calls, shell
patterns for session commands.

A cloud call is classed by looking its ``service:Action`` up in the linter's catalogue
(``drkit.lint.catalog``): the same classes that decide whether a policy *may* do damage
decide whether a logged call *did*. A shell command is classed by the patterns below; a
cloud CLI command inside a session (``aws ec2 delete-snapshot``, ``tccli cbs
DeleteSnapshots``, ``coscli rb``) becomes the API action it calls and is classed by the
catalogue too.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from drkit.lint.catalog import catalog
from drkit.oplog.model import HOST, OpEvent

#: The classes watched, most severe first. (assume_role, pass_role and compute_launch are
#: everyday operations; they show in the report's first-time actions, not as dangers.)
WATCHED = ("destructive", "tampering", "escalation_grant", "escalation_remove_deny",
           "credentials", "code_execution")
#: Classes whose unapproved success is CRITICAL (destroying data or backups, or tampering
#: with backups, guardrails or the audit trail).
CRITICAL_CLASSES = frozenset({"destructive", "tampering"})
DEFAULT_DATA_PATHS = ("/", "/data", "/var/lib/mysql", "/var/lib/postgresql", "/var/lib/pgsql",
                      "/backup", "/backups", "/srv", "/home", "/var/lib/docker", "/mnt", "/opt")

_SQL_DROP = re.compile(r"\b(drop\s+(database|schema)|drop\s+table|truncate\s+(table\s+)?\w)",
                       re.IGNORECASE)
_AUDIT_OFF = re.compile(r"(\bauditctl\s+(-D|-e\s*0)\b|\b(systemctl|service)\s+(stop|disable|mask)"
                        r"\s+(auditd|rsyslog|syslog)|\bhistory\s+-c\b|\bunset\s+HISTFILE\b|"
                        r"HISTFILE=/dev/null|\bshred\b.*\b(audit|history|log)|"
                        r"\brm\b.*(/var/log/audit|\.bash_history))")


@dataclass(frozen=True)
class Danger:
    """Why an event is dangerous."""

    action_class: str  # one of WATCHED
    rule: str  # "catalog:s3:DeleteBucket", "shell:drop-database", ...
    what: str  # a short human description

    def to_dict(self) -> dict[str, str]:
        return {"class": self.action_class, "rule": self.rule, "what": self.what}


def _pascal(kebab: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in kebab.split("-"))


def cli_actions(words: Sequence[str]) -> list[tuple[str, str]]:
    """The (cloud, ``service:Action``) a cloud CLI command line calls, if it is one."""
    if not words:
        return []
    tool = words[0].rsplit("/", 1)[-1]
    args = [w for w in words[1:] if not w.startswith("-")]
    if tool == "aws" and len(args) >= 2:
        service, command = args[0], args[1]
        if service == "s3":
            return {"rb": [("aws", "s3:DeleteBucket")],
                    "rm": [("aws", "s3:DeleteObject")]}.get(command, [])
        if service == "s3api":
            service = "s3"
        return [("aws", f"{service}:{_pascal(command)}")]
    if tool == "tccli" and len(args) >= 2:
        return [("tencent", f"{args[0]}:{args[1]}")]
    if tool in ("coscli", "coscmd") and args:
        return {"rb": [("tencent", "cos:DeleteBucket")],
                "deletebucket": [("tencent", "cos:DeleteBucket")],
                "rm": [("tencent", "cos:DeleteObject")],
                "delete": [("tencent", "cos:DeleteObject")]}.get(args[0], [])
    return []


def _catalog_dangers(cloud: str, action: str, rule_prefix: str) -> list[Danger]:
    cat = catalog(cloud)
    covered = cat.covered(action)
    # The catalogue's own spelling (a CLI's delete-db-snapshot is rds:DeleteDBSnapshot).
    action = (cat.database.name(action) if cat.database is not None else None) or action
    return [Danger(cls, f"{rule_prefix}{action}", f"{action} ({cls.replace('_', ' ')})")
            for cls in WATCHED if cls in covered]


def _rm_rf_targets(words: Sequence[str]) -> list[str]:
    if not words or words[0].rsplit("/", 1)[-1] != "rm":
        return []
    flags = "".join(w[1:] for w in words[1:] if w.startswith("-") and not w.startswith("--"))
    long_flags = {w for w in words[1:] if w.startswith("--")}
    recursive = "r" in flags.lower() or "--recursive" in long_flags
    force = "f" in flags or "--force" in long_flags
    if not (recursive and force):
        return []
    return [w for w in words[1:] if not w.startswith("-")]


def _under(path: str, roots: Sequence[str]) -> bool:
    clean = "/" + path.strip().strip("/") if path.strip().startswith("/") else None
    if clean is None:
        return False
    clean = clean.rstrip("*").rstrip("/") or "/"
    for root in roots:
        root = root.rstrip("/") or "/"
        if root == "/":
            if clean == "/":
                return True
        elif clean == root or clean.startswith(root + "/"):
            return True
    return False


def _segments(command: str) -> list[list[str]]:
    """The simple commands of a command line (split at ;, &&, || and |)."""
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:
        tokens = command.split()
    out: list[list[str]] = [[]]
    for token in tokens:
        if token and set(token) <= set(";&|"):
            out.append([])
        else:
            out[-1].append(token)
    cleaned = []
    for words in out:
        while words and (words[0] in ("sudo", "env", "nohup", "time", "exec", "command")
                         or ("=" in words[0] and not words[0].startswith("-"))
                         or (words[0].startswith("-") and len(words) > 1)):
            words = words[1:]
        if words:
            cleaned.append(words)
    return cleaned


def shell_dangers(command: str, *, data_paths: Sequence[str] = DEFAULT_DATA_PATHS
                  ) -> list[Danger]:
    found: list[Danger] = []
    if _SQL_DROP.search(command):
        found.append(Danger("destructive", "shell:drop-database",
                            "SQL that drops or empties a database or table"))
    if _AUDIT_OFF.search(command):
        found.append(Danger("tampering", "shell:audit-off",
                            "turns off or erases the audit trail or shell history"))
    for words in _segments(command):
        tool = words[0].rsplit("/", 1)[-1]
        targets = _rm_rf_targets(words)
        hit = [t for t in targets if _under(t, data_paths)]
        if hit:
            found.append(Danger("destructive", "shell:rm-rf-data",
                                f"rm -rf on data paths ({', '.join(hit)})"))
        if tool == "dd" and any(w.startswith("of=/dev/") for w in words):
            found.append(Danger("destructive", "shell:dd-volume", "dd onto a block device"))
        if tool.startswith("mkfs") or tool in ("wipefs", "blkdiscard") or (
                tool == "shred" and any(w.startswith("/dev/") for w in words)):
            found.append(Danger("destructive", "shell:format-volume",
                                f"{tool} on a volume"))
        if tool in ("mysqladmin", "mariadb-admin") and any(w.lower() == "drop" for w in words):
            found.append(Danger("destructive", "shell:drop-database",
                                "mysqladmin drop (a database)"))
        if tool in ("dropdb",):
            found.append(Danger("destructive", "shell:drop-database", "dropdb"))
        for cloud, action in cli_actions(words):
            found.extend(_catalog_dangers(cloud, action, "cli:"))
    unique: dict[str, Danger] = {}
    for d in found:
        unique.setdefault(d.rule, d)
    return list(unique.values())


def dangers(event: OpEvent, *, data_paths: Sequence[str] = DEFAULT_DATA_PATHS) -> list[Danger]:
    """Why ``event`` is dangerous, most severe class first (empty: it is not)."""
    if event.cloud == HOST:
        found = shell_dangers(event.command or event.action, data_paths=data_paths)
    elif event.cloud in ("aws", "tencent"):
        found = _catalog_dangers(event.cloud, event.action, "catalog:")
    else:
        found = []
    return sorted(found, key=lambda d: WATCHED.index(d.action_class))


def cloud_actions(event: OpEvent) -> list[tuple[str, str]]:
    """The cloud API actions an event performs: its own, or those of a cloud CLI command."""
    if event.cloud != HOST:
        return [(event.cloud, event.action)]
    return [a for words in _segments(event.command or "") for a in cli_actions(words)]
