"""Which region a store is: the ``region-identity`` object in each region.

A region's URL lives in an editable drkit.toml, so a name alone does not say which bucket
or folder an approval was for: swapping two regions' URLs after an approval would point an
approved deletion at the other region's copy. Each region therefore carries one
create-only object, a signed document (``drkit.repo.documents``, kind
``region-identity``, signed by the writer)::

    {"repository": REPO_ID, "region": NAME, "created": ISO}

``drkit keys init`` writes it in the primary and the first ``drkit replicate`` in every
other region. Plans of deleting operations bind it (region name + sha256 of the object),
and ``drkit verify`` reports a region whose identity is missing or names another region
or repository.

It is deliberately not a journal leaf: the journal is the same in every region, the
identity is not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from drkit.clock import utc_iso
from drkit.errors import IntegrityError, ObjectExists, ObjectNotFound
from drkit.repo.documents import open_document, sign_document
from drkit.storage.base import Store

IDENTITY_KEY = "region-identity"
IDENTITY_KIND = "region-identity"


@dataclass(frozen=True)
class RegionIdentity:
    repository_id: str
    region: str
    sha256: str  # of the stored object: what plans bind

    def binding(self) -> dict[str, str]:
        """The part of a plan that pins the target region."""
        return {"region": self.region, "sha256": self.sha256}


def encode_identity(repository_id: str, region: str, signer: Ed25519PrivateKey, *,
                    now: datetime) -> bytes:
    return sign_document(IDENTITY_KIND, {"repository": repository_id, "region": region,
                                         "created": utc_iso(now)}, signer)


def parse_identity(data: bytes, trusted: Sequence[Ed25519PublicKey], *, name: str
                   ) -> RegionIdentity:
    body = open_document(data, IDENTITY_KIND, trusted, name=name)
    repository, region = body.get("repository"), body.get("region")
    if not isinstance(repository, str) or not isinstance(region, str):
        raise IntegrityError(f"{name}: malformed region identity")
    return RegionIdentity(repository, region, hashlib.sha256(data).hexdigest())


def read_identity(store: Store, trusted: Sequence[Ed25519PublicKey]) -> RegionIdentity | None:
    """The store's verified identity; None when it has none; IntegrityError if forged."""
    try:
        data = store.get(IDENTITY_KEY)
    except ObjectNotFound:
        return None
    return parse_identity(data, trusted, name=f"{store.url}: {IDENTITY_KEY}")


def check_identity(store: Store, trusted: Sequence[Ed25519PublicKey], *, region: str,
                   repository_id: str) -> RegionIdentity | None:
    """The identity if it names ``region`` of ``repository_id`` (None when absent);
    IntegrityError naming both when the store is another region's or repository's."""
    identity = read_identity(store, trusted)
    if identity is None:
        return None
    if identity.repository_id != repository_id or identity.region != region:
        raise IntegrityError(
            f"{store.url}: this store is region {identity.region!r} of repository "
            f"{identity.repository_id}, not region {region!r} of {repository_id} (the "
            "region's URL in drkit.toml points at another region's store)")
    return identity


def ensure_identity(store: Store, signer: Ed25519PrivateKey,
                    trusted: Sequence[Ed25519PublicKey], *, region: str, repository_id: str,
                    now: datetime) -> RegionIdentity:
    """Write the identity once (create-only); an existing one must name this region."""
    existing = check_identity(store, trusted, region=region, repository_id=repository_id)
    if existing is not None:
        return existing
    data = encode_identity(repository_id, region, signer, now=now)
    try:
        store.put(IDENTITY_KEY, data, storage_class="STANDARD")
    except ObjectExists:  # written concurrently: it must still name this region
        found = check_identity(store, trusted, region=region, repository_id=repository_id)
        assert found is not None
        return found
    return RegionIdentity(repository_id, region, hashlib.sha256(data).hexdigest())
