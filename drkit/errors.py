"""One exception tree for every expected failure.

Each class's docstring is its user message when none is given; the class carries the exit
code of DESIGN.md (0 clean, 1 findings or failed check, 2 usage/config/input, 3 refused
for want of approval, 4 first contact: verify had no trusted state to compare
with) and whether a traceback is worth showing. ``drkit.cli.main`` maps
them to one line on stderr. Messages must never contain secrets.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FINDINGS = 1
    USAGE = 2
    REFUSED = 3
    # verify / audit verify with no trusted state for the log (a new host, or its state
    # deleted) and no --accept-first-contact: nothing was there to compare the log with.
    FIRST_CONTACT = 4


class DrkitError(Exception):
    """drkit failed."""

    exit_code: int = ExitCode.USAGE
    show_traceback: bool = False

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or "drkit failed").strip().splitlines()[0]
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class UsageError(DrkitError):
    """Invalid command-line usage."""


class ConfigError(DrkitError):
    """The configuration is invalid."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file = file
        self.key = key
        where = ""
        if file and key:
            where = f"{file}: {key}: "
        elif file:
            where = f"{file}: "
        elif key:
            where = f"{key}: "
        super().__init__(f"{where}{message}")


class InputError(DrkitError):
    """Invalid input."""


class KeyFileError(DrkitError):
    """A key file is missing, corrupted or cannot be unlocked."""


class WrongPassphrase(KeyFileError):
    """Wrong passphrase for the recovery key."""


class LockedError(DrkitError):
    """The repository is locked by another drkit process."""


class FormatVersionError(DrkitError):
    """The repository was written by a newer drkit format version."""


class StorageError(DrkitError):
    """A storage operation failed."""


class InvalidObjectKey(StorageError):
    """An object key is not a safe relative path."""


class ObjectNotFound(StorageError):
    """The object does not exist."""


class ObjectExists(StorageError):
    """The object already exists and objects are never overwritten."""


class RetentionActive(StorageError):
    """The object is under retention and cannot be deleted yet."""


class NeedsThaw(StorageError):
    """The object is in an archive storage class and must be thawed before reading."""


class Unsupported(StorageError):
    """The storage service cannot do this."""


class BackendUnavailable(StorageError):
    """The storage service cannot be reached, or refused the credentials."""


class IntegrityError(DrkitError):
    """Data failed verification: it is corrupted or has been tampered with."""

    exit_code = ExitCode.FINDINGS


class CheckFailed(DrkitError):
    """A check found problems."""

    exit_code = ExitCode.FINDINGS


class ApprovalRequired(DrkitError):
    """This operation is dangerous and needs an approval."""

    exit_code = ExitCode.REFUSED


class InternalError(DrkitError):
    """drkit hit an internal error."""

    show_traceback = True
