"""Approver keys: one Ed25519 key per enrolment, the private half sealed under a passphrase.

Key file (``<keys>/approvers/NAME.FP.key``, mode 0600, canonical JSON)::

    {"format": "drkit-key", "version": 1, "kind": "approver-private-key", "name": NAME,
     "public": "drkit-ed25519:BASE64", "kdf": {argon2id parameters}, "salt": B64,
     "nonce": B64, "ciphertext": B64}

The passphrase is stretched with Argon2id (the same recipe as the recovery key, through
``drkit.repo.keys.derive_passphrase_key``) and the 32-byte private key is sealed with
AES-256-GCM whose associated data is every other field, so a wrong passphrase and an edited
file both fail authentication.

The public half is published as an *enrolment statement* (``NAME.FP.enrollment.json``),
signed by the key itself (proof of possession), which is what goes into the approver
registry::

    {"format": "drkit-approver-enrollment", "version": 1, "name": NAME, "roles": [...],
     "key": "drkit-ed25519:BASE64", "created": ISO, "signature": B64}
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from drkit.canonical import canonical_json, domain_hash
from drkit.clock import utc_iso
from drkit.errors import InputError, IntegrityError, KeyFileError, WrongPassphrase
from drkit.passphrase import check_private_file
from drkit.repo.encoding import b64d, b64e, ed25519_text, fingerprint, parse_ed25519
from drkit.repo.keys import DEFAULT_KDF, derive_passphrase_key

KEY_KIND = "approver-private-key"
ENROLLMENT_FORMAT = "drkit-approver-enrollment"
ENROLLMENT_DOMAIN = "drkit/approver-enrollment/v1"
PASSPHRASE_ENV = "DRKIT_APPROVER_PASSPHRASE"  # noqa: S105 - a variable name
_NAME_RE = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")
_ROLE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def validate_name(name: str) -> str:
    if not _NAME_RE.match(name or ""):
        raise InputError(f"approver name {name!r}: use 1-64 lower-case letters, digits, "
                         "'.', '_' or '-', starting with a letter")
    return name


def key_id(public: Ed25519PublicKey) -> str:
    """Short hex id of a public key for file names (first 8 bytes of its fingerprint)."""
    return fingerprint(public).split(":", 1)[1][:16]


@dataclass(frozen=True)
class Enrollment:
    """A person's public key, signed by itself, with the roles asked for."""

    name: str
    roles: tuple[str, ...]
    key: str  # drkit-ed25519:BASE64
    created: str
    signature: str

    @property
    def public_key(self) -> Ed25519PublicKey:
        return parse_ed25519(self.key)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    def body(self) -> dict[str, Any]:
        return {"format": ENROLLMENT_FORMAT, "version": 1, "name": self.name,
                "roles": list(self.roles), "key": self.key, "created": self.created}

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "signature": self.signature}

    @classmethod
    def from_dict(cls, doc: Any, *, where: str) -> Enrollment:
        """Parse and verify the self-signature; IntegrityError naming ``where`` otherwise."""
        if not isinstance(doc, dict) or doc.get("format") != ENROLLMENT_FORMAT:
            raise IntegrityError(f"{where}: not a drkit approver enrolment")
        if doc.get("version") != 1:
            raise IntegrityError(f"{where}: unsupported enrolment version {doc.get('version')!r}")
        try:
            enrollment = cls(name=str(doc["name"]), roles=tuple(str(r) for r in doc["roles"]),
                             key=str(doc["key"]), created=str(doc["created"]),
                             signature=str(doc["signature"]))
            public = enrollment.public_key
            signature = b64d(enrollment.signature)
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"{where}: malformed enrolment ({exc})") from None
        try:
            public.verify(signature, domain_hash(ENROLLMENT_DOMAIN,
                                                 canonical_json(enrollment.body())))
        except InvalidSignature:
            raise IntegrityError(f"{where}: enrolment of {enrollment.name!r} is not signed by "
                                 f"its own key {enrollment.fingerprint}") from None
        return enrollment


@dataclass(frozen=True)
class ApproverKey:
    """An unlocked approver key (only in memory, only for one signature)."""

    name: str
    private: Ed25519PrivateKey
    path: Path

    @property
    def public_text(self) -> str:
        return ed25519_text(self.private.public_key())

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.private.public_key())


def approver_keys_dir(keys_dir: Path) -> Path:
    return keys_dir / "approvers"


def enroll(keys_dir: Path, name: str, passphrase: str, *, roles: tuple[str, ...] = (),
           now: datetime, kdf: dict[str, Any] | None = None) -> tuple[Enrollment, Path, Path]:
    """Create a new approver key for ``name``; return the enrolment and the two file paths."""
    validate_name(name)
    for role in roles:
        if not _ROLE_RE.match(role):
            raise InputError(f"role {role!r}: use lower-case letters, digits, '_' or '-'")
    if not passphrase:
        raise InputError("the approver passphrase must not be empty")
    private = Ed25519PrivateKey.generate()
    public_text = ed25519_text(private.public_key())
    kdf = dict(kdf or DEFAULT_KDF)
    salt = secrets.token_bytes(16)
    nonce = secrets.token_bytes(12)
    header = {"format": "drkit-key", "version": 1, "kind": KEY_KIND, "name": name,
              "public": public_text, "kdf": kdf, "salt": b64e(salt), "nonce": b64e(nonce)}
    wrap = derive_passphrase_key(passphrase, salt, kdf)
    sealed = AESGCM(wrap).encrypt(nonce, private.private_bytes_raw(), canonical_json(header))
    unsigned = Enrollment(name=name, roles=tuple(sorted(set(roles))), key=public_text,
                          created=utc_iso(now), signature="")
    signature = private.sign(domain_hash(ENROLLMENT_DOMAIN, canonical_json(unsigned.body())))
    enrollment = Enrollment(name=unsigned.name, roles=unsigned.roles, key=public_text,
                            created=unsigned.created, signature=b64e(signature))
    folder = approver_keys_dir(keys_dir)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    stem = f"{name}.{key_id(private.public_key())}"
    key_path = folder / f"{stem}.key"
    pub_path = folder / f"{stem}.enrollment.json"
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(canonical_json({**header, "ciphertext": b64e(sealed)}))
    pub_path.write_bytes(canonical_json(enrollment.to_dict()) + b"\n")
    return enrollment, key_path, pub_path


def read_enrollment(path: Path) -> Enrollment:
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise InputError(f"{path}: enrolment file not found") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read enrolment ({exc})") from None
    return Enrollment.from_dict(doc, where=str(path))


def find_key_file(keys_dir: Path, name: str) -> Path:
    """The one key file of ``name`` in the approver keys folder (else ask for --key)."""
    validate_name(name)
    folder = approver_keys_dir(keys_dir)
    found = sorted(folder.glob(f"{name}.*.key")) if folder.is_dir() else []
    if not found:
        raise KeyFileError(f"{folder}: no approver key for {name!r} "
                           f"(run 'drkit approvers enroll {name}' or pass --key FILE)")
    if len(found) > 1:
        raise InputError(f"{folder}: {name!r} has {len(found)} keys; choose one with --key FILE")
    return found[0]


def unlock(path: Path, passphrase: str) -> ApproverKey:
    """Decrypt an approver key file; WrongPassphrase / KeyFileError with one clear line."""
    check_private_file(path)
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise KeyFileError(f"{path}: approver key file not found") from None
    except (OSError, ValueError, UnicodeDecodeError):
        raise KeyFileError(f"{path}: approver key file is corrupted (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("kind") != KEY_KIND or doc.get("version") != 1:
        raise KeyFileError(f"{path}: not a drkit approver key file")
    try:
        header = {k: v for k, v in doc.items() if k != "ciphertext"}
        public = parse_ed25519(header["public"])
        name = validate_name(str(header["name"]))
        wrap = derive_passphrase_key(passphrase, b64d(header["salt"]), header["kdf"])
        nonce = b64d(header["nonce"])
        sealed = b64d(doc["ciphertext"])
    except (KeyError, TypeError, ValueError, InputError) as exc:
        raise KeyFileError(f"{path}: approver key file is corrupted ({exc})") from None
    try:
        raw = AESGCM(wrap).decrypt(nonce, sealed, canonical_json(header))
    except InvalidTag:
        raise WrongPassphrase(f"{path}: wrong passphrase for the approver key of {name!r} "
                              f"{fingerprint(public)} (or the key file was altered)") from None
    private = Ed25519PrivateKey.from_private_bytes(raw)
    if private.public_key().public_bytes_raw() != public.public_bytes_raw():
        raise KeyFileError(f"{path}: approver key does not match its public key")
    return ApproverKey(name=name, private=private, path=path)
