"""Reading the inputs: a folder (or files) of API responses, or live responses, into one
:class:`NetworkModel`. Each response is recognised by its top-level keys."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from drkit.errors import InputError
from drkit.lint.network.environments import ENVIRONMENTS_FILE, EnvironmentMap
from drkit.lint.network.model import InputIssue, NetworkModel

log = logging.getLogger(__name__)

Reader = Callable[[Any, str, "Lines", NetworkModel], None]


class Lines:
    """Line numbers of the first occurrence of a quoted id in a file's text (1 when live)."""

    def __init__(self, text: str | None) -> None:
        self.text = text

    def of(self, value: str) -> int:
        if not self.text:
            return 1
        at = self.text.find(json.dumps(value))
        return self.text.count("\n", 0, at) + 1 if at >= 0 else 1


def dict_list(data: Any, key: str) -> list[dict[str, Any]]:
    """The objects in list ``data[key]`` ([] when absent); a value that is not a list
    makes the response malformed (ValueError, reported as an input issue)."""
    value = data.get(key) if isinstance(data, dict) else None
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"'{key}' is not a list")
    return [v for v in value if isinstance(v, dict)]


def _readers() -> list[tuple[str, dict[str, Reader]]]:
    from drkit.lint.network import aws, tencent

    return [("aws", aws.READERS), ("tencent", tencent.READERS)]


def recognise(data: Any) -> tuple[str, Any, list[Reader]] | None:
    """The cloud, the response body (Tencent's ``Response`` wrapper removed) and the
    readers for ``data``, or None when it is no response drkit knows."""
    if isinstance(data, dict) and isinstance(data.get("Response"), dict):
        data = data["Response"]
    if not isinstance(data, dict):
        return None
    for cloud, readers in _readers():
        found = [reader for key, reader in readers.items() if key in data]
        if found:
            return cloud, data, found
    return None


def read_response(data: Any, name: str, text: str | None, model: NetworkModel,
                  *, explicit: bool = True) -> bool:
    """Add one response (or a JSON array of its pages) to ``model``. Returns whether it was
    a known response; a known response that is malformed is an input issue."""
    pages = data if isinstance(data, list) and data else [data]
    lines = Lines(text)
    known = False
    for page in pages:
        if isinstance(page, dict) and isinstance(page.get("Response"), dict) \
                and "Error" in page["Response"]:
            error = page["Response"]["Error"]
            model.issues.append(InputIssue(name, f"an error response, not data: "
                                                 f"{error.get('Code', '?')}"))
            return True
        match = recognise(page)
        if match is None:
            if explicit or known:
                model.issues.append(InputIssue(name, "not a response drkit reads (see "
                                                     "'drkit lint network --help')"))
                return True
            return False
        _cloud, body, readers = match
        known = True
        for reader in readers:
            try:
                reader(body, name, lines, model)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                model.issues.append(InputIssue(name, f"malformed response: "
                                                     f"{type(exc).__name__}: {exc}"))
                return True
    if known and name not in model.files:
        model.files.append(name)
    return known


def _json_files(top: Path) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(folder) / f for f in files
                  if f.endswith(".json") and not f.startswith(".")]
    return sorted(found)


def discover(paths: Sequence[Path]) -> tuple[list[tuple[Path, bool]], Path | None]:
    """Response files (each with whether it was named explicitly) and the first
    ``environments.toml`` found in a folder given."""
    files: list[tuple[Path, bool]] = []
    environments = None
    for path in paths:
        if path.is_file():
            files.append((path, True))
        elif path.is_dir():
            files += [(f, False) for f in _json_files(path)]
            if environments is None and (path / ENVIRONMENTS_FILE).is_file():
                environments = path / ENVIRONMENTS_FILE
        else:
            raise InputError(f"{path}: no such file or directory")
    return files, environments


def read_files(files: Iterable[tuple[Path, bool]], model: NetworkModel,
               shown: Callable[[Path], str]) -> None:
    for path, explicit in files:
        name = shown(path)
        try:
            text = path.read_text("utf-8")
            data = json.loads(text)
        except OSError as exc:
            model.issues.append(InputIssue(name, f"cannot read file: {exc.strerror}"))
            continue
        except UnicodeDecodeError:
            model.issues.append(InputIssue(name, "not UTF-8 text"))
            continue
        except (ValueError, RecursionError) as exc:
            model.issues.append(InputIssue(name, f"not JSON: {exc}"))
            continue
        before = len(model.files)
        if not read_response(data, name, text, model, explicit=explicit):
            log.debug("%s: not a network response; skipped", name)
        elif len(model.files) > before:
            log.debug("%s: read", name)


def new_model(environments: EnvironmentMap) -> NetworkModel:
    return NetworkModel(environments=environments)
