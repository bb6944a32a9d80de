"""Create the stack's bucket, queues and table on a local endpoint, read from ``template.yaml``.

The deployed stack and the local one come from the same template, so their configuration
cannot drift: queue attributes, the redrive policy, the table's keys and indexes, TTL and
the bucket notification are read from the template's resources (``handler.local.template``
resolves them) and translated here to the boto3 calls that create them. moto's
CloudFormation would ignore the notification, the TTL and the queue policy anyway
(``/work/shared/FACTS.md``), so the resources are created directly.

Local names are chosen by the caller (``bucket``) or built from ``prefix``. What is not
created locally: the TLS-only bucket policy (the local endpoint is plain HTTP on
127.0.0.1) and the rest of the deployed stack (the GPU fleet, the Lambda functions, the
alarms): locally a CPU worker and :class:`handler.local.run.DeadLetterWatcher` play those
parts. Parameters without a default (the fleet's image, VPC and subnets) are not needed here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from handler.aws import error_code
from handler.local.template import (
    Resolver,
    TemplateError,
    load_template,
    parameter_defaults,
    pseudo_parameters,
    resource_properties,
)
from handler.settings import Settings

# Logical ids in template.yaml that the local stack is built from.
BUCKET_ID = "Bucket"
WORK_QUEUE_ID = "WorkQueue"
DEAD_LETTER_QUEUE_ID = "DeadLetterQueue"
WORK_QUEUE_POLICY_ID = "WorkQueuePolicy"
STATUS_TABLE_ID = "StatusTable"

LOCAL_ACCOUNT_ID = "123456789012"  # moto's default account


# CloudFormation AWS::SQS::Queue properties that are not SQS attributes (or need conversion).
_QUEUE_NON_ATTRIBUTES = {"QueueName", "Tags"}
_QUEUE_JSON_ATTRIBUTES = {"RedrivePolicy", "RedriveAllowPolicy"}
_QUEUE_CREATE_ONLY = {"FifoQueue"}


def queue_attributes(properties: Mapping[str, Any]) -> dict[str, str]:
    """SQS attributes (all strings) from resolved ``AWS::SQS::Queue`` properties."""
    attributes: dict[str, str] = {}
    for name, value in properties.items():
        if name in _QUEUE_NON_ATTRIBUTES:
            continue
        if name in _QUEUE_JSON_ATTRIBUTES and not isinstance(value, str):
            attributes[name] = json.dumps(value, separators=(",", ":"))
        elif isinstance(value, bool):
            attributes[name] = "true" if value else "false"
        else:
            attributes[name] = str(value)
    return attributes


# AWS::DynamoDB::Table properties that CreateTable takes unchanged.
_TABLE_CREATE_AS_IS = (
    "AttributeDefinitions",
    "KeySchema",
    "BillingMode",
    "ProvisionedThroughput",
    "LocalSecondaryIndexes",
    "TableClass",
    "DeletionProtectionEnabled",
    "OnDemandThroughput",
    "Tags",
)
# Properties applied after creation or only meaningful in AWS; anything else is an error, so
# a new table property is noticed here instead of silently missing locally.
_TABLE_AFTER_CREATE = {"TimeToLiveSpecification", "PointInTimeRecoverySpecification"}
_TABLE_NOT_LOCAL = {
    "TableName",
    "ContributorInsightsSpecification",
    "KinesisStreamSpecification",
    "ImportSourceSpecification",
    "ResourcePolicy",
    "WarmThroughput",
}
# Per-index CFN keys that CreateTable's GlobalSecondaryIndexes do not take.
_GSI_NOT_LOCAL = {"ContributorInsightsSpecification", "WarmThroughput"}


def create_table_request(properties: Mapping[str, Any], table_name: str) -> dict[str, Any]:
    """The ``create_table`` keyword arguments for resolved ``AWS::DynamoDB::Table`` properties."""
    request: dict[str, Any] = {"TableName": table_name}
    for name, value in properties.items():
        if name in _TABLE_CREATE_AS_IS:
            request[name] = value
        elif name == "GlobalSecondaryIndexes":
            request[name] = [
                {key: val for key, val in index.items() if key not in _GSI_NOT_LOCAL}
                for index in value
            ]
        elif name == "StreamSpecification":
            request[name] = {"StreamEnabled": True, "StreamViewType": value["StreamViewType"]}
        elif name == "SSESpecification":
            optional = {key: value[key] for key in ("SSEType", "KMSMasterKeyId") if key in value}
            request[name] = {"Enabled": bool(value.get("SSEEnabled", False)), **optional}
        elif name not in _TABLE_AFTER_CREATE and name not in _TABLE_NOT_LOCAL:
            raise TemplateError(f"table property {name} has no local translation")
    return request


def notification_configuration(properties: Mapping[str, Any]) -> dict[str, Any]:
    """``put_bucket_notification_configuration``'s configuration from resolved bucket properties.

    Queue targets only: the template declares no topic, Lambda or EventBridge targets.
    """
    declared = properties.get("NotificationConfiguration") or {}
    queue_configurations = []
    for entry in declared.get("QueueConfigurations") or []:
        config: dict[str, Any] = {"QueueArn": entry["Queue"], "Events": [entry["Event"]]}
        rules = ((entry.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []
        filter_rules = [{"Name": rule["Name"], "Value": rule["Value"]} for rule in rules]
        if filter_rules:
            config["Filter"] = {"Key": {"FilterRules": filter_rules}}
        queue_configurations.append(config)
    return {"QueueConfigurations": queue_configurations} if queue_configurations else {}


@dataclass(frozen=True)
class LocalStack:
    """Names and settings of the local resources (what a worker needs to be configured)."""

    bucket: str
    input_prefix: str
    output_prefix: str
    queue_url: str
    dlq_url: str
    table_name: str
    max_receive_count: int
    visibility_timeout: int
    retention_days: int
    region: str
    endpoint_url: str | None

    def settings_env(self) -> dict[str, str]:
        """The ``PAGEDROP_*`` environment variables that point ``Settings`` at this stack."""
        env = {
            "PAGEDROP_BUCKET": self.bucket,
            "PAGEDROP_INPUT_PREFIX": self.input_prefix,
            "PAGEDROP_OUTPUT_PREFIX": self.output_prefix,
            "PAGEDROP_QUEUE_URL": self.queue_url,
            "PAGEDROP_DLQ_URL": self.dlq_url,
            "PAGEDROP_TABLE_NAME": self.table_name,
            "PAGEDROP_VISIBILITY_TIMEOUT_S": str(self.visibility_timeout),
            "PAGEDROP_RETENTION_DAYS": str(self.retention_days),
            "PAGEDROP_REGION": self.region,
        }
        if self.endpoint_url:
            env["PAGEDROP_ENDPOINT_URL"] = self.endpoint_url
        return env

    def settings(self, **overrides: Any) -> Settings:
        """Settings pointed at this stack (the same values as :meth:`settings_env`)."""
        values: dict[str, Any] = {
            name.removeprefix("PAGEDROP_").lower(): value
            for name, value in self.settings_env().items()
        }
        return Settings(**{**values, **overrides})


def _ensure_queue(sqs: Any, name: str, attributes: Mapping[str, str]) -> tuple[str, str]:
    """Create the queue or bring an existing one to ``attributes``; return (url, arn)."""
    try:
        url = sqs.create_queue(QueueName=name, Attributes=dict(attributes))["QueueUrl"]
    except ClientError as error:
        if error_code(error) not in {"QueueAlreadyExists", "QueueNameExists"}:
            raise
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        changeable = {k: v for k, v in attributes.items() if k not in _QUEUE_CREATE_ONLY}
        if changeable:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=changeable)
    arn_response = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return url, arn_response["Attributes"]["QueueArn"]


def _ensure_bucket(s3: Any, name: str, region: str) -> None:
    request: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**request)
    except ClientError as error:
        if error_code(error) != "BucketAlreadyOwnedByYou":
            raise


_SSE_RULE_KEYS = {"ServerSideEncryptionByDefault": "ApplyServerSideEncryptionByDefault"}


def _configure_bucket(s3: Any, name: str, properties: Mapping[str, Any]) -> None:
    if "VersioningConfiguration" in properties:
        s3.put_bucket_versioning(
            Bucket=name,
            VersioningConfiguration={"Status": properties["VersioningConfiguration"]["Status"]},
        )
    if "BucketEncryption" in properties:
        # CloudFormation's ServerSideEncryptionByDefault is the API's Apply... key.
        rules = [
            {_SSE_RULE_KEYS.get(key, key): value for key, value in rule.items()}
            for rule in properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in properties:
        s3.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration=properties["PublicAccessBlockConfiguration"],
        )
    if "OwnershipControls" in properties:
        s3.put_bucket_ownership_controls(
            Bucket=name, OwnershipControls=properties["OwnershipControls"]
        )
    wanted = notification_configuration(properties)
    current = s3.get_bucket_notification_configuration(Bucket=name)
    current.pop("ResponseMetadata", None)
    # Setting a notification makes S3 send an s3:TestEvent; skip it when nothing changes.
    if _comparable(current) != _comparable(wanted):
        s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration=wanted)


def _comparable(configuration: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Queue targets, events and filter rules, ignoring ids and ordering."""
    result = []
    for entry in configuration.get("QueueConfigurations") or []:
        rules = entry.get("Filter", {}).get("Key", {}).get("FilterRules", [])
        filters = tuple(sorted((r["Name"].lower(), r["Value"]) for r in rules))
        result.append((entry["QueueArn"], tuple(sorted(entry["Events"])), filters))
    return sorted(result)


def _ensure_table(dynamodb: Any, name: str, properties: Mapping[str, Any]) -> None:
    try:
        dynamodb.describe_table(TableName=name)
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        try:
            dynamodb.create_table(**create_table_request(properties, name))
        except ClientError as create_error:
            if error_code(create_error) != "ResourceInUseException":
                raise
    dynamodb.get_waiter("table_exists").wait(
        TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    ttl = properties.get("TimeToLiveSpecification")
    if ttl:
        current = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        enabled = current.get("TimeToLiveStatus") in {"ENABLED", "ENABLING"}
        wanted = bool(ttl.get("Enabled"))
        if enabled != wanted or (wanted and current.get("AttributeName") != ttl["AttributeName"]):
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": wanted, "AttributeName": ttl["AttributeName"]},
            )
    pitr = properties.get("PointInTimeRecoverySpecification")
    if pitr:
        pitr_enabled = bool(pitr.get("PointInTimeRecoveryEnabled"))
        dynamodb.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": pitr_enabled},
        )


def create_local_stack(
    s3: Any,
    sqs: Any,
    dynamodb: Any,
    *,
    bucket: str = "pagedrop-local",
    prefix: str = "pagedrop",
    template_path: Path | None = None,
) -> LocalStack:
    """Create (or bring up to date) the template's bucket, queues and table; idempotent.

    The clients are boto3 clients for the same endpoint and region (a local endpoint, or
    real AWS for a developer's own sandbox). Queue and table names are ``<prefix>-work``,
    ``<prefix>-dlq`` and ``<prefix>-status``. Parameters take their defaults.
    """
    template = load_template(template_path)
    params = parameter_defaults(template)
    region = str(s3.meta.region_name or "us-east-1")
    bucket_declared = resource_properties(template, BUCKET_ID, "AWS::S3::Bucket")
    work_declared = resource_properties(template, WORK_QUEUE_ID, "AWS::SQS::Queue")
    dlq_declared = resource_properties(template, DEAD_LETTER_QUEUE_ID, "AWS::SQS::Queue")
    table_declared = resource_properties(template, STATUS_TABLE_ID, "AWS::DynamoDB::Table")

    pseudo = pseudo_parameters(
        region=region, account_id=LOCAL_ACCOUNT_ID, partition="aws", stack_name=prefix
    )
    resolver = Resolver(refs={**params, **pseudo}, conditions=template.get("Conditions") or {})
    resolve = resolver.resolve  # refs and attributes grow as resources are created

    # Dead-letter queue first: the work queue's redrive policy names its ARN.
    dlq_name = f"{prefix}-dlq"
    dlq_url, dlq_arn = _ensure_queue(sqs, dlq_name, queue_attributes(resolve(dlq_declared)))
    # The queue's ARN tells the endpoint's partition and account (moto: 123456789012).
    _, partition, _, _, account, _ = dlq_arn.split(":", 5)
    resolver.refs.update({"AWS::Partition": partition, "AWS::AccountId": account})
    resolver.add_resource(DEAD_LETTER_QUEUE_ID, dlq_url, Arn=dlq_arn, QueueName=dlq_name)

    work_name = f"{prefix}-work"
    work_properties = resolve(work_declared)
    queue_url, queue_arn = _ensure_queue(sqs, work_name, queue_attributes(work_properties))
    resolver.add_resource(WORK_QUEUE_ID, queue_url, Arn=queue_arn, QueueName=work_name)

    # The template names the bucket by a fixed pattern (so the queue policy can name it too);
    # locally the caller chooses the name, so the pattern's value is swapped for it.
    declared_bucket = resolve(bucket_declared.get("BucketName", ""))
    resolver.add_resource(BUCKET_ID, bucket, Arn=f"arn:{partition}:s3:::{bucket}")

    policy_resource = template["Resources"].get(WORK_QUEUE_POLICY_ID)
    if policy_resource and policy_resource.get("Type") == "AWS::SQS::QueuePolicy":
        document = json.dumps(resolve(policy_resource["Properties"]["PolicyDocument"]))
        if declared_bucket:
            document = document.replace(f":::{declared_bucket}", f":::{bucket}")
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": document})

    bucket_properties = resolve({k: v for k, v in bucket_declared.items() if k != "BucketName"})
    _ensure_bucket(s3, bucket, region)
    _configure_bucket(s3, bucket, bucket_properties)

    table_name = f"{prefix}-status"
    _ensure_table(dynamodb, table_name, resolve(table_declared))

    redrive = work_properties.get("RedrivePolicy") or {}
    if isinstance(redrive, str):
        redrive = json.loads(redrive)
    return LocalStack(
        bucket=bucket,
        input_prefix=str(params.get("InputPrefix", "input/")),
        output_prefix=str(params.get("OutputPrefix", "output/")),
        queue_url=queue_url,
        dlq_url=dlq_url,
        table_name=table_name,
        max_receive_count=int(redrive.get("maxReceiveCount", 0)),
        visibility_timeout=int(work_properties.get("VisibilityTimeout", 30)),
        retention_days=int(params.get("RetentionDays", 30)),
        region=region,
        endpoint_url=_shared_endpoint(s3, sqs, dynamodb),
    )


def _shared_endpoint(*clients: Any) -> str | None:
    """The endpoint URL when all clients use one (a local endpoint); None for real AWS."""
    urls = {client.meta.endpoint_url for client in clients}
    return urls.pop() if len(urls) == 1 else None
