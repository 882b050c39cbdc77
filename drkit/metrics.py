"""Prometheus text-format metrics, written atomically for node_exporter's textfile collector.

node_exporter reads every ``*.prom`` file in its ``--collector.textfile.directory`` on each
scrape; a half-written file would be read as garbage or as missing series, so the file is
written to a temporary name in the same folder, fsynced and renamed over the old one (the
pattern the collector's documentation asks for). Format: the Prometheus text exposition
format 0.0.4 (``# HELP``, ``# TYPE``, ``name{label="value"} number``).
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from drkit.errors import StorageError


@dataclass
class MetricFamily:
    name: str
    help: str
    type: str = "gauge"
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> None:
        self.samples.append((dict(labels), float(value)))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape_label(v)}"' for k, v in sorted(labels.items()))
    return "{" + inner + "}"


def render(families: Iterable[MetricFamily]) -> str:
    """Text exposition format; families without samples are left out."""
    lines: list[str] = []
    for fam in families:
        if not fam.samples:
            continue
        lines.append(f"# HELP {fam.name} {_escape_help(fam.help)}")
        lines.append(f"# TYPE {fam.name} {fam.type}")
        for labels, value in fam.samples:
            lines.append(f"{fam.name}{_labels(labels)} {_number(value)}")
    return "\n".join(lines) + "\n" if lines else ""


def write_textfile(path: Path, families: Iterable[MetricFamily]) -> None:
    """Replace ``path`` atomically with the rendered metrics (mode 0644)."""
    text = render(families)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise StorageError(f"{path}: cannot write metrics file: {exc.strerror}") from exc

