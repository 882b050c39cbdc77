"""Each reader on real or realistic records: CloudTrail samples from AWS's documentation,
CloudAudit's documented event shape, auditd, script transcripts and shell history."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from botocore.stub import Stubber

from drkit.clock import FixedClock
from drkit.errors import InputError
from drkit.oplog.readers import parse_spec, read_source
from drkit.oplog.readers.bastion import parse_auditd, parse_history, parse_transcript
from drkit.oplog.readers.cloudaudit import event_from
from drkit.oplog.readers.cloudaudit import parse_log_file as parse_cloudaudit
from drkit.oplog.readers.cloudtrail import lookup_events, parse_log_file

FIXTURES = Path(__file__).parent / "fixtures"
CLOCK = FixedClock(datetime(2026, 11, 23, 3, 0, tzinfo=UTC))


def test_cloudtrail_documentation_samples_normalise() -> None:
    data = (FIXTURES / "aws-docs" / "cloudtrail-log-file-examples.json").read_bytes()
    events = parse_log_file(data, origin="examples")
    # Two of the eight records are CloudTrail Insights events (call rates, not calls).
    assert [e.action for e in events] == [
        "ec2:StartInstances", "ec2:StopInstances", "ec2:CreateKeyPair", "iam:CreateUser",
        "iam:AddUserToGroup", "cloudtrail:UpdateTrail"]
    first = events[0]
    assert first.operator == "Alice" and first.actor.access_key == "EXAMPLE_KEY_ID"
    assert first.actor.source_ip == "205.251.233.176" and first.actor.account == "123456789012"
    assert first.region == "us-east-2" and first.resources == ("i-ebeaf9e2",)
    assert first.time == datetime(2014, 3, 6, 21, 22, 54, tzinfo=UTC)
    assert events[4].resources == ("Bob", "admin")
    error = events[5]
    assert error.result == "error: TrailNotFoundException" and not error.ok
    assert error.record_id == "b7d4398e-b2f0-4faa-9c76-e2d316a8d67f"


def test_cloudtrail_folder_of_gzip_files_skips_digests(tmp_path: Path) -> None:
    sample = (FIXTURES / "aws-docs" / "s3-cloudtrail-entries.json").read_bytes()
    logs = tmp_path / "AWSLogs" / "111122223333" / "CloudTrail" / "us-west-2" / "2019" / "02"
    logs.mkdir(parents=True)
    (logs / "111122223333_CloudTrail_us-west-2_20190201T0330Z_abc.json.gz").write_bytes(
        gzip.compress(sample))
    digest = tmp_path / "AWSLogs" / "111122223333" / "CloudTrail-Digest"
    digest.mkdir(parents=True)
    (digest / "x_CloudTrail-Digest_us-west-2_20190201T0330Z.json.gz").write_bytes(
        gzip.compress(b'{"digestStartTime": "x"}'))
    events = read_source(parse_spec(f"cloudtrail:{tmp_path}"), clock=CLOCK)
    assert [e.action for e in events] == ["s3:ListBuckets", "s3:PutBucketAcl",
                                          "s3:GetBucketVersioning"]
    assert events[2].resources == ("arn:aws:s3:::DOC-EXAMPLE-BUCKET1",)
    # Reading the same records twice gives the same ids (so re-ingesting adds nothing).
    again = read_source(parse_spec(f"cloudtrail:{tmp_path}"), clock=CLOCK)
    assert [e.id for e in again] == [e.id for e in events]


def test_cloudtrail_bad_file_is_a_clear_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"not": "a trail"}')
    with pytest.raises(InputError, match=r"x\.json: not a CloudTrail log file"):
        read_source(parse_spec(f"cloudtrail:{bad}"), clock=CLOCK)
    with pytest.raises(InputError, match="a source is KIND:WHERE"):
        parse_spec("cloudwatch:/tmp")


def test_lookup_events_pages_through_boto3() -> None:
    import boto3

    record = json.loads((FIXTURES / "aws-docs" / "cloudtrail-log-file-examples.json")
                        .read_text())["Records"][4]
    client = boto3.client("cloudtrail", region_name="us-east-2", aws_access_key_id="x",
                          aws_secret_access_key="y")
    start, end = datetime(2014, 3, 25, tzinfo=UTC), datetime(2014, 3, 26, tzinfo=UTC)
    with Stubber(client) as stub:
        stub.add_response("lookup_events", {
            "Events": [{"EventId": "e1", "EventName": "AddUserToGroup",
                        "CloudTrailEvent": json.dumps(record)}], "NextToken": "t2"},
            {"StartTime": start, "EndTime": end})
        stub.add_response("lookup_events", {"Events": []},
                          {"StartTime": start, "EndTime": end, "NextToken": "t2"})
        events = list(lookup_events(client, start=start, end=end, origin="api"))
        stub.assert_no_pending_responses()
    assert [(e.operator, e.action) for e in events] == [("Alice", "iam:AddUserToGroup")]


CLOUDAUDIT_EVENT = {
    "userIdentity": {"principalId": "100015591000", "accountId": "100015591000",
                     "secretId": "AKIDexample0000000000", "type": "CAMUser",
                     "userName": "wang"},
    "actionType": "Write", "eventRegion": "ap-shanghai", "eventVersion": 2, "errorCode": 0,
    "requestID": "be59bbc7-e539-4b14-9d2c-eb7061e61000", "apiVersion": "3.0",
    "eventType": "ApiCall", "eventTime": 1795401490, "sourceIPAddress": "10.0.8.15",
    "resourceType": "cos", "eventName": "DeleteBucket",
    "eventSource": "cos.ap-shanghai.api.tencentyun.com",
    "resourceName": "shop-backup-1250000000"}


def test_cloudaudit_lookup_item_and_delivered_file() -> None:
    item = {"EventId": "ev-1", "Username": "wang", "EventTime": "1795401490",
            "CloudAuditEvent": json.dumps(CLOUDAUDIT_EVENT), "EventName": "DeleteBucket",
            "SecretId": "AKIDexample0000000000", "ErrorCode": 0,
            "Resources": {"ResourceType": "cos", "ResourceName": "shop-backup-1250000000"}}
    event = event_from(item, origin="api")
    assert event is not None
    assert (event.cloud, event.action, event.operator, event.region) == (
        "tencent", "cos:DeleteBucket", "wang", "ap-shanghai")
    assert event.resources == ("shop-backup-1250000000",) and event.ok
    assert event.time == datetime(2026, 11, 23, 2, 38, 10, tzinfo=UTC)
    failed = {**CLOUDAUDIT_EVENT, "errorCode": 403, "eventName": "StopLogging",
              "resourceType": "cloudaudit"}
    lines = "\n".join(json.dumps(r) for r in (CLOUDAUDIT_EVENT, failed))
    events = parse_cloudaudit(gzip.compress(lines.encode()), origin="cos-file")
    assert [(e.action, e.result) for e in events] == [
        ("cos:DeleteBucket", "ok"), ("cloudaudit:StopLogging", "error: 403")]


def test_auditd_execve_records() -> None:
    text = (FIXTURES / "bastion" / "audit.log").read_text()
    events = parse_auditd(text, origin="audit.log", host="db-prod-1",
                          users={"1001": "wang", "0": "root"})
    # The failed mkfs (success=no) ran nothing and is not an event.
    assert [e.command for e in events] == [
        "ls -la /var/lib/mysql",
        "mysql -h prod-db.internal -uroot -pS3cret -e 'DROP DATABASE shop'",
        "rm -rf /var/lib/mysql/shop"]
    assert {e.operator for e in events} == {"wang"}
    assert events[2].actor.session_user == "root"  # from the ENRICHED names
    assert events[0].actor.session_user is None  # ran as wang himself
    assert {e.session for e in events} == {"db-prod-1:ses=7"}
    assert events[1].time == datetime(2026, 11, 23, 2, 36, 40, 120000, tzinfo=UTC)


def test_script_transcript_commands() -> None:
    text = (FIXTURES / "bastion" / "session-wang.log").read_text()
    events = parse_transcript(text, origin="session-wang.log", source_ip="10.0.8.15")
    assert [(e.operator, e.actor.session_user, e.command) for e in events] == [
        ("wang", None, "ls -la /var/lib/mysql"),
        ("wang", None, 'mysql -h prod-db.internal -uroot -pS3cret -e "DROP DATABASE shop"'),
        ("wang", None, "sudo -i"),
        ("wang", "root", "rm -rf /var/lib/mysql/shop"),
        ("wang", "root", "aws s3api delete-bucket --bucket shop-backup-shanghai "
                         "--region ap-east-1"),
        ("wang", "root", "exit"), ("wang", None, "exit")]
    assert {e.time for e in events} == {datetime(2026, 11, 23, 2, 35, 58, tzinfo=UTC)}
    assert {e.host for e in events} == {"db-prod-1"}
    with pytest.raises(InputError, match="not a script transcript"):
        parse_transcript("[a@b ~]$ ls\n", origin="x")


def test_shell_history_with_timestamps() -> None:
    text = (FIXTURES / "bastion" / "bash_history").read_text()
    events = parse_history(text, origin="bash_history", user="wang", host="ops-1")
    # The line without a #EPOCH before it has no known time and is skipped.
    assert [(e.time.isoformat(), e.command) for e in events] == [
        ("2026-11-23T02:13:20+00:00", "ls"),
        ("2026-11-23T02:37:05+00:00", "tccli cbs DeleteSnapshots --SnapshotIds '[\"snap-0042\"]'"),
        ("2026-11-23T02:38:20+00:00", "history -c")]
    with pytest.raises(InputError, match="whose history"):
        read_source(parse_spec("history:/nonexistent"), clock=CLOCK)
