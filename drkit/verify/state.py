"""Trusted state of the verifying host: the largest verified checkpoint per region.

One JSON file per repository in the state folder (``--state-dir``, ``verify.state_dir``
or ``platformdirs.user_state_dir("drkit")``)::

    {"format": "drkit-verify-state", "version": 1, "origin": "drkit:...",
     "regions": {"shanghai": {"size": 42, "root": "<base64>", "checkpoint_time": "...",
                              "verified_at": "..."}},
     "largest": {"size": 42, "root": "<base64>", "region": "beijing"}}

A missing file is *first contact* (``first_contact``): ``drkit verify`` says so loudly
and exits 4 unless ``--accept-first-contact``, and only then starts a new state. It only
ever moves forward: a region whose log is shorter than what this host saw before
has been rolled back or truncated, and one whose log does not extend it has forked.
Written atomically (temporary file, fsync, rename). The folder belongs to the verifying
host; keep it away from the people whose actions it checks.
"""

from __future__ import annotations

import base64
import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from drkit import faults
from drkit.clock import utc_iso
from drkit.errors import InputError

STATE_FORMAT = "drkit-verify-state"
STATE_VERSION = 1


@dataclass(frozen=True)
class SeenCheckpoint:
    size: int
    root: bytes
    region: str = ""


def default_state_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_state_dir("drkit"))


class TrustedState:
    def __init__(self, state_dir: Path, origin: str) -> None:
        self.path = Path(state_dir) / (re.sub(r"[^A-Za-z0-9_.-]", "_", origin) + ".json")
        self.origin = origin
        self.data: dict[str, Any] = {"format": STATE_FORMAT, "version": STATE_VERSION,
                                     "origin": origin, "regions": {}, "largest": None}
        # No state file: this host has never verified this repository, or its state was
        # deleted. Either way nothing it sees can be compared with the past (FIRST-CONTACT).
        self.first_contact = True
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.path}: cannot read the verify state: {exc}") from None
        if not isinstance(raw, dict) or raw.get("format") != STATE_FORMAT \
                or raw.get("origin") != origin or not isinstance(raw.get("regions"), dict):
            raise InputError(f"{self.path}: not a drkit verify state for {origin}")
        self.data = raw
        # A state that holds no region (saved by a run whose every log was refused) is as
        # good as none.
        self.first_contact = not raw["regions"]

    @staticmethod
    def _seen(d: Any, region: str = "") -> SeenCheckpoint | None:
        if not isinstance(d, dict):
            return None
        try:
            return SeenCheckpoint(int(d["size"]), base64.b64decode(d["root"]),
                                  str(d.get("region", region)))
        except (KeyError, TypeError, ValueError):
            raise InputError("verify state is corrupted") from None

    def region(self, name: str) -> SeenCheckpoint | None:
        return self._seen(self.data["regions"].get(name), name)

    def largest(self) -> SeenCheckpoint | None:
        return self._seen(self.data.get("largest"))

    def record(self, region: str, size: int, root: bytes, checkpoint_time: datetime | None,
               now: datetime) -> None:
        prev = self.region(region)
        if prev is None or size >= prev.size:
            self.data["regions"][region] = {
                "size": size, "root": base64.b64encode(root).decode(),
                "checkpoint_time": utc_iso(checkpoint_time) if checkpoint_time else None,
                "verified_at": utc_iso(now)}
        largest = self.largest()
        if largest is None or size > largest.size:
            self.data["largest"] = {"size": size, "root": base64.b64encode(root).decode(),
                                    "region": region}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _remove_dead_temp_files(self.path.parent)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".state-{os.getpid()}-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.data, fh, indent=1, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            faults.point("verify.state.written")
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _remove_dead_temp_files(folder: Path) -> None:
    """Temporary files of verify runs that were killed while saving (named with the pid)."""
    for tmp in folder.glob(".state-*"):
        pid = tmp.name.split("-")[1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except PermissionError:
            continue
