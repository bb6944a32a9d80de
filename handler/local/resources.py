"""Create the stack's bucket, queues and table on a local endpoint, read from ``template.yaml``.

The deployed stack and the local one come from the same template, so their configuration
cannot drift: queue attributes, the redrive policy, the table's keys and indexes, TTL and
the bucket notification are all read from the template's resources (parameter defaults
filled in) and translated to the boto3 calls that create them. moto's CloudFormation would
ignore the notification, the TTL and the queue policy anyway (``/work/shared/FACTS.md``),
so the resources are created directly.

Local names are chosen by the caller (``bucket``) or built from ``prefix``. What is not
created locally: the TLS-only bucket policy (the local endpoint is plain HTTP on
127.0.0.1) and, later, the compute resources.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import yaml
from botocore.exceptions import ClientError

TEMPLATE_ENV = "PAGEDROP_TEMPLATE"
TEMPLATE_NAME = "template.yaml"

# Logical ids in template.yaml that the local stack is built from.
BUCKET_ID = "Bucket"
WORK_QUEUE_ID = "WorkQueue"
DEAD_LETTER_QUEUE_ID = "DeadLetterQueue"
WORK_QUEUE_POLICY_ID = "WorkQueuePolicy"
STATUS_TABLE_ID = "StatusTable"

LOCAL_ACCOUNT_ID = "123456789012"  # moto's default account


class TemplateError(ValueError):
    """template.yaml lacks something the local stack needs, or uses what it cannot resolve."""


# --------------------------------------------------------------------------------------------
# Finding and reading the template
# --------------------------------------------------------------------------------------------


def find_template() -> Path:
    """The template to build from: ``$PAGEDROP_TEMPLATE``, the checkout's root, package data.

    The package ships ``handler/resources/template.yaml``, a copy of the root template kept
    identical by a unit test, so an installed package finds it too.
    """
    override = os.environ.get(TEMPLATE_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise FileNotFoundError(f"{TEMPLATE_ENV}={override} is not a file")
        return path
    checkout = Path(__file__).resolve().parents[2] / TEMPLATE_NAME
    if checkout.is_file():
        return checkout
    packaged = importlib_resources.files("handler").joinpath("resources", TEMPLATE_NAME)
    with importlib_resources.as_file(packaged) as path:
        if path.is_file():
            return Path(path)
    raise FileNotFoundError(
        f"{TEMPLATE_NAME} not found: set {TEMPLATE_ENV}, run from a checkout, "
        "or install the package with its data"
    )


class CfnLoader(yaml.SafeLoader):
    """A safe YAML loader that reads CloudFormation's short tags into their long forms.

    ``!Ref X`` -> ``{"Ref": "X"}``, ``!GetAtt A.B`` -> ``{"Fn::GetAtt": ["A", "B"]}``,
    ``!Condition C`` -> ``{"Condition": "C"}``, any other ``!Name v`` -> ``{"Fn::Name": v}``.
    Dates stay strings (``AWSTemplateFormatVersion: 2010-09-09`` is not a date to CFN).
    """


def _construct_short_tag(loader: CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - yaml has no other node kinds
        raise yaml.constructor.ConstructorError(None, None, f"bad node {node!r}", node.start_mark)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_short_tag)
# The class's own resolver table (as yaml.add_implicit_resolver makes), without timestamps.
CfnLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_template(path: Path | None = None) -> dict[str, Any]:
    """Parse the template (``find_template()`` when no path is given) into plain dicts."""
    path = path or find_template()
    with path.open(encoding="utf-8") as stream:
        template = yaml.load(stream, Loader=CfnLoader)  # a SafeLoader subclass
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise TemplateError(f"{path}: not a CloudFormation template (no Resources)")
    return template


def parameter_defaults(template: Mapping[str, Any]) -> dict[str, Any]:
    """Each parameter's default (a parameter without one is an error for the local stack)."""
    defaults: dict[str, Any] = {}
    for name, spec in (template.get("Parameters") or {}).items():
        if "Default" not in spec:
            raise TemplateError(f"parameter {name} has no Default; the local stack needs one")
        defaults[name] = spec["Default"]
    return defaults


# --------------------------------------------------------------------------------------------
# Resolving intrinsic functions against local values
# --------------------------------------------------------------------------------------------

_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")
_NO_VALUE = object()  # AWS::NoValue: the property or list item is removed


@dataclass(frozen=True)
class _Context:
    """What ``Ref`` and ``Fn::GetAtt`` mean locally."""

    refs: Mapping[str, Any]
    attributes: Mapping[tuple[str, str], Any]
    conditions: Mapping[str, Any]


def _resolve(node: Any, ctx: _Context) -> Any:
    """Evaluate the intrinsic functions in ``node`` (recursively) with local values."""
    if isinstance(node, list):
        items = (_resolve(item, ctx) for item in node)
        return [item for item in items if item is not _NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((key, arg),) = node.items()
        if key == "Ref":
            if arg not in ctx.refs:
                raise TemplateError(f"cannot resolve Ref {arg!r} locally")
            return ctx.refs[arg]
        if key == "Fn::GetAtt":
            resource, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
            if (resource, attribute) not in ctx.attributes:
                raise TemplateError(f"cannot resolve Fn::GetAtt {resource}.{attribute} locally")
            return ctx.attributes[(resource, attribute)]
        if key == "Fn::Sub":
            return _sub(arg, ctx)
        if key == "Fn::Join":
            separator, items = arg
            return str(separator).join(str(item) for item in _resolve(items, ctx))
        if key == "Fn::Select":
            index, items = _resolve(arg, ctx)
            return items[int(index)]
        if key == "Fn::Split":
            separator, text = _resolve(arg, ctx)
            return str(text).split(separator)
        if key == "Fn::If":
            condition, when_true, when_false = arg
            chosen = when_true if _condition(condition, ctx) else when_false
            return _resolve(chosen, ctx)
        if key in {"Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition"}:
            return _condition_value(key, arg, ctx)
        if key == "Fn::ToJsonString":
            return json.dumps(_resolve(arg, ctx), separators=(",", ":"))
        if key.startswith("Fn::"):
            raise TemplateError(f"{key} is not supported by the local stack")
    resolved = {key: _resolve(value, ctx) for key, value in node.items()}
    return {key: value for key, value in resolved.items() if value is not _NO_VALUE}


def _sub(arg: Any, ctx: _Context) -> str:
    if isinstance(arg, list):
        text, variables = arg[0], {k: _resolve(v, ctx) for k, v in arg[1].items()}
    else:
        text, variables = arg, {}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name in variables:
            return str(variables[name])
        if "." in name and not name.startswith("AWS::"):
            resource, attribute = name.split(".", 1)
            return str(_resolve({"Fn::GetAtt": [resource, attribute]}, ctx))
        return str(_resolve({"Ref": name}, ctx))

    return _SUB_VARIABLE.sub(replace, text).replace("${!", "${")


def _condition(name: str, ctx: _Context) -> bool:
    if name not in ctx.conditions:
        raise TemplateError(f"unknown condition {name!r}")
    return bool(_resolve(ctx.conditions[name], ctx))


def _condition_value(key: str, arg: Any, ctx: _Context) -> bool:
    if key == "Condition":
        return _condition(arg, ctx)
    if key == "Fn::Equals":
        left, right = _resolve(arg, ctx)
        return str(left) == str(right)
    if key == "Fn::Not":
        return not _resolve(arg[0], ctx)
    values = [bool(_resolve(item, ctx)) for item in arg]
    return all(values) if key == "Fn::And" else any(values)


# --------------------------------------------------------------------------------------------
# Translating resource properties to boto3 calls
# --------------------------------------------------------------------------------------------

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
            sse = {"Enabled": bool(value.get("SSEEnabled", False))}
            for key in ("SSEType", "KMSMasterKeyId"):
                if key in value:
                    sse[key] = value[key]
            request[name] = sse
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
        config: dict[str, Any] = {
            "QueueArn": entry["Queue"],
            "Events": [entry["Event"]],
        }
        rules = ((entry.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []
        if rules:
            config["Filter"] = {
                "Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}
            }
        queue_configurations.append(config)
    return {"QueueConfigurations": queue_configurations} if queue_configurations else {}


# --------------------------------------------------------------------------------------------
# The local stack
# --------------------------------------------------------------------------------------------


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


def _resource(template: Mapping[str, Any], logical_id: str, type_: str) -> dict[str, Any]:
    resource = template["Resources"].get(logical_id)
    if not resource or resource.get("Type") != type_:
        raise TemplateError(f"template has no {type_} named {logical_id}")
    return resource


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _ensure_queue(sqs: Any, name: str, attributes: Mapping[str, str]) -> tuple[str, str]:
    """Create the queue or bring an existing one to ``attributes``; return (url, arn)."""
    try:
        url = sqs.create_queue(QueueName=name, Attributes=dict(attributes))["QueueUrl"]
    except ClientError as error:
        if _error_code(error) not in {"QueueAlreadyExists", "QueueNameExists"}:
            raise
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        changeable = {k: v for k, v in attributes.items() if k not in _QUEUE_CREATE_ONLY}
        if changeable:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=changeable)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def _ensure_bucket(s3: Any, name: str, region: str) -> None:
    request: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**request)
    except ClientError as error:
        if _error_code(error) != "BucketAlreadyOwnedByYou":
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


def _comparable(configuration: Mapping[str, Any]) -> list[tuple[str, tuple[str, ...], str]]:
    """Queue targets, events and filter rules, ignoring ids and ordering."""
    result = []
    for entry in configuration.get("QueueConfigurations") or []:
        rules = entry.get("Filter", {}).get("Key", {}).get("FilterRules", [])
        filters = json.dumps(
            sorted((r["Name"].lower(), r["Value"]) for r in rules), separators=(",", ":")
        )
        result.append((entry["QueueArn"], tuple(sorted(entry["Events"])), filters))
    return sorted(result)


def _shared_endpoint(*clients: Any) -> str | None:
    """The endpoint URL when all clients use one (a local endpoint); None for real AWS."""
    urls = {client.meta.endpoint_url for client in clients}
    return urls.pop() if len(urls) == 1 else None


def _ensure_table(dynamodb: Any, name: str, properties: Mapping[str, Any]) -> None:
    try:
        dynamodb.describe_table(TableName=name)
    except ClientError as error:
        if _error_code(error) != "ResourceNotFoundException":
            raise
        try:
            dynamodb.create_table(**create_table_request(properties, name))
        except ClientError as create_error:
            if _error_code(create_error) != "ResourceInUseException":
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
        dynamodb.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={
                "PointInTimeRecoveryEnabled": bool(pitr.get("PointInTimeRecoveryEnabled"))
            },
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
    partition = "aws"
    template_stack_name = prefix

    bucket_resource = _resource(template, BUCKET_ID, "AWS::S3::Bucket")
    work_resource = _resource(template, WORK_QUEUE_ID, "AWS::SQS::Queue")
    dlq_resource = _resource(template, DEAD_LETTER_QUEUE_ID, "AWS::SQS::Queue")
    table_resource = _resource(template, STATUS_TABLE_ID, "AWS::DynamoDB::Table")

    refs: dict[str, Any] = {
        **params,
        "AWS::Region": region,
        "AWS::AccountId": LOCAL_ACCOUNT_ID,
        "AWS::Partition": partition,
        "AWS::StackName": template_stack_name,
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::NoValue": _NO_VALUE,
    }
    attributes: dict[tuple[str, str], Any] = {}
    conditions = template.get("Conditions") or {}

    def resolve(node: Any) -> Any:
        return _resolve(node, _Context(refs, attributes, conditions))

    # Dead-letter queue first: the work queue's redrive policy names its ARN.
    dlq_url, dlq_arn = _ensure_queue(
        sqs, f"{prefix}-dlq", queue_attributes(resolve(dlq_resource.get("Properties") or {}))
    )
    # The queue's ARN tells the endpoint's partition and account (moto: 123456789012).
    _, partition, _, _, account, _ = dlq_arn.split(":", 5)
    refs.update({"AWS::Partition": partition, "AWS::AccountId": account})
    refs[DEAD_LETTER_QUEUE_ID] = dlq_url
    attributes[(DEAD_LETTER_QUEUE_ID, "Arn")] = dlq_arn
    attributes[(DEAD_LETTER_QUEUE_ID, "QueueName")] = f"{prefix}-dlq"

    work_properties = resolve(work_resource.get("Properties") or {})
    queue_url, queue_arn = _ensure_queue(sqs, f"{prefix}-work", queue_attributes(work_properties))
    refs[WORK_QUEUE_ID] = queue_url
    attributes[(WORK_QUEUE_ID, "Arn")] = queue_arn
    attributes[(WORK_QUEUE_ID, "QueueName")] = f"{prefix}-work"

    # The template names the bucket by a fixed pattern (so the queue policy can name it too);
    # locally the caller chooses the name, so the pattern's value is swapped for it.
    declared_bucket = resolve((bucket_resource.get("Properties") or {}).get("BucketName", ""))
    refs[BUCKET_ID] = bucket
    attributes[(BUCKET_ID, "Arn")] = f"arn:{partition}:s3:::{bucket}"

    policy_resource = template["Resources"].get(WORK_QUEUE_POLICY_ID)
    if policy_resource and policy_resource.get("Type") == "AWS::SQS::QueuePolicy":
        document = json.dumps(resolve(policy_resource["Properties"]["PolicyDocument"]))
        if declared_bucket:
            document = document.replace(f":::{declared_bucket}", f":::{bucket}")
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": document})

    bucket_properties = resolve(
        {k: v for k, v in (bucket_resource.get("Properties") or {}).items() if k != "BucketName"}
    )
    _ensure_bucket(s3, bucket, region)
    _configure_bucket(s3, bucket, bucket_properties)

    table_name = f"{prefix}-status"
    _ensure_table(dynamodb, table_name, resolve(table_resource.get("Properties") or {}))

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
