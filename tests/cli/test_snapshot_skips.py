"""Entries a snapshot cannot read are skipped with a warning, counted, and exit 1."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

CONFIG = """\
[repository]
primary = "beijing"
keys = "keys"
pack_size_mib = 1

[regions.beijing]
url = "file:regions/beijing"

[sources.uploads]
type = "files"
path = "data"
"""
ENV = {"DRKIT_RECOVERY_PASSPHRASE": "a long passphrase for the snapshot skip tests"}


@pytest.fixture
def folder(drkit, tmp_path: Path) -> Path:
    (tmp_path / "drkit.toml").write_text(CONFIG)
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_text("a\n" * 1000)
    (data / "sub" / "b.txt").write_text("b\n")
    assert drkit("keys", "init", env=ENV).exit_code == 0
    return tmp_path


def test_fifo_and_socket_are_skipped_named_and_counted(drkit, folder: Path) -> None:
    data = folder / "data"
    os.mkfifo(data / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(data / "sub" / "sock"))
        res = drkit("--json", "snapshot")
    finally:
        sock.close()
    assert res.exit_code == 1, res.stderr
    doc = json.loads(res.stdout)
    assert {(s["path"], s["reason"].split(",")[0]) for s in doc["skipped"]} == {
        ("pipe", "a FIFO"), ("sub/sock", "a socket")}
    assert "skipping pipe" in res.stderr and "skipping sub/sock" in res.stderr
    assert doc["files"] == 2
    text = drkit("snapshot")
    assert text.exit_code == 1 and "2 entries skipped with a warning" in text.stdout
    # the snapshot was taken and restores what it could read
    out = drkit("restore", "latest", "--to", "out", env=ENV)
    assert out.exit_code == 0, out.stderr
    assert (folder / "out" / "uploads" / "a.txt").read_text() == "a\n" * 1000
    assert not (folder / "out" / "uploads" / "pipe").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_and_folder_are_skipped(drkit, folder: Path) -> None:
    data = folder / "data"
    os.chmod(data / "a.txt", 0)
    os.chmod(data / "sub", 0)
    try:
        res = drkit("--json", "snapshot")
    finally:
        os.chmod(data / "a.txt", 0o644)
        os.chmod(data / "sub", 0o755)
    assert res.exit_code == 1
    paths = {s["path"] for s in json.loads(res.stdout)["skipped"]}
    assert paths == {"a.txt", "sub"}
