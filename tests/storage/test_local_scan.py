"""The two reads verify uses on a local folder: ``scan`` (names and sizes, no sidecar) and
``content_sha256`` (the bytes on disk, whatever the sidecar says)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from drkit.errors import ObjectNotFound
from drkit.storage.local import LocalStore


def test_scan_lists_what_list_lists_without_metadata(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    for key, data in (("packs/ab/1", b"x" * 10), ("packs/a0", b"y"), ("index/1", b"")):
        store.put(key, data, storage_class="STANDARD_IA")
    listed = [(i.key, i.size) for i in store.list("")]
    scanned = list(store.scan(""))
    assert [(i.key, i.size) for i in scanned] == listed
    assert [i.key for i in scanned] == ["index/1", "packs/a0", "packs/ab/1"]  # S3 order
    assert all(i.storage_class is None and i.sha256 is None for i in scanned)
    assert [i.key for i in store.scan("packs/")] == ["packs/a0", "packs/ab/1"]


@pytest.mark.parametrize("size", [0, 1, 1024, (1 << 20) + 3, 3 << 20])
def test_content_sha256_hashes_the_bytes_on_disk(tmp_path: Path, size: int) -> None:
    store = LocalStore(tmp_path / "s")
    data = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    store.put("packs/k", data)
    assert store.content_sha256("packs/k") == hashlib.sha256(data).hexdigest()
    path = store.root / "packs/k"
    path.chmod(0o644)
    path.write_bytes(data + b"!")  # changed behind drkit's back; the sidecar still agrees
    assert store.content_sha256("packs/k") == hashlib.sha256(data + b"!").hexdigest()
    assert store.content_sha256("packs/k") == store.head("packs/k").sha256


def test_content_sha256_of_an_absent_key_or_a_folder(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    store.put("packs/ab/1", b"x")
    for key in ("packs/none", "packs/ab", "packs/ab/1/deeper"):
        with pytest.raises(ObjectNotFound):
            store.content_sha256(key)
