"""How strong a new passphrase must be, and how private a key file must be kept.

The recovery passphrase guards the one key that decrypts every backup, and an approver's
passphrase guards a signature that can release a deletion; both are checked when they are
chosen (``drkit keys init``, ``drkit approvers enroll``). The estimate is zxcvbn's (Dropbox's
pattern-matching estimator: dictionary words, keyboard walks, dates, repeats, l33t), which
catches "Password123!" that a length-and-classes rule passes; the minimum length keeps an
estimator's blind spot from accepting something short.

Key files follow ssh's rule: a private key that others can read, or a keys folder others can
write (where they could swap a key), is refused rather than used.
"""

from __future__ import annotations

import stat
from collections.abc import Sequence
from pathlib import Path

from drkit.errors import InputError, KeyFileError

MIN_LENGTH = 12
MIN_SCORE = 3  # zxcvbn: 3 = "safely unguessable: moderate protection from offline attack"
_ESTIMATE_CHARS = 100  # zxcvbn's time grows quickly with length; the head decides anyway


def check_new_passphrase(value: str, *, what: str, context: Sequence[str] = ()) -> None:
    """Raise InputError (exit 2) with the reason when ``value`` is too weak for ``what``."""
    if len(value) < MIN_LENGTH:
        raise InputError(f"the {what} is too short ({len(value)} characters; use at least "
                         f"{MIN_LENGTH}, for example four or more uncommon words)")
    from zxcvbn import zxcvbn

    result = zxcvbn(value[:_ESTIMATE_CHARS], user_inputs=[c for c in context if c])
    if int(result["score"]) < MIN_SCORE:
        feedback = result.get("feedback") or {}
        reason = feedback.get("warning") or "it is easy to guess"
        hint = " ".join(feedback.get("suggestions") or []) or "Add uncommon words."
        guesses = float(result.get("guesses", 0))
        raise InputError(f"the {what} is too weak ({reason.rstrip('.')}; about "
                         f"{guesses:.0e} guesses). {hint}")


def check_private_file(path: Path, *, folder_too: bool = False) -> None:
    """Refuse a private key file that group or others can read or write (ssh's 'UNPROTECTED
    PRIVATE KEY FILE' rule) and, with ``folder_too``, one in a folder others can write (the
    keys folder: whoever can write there can put their own writer key in place)."""
    try:
        mode = path.stat().st_mode
        folder = path.parent.stat().st_mode
    except FileNotFoundError:
        return  # the caller reports a missing file in its own words
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot check permissions: {exc.strerror}") from None
    if stat.S_IMODE(mode) & 0o077:
        raise KeyFileError(f"{path}: permissions {stat.S_IMODE(mode):04o} are too open: a "
                           f"private key must be readable by its owner only (chmod 600 {path})")
    if folder_too and stat.S_IMODE(folder) & 0o022:
        raise KeyFileError(f"{path.parent}: permissions {stat.S_IMODE(folder):04o} let others "
                           f"replace the keys in it (chmod 700 {path.parent})")
