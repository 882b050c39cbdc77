"""Key files and the repository ``config`` object.

The keys folder (``config.keys_dir``, mode 0700, files 0600) holds::

    repository.key  repository id + the ID key (HMAC-SHA256 key for chunk ids)   writer
    writer.key      Ed25519 signing key of this writer                             writer
    writer.pub      its public half, ``drkit-ed25519:BASE64``                      everyone
    recovery.pub    recovery X25519 public key, ``drkit-x25519:BASE64``            writer
    recovery.key    recovery X25519 private key, encrypted under a passphrase      offline

A writer host needs the first four files only; ``recovery.key`` belongs to the recovery
team (copy it off the writer host after ``drkit keys init``). The passphrase is stretched
with Argon2id (RFC 9106, via pyca/cryptography) and the private key sealed with
AES-256-GCM whose associated data binds every other field of the file, so a wrong
passphrase and a tampered file both fail authentication instead of yielding garbage.

Every store (region) holds a signed ``config`` object at its root naming the repository
id, the format version, the chunker parameters and the public keys.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from drkit.canonical import canonical_json
from drkit.clock import utc_iso
from drkit.config import Config
from drkit.errors import (
    FormatVersionError,
    InputError,
    IntegrityError,
    KeyFileError,
    ObjectNotFound,
    WrongPassphrase,
)
from drkit.passphrase import check_private_file
from drkit.repo.documents import open_document, sign_document
from drkit.repo.encoding import (
    b64d,
    b64e,
    ed25519_text,
    fingerprint,
    parse_ed25519,
    parse_x25519,
    x25519_text,
)
from drkit.storage.base import Store

KEY_FORMAT = "drkit-key"
KEY_VERSION = 1
REPOSITORY_KEY_FILE = "repository.key"
WRITER_KEY_FILE = "writer.key"
WRITER_PUB_FILE = "writer.pub"
RECOVERY_PUB_FILE = "recovery.pub"
RECOVERY_KEY_FILE = "recovery.key"
NEXT_WRITER_KEY_FILE = "writer.next.key"
NEXT_WRITER_PUB_FILE = "writer.next.pub"
RETIRED_PUB_GLOB = "writer.retired-*.pub"
CONFIG_KEY = "config"
REPOSITORY_FORMAT_VERSION = 1
PASSPHRASE_ENV = "DRKIT_RECOVERY_PASSPHRASE"  # noqa: S105 - a variable name

# RFC 9106 "second recommended option" is 64 MiB / 3 passes / 4 lanes.
DEFAULT_KDF = {"name": "argon2id", "iterations": 3, "lanes": 4, "memory_cost": 65536}

CHUNK_MIN, CHUNK_AVG, CHUNK_MAX = 262144, 1048576, 4194304
CHUNKER: dict[str, Any] = {"algorithm": "fastcdc2020", "min_size": 262144, "avg_size": 1048576,
           "max_size": 4194304, "normalized_chunking": 1, "seed": "keyed"}


@dataclass(frozen=True)
class WriterKeys:
    """Everything a writer needs; never the recovery private key."""

    repository_id: str
    id_key: bytes
    signing_key: Ed25519PrivateKey
    recovery_public: X25519PublicKey


@dataclass(frozen=True)
class RepositoryConfig:
    """The verified body of a store's ``config`` object."""

    repository_id: str
    format_version: int
    chunker: dict[str, Any]
    recovery_public: X25519PublicKey
    writer_public: Ed25519PublicKey
    created: str

    @property
    def origin(self) -> str:
        """The journal origin of this repository."""
        return "drkit:" + self.repository_id


# -- files ----------------------------------------------------------------------------------
def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _read_json(path: Path, kind: str) -> dict[str, Any]:
    check_private_file(path, folder_too=True)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: key file not found (run 'drkit keys init')") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read key file: {exc.strerror}") from None
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise KeyFileError(f"{path}: key file is corrupted (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != KEY_FORMAT:
        raise KeyFileError(f"{path}: not a drkit key file")
    version = doc.get("version")
    if not isinstance(version, int) or version > KEY_VERSION:
        raise KeyFileError(f"{path}: unsupported key file version {version!r}")
    if doc.get("kind") != kind:
        raise KeyFileError(f"{path}: expected a {kind}, found {doc.get('kind')!r}")
    return doc


def _read_text_key(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: key file not found (run 'drkit keys init')") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{path}: cannot read key file: {exc}") from None


def derive_passphrase_key(passphrase: str, salt: bytes, kdf: dict[str, Any]) -> bytes:
    if kdf.get("name") != "argon2id":
        raise KeyFileError(f"unsupported key derivation {kdf.get('name')!r}")
    return Argon2id(salt=salt, length=32, iterations=int(kdf["iterations"]),
                    lanes=int(kdf["lanes"]),
                    memory_cost=int(kdf["memory_cost"])).derive(passphrase.encode("utf-8"))


def seal_recovery_key(private: X25519PrivateKey, passphrase: str, *,
                      kdf: dict[str, Any] | None = None, salt: bytes | None = None,
                      nonce: bytes | None = None) -> bytes:
    """The bytes of a ``recovery.key`` file (salt/nonce injectable for test vectors)."""
    kdf = dict(kdf or DEFAULT_KDF)
    salt = salt if salt is not None else secrets.token_bytes(16)
    nonce = nonce if nonce is not None else secrets.token_bytes(12)
    header = {"format": KEY_FORMAT, "version": KEY_VERSION, "kind": "recovery-private-key",
              "public": x25519_text(private.public_key()), "kdf": kdf, "salt": b64e(salt),
              "nonce": b64e(nonce)}
    wrap = derive_passphrase_key(passphrase, salt, kdf)
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    sealed = AESGCM(wrap).encrypt(nonce, raw, canonical_json(header))
    return canonical_json({**header, "ciphertext": b64e(sealed)})


def unseal_recovery_key(data: bytes, passphrase: str, *, name: str) -> X25519PrivateKey:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise KeyFileError(f"{name}: key file is corrupted (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != KEY_FORMAT \
            or doc.get("kind") != "recovery-private-key":
        raise KeyFileError(f"{name}: not a drkit recovery key file")
    if not isinstance(doc.get("version"), int) or doc["version"] > KEY_VERSION:
        raise KeyFileError(f"{name}: unsupported key file version {doc.get('version')!r}")
    try:
        header = {k: v for k, v in doc.items() if k != "ciphertext"}
        kdf = header["kdf"]
        salt = b64d(header["salt"])
        nonce = b64d(header["nonce"])
        sealed = b64d(doc["ciphertext"])
        public = parse_x25519(header["public"])
        wrap = derive_passphrase_key(passphrase, salt, kdf)
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyFileError(f"{name}: key file is corrupted ({exc})") from None
    try:
        raw = AESGCM(wrap).decrypt(nonce, sealed, canonical_json(header))
    except InvalidTag:
        raise WrongPassphrase(
            f"{name}: wrong passphrase for the recovery key "
            f"{fingerprint(public)} (or the key file was altered)") from None
    private = X25519PrivateKey.from_private_bytes(raw)
    if private.public_key().public_bytes_raw() != public.public_bytes_raw():
        raise KeyFileError(f"{name}: recovery key does not match its public key")
    return private


def init_keys(keys_dir: Path, passphrase: str, *, kdf: dict[str, Any] | None = None
              ) -> WriterKeys:
    """Create a fresh key set in ``keys_dir``; refuse if any key file exists."""
    if not passphrase:
        raise InputError("the recovery passphrase must not be empty")
    keys_dir.mkdir(parents=True, exist_ok=True)
    keys_dir.chmod(0o700)
    names = (REPOSITORY_KEY_FILE, WRITER_KEY_FILE, WRITER_PUB_FILE, RECOVERY_PUB_FILE,
             RECOVERY_KEY_FILE)
    existing = [n for n in names if (keys_dir / n).exists()]
    if existing:
        raise InputError(f"{keys_dir / existing[0]}: keys already exist (refusing to replace)")
    repository_id = secrets.token_hex(16)
    id_key = secrets.token_bytes(32)
    signing = Ed25519PrivateKey.generate()
    recovery = X25519PrivateKey.generate()
    _write_private(keys_dir / RECOVERY_KEY_FILE, seal_recovery_key(recovery, passphrase, kdf=kdf))
    _write_private(keys_dir / REPOSITORY_KEY_FILE, canonical_json({
        "format": KEY_FORMAT, "version": KEY_VERSION, "kind": "repository-id-key",
        "repository_id": repository_id, "key": b64e(id_key)}))
    _write_private(keys_dir / WRITER_KEY_FILE, canonical_json({
        "format": KEY_FORMAT, "version": KEY_VERSION, "kind": "writer-signing-key",
        "key": b64e(signing.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))}))
    _write_private(keys_dir / WRITER_PUB_FILE, (ed25519_text(signing.public_key()) + "\n").encode())
    _write_private(keys_dir / RECOVERY_PUB_FILE,
                   (x25519_text(recovery.public_key()) + "\n").encode())
    return WriterKeys(repository_id, id_key, signing, recovery.public_key())


# -- loading (the API other modules call) ----------------------------------------------------
def load_writer_signing_key(config: Config) -> Ed25519PrivateKey:
    path = config.keys_dir / WRITER_KEY_FILE
    doc = _read_json(path, "writer-signing-key")
    try:
        raw = b64d(doc["key"])
        return Ed25519PrivateKey.from_private_bytes(raw)
    except (KeyError, ValueError) as exc:
        raise KeyFileError(f"{path}: key file is corrupted ({exc})") from None


def load_writer_public_key(config: Config) -> Ed25519PublicKey:
    path = config.keys_dir / WRITER_PUB_FILE
    try:
        return parse_ed25519(_read_text_key(path))
    except ValueError as exc:
        raise KeyFileError(f"{path}: key file is corrupted ({exc})") from None


def load_trusted_writer_keys(config: Config, store: Store | None = None
                             ) -> list[Ed25519PublicKey]:
    """The writer keys checkpoints and documents must be signed by: the journaled key
    history (``drkit.repo.keyhistory``: the anchor, i.e. ``verify.writer_keys`` or the key
    this host saw first, plus every key an approved rotation introduced), read from
    ``store`` or else the first region holding the repository. Key files on the host
    (``writer.pub``, ``writer.retired-*.pub``) are trusted only before any region holds a
    repository, for ``drkit keys init`` itself."""
    from drkit.repo.keyhistory import configured_anchors, history_for_config

    history = history_for_config(config, store)
    if history is not None:
        return history
    keys: list[Ed25519PublicKey] = []
    if (config.keys_dir / WRITER_PUB_FILE).exists():
        keys.append(load_writer_public_key(config))
    keys += configured_anchors(config)
    if not keys:
        raise KeyFileError(f"{config.keys_dir / WRITER_PUB_FILE}: no trusted writer key "
                           "(run 'drkit keys init' or set verify.writer_keys)")
    seen: set[bytes] = set()
    unique = []
    for key in keys:
        if key.public_bytes_raw() not in seen:
            seen.add(key.public_bytes_raw())
            unique.append(key)
    return unique


# -- writer key rotation (a dangerous operation: see drkit.cli.keys) ---------------------
def _writer_key_document(signing: Ed25519PrivateKey) -> bytes:
    return canonical_json({
        "format": KEY_FORMAT, "version": KEY_VERSION, "kind": "writer-signing-key",
        "key": b64e(signing.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))})


def prepare_writer_rotation(keys_dir: Path) -> Ed25519PublicKey:
    """Create the next writer key (``writer.next.key``/``.pub``) if there is none yet and
    return its public half, which approvers sign off before it replaces the current one."""
    next_pub = keys_dir / NEXT_WRITER_PUB_FILE
    if next_pub.exists():
        try:
            return parse_ed25519(_read_text_key(next_pub))
        except ValueError as exc:
            raise KeyFileError(f"{next_pub}: key file is corrupted ({exc})") from None
    if not (keys_dir / WRITER_KEY_FILE).exists():
        raise KeyFileError(f"{keys_dir / WRITER_KEY_FILE}: not found (run 'drkit keys init')")
    signing = Ed25519PrivateKey.generate()
    _write_private(keys_dir / NEXT_WRITER_KEY_FILE, _writer_key_document(signing))
    _write_private(next_pub, (ed25519_text(signing.public_key()) + "\n").encode())
    return signing.public_key()


def complete_writer_rotation(keys_dir: Path) -> tuple[str, str]:
    """Make the prepared key the writer key; keep the old public key as retired (still
    trusted for the history it signed). Returns (old, new) public keys as text."""
    old_text = _read_text_key(keys_dir / WRITER_PUB_FILE)
    new_text = _read_text_key(keys_dir / NEXT_WRITER_PUB_FILE)
    if not (keys_dir / NEXT_WRITER_KEY_FILE).exists():
        raise KeyFileError(f"{keys_dir / NEXT_WRITER_KEY_FILE}: not found "
                           "(run 'drkit keys rotate --prepare')")
    retired = keys_dir / f"writer.retired-{fingerprint(parse_ed25519(old_text))[7:]}.pub"
    if not retired.exists():
        _write_private(retired, (old_text + "\n").encode())
    os.replace(keys_dir / NEXT_WRITER_KEY_FILE, keys_dir / WRITER_KEY_FILE)
    os.replace(keys_dir / NEXT_WRITER_PUB_FILE, keys_dir / WRITER_PUB_FILE)
    return old_text, new_text


def load_id_key(config: Config) -> tuple[str, bytes]:
    """(repository id, ID key) from ``repository.key``."""
    path = config.keys_dir / REPOSITORY_KEY_FILE
    doc = _read_json(path, "repository-id-key")
    try:
        repository_id = str(doc["repository_id"])
        key = b64d(doc["key"])
    except (KeyError, ValueError) as exc:
        raise KeyFileError(f"{path}: key file is corrupted ({exc})") from None
    if len(key) != 32 or len(repository_id) != 32:
        raise KeyFileError(f"{path}: key file is corrupted (bad lengths)")
    return repository_id, key


def load_recovery_public_key(config: Config) -> X25519PublicKey:
    path = config.keys_dir / RECOVERY_PUB_FILE
    try:
        return parse_x25519(_read_text_key(path))
    except ValueError as exc:
        raise KeyFileError(f"{path}: key file is corrupted ({exc})") from None


def load_writer_keys(config: Config) -> WriterKeys:
    repository_id, id_key = load_id_key(config)
    return WriterKeys(repository_id, id_key, load_writer_signing_key(config),
                      load_recovery_public_key(config))


def unlock_recovery_key(path: Path, passphrase: str) -> X25519PrivateKey:
    """Decrypt ``recovery.key``; WrongPassphrase or KeyFileError with one clear line."""
    check_private_file(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: recovery key file not found") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read key file: {exc.strerror}") from None
    return unseal_recovery_key(data, passphrase, name=str(path))


# -- the repository ``config`` object --------------------------------------------------------
def repository_config_body(keys: WriterKeys, *, now: datetime) -> dict[str, Any]:
    return {
        "format_version": REPOSITORY_FORMAT_VERSION,
        "repository_id": keys.repository_id,
        "chunker": dict(CHUNKER),
        "compression": "zstd",
        "encryption": "aes-256-gcm; session keys sealed with x25519-hkdf-sha256",
        "chunk_id": "hmac-sha256",
        "recovery_public_key": x25519_text(keys.recovery_public),
        "writer_public_key": ed25519_text(keys.signing_key.public_key()),
        "created": utc_iso(now),
    }


def encode_repository_config(keys: WriterKeys, *, now: datetime) -> bytes:
    return sign_document("repository-config", repository_config_body(keys, now=now),
                         keys.signing_key)


def read_repository_config(store: Store, trusted: Sequence[Ed25519PublicKey]
                           ) -> RepositoryConfig:
    """Read and verify a store's ``config`` object (any region)."""
    name = f"{store.url}: {CONFIG_KEY}"
    try:
        data = store.get(CONFIG_KEY)
    except ObjectNotFound:
        raise InputError(f"{store.url}: no drkit repository here "
                         "(no config object; run 'drkit keys init')") from None
    body = open_document(data, "repository-config", trusted, name=name)
    version = body.get("format_version")
    if not isinstance(version, int):
        raise IntegrityError(f"{name}: no format version")
    if version > REPOSITORY_FORMAT_VERSION:
        raise FormatVersionError(
            f"{name}: repository format version {version} is newer than this drkit supports "
            f"({REPOSITORY_FORMAT_VERSION}); upgrade drkit")
    try:
        return RepositoryConfig(
            repository_id=str(body["repository_id"]),
            format_version=version,
            chunker=dict(body["chunker"]),
            recovery_public=parse_x25519(body["recovery_public_key"]),
            writer_public=parse_ed25519(body["writer_public_key"]),
            created=str(body["created"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise IntegrityError(f"{name}: malformed repository config ({exc})") from None


def read_repository_id(store: Store, trusted: Sequence[Ed25519PublicKey]) -> str:
    """The repository id of a store, from its verified ``config`` object."""
    return read_repository_config(store, trusted).repository_id


def public_fingerprints(config: Config) -> dict[str, str]:
    """Fingerprints of the public keys in the keys folder (for ``drkit keys show``)."""
    repository_id, _ = load_id_key(config)
    return {
        "repository_id": repository_id,
        "writer": fingerprint(load_writer_public_key(config)),
        "writer_public_key": ed25519_text(load_writer_public_key(config)),
        "recovery": fingerprint(load_recovery_public_key(config)),
        "recovery_public_key": x25519_text(load_recovery_public_key(config)),
    }
