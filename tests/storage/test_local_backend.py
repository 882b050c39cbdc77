"""Local-folder specifics: racing writers, crash leftovers, the sidecar."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from drkit.clock import FixedClock
from drkit.errors import ObjectExists
from drkit.storage.local import LocalStore


def test_racing_writers_exactly_one_wins(tmp_path: Path, clock: FixedClock) -> None:
    store = LocalStore(tmp_path / "store", clock=clock)
    barrier = threading.Barrier(8)
    won: list[bytes] = []
    refused: list[bytes] = []

    def write(n: int) -> None:
        data = f"writer {n}".encode() * 1000
        barrier.wait()
        try:
            store.put("packs/contested", data)
        except ObjectExists:
            refused.append(data)
        else:
            won.append(data)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(refused) == 7
    assert store.get("packs/contested") == won[0]
    assert list((tmp_path / "store" / ".drkit-tmp").glob("put-*")) == []
    sidecar = (tmp_path / "store" / ".drkit-meta" / "packs" / "contested.json").read_text()
    assert hashlib.sha256(won[0]).hexdigest() in sidecar


def test_listing_skips_drkit_folders_and_leftover_temp_files(tmp_path: Path,
                                                            clock: FixedClock) -> None:
    store = LocalStore(tmp_path / "store", clock=clock)
    store.put("a", b"1", storage_class="ARCHIVE")
    (tmp_path / "store" / ".drkit-tmp" / "put-crashed").write_bytes(b"half")
    assert [i.key for i in store.list()] == ["a"]
    assert store.head("a").needs_thaw
