"""Which events are dangerous, and the [oplog] settings: shell patterns, the linter's
classes for cloud calls and cloud CLI commands, bad configuration as one clear error."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from drkit.config import load_config
from drkit.errors import ConfigError
from drkit.oplog.approvals import OUTSIDE, UNAPPROVED, approval_status
from drkit.oplog.ingest import redact_command
from drkit.oplog.model import HOST, Actor, OpEvent
from drkit.oplog.rules import dangers, shell_dangers
from drkit.oplog.settings import load_settings

AT = datetime(2026, 11, 23, 11, 5, tzinfo=UTC)


def _shell(command: str) -> OpEvent:
    return OpEvent(time=AT, actor=Actor(user="wang"), cloud=HOST, region=None,
                   service="shell", action=command.split()[0], command=command,
                   source="history", record_id="1")


@pytest.mark.parametrize(("command", "rules"), [
    ("rm -rf /var/lib/mysql/shop", ["shell:rm-rf-data"]),
    ("cd /tmp && sudo rm -fr /data/*", ["shell:rm-rf-data"]),
    ("rm -rf ./build /tmp/x", []),
    ("rm -r /data/old", []),  # not forced: asks before each write-protected file
    ('mysql -uroot -pX -e "drop database shop"', ["shell:drop-database"]),
    ("mysqladmin -uroot drop shop", ["shell:drop-database"]),
    ("psql -c 'TRUNCATE orders'", ["shell:drop-database"]),
    ("dd if=/dev/zero of=/dev/vdb bs=1M", ["shell:dd-volume"]),
    ("mkfs.xfs -f /dev/vdc", ["shell:format-volume"]),
    ("aws ec2 delete-snapshot --snapshot-id snap-1", ["cli:ec2:DeleteSnapshot"]),
    ("aws rds delete-db-snapshot --db-snapshot-identifier s1", ["cli:rds:DeleteDBSnapshot"]),
    ("aws s3 rm s3://b/k --recursive", ["cli:s3:DeleteObject"]),
    ("aws cloudtrail stop-logging --name main", ["cli:cloudtrail:StopLogging"]),
    ("tccli cbs DeleteSnapshots --SnapshotIds '[\"s\"]'", ["cli:cbs:DeleteSnapshots"]),
    ("coscli rb cos://shop-1250000000", ["cli:cos:DeleteBucket"]),
    ("systemctl stop auditd", ["shell:audit-off"]),
    ("aws s3 ls s3://b", []),
    ("ls -la /var/lib/mysql", []),
])
def test_shell_patterns(command: str, rules: list[str]) -> None:
    assert [d.rule for d in shell_dangers(command)] == rules


def test_cloud_calls_use_the_linter_classes() -> None:
    def classes(cloud: str, action: str) -> list[str]:
        event = OpEvent(time=AT, actor=Actor(user="wang"), cloud=cloud, region="r",
                        service=action.split(":")[0], action=action)
        return [d.action_class for d in dangers(event)]

    assert classes("aws", "s3:DeleteBucket") == ["destructive"]
    assert classes("aws", "cloudtrail:StopLogging") == ["tampering"]
    assert classes("aws", "iam:AttachUserPolicy") == ["escalation_grant"]
    assert classes("aws", "s3:GetObject") == []
    assert classes("tencent", "cloudaudit:StopLogging") == ["tampering"]
    assert classes("tencent", "cdb:IsolateDBInstance") == ["destructive"]


def test_status_without_any_executed_request() -> None:
    drop = _shell('mysql -e "drop database shop"')
    assert approval_status(drop, [])[0] == OUTSIDE
    snapshot = _shell("aws ec2 delete-snapshot --snapshot-id snap-1")
    # drkit has a request type for deleting cloud snapshots (cloud-expire): none covered it.
    assert approval_status(snapshot, [])[0] == UNAPPROVED


def test_passwords_never_leave_in_a_message() -> None:
    assert redact_command("mysql -uroot -pS3cret -e 'drop database x'") == \
        "mysql -uroot -p*** -e 'drop database x'"
    assert "hunter2" not in redact_command("mysqldump --password=hunter2 shop")


def test_settings_defaults_and_errors(tmp_path: Path) -> None:
    settings = load_settings(None)
    assert settings.off_hours(datetime(2026, 11, 23, 2, 36, tzinfo=UTC))  # 02:36 UTC
    assert not settings.off_hours(AT)  # Monday 11:05 UTC
    assert settings.off_hours(datetime(2026, 11, 22, 11, 5, tzinfo=UTC))  # Sunday
    path = tmp_path / "drkit.toml"
    base = '[repository]\nprimary = "a"\n[regions.a]\nurl = "file:a"\n'
    path.write_text(base + '[oplog]\ntimezone = "Asia/Shanghai"\nwork_hours = "09:00-19:00"\n')
    shanghai = load_settings(load_config(path))
    assert not shanghai.off_hours(datetime(2026, 11, 23, 2, 36, tzinfo=UTC))  # 10:36 there
    path.write_text(base + '[oplog]\nwork_hours = "nine to five"\n')
    with pytest.raises(ConfigError, match=r"oplog\.work_hours: 'nine to five': use HH:MM"):
        load_settings(load_config(path))
    path.write_text(base + '[oplog]\nbogus = 1\n')
    with pytest.raises(ConfigError, match=r"oplog\.bogus: unknown key"):
        load_settings(load_config(path))
