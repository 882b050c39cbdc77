"""What a snapshot source is: something that turns data into tree entries and chunks.

A source never touches the repository itself. It gets a ``ChunkSink`` that chunks,
deduplicates, encrypts and packs whatever bytes it is handed, either a file or a stream
(a database dump can be piped through ``store_stream`` without a temporary file), and it
returns its tree entries plus optional control totals. New kinds of source (PostgreSQL,
MySQL, cloud volumes) are new modules ``drkit/sources/<type>.py`` defining a ``Source``
subclass named in ``SOURCE``.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO, ClassVar, Protocol

from drkit.config import SourceConfig
from drkit.errors import InputError
from drkit.progress import ProgressTask


@dataclass(frozen=True)
class StoredContent:
    """What the sink made of some bytes: their size, SHA-256 and chunk ids in order."""

    size: int
    sha256: str
    chunks: tuple[bytes, ...]


class ChunkSink(Protocol):
    def store_file(self, path: Path | str, size: int | None = None) -> StoredContent:
        """Store a file (``size``: its size from a walk, saving a stat)."""
        ...

    def store_stream(self, reader: BinaryIO) -> StoredContent: ...

    def has_all(self, chunks: tuple[bytes, ...]) -> bool:
        """True if every chunk is already stored (so cached content can be reused)."""
        ...


@dataclass
class SourceResult:
    name: str
    type: str
    path: str
    entries: list[dict[str, Any]] = field(default_factory=list)
    control_totals: dict[str, Any] | None = None
    files: int = 0
    bytes_total: int = 0  # size of everything in the snapshot for this source
    bytes_read: int = 0  # what had to be read (the rest came from the cache)
    # Entries left out with a warning (unreadable files and folders, FIFOs, sockets,
    # devices): {"path": ..., "reason": ...}. The snapshot is taken; the command exits 1.
    skipped: list[dict[str, str]] = field(default_factory=list)

    def tree(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "path": self.path,
                "entries": self.entries, "control_totals": self.control_totals}


class Source(ABC):
    type: ClassVar[str]

    def __init__(self, config: SourceConfig, cache_dir: Path, repository_id: str) -> None:
        self.config = config
        self.cache_dir = cache_dir
        self.repository_id = repository_id

    @property
    def name(self) -> str:
        return self.config.name

    @abstractmethod
    def check(self) -> None:
        """Raise InputError now if the source cannot be read (before anything is written)."""

    @abstractmethod
    def snapshot(self, sink: ChunkSink, pool: Executor, task: ProgressTask) -> SourceResult:
        """Read the source through ``sink``; ``pool`` runs per-file work on both cores."""

    def estimate_bytes(self) -> int | None:
        """A cheap guess of the bytes this snapshot will cover (for the progress bar's
        total and ETA), or None when there is nothing cheap to go on."""
        return None

    def committed(self) -> None:  # noqa: B027 - optional hook
        """The snapshot is journaled: persist local caches."""

    def cleanup(self) -> None:  # noqa: B027 - optional hook
        """Remove temporary files whether or not the snapshot succeeded."""


def make_source(config: SourceConfig, cache_dir: Path, repository_id: str) -> Source:
    try:
        module = importlib.import_module(f"drkit.sources.{config.type}")
    except ModuleNotFoundError:
        raise InputError(f"source {config.name!r}: type {config.type!r} is not supported "
                         "by this drkit yet") from None
    cls: type[Source] = module.SOURCE
    return cls(config, cache_dir, repository_id)


#: Source types that are database servers: their snapshots hold one dump per database,
#: which restore and the drill load into scratch databases.
DATABASE_TYPES = ("postgres", "mysql")


def database_module(kind: str) -> ModuleType:
    """The module of a database source type, with ``load_dump``, ``check_restored`` and
    ``drop_scratch``."""
    if kind not in DATABASE_TYPES:
        raise InputError(f"source type {kind!r} is not a database server")
    return importlib.import_module(f"drkit.sources.{kind}")
