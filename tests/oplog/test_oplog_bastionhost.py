"""Tencent Cloud Bastion Host command and session search: saved ``tccli`` responses, and
live through the real tencentcloud-sdk-python-bh client against the Tencent API 3.0 test
double (real HTTP, real TC3 signing); then one ``drkit oplog ingest`` as a user runs it,
where a bastion command dropping the shop database is a CRITICAL outside-drkit finding."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cloud.tencent_double import TencentDouble

from drkit.clock import FixedClock
from drkit.errors import InputError
from drkit.oplog.ingest import bastion_activity
from drkit.oplog.readers import parse_spec, read_source
from drkit.oplog.readers.bastionhost import parse_saved
from drkit.oplog.rules import dangers

FIXTURES = Path(__file__).parent / "fixtures"
CLOCK = FixedClock(datetime(2026, 11, 23, 3, 30, tzinfo=UTC))


@pytest.fixture
def tencent(monkeypatch: pytest.MonkeyPatch) -> Iterator[TencentDouble]:
    double = TencentDouble(secret_id="AKIDdrkitBASTION", secret_key="drkit-bastion-test-key")
    double.start()
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", double.secret_id)
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", double.secret_key)
    try:
        yield double
    finally:
        double.stop()


def test_saved_search_responses_become_shell_events() -> None:
    events = read_source(parse_spec(f"bh:{FIXTURES / 'bh'}"), clock=CLOCK)
    by_command = {e.command: e for e in events}
    assert len(events) == len(by_command) == 6
    drop = by_command['mysql -h prod-db.internal -uroot -pS3cret -e "drop database shop"']
    assert (drop.operator, drop.actor.session_user, drop.actor.source_ip) == (
        "wang", "root", "10.0.8.15")
    assert drop.session == "bh:7c1e2f4a-8b3d-4e5f-9a6b-1c2d3e4f5a6b"
    assert (drop.host, drop.resources, drop.source) == ("db-prod-1", ("db-prod-1",), "bh")
    assert drop.time == datetime(2026, 11, 23, 2, 35, 58, tzinfo=UTC)  # 10:35:58+08:00
    assert drop.ok and drop.extra["real_name"] == "Wang Wei"
    assert [d.rule for d in dangers(drop)] == ["shell:drop-database"]

    # What the bastion did with the command: blocked, or held until someone confirmed it.
    blocked = by_command["rm -rf /data/backups"]
    assert blocked.result == "blocked by the bastion" and not blocked.ok
    assert [d.rule for d in dangers(blocked)] == ["shell:rm-rf-data"]
    confirmed = by_command["systemctl restart mysqld"]
    assert confirmed.ok and confirmed.extra["bastion_action"] == 3

    # SearchCommandBySid records lack the device's name: the saved SearchSession gives it.
    dd = by_command["dd if=/dev/zero of=/dev/vdb bs=1M count=100"]
    assert (dd.operator, dd.actor.session_user, dd.host) == ("li", "ubuntu", "backup-node-2")
    assert dd.extra["real_name"] == "Li Na"
    assert [d.rule for d in dangers(dd)] == ["shell:dd-volume"]

    # dasb's SearchSessionCommand: sessions holding their commands; a cloud CLI inside.
    snap = next(e for e in events if e.action == "tccli")
    assert (snap.operator, snap.session, snap.host) == (
        "zhao", "bh:5a5a5a5a-0000-4000-8000-000000000001", "web-1")
    assert [d.rule for d in dangers(snap)] == ["cli:cbs:DeleteSnapshots"]

    # Read twice, the same ids (re-ingesting adds nothing).
    again = read_source(parse_spec(f"bh:{FIXTURES / 'bh'}"), clock=CLOCK)
    assert sorted(e.id for e in again) == sorted(e.id for e in events)


def test_a_saved_file_that_is_not_a_search_response_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "out.json"
    bad.write_text('{"Response": {"Error": {"Code": "AuthFailure"}, "RequestId": "x"}}')
    with pytest.raises(InputError, match=r"out\.json: not a Bastion Host search response"):
        parse_saved([(str(bad), bad.read_bytes())])
    bad.write_text("Commands: none")
    with pytest.raises(InputError, match="not JSON"):
        read_source(parse_spec(f"bh:{bad}"), clock=CLOCK)


def test_live_search_pages_through_the_sdk(tencent: TencentDouble) -> None:
    now = CLOCK.now()
    sid = tencent.add_bastion_session(at=now - timedelta(hours=2), user="wang",
                                      device="db-prod-1", from_ip="10.0.8.15")
    for i in range(250):
        tencent.add_bastion_command(sid, at=now - timedelta(hours=2) + timedelta(seconds=i),
                                    cmd=f"cat /etc/hosts # {i}")
    tencent.add_bastion_command(sid, at=now - timedelta(minutes=50),
                                cmd='mysql -uroot -e "drop database shop"')
    tencent.add_bastion_command(sid, at=now - timedelta(minutes=49), cmd="rm -rf /data",
                                action=2)
    old = tencent.add_bastion_session(at=now - timedelta(days=30), user="old")
    tencent.add_bastion_command(old, at=now - timedelta(days=30), cmd="dropdb shop")

    spec = parse_spec(f"bh-api:ap-guangzhou?endpoint=http://{tencent.endpoint}")
    events = read_source(spec, clock=CLOCK)
    assert len(events) == 252 and {e.operator for e in events} == {"wang"}
    pages = [p for a, r, p in tencent.calls if a == "SearchCommand"]
    assert [(p["Offset"], p["Limit"]) for p in pages] == [(0, 200), (200, 200)]
    assert pages[0]["StartTime"] == "2026-11-16T03:30:00+00:00"  # a week back
    assert all(r == "ap-guangzhou" for a, r, _p in tencent.calls)
    drop = next(e for e in events if "drop database" in (e.command or ""))
    assert (drop.session, drop.host, drop.actor.source_ip, drop.region) == (
        f"bh:{sid}", "db-prod-1", "10.0.8.15", "ap-guangzhou")
    assert drop.time == now - timedelta(minutes=50)
    assert next(e for e in events if e.command == "rm -rf /data").result == (
        "blocked by the bastion")


def test_live_search_errors_are_one_line(tencent: TencentDouble,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", "wrong")
    spec = parse_spec(f"bh-api:ap-guangzhou?endpoint=http://{tencent.endpoint}")
    with pytest.raises(InputError, match="SearchCommand failed: AuthFailure.SignatureFailure"):
        read_source(spec, clock=CLOCK)
    monkeypatch.delenv("TENCENTCLOUD_SECRET_ID")
    with pytest.raises(InputError, match="set TENCENTCLOUD_SECRET_ID"):
        read_source(spec, clock=CLOCK)


def test_ingest_bastion_drop_database_is_critical_outside_drkit(
        s3_project: Any, hooks: Any, tencent: TencentDouble) -> None:
    project = s3_project
    sid = tencent.add_bastion_session(at=datetime(2026, 11, 23, 2, 33, 12, tzinfo=UTC),
                                      user="wang", account="root", device="db-prod-1",
                                      from_ip="10.0.8.15")
    tencent.add_bastion_command(sid, at=datetime(2026, 11, 23, 2, 33, 20, tzinfo=UTC),
                                cmd="ls -l /var/lib/mysql")
    tencent.add_bastion_command(sid, at=datetime(2026, 11, 23, 2, 35, 58, tzinfo=UTC),
                                cmd='mysql -uroot -pS3cret -e "drop database shop"')
    sources = [f"bh-api:ap-guangzhou?endpoint=http://{tencent.endpoint}",
               f"sudoio:{FIXTURES / 'sudo-io'}?host=db-prod-1"]

    project.clock.set(datetime(2026, 11, 23, 2, 45, tzinfo=UTC))
    res = project.run("--json", "oplog", "ingest", *sources, ok=False)
    assert res.exit_code == 1, res.stderr
    doc = json.loads(res.stdout)
    critical = {(f["rule"], f["status"]): f for f in doc["findings"]
                if f["severity"] == "critical"}
    drop = critical[("shell:drop-database", "outside-drkit")]
    assert drop["operator"] == "wang"
    # The bastion's command and the one typed in the sudo shell: one finding of two.
    assert drop["count"] == 2
    assert set(drop["sessions"]) == {f"bh:{sid}", "sudo:db-prod-1:00/00/02"}
    assert any('drop database shop' in c and "-p***" in c for c in drop["commands"])
    assert "S3cret" not in res.stdout
    assert ("shell:audit-off", "outside-drkit") in critical  # sudo systemctl stop auditd

    assert len(hooks.bodies) == 1 and hooks.bodies[0]["event"] == "oplog_critical"
    sent = {f["rule"]: f for f in hooks.bodies[0]["findings"]}
    assert sent["shell:drop-database"]["operator"] == "wang"
    assert f"bh:{sid}" in sent["shell:drop-database"]["sessions"]

    assert (doc["read"], doc["new"]) == (8, 8)  # 2 bastion commands, 6 from sudo
    assert doc["summary"]

    # Read again: nothing new, nothing announced.
    again = json.loads(project.run("--json", "oplog", "ingest", *sources).stdout)
    assert (again["new"], again["findings"], len(hooks.bodies)) == (0, [], 1)

    # Both are bastion sources, followed for log gaps by `oplog check`.
    activity = bastion_activity([parse_spec(s) for s in sources], {}, [])
    assert sorted(v["kind"] for v in activity.values()) == ["bh-api", "sudoio"]
