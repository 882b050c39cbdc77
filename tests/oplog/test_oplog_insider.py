"""The insider story end to end, through the real CLI.

An operator, through a bastion session, drops the production database and deletes a
region's backup bucket without any drkit request; in the same window drkit itself runs a
prune that two approvers signed. The next ingest raises CRITICAL findings naming the
operator, the session and the commands, a webhook (a real local HTTP server) fires, the
report lists them, and the prune's deletions are listed as approved, not as findings.
The CloudTrail log files are gzip JSON in a bucket of the moto server, read through the
same S3 store code drkit uses for its regions.
"""

from __future__ import annotations

import gzip
import json
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from moto_server import s3_client

from drkit.clock import utc_iso

ACCOUNT = "111122223333"
FIXTURES = Path(__file__).parent / "fixtures"


def _record(*, at: datetime, name: str, bucket: str, key: str | None, role: str,
            session: str, ip: str, region: str = "us-east-1") -> dict[str, Any]:
    """A CloudTrail record as AWS writes one for an S3 call by an assumed role."""
    params: dict[str, Any] = {"bucketName": bucket, "Host": f"{bucket}.s3.amazonaws.com"}
    resources = [{"type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}",
                  "accountId": ACCOUNT}]
    if key is not None:
        params["key"] = key
        resources.insert(0, {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"})
    return {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AssumedRole", "principalId": f"AROAEXAMPLE:{session}",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
            "accountId": ACCOUNT, "accessKeyId": "ASIAEXAMPLEKEY000000",
            "sessionContext": {"sessionIssuer": {
                "type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}",
                "accountId": ACCOUNT, "userName": role}}},
        "eventTime": utc_iso(at), "eventSource": "s3.amazonaws.com", "eventName": name,
        "awsRegion": region, "sourceIPAddress": ip, "userAgent": "aws-cli/2.15.0",
        "requestParameters": params, "responseElements": None,
        "requestID": uuid.uuid4().hex[:16].upper(), "eventID": str(uuid.uuid4()),
        "readOnly": False, "resources": resources, "eventType": "AwsApiCall",
        "managementEvent": name == "DeleteBucket", "recipientAccountId": ACCOUNT,
        "eventCategory": "Management" if name == "DeleteBucket" else "Data"}


def _put_trail_file(url: str, endpoint: str, records: list[dict[str, Any]]) -> None:
    bucket = urlsplit(url).netloc
    key = (f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/11/23/"
           f"{ACCOUNT}_CloudTrail_us-east-1_20261123T0240Z_{uuid.uuid4().hex[:16]}.json.gz")
    s3_client(endpoint).put_object(Bucket=bucket, Key=key,
                                   Body=gzip.compress(json.dumps({"Records": records}).encode()))


def test_insider_drops_database_and_bucket_while_an_approved_prune_runs(
        s3_project: Any, hooks: Any, store_url_env: Any, tmp_path: Path) -> None:
    project = s3_project
    clock = project.clock  # 2026-11-23 02:30 UTC, a Monday
    primary_bucket = urlsplit(project.primary_url).netloc

    # drkit's own dangerous operation, done right: a prune two people approved.
    project.snapshot("old")
    (project.root / "data" / "uploads" / "old.txt").unlink()
    clock.advance(timedelta(minutes=1))
    project.snapshot("new")
    project.run("replicate")
    rid = project.request("prune", "--older-than-days", "0")
    project.approve(rid, "bob")
    project.approve(rid, "carol")
    clock.advance(timedelta(minutes=1))
    project.json("execute", rid)
    plan = project.json("requests", "--plan")["requests"][0]["plan"]
    pruned = [item["key"] for item in plan["delete"]]
    assert pruned
    executed_at = clock.now()

    # What CloudTrail delivered: drkit's role deleting exactly the planned objects, and the
    # insider deleting a backup bucket and one object no request names.
    records = [_record(at=executed_at + timedelta(seconds=20), name="DeleteObject",
                       bucket=primary_bucket, key=key, role="drkit-backup",
                       session="drkit-backup-host", ip="10.0.1.5") for key in pruned]
    records.append(_record(at=datetime(2026, 11, 23, 2, 38, 10, tzinfo=UTC),
                           name="DeleteBucket", bucket="shop-backup-shanghai", key=None,
                           role="ops-admin", session="wang", ip="10.0.8.15",
                           region="ap-east-1"))
    records.append(_record(at=datetime(2026, 11, 23, 2, 39, 0, tzinfo=UTC),
                           name="DeleteObject", bucket=primary_bucket,
                           key="snapshots/" + "ab" * 32, role="ops-admin", session="wang",
                           ip="10.0.8.15"))
    trail = store_url_env.s3()
    _put_trail_file(trail, store_url_env.endpoint, records)

    # What the bastion kept of the session.
    logs = tmp_path / "bastion-logs"
    logs.mkdir()
    shutil.copy(FIXTURES / "bastion" / "session-wang.log", logs / "session-wang.log")
    shutil.copy(FIXTURES / "bastion" / "audit.log", logs / "audit.log")
    sources = [f"cloudtrail:{trail}", f"transcript:{logs / 'session-wang.log'}?ip=10.0.8.15",
               f"auditd:{logs / 'audit.log'}?host=db-prod-1&users=1001:wang,0:root"]

    clock.set(datetime(2026, 11, 23, 2, 45, tzinfo=UTC))
    res = project.run("--json", "oplog", "ingest", *sources, ok=False)
    assert res.exit_code == 1, res.stderr
    doc = json.loads(res.stdout)
    assert doc["stored"].startswith("oplog/")

    # The approved prune: every planned deletion is approved by that request, no finding.
    assert sorted(a["event"]["resources"][0] for a in doc["approved"]) == sorted(
        f"arn:aws:s3:::{primary_bucket}/{key}" for key in pruned)
    assert {a["request"]["id"] for a in doc["approved"]} == {rid}
    assert {tuple(a["request"]["approved_by"]) for a in doc["approved"]} == {("bob", "carol")}
    assert all(f["operator"] != "drkit-backup-host" for f in doc["findings"])

    # The insider's acts: CRITICAL, named, with the session and the (redacted) commands.
    critical = {(f["rule"], f["status"]): f for f in doc["findings"]
                if f["severity"] == "critical"}
    assert {f["operator"] for f in critical.values()} == {"wang"}
    drop = critical[("shell:drop-database", "outside-drkit")]
    assert drop["count"] == 2  # the transcript and auditd saw the same command: grouped
    assert set(drop["sessions"]) == {"transcript:session-wang.log", "db-prod-1:ses=7"}
    assert any("DROP DATABASE shop" in c and "-p***" in c and "S3cret" not in c
               for c in drop["commands"])
    assert ("shell:rm-rf-data", "outside-drkit") in critical
    bucket = critical[("catalog:s3:DeleteBucket", "outside-drkit")]
    assert bucket["resources"] == ["arn:aws:s3:::shop-backup-shanghai"]
    assert bucket["source_ips"] == ["10.0.8.15"]
    cli_bucket = critical[("cli:s3:DeleteBucket", "outside-drkit")]
    assert cli_bucket["commands"] == ["aws s3api delete-bucket --bucket shop-backup-shanghai "
                                      "--region ap-east-1"]
    stray = critical[("catalog:s3:DeleteObject", "unapproved")]
    assert f"arn:aws:s3:::{primary_bucket}/snapshots/" + "ab" * 32 in stray["resources"]

    # The webhook fired once, at ingest, with every critical finding.
    assert len(hooks.bodies) == 1
    sent = hooks.bodies[0]
    assert sent["event"] == "oplog_critical"
    assert {f["id"] for f in sent["findings"]} == {f["id"] for f in critical.values()}
    assert "S3cret" not in json.dumps(sent)

    # Reading the same logs again adds nothing and announces nothing.
    again = json.loads(project.run("--json", "oplog", "ingest", *sources).stdout)
    assert again["new"] == 0 and again["findings"] == [] and len(hooks.bodies) == 1

    # The evidence is journaled and replicated like every other object.
    project.run("replicate")
    assert any((project.root / "regions" / "shanghai" / "oplog").iterdir())

    # The weekly report lists them; the prune appears as approved.
    report = project.json("oplog", "report", "--since", "2026-11-23", "--format", "json")
    assert {f["id"] for f in report["findings"]} == {f["id"] for f in doc["findings"]}
    ops = {o["operator"]: o for o in report["operators"]}
    assert set(ops) >= {"wang", "drkit-backup-host"}
    approved = ops["drkit-backup-host"]["dangerous"]
    assert [(d["status"], d["requests"], d["approved_by"]) for d in approved] == [
        ("approved", [rid], ["bob", "carol"])]
    wang = ops["wang"]
    assert {d["status"] for d in wang["dangerous"]} == {"outside-drkit", "unapproved"}
    sessions = {s["session"]: s for s in wang["sessions"]}
    assert any("DROP DATABASE" in r["command"] for r in
               sessions["transcript:session-wang.log"]["risky"])
    assert {"shell:mysql", "s3:DeleteBucket"} <= {a["action"] for a in wang["first_time"]}
    assert wang["off_hours_count"] == wang["events"]  # 02:3x UTC: before working hours
    text = project.run("oplog", "report", "--since", "2026-11-23").stdout
    assert "## Operator wang" in text and "DROP DATABASE shop" in text and "S3cret" not in text
    page = project.run("oplog", "report", "--since", "1d", "--format", "html").stdout
    assert page.startswith("<!DOCTYPE html>") and "<h2>Operator wang</h2>" in page
