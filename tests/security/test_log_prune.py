"""Retention of the archived binlog by the approved prune, and what one operator cannot do
to it, on a private MariaDB writing a ROW binlog (skipped when the MariaDB programs are
absent).

The story: a daily snapshot (its dump records its binlog position: the base), a write
load across a binlog rotation streamed with ``binlog stream --once`` (closed files and
in-progress versions), a second snapshot. A prune approved by two other people forgets
the first snapshot and deletes the binlog files before the kept base and the superseded
in-progress versions, and nothing the kept base needs: a restore to a position still
works and verify is clean. The single operator who holds the backup host (the writer
key, the region's folders) cannot prune the log without approval, cannot delete the file
the kept base starts in, and cannot make it "forgotten" with a tombstone reusing the real
prune's proof.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pymysql
import pytest

from drkit.config import load_config
from drkit.errors import InputError
from drkit.journal import Journal, JournalEntry
from drkit.pitr.mariadb_server import INSTALL_NAMES, SERVER_NAMES, PrivateMySQL, find_program
from drkit.pitr.server import free_port
from drkit.repo.keys import load_trusted_writer_keys, load_writer_signing_key, read_repository_id
from drkit.repo.logarchive import LogCatalog, find_gaps
from drkit.repo.repository import Repository
from drkit.storage.url import open_store

Project = Any  # tests/security/conftest.py: a project played through the real CLI


@pytest.fixture
def mariadb() -> Iterator[PrivateMySQL]:
    for names in (SERVER_NAMES, INSTALL_NAMES, ("mariadb-binlog", "mysqlbinlog"),
                  ("mariadb-dump", "mysqldump")):
        if find_program(names) is None:
            pytest.skip(f"MariaDB programs not installed ({' or '.join(names)} not found)")
    folder = Path(tempfile.mkdtemp(prefix="drkit-my-"))
    server = PrivateMySQL(folder, port=free_port(), binlog=True)
    if not server.mariadb:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"{server.server} is not MariaDB")
    try:
        server.init()
    except InputError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"cannot create a private MariaDB server: {exc}")
    server.start({"innodb_flush_log_at_trx_commit": "2", "sync_binlog": "0"})
    try:
        server.connect().cursor().execute("CREATE DATABASE shop")
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def sql(server: PrivateMySQL, *statements: str) -> None:
    conn = server.connect("shop")
    try:
        for statement in statements:
            conn.cursor().execute(statement)
    finally:
        conn.close()


def catalog(project: Project, region: str = "beijing") -> LogCatalog:
    config = load_config(project.root / "drkit.toml")
    store = open_store(config.region(region).url, base_dir=config.base_dir)
    repo = Repository.open(store, load_trusted_writer_keys(config), region=region)
    return LogCatalog.from_entries(repo.visible.values())


def stream(project: Project) -> None:
    project.clock.advance(timedelta(minutes=1))
    project.json("binlog", "stream", "--source", "shop", "--once")


@pytest.fixture
def binlog_history(make_project: Any, mariadb: PrivateMySQL) -> tuple[Project, PrivateMySQL]:
    """Two snapshots of the MySQL source, the binlog archived in between and after."""
    project = make_project()
    toml = project.root / "drkit.toml"
    toml.write_text(toml.read_text() + f"""
[sources.shop]
type = "mysql"
host = "127.0.0.1"
port = {mariadb.port}
user = "root"
database = "shop"
""")
    sql(mariadb, "CREATE TABLE orders (id INT PRIMARY KEY, amount INT)")
    project.json("snapshot")  # base 1, in mysql-bin.000001
    sql(mariadb, *(f"INSERT INTO orders VALUES ({n}, {n})" for n in range(1, 51)))
    sql(mariadb, "FLUSH BINARY LOGS")
    sql(mariadb, *(f"INSERT INTO orders VALUES ({n}, {n})" for n in range(51, 101)))
    stream(project)  # 000001 complete, 000002 in progress (version 1)
    sql(mariadb, *(f"INSERT INTO orders VALUES ({n}, {n})" for n in range(101, 151)))
    stream(project)  # 000002 version 2 supersedes version 1
    project.clock.advance(timedelta(days=2))
    project.json("snapshot")  # base 2, in mysql-bin.000002
    sql(mariadb, *(f"INSERT INTO orders VALUES ({n}, {n})" for n in range(151, 201)))
    stream(project)  # 000002 version 3: archived after the newest snapshot, not planned
    project.run("replicate")
    return project, mariadb


def test_approved_prune_deletes_the_log_no_kept_base_needs(
        binlog_history: tuple[Project, PrivateMySQL]) -> None:
    project, _server = binlog_history
    before = catalog(project)
    versions = {s.key: s for s in before.of("shop")}
    first = [s for s in before.of("shop") if s.info.name == "mysql-bin.000001"]
    second = sorted((s for s in before.of("shop") if s.info.name == "mysql-bin.000002"),
                    key=lambda s: s.info.end)
    assert len(first) >= 1 and len(second) == 3 and all(s.info.partial for s in second)

    doc = project.json("request", "prune", "--keep-last", "1", "--older-than-days", "1",
                       "--reason", "retention", *project.signer("alice"))
    request = doc["id"]
    logs = doc["plan"]["logs"]
    planned = {(s["name"], s["reason"]) for s in logs["segments"]}
    assert planned == {("mysql-bin.000001", "before-base") for _ in first} | {
        ("mysql-bin.000002", "superseded")}
    assert [s["key"] for s in logs["segments"] if s["reason"] == "superseded"] == [
        second[0].key]
    assert logs["bases"]["shop"][0]["start"][0] == 2  # the kept base stands in 000002
    assert len(doc["plan"]["forget"]) == 1
    deleting = {i["key"] for i in doc["plan"]["delete"]}
    assert {s.key for s in first} | {second[0].key} <= deleting
    assert not {second[1].key, second[2].key} & deleting

    for name in ("bob", "carol"):
        project.approve(request, name)
    result = project.json("execute", request)
    assert result["result"]["log_segments"] == len(first) + 1

    after = catalog(project)
    kept = {s.key for s in after.of("shop")}
    assert kept == set(versions) - {s.key for s in first} - {second[0].key}
    assert find_gaps(after.of("shop")) == []
    for key in deleting:
        assert not (project.region("beijing") / key).exists()
        if key.startswith("logs/"):  # the cold copy keeps everything
            assert (project.region("shanghai") / key).exists()
    code, report = project.verify()
    assert code == 0, report["findings"]

    # The kept base plus the kept log still restore every row.
    out = project.root / "restored"
    res = project.json("restore", "--database", "shop", "--to", str(out), "--to-position",
                       f"mysql-bin.000002:{second[2].info.end[1]}", "--keep-running")
    try:
        conn = pymysql.connect(unix_socket=res["socket"], user="root", database="shop")
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM orders")
            assert cur.fetchone() == (200,)
        conn.close()
    finally:
        _stop(out)


def _stop(scratch: Path) -> None:
    pid = scratch / "server" / "mysqld.pid"
    if pid.exists():
        os.kill(int(pid.read_text().split()[0]), signal.SIGTERM)
        for _ in range(100):
            if not pid.exists():
                break
            time.sleep(0.1)


def test_one_operator_cannot_prune_the_log(
        binlog_history: tuple[Project, PrivateMySQL]) -> None:
    project, _server = binlog_history
    held = project.objects("beijing", "logs/")
    base_file = [s for s in catalog(project).of("shop") if s.info.name == "mysql-bin.000002"]

    # Without approval: refused, nothing deleted.
    res = project.run("prune", "--keep-last", "1", "--older-than-days", "1", ok=False)
    assert res.exit_code == 3 and "approval" in res.stderr
    # A request approved by its own requester and one more person is still short.
    request = project.request("prune", "--keep-last", "1", "--older-than-days", "1")
    assert project.approve(request, "alice", ok=False).exit_code != 0
    project.approve(request, "bob")
    res = project.run("execute", request, ok=False)
    assert res.exit_code == 3
    # Deleting the file the kept base starts in, one object at a time: needs approval.
    res = project.run("delete-object", "beijing", base_file[-1].key, ok=False)
    assert res.exit_code == 3
    assert project.objects("beijing", "logs/") == held

    # A genuine approved prune (two others), then its proof reused in a tombstone for the
    # base's file: unproven, reported CRITICAL in every region, and the file still counts.
    project.approve(request, "carol")
    project.json("execute", request)
    entries = _journal(project)
    real = next(e for e in entries if e.kind == "tombstone" and (e.note or {}).get("proof"))
    target = base_file[-1]
    logged = next(e for e in entries if e.key == target.key and e.kind == "object")
    _append_as_writer(project, JournalEntry(kind="tombstone", key=target.key,
                                            size=logged.size, sha256=logged.sha256,
                                            note=real.note))
    project.run("replicate")
    code, report = project.verify()
    assert code == 1
    found = {(f["region"], f["severity"], f["check"], f["key"]) for f in report["findings"]}
    for region in ("beijing", "shanghai"):
        assert (region, "critical", "tombstone-unproven", target.key) in found
    assert target.key in {s.key for s in catalog(project).of("shop")}


def _journal(project: Project) -> list[JournalEntry]:
    config = load_config(project.root / "drkit.toml")
    store = open_store(config.primary_region.url, base_dir=config.base_dir)
    trusted = load_trusted_writer_keys(config)
    _cp, entries = Journal(store, "drkit:" + read_repository_id(store, trusted)).entries(
        trusted)
    return list(entries)


def _append_as_writer(project: Project, entry: JournalEntry) -> None:
    config = load_config(project.root / "drkit.toml")
    store = open_store(config.primary_region.url, base_dir=config.base_dir)
    trusted = load_trusted_writer_keys(config)
    Journal(store, "drkit:" + read_repository_id(store, trusted)).append(
        [entry], load_writer_signing_key(config), now=project.clock.now(), trusted=trusted)
