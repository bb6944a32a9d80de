"""The local stack on the embedded endpoint (moto server over real HTTP), from template.yaml."""

from __future__ import annotations

import itertools
import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from handler.aws import Clients
from handler.local.endpoint import LocalEndpoint, local_boto3_session, start_endpoint
from handler.local.resources import LocalStack, create_local_stack
from handler.local.template import load_template
from handler.settings import Settings

pytestmark = pytest.mark.integration

ROOT_TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
_names = itertools.count()


@pytest.fixture(scope="module")
def clients(endpoint: LocalEndpoint) -> Clients:
    session = local_boto3_session()
    return Clients(
        s3=session.client("s3", endpoint_url=endpoint.url),
        sqs=session.client("sqs", endpoint_url=endpoint.url),
        dynamodb=session.client("dynamodb", endpoint_url=endpoint.url),
    )


def _fresh(clients: Clients, **kwargs: Any) -> LocalStack:
    """A stack with names no other test uses."""
    n = next(_names)
    return create_local_stack(
        clients.s3,
        clients.sqs,
        clients.dynamodb,
        bucket=f"pagedrop-ls-{n}",
        prefix=f"pagedrop-ls-{n}",
        **kwargs,
    )


@pytest.fixture(scope="module")
def stack(clients: Clients) -> LocalStack:
    return _fresh(clients)


def _receive_all(sqs: Any, queue_url: str, wait: int = 1) -> list[dict[str, Any]]:
    """Receive and delete every message now in the queue."""
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait
        ).get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        messages.extend(batch)
        wait = 0


def _object_created_keys(messages: list[dict[str, Any]]) -> list[str]:
    keys = []
    for message in messages:
        body = json.loads(message["Body"])
        for record in body.get("Records", []):
            assert record["eventName"].startswith("ObjectCreated:")
            keys.append(unquote_plus(record["s3"]["object"]["key"]))
    return keys


def test_endpoint_serves_http(endpoint: LocalEndpoint) -> None:
    assert endpoint.url.startswith("http://127.0.0.1:")
    assert endpoint.port > 0


def test_endpoint_on_a_busy_port_fails_instead_of_hanging() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(OSError):
            start_endpoint(busy.getsockname()[1])


def test_stack_values_come_from_the_template(stack: LocalStack, endpoint: LocalEndpoint) -> None:
    assert stack.input_prefix == "input/"
    assert stack.output_prefix == "output/"
    assert stack.max_receive_count == 5
    assert stack.visibility_timeout == 300
    assert stack.retention_days == 30
    assert stack.region == "us-east-1"
    assert stack.endpoint_url == endpoint.url
    assert stack.table_name.endswith("-status")


def test_table_matches_the_template(stack: LocalStack, clients: Clients) -> None:
    table = clients.dynamodb.describe_table(TableName=stack.table_name)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert sorted(
        (a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]
    ) == [("pk", "S"), ("status", "S"), ("updated_at", "S")]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    (gsi,) = table["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "by-status"
    assert gsi["KeySchema"] == [
        {"AttributeName": "status", "KeyType": "HASH"},
        {"AttributeName": "updated_at", "KeyType": "RANGE"},
    ]
    assert gsi["Projection"]["ProjectionType"] == "ALL"

    ttl = clients.dynamodb.describe_time_to_live(TableName=stack.table_name)
    assert ttl["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": "expires_at",
    }
    backups = clients.dynamodb.describe_continuous_backups(TableName=stack.table_name)
    pitr = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"


def test_gsi_lists_documents_by_status(stack: LocalStack, clients: Clients) -> None:
    ddb = clients.dynamodb
    for pk, status, updated in [
        ("b/input/a.pdf", "FAILED", "2026-01-02T00:00:00Z"),
        ("b/input/b.pdf", "PROCESSING", "2026-01-01T00:00:00Z"),
        ("b/input/c.pdf", "FAILED", "2026-01-01T00:00:00Z"),
    ]:
        ddb.put_item(
            TableName=stack.table_name,
            Item={"pk": {"S": pk}, "status": {"S": status}, "updated_at": {"S": updated}},
        )
    found = ddb.query(
        TableName=stack.table_name,
        IndexName="by-status",
        KeyConditionExpression="#s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "FAILED"}},
    )["Items"]
    assert [item["pk"]["S"] for item in found] == ["b/input/c.pdf", "b/input/a.pdf"]


def test_queues_match_the_template(stack: LocalStack, clients: Clients) -> None:
    sqs = clients.sqs
    work = sqs.get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=stack.dlq_url, AttributeNames=["All"])["Attributes"]
    assert work["VisibilityTimeout"] == "300"
    assert work["ReceiveMessageWaitTimeSeconds"] == "20"
    assert work["SqsManagedSseEnabled"] == "true"
    assert json.loads(work["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq["QueueArn"],
        "maxReceiveCount": 5,
    }
    assert dlq["MessageRetentionPeriod"] == str(14 * 24 * 3600)
    assert dlq["SqsManagedSseEnabled"] == "true"

    (statement,) = json.loads(work["Policy"])["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Resource"] == work["QueueArn"]
    # The template's fixed bucket name is replaced by the local bucket's.
    assert statement["Condition"]["ArnEquals"] == {"aws:SourceArn": f"arn:aws:s3:::{stack.bucket}"}


def test_bucket_matches_the_template(stack: LocalStack, clients: Clients) -> None:
    s3 = clients.s3
    assert s3.get_bucket_versioning(Bucket=stack.bucket)["Status"] == "Enabled"
    (rule,) = s3.get_bucket_encryption(Bucket=stack.bucket)["ServerSideEncryptionConfiguration"][
        "Rules"
    ]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=stack.bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    (config,) = s3.get_bucket_notification_configuration(Bucket=stack.bucket)["QueueConfigurations"]
    assert config["Events"] == ["s3:ObjectCreated:*"]
    assert config["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "input/"}]


def test_input_put_is_queued_output_put_is_not(stack: LocalStack, clients: Clients) -> None:
    s3, sqs = clients.s3, clients.sqs
    _receive_all(sqs, stack.queue_url)  # the s3:TestEvent sent when the notification was set

    key = f"{stack.input_prefix}reports/q3 summary+final.pdf"
    s3.put_object(Bucket=stack.bucket, Key=key, Body=b"%PDF-1.7\n")
    assert _object_created_keys(_receive_all(sqs, stack.queue_url)) == [key]

    s3.put_object(Bucket=stack.bucket, Key=f"{stack.output_prefix}reports/x/document.md", Body=b"#")
    s3.put_object(Bucket=stack.bucket, Key="elsewhere/report.pdf", Body=b"%PDF-1.7\n")
    assert _receive_all(sqs, stack.queue_url) == []


def test_exhausted_message_moves_to_the_dlq(clients: Clients) -> None:
    stack = _fresh(clients)
    sqs = clients.sqs
    _receive_all(sqs, stack.queue_url)
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody="boom")
    for _ in range(stack.max_receive_count):
        (message,) = sqs.receive_message(QueueUrl=stack.queue_url, WaitTimeSeconds=1)["Messages"]
        sqs.change_message_visibility(
            QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    assert sqs.receive_message(QueueUrl=stack.queue_url, WaitTimeSeconds=1).get("Messages") is None
    (dead,) = _receive_all(sqs, stack.dlq_url)
    assert dead["Body"] == "boom"


def test_create_is_idempotent(clients: Clients) -> None:
    first = _fresh(clients)
    s3, sqs, ddb = clients.s3, clients.sqs, clients.dynamodb
    assert len(_receive_all(sqs, first.queue_url)) == 1  # one s3:TestEvent
    ddb.put_item(TableName=first.table_name, Item={"pk": {"S": "kept"}})

    again = create_local_stack(
        s3, sqs, ddb, bucket=first.bucket, prefix=first.table_name.removesuffix("-status")
    )
    assert again == first
    # The table was not recreated; the unchanged notification sent no second test event.
    assert ddb.get_item(TableName=first.table_name, Key={"pk": {"S": "kept"}}).get("Item")
    assert _receive_all(sqs, first.queue_url) == []
    configs = s3.get_bucket_notification_configuration(Bucket=first.bucket)["QueueConfigurations"]
    assert len(configs) == 1


def test_settings_env_configures_settings(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = stack.settings_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.bucket == stack.bucket
    assert settings.input_prefix == stack.input_prefix
    assert settings.output_prefix == stack.output_prefix
    assert settings.queue_url == stack.queue_url
    assert settings.dlq_url == stack.dlq_url
    assert settings.table_name == stack.table_name
    assert settings.visibility_timeout_s == stack.visibility_timeout
    assert settings.retention_days == stack.retention_days
    assert settings.endpoint_url == stack.endpoint_url


def test_changed_template_changes_the_local_stack(tmp_path: Path, clients: Clients) -> None:
    text = ROOT_TEMPLATE.read_text()
    changed = tmp_path / "template.yaml"
    changed.write_text(
        text.replace("Default: input/", "Default: incoming/").replace(
            "    Default: 5\n", "    Default: 3\n"
        )
    )
    assert load_template(changed)["Parameters"]["InputPrefix"]["Default"] == "incoming/"
    stack = _fresh(clients, template_path=changed)
    assert stack.input_prefix == "incoming/"
    assert stack.max_receive_count == 3
    (config,) = clients.s3.get_bucket_notification_configuration(Bucket=stack.bucket)[
        "QueueConfigurations"
    ]
    assert config["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "incoming/"}]
