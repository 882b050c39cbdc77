"""What the PostgreSQL and MySQL/MariaDB sources share: connection settings, secrets,
scratch-database safety, streaming a dump tool's output, and checking control totals.

Secrets: a password comes from the environment (``PGPASSWORD`` / ``MYSQL_PWD``), from the
client's own password file (``.pgpass``/``PGPASSFILE``, or a MySQL option file named in
``secrets_file`` with a ``[client]`` section), or from ``secrets_file`` holding the
password on its first line. Any file holding a secret must not be readable by group or
others; drkit refuses it otherwise. Passwords reach a dump tool only through a 0600 file
(``PGPASSFILE`` / ``--defaults-extra-file``) in a private temporary folder, never argv,
and never appear in errors or logs.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
from abc import abstractmethod
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, ClassVar

from drkit.config import Config, SourceConfig
from drkit.errors import ConfigError, InputError, IntegrityError
from drkit.progress import ProgressTask
from drkit.sources.base import ChunkSink, Source, SourceResult

#: drkit creates, loads and drops only databases whose name starts with this.
SCRATCH_PREFIX = "drkit_scratch_"
_SCRATCH_RE = re.compile(r"^drkit_scratch_[a-z0-9_]{1,40}$")
_STDERR_LINES = 3


@dataclass(frozen=True)
class DbSettings:
    """Connection settings of one database source (no secret in here except ``password``,
    which is never printed: ``__repr__`` hides it)."""

    source: str
    host: str
    port: int
    user: str
    databases: tuple[str, ...]
    password: str | None
    option_file: Path | None  # a MySQL option file given as secrets_file
    dump_tool: str | None

    def __repr__(self) -> str:
        return (f"DbSettings(source={self.source!r}, host={self.host!r}, port={self.port}, "
                f"user={self.user!r}, databases={self.databases!r})")

    @property
    def where(self) -> str:
        return f"source {self.source!r} ({self.user}@{self.host}:{self.port})"


def check_private(path: Path, what: str) -> None:
    """Refuse a secret-holding file that group or others may read (or that is missing)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"{path}: {what} does not exist") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path}: {what} is not a regular file")
    if st.st_mode & 0o077:
        raise InputError(f"{path}: {what} is readable by group or others "
                         f"(mode {stat.S_IMODE(st.st_mode):04o}); run 'chmod 600 {path}'")


def read_password_file(path: Path) -> str:
    check_private(path, "secrets file")
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line.strip()
    raise InputError(f"{path}: secrets file holds no password")


def is_option_file(path: Path) -> bool:
    with contextlib.suppress(OSError, UnicodeDecodeError):
        return path.read_text(encoding="utf-8").lstrip().startswith("[")
    return False


def option_file_settings(path: Path) -> dict[str, str]:
    """The [client] section of a MySQL option file (after the permission check)."""
    check_private(path, "option file")
    parser = configparser.ConfigParser(allow_no_value=True, interpolation=None, strict=False)
    try:
        parser.read_string(path.read_text(encoding="utf-8"))
    except configparser.Error as exc:
        raise InputError(f"{path}: not a valid option file ({type(exc).__name__})") from None
    out: dict[str, str] = {}
    for section in ("client", "mysqldump", "mariadb-client"):
        if parser.has_section(section):
            for key, value in parser.items(section):
                if value is not None:
                    out[key.replace("_", "-")] = value.strip().strip("'\"")
    return out


def db_settings(source: SourceConfig, *, default_port: int, default_user: str,
                password_env: str, file: str = "drkit.toml") -> DbSettings:
    opts = source.options
    key = f"sources.{source.name}."

    def get(name: str, kind: type, default: Any) -> Any:
        value = opts.get(name, default)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise ConfigError(f"must be {kind.__name__}", file=file, key=key + name)
        return value

    databases = opts.get("databases")
    if databases is None:
        single = get("database", str, None)
        if not single:
            raise ConfigError("missing: name the database (database = \"...\" or "
                              "databases = [...])", file=file, key=key + "database")
        databases = [single]
    if not isinstance(databases, list) or not databases or \
            not all(isinstance(d, str) and d for d in databases):
        raise ConfigError("must be a non-empty list of database names", file=file,
                          key=key + "databases")
    port = get("port", int, default_port)
    if not 0 < port < 65536:
        raise ConfigError(f"not a port number: {port}", file=file, key=key + "port")
    password = os.environ.get(password_env) or None
    option_file: Path | None = None
    secrets = get("secrets_file", str, None)
    user = get("user", str, None)
    if secrets:
        path = Path(secrets).expanduser()
        if not path.is_absolute() and source.path is not None:
            path = source.path.parent / path
        if is_option_file(path):
            option_file = path
            settings = option_file_settings(path)
            password = settings.get("password", password)
            user = user or settings.get("user")
        else:
            password = read_password_file(path)
    return DbSettings(source=source.name, host=get("host", str, "127.0.0.1"), port=port,
                      user=user or default_user, databases=tuple(databases),
                      password=password, option_file=option_file,
                      dump_tool=get("dump_tool", str, None))


def find_tool(explicit: str | None, names: tuple[str, ...], what: str) -> str:
    """The dump/load tool to run: ``explicit`` if set, else the first of ``names`` on PATH."""
    candidates = (explicit,) if explicit else names
    for name in candidates:
        assert name is not None
        found = shutil.which(name)
        if found:
            return found
    raise InputError(f"{what}: {' or '.join(c for c in candidates if c)} not found on PATH "
                     "(install the database client tools or set dump_tool)")


def sibling_tool(dump_tool: str, names: tuple[str, ...], what: str) -> str:
    """A tool from the same folder as ``dump_tool`` (pg_restore next to pg_dump)."""
    folder = Path(dump_tool).parent
    for name in names:
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return find_tool(None, names, what)


@contextlib.contextmanager
def private_dir() -> Iterator[Path]:
    """A 0700 temporary folder for files that hold a secret for the length of one call."""
    folder = Path(tempfile.mkdtemp(prefix="drkit-secret-"))
    folder.chmod(0o700)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_private(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def check_scratch_name(name: str, settings: DbSettings, config: Config | None) -> None:
    """Refuse any database that is not an obvious drkit scratch database, is one of the
    source's own databases, or is a database of a source the config marks production."""
    if not _SCRATCH_RE.match(name):
        raise InputError(f"refusing scratch database {name!r}: drkit only creates, loads and "
                         f"drops databases named {SCRATCH_PREFIX}<lowercase letters, digits, _>")
    if name in settings.databases:
        raise InputError(f"refusing to load into {name!r}: it is a database of "
                         f"{settings.where}")
    if config is not None:
        for src in config.sources.values():
            if not src.production or src.type not in ("postgres", "mysql"):
                continue
            names = src.options.get("databases") or [src.options.get("database")]
            if name in names:
                raise InputError(f"refusing to load into {name!r}: source {src.name!r} marks "
                                 "it as a production database")


def scratch_name(stem: str) -> str:
    """A valid scratch database name from a drill or restore id."""
    clean = re.sub(r"[^a-z0-9_]+", "_", stem.lower()).strip("_")[:40] or "db"
    return SCRATCH_PREFIX + clean


class PrefixedReader:
    """A binary reader that first returns ``prefix`` and then the rest of ``stream``."""

    def __init__(self, prefix: bytes, stream: BinaryIO | IO[bytes]) -> None:
        self._prefix = memoryview(prefix)
        self._stream = stream

    def read(self, n: int = -1) -> bytes:
        if self._prefix:
            if n < 0:
                out = bytes(self._prefix) + self._stream.read()
                self._prefix = memoryview(b"")
                return out
            head = bytes(self._prefix[:n])
            self._prefix = self._prefix[n:]
            if len(head) < n:
                head += self._stream.read(n - len(head))
            return head
        return self._stream.read(n)

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[:len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True


def stderr_summary(errfile: IO[bytes], secrets: tuple[str | None, ...] = ()) -> str:
    """The first lines of a tool's stderr, one line, with any secret blanked out."""
    errfile.seek(0)
    text = errfile.read(8192).decode("utf-8", "replace")
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " / ".join(lines[:_STDERR_LINES]) or "no message"


def run_tool(args: list[str], env: dict[str, str], stdin: BinaryIO | None, what: str,
             secrets: tuple[str | None, ...] = ()) -> None:
    """Run a client tool (feeding ``stdin`` in blocks); raise InputError on failure."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err, env=env)
        try:
            if stdin is not None:
                assert proc.stdin is not None
                try:
                    while block := stdin.read(1 << 20):
                        proc.stdin.write(block)
                except BrokenPipeError:
                    pass
                finally:
                    with contextlib.suppress(BrokenPipeError):
                        proc.stdin.close()
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if rc != 0:
            raise InputError(f"{what} failed (exit {rc}): {stderr_summary(err, secrets)}")


def verify_totals(expected: dict[str, Any], actual: dict[str, Any], *, where: str) -> None:
    """Raise IntegrityError naming every table whose row count or hash differs."""
    if expected.get("algorithm") != actual.get("algorithm"):
        raise IntegrityError(f"{where}: control totals use {actual.get('algorithm')!r}, "
                             f"the snapshot recorded {expected.get('algorithm')!r}")
    exp, act = expected.get("tables", {}), actual.get("tables", {})
    problems: list[str] = []
    for table in sorted(set(exp) | set(act)):
        if table not in act:
            problems.append(f"{table}: missing")
        elif table not in exp:
            problems.append(f"{table}: not in the snapshot")
        elif exp[table]["rows"] != act[table]["rows"]:
            problems.append(f"{table}: {act[table]['rows']} rows, expected {exp[table]['rows']}")
        elif exp[table]["hash"] != act[table]["hash"]:
            problems.append(f"{table}: content differs ({exp[table]['rows']} rows)")
    if problems:
        raise IntegrityError(f"{where}: control totals differ: " + "; ".join(problems))


class DatabaseSource(Source):
    """A database server source: one streamed dump per configured database, each with its
    control totals; the PostgreSQL and MySQL modules supply the dump."""

    #: Names the control-totals computation, so a drill compares like with like.
    totals_algorithm: ClassVar[str]

    @property
    @abstractmethod
    def settings(self) -> DbSettings:
        """Connection settings (credentials resolved, never logged)."""

    @abstractmethod
    def dump_database(self, database: str, sink: ChunkSink
                      ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Stream one database's dump through ``sink``: (tree entry, control totals)."""

    def snapshot(self, sink: ChunkSink, pool: Executor, task: ProgressTask) -> SourceResult:
        settings = self.settings
        result = SourceResult(self.name, self.type,
                              f"{self.type}://{settings.user}@{settings.host}:{settings.port}",
                              files=len(settings.databases))
        totals: dict[str, Any] = {"algorithm": self.totals_algorithm, "databases": {}}
        for database in settings.databases:
            entry, db_totals = self.dump_database(database, sink)
            result.entries.append(entry)
            totals["databases"][database] = db_totals
            result.bytes_total += int(entry["size"])
        result.bytes_read = result.bytes_total
        result.control_totals = totals
        return result
