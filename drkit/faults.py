"""Deterministic crash points for the reliability tests (test-only; inert in normal use).

``DRKIT_FAULT=<point>[:N][,<point>[:N]...]`` makes the process end abruptly, as a
``kill -9`` would, the N-th time (default: the first) it reaches the named point: no
``finally`` blocks, no lock release, no cleanup. The exit status is ``FAULT_EXIT`` so a
test can tell an injected crash from a failure. Without the variable ``point()`` is a
dictionary lookup and nothing else.

The points (see docs/architecture.md, "Crash points") are placed at each step of the write
path: around each intent and object put, around each local-state update and around the
journal append, plus inside the local store's put (temporary file written, not linked).
"""

from __future__ import annotations

import os
import sys
import threading

ENV = "DRKIT_FAULT"
FAULT_EXIT = 86

_lock = threading.Lock()
_hits: dict[str, int] = {}


def _wanted() -> dict[str, int]:
    spec = os.environ.get(ENV, "")
    out: dict[str, int] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, count = part.partition(":")
        try:
            out[name] = max(1, int(count)) if count else 1
        except ValueError:
            out[name] = 1
    return out


def point(name: str) -> None:
    """Crash here if ``DRKIT_FAULT`` names this point and its count is reached."""
    if ENV not in os.environ:
        return
    target = _wanted().get(name)
    if target is None:
        return
    with _lock:
        _hits[name] = _hits.get(name, 0) + 1
        hit = _hits[name]
    if hit == target:
        sys.stderr.write(f"drkit: fault injected at {name}:{hit}\n")
        sys.stderr.flush()
        os._exit(FAULT_EXIT)
