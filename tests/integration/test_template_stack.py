"""template.yaml as a stack: translated by SAM offline, created on the embedded endpoint's
CloudFormation (moto's server over HTTP, real boto3), and compared with the bucket, queues
and table `pagedrop local` builds from the same template, so the two cannot drift.

moto's CloudFormation accepts some resource types without creating anything (they are
reported CREATE_COMPLETE; ../shared/FACTS.md): those are named in ``MOTO_NOT_CREATED`` and
checked by tests/unit/test_template.py instead, like the properties moto ignores on the
resources it does create (the bucket's notification, versioning and public access block, the
table's TTL and point-in-time recovery, the security group's egress rules).
"""

from __future__ import annotations

import base64
import copy
import io
import json
import re
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from handler.local.endpoint import LocalEndpoint, local_boto3_session
from handler.local.resources import LocalStack, create_local_stack
from handler.local.template import load_template

pytestmark = [
    pytest.mark.integration,
    # moto warns about each resource type it accepts without creating (MOTO_NOT_CREATED).
    pytest.mark.filterwarnings("ignore:Tried to parse AWS"),
]
transform = pytest.importorskip(
    "samtranslator.translator.transform", reason="aws-sam-translator is not installed"
).transform

ROOT_TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
ACCOUNT = "123456789012"  # moto's
REGION = "us-east-1"
MOTO_NOT_CREATED = {
    "AWS::SQS::QueuePolicy",
    "AWS::S3::BucketPolicy",
    "AWS::AutoScaling::ScalingPolicy",
    "AWS::CloudWatch::Alarm",
    "AWS::Logs::MetricFilter",
    "AWS::Lambda::Url",
}
# The AMI parameter moto's SSM knows (the default's, the Deep Learning AMI's, it does not).
MOTO_GPU_AMI_PARAMETER = "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/pagedrop-worker:it"
COMPARED_QUEUE_ATTRIBUTES = (
    "VisibilityTimeout",
    "ReceiveMessageWaitTimeSeconds",
    "MessageRetentionPeriod",
    "SqsManagedSseEnabled",
    "DelaySeconds",
    "MaximumMessageSize",
)


class _NoManagedPolicies:
    """samtranslator's policy loader: the template names no SAM managed policy."""

    def load(self) -> dict[str, str]:
        return {}


def _translated(artifacts: str) -> dict[str, Any]:
    """The template as `sam deploy` sends it, local code folders replaced by S3 objects."""
    sam = copy.deepcopy(load_template(ROOT_TEMPLATE))
    for resource in sam["Resources"].values():
        properties = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            if key in properties:
                properties[key] = f"s3://{artifacts}/code.zip"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", REGION)  # samtranslator's pseudo parameters
        return transform(sam, {}, _NoManagedPolicies())


def _code_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler/__init__.py", "")
    return buffer.getvalue()


@dataclass
class Deployed:
    name: str
    template: dict[str, Any]
    outputs: dict[str, str]
    created: dict[str, str]  # logical id -> resource type, as the stack lists them
    clients: dict[str, Any]
    ami: str  # what GpuAmiId's SSM parameter holds

    def queue_attributes(self, output: str) -> dict[str, str]:
        sqs = self.clients["sqs"]
        url = sqs.get_queue_url(QueueName=self.outputs[output].rsplit("/", 1)[1])["QueueUrl"]
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def _wait(cloudformation: Any, name: str) -> dict[str, Any]:
    for _ in range(120):
        stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            return stack
        time.sleep(0.5)
    raise AssertionError(f"stack {name} still in progress")


@pytest.fixture(scope="module")
def deployed(endpoint: LocalEndpoint) -> Deployed:
    session = local_boto3_session(REGION)
    clients = {
        name: endpoint.client(name, session)
        for name in (
            "cloudformation",
            "s3",
            "sqs",
            "dynamodb",
            "ec2",
            "autoscaling",
            "lambda",
            "ssm",
        )
    }
    run = uuid.uuid4().hex[:8]
    artifacts = f"pagedrop-artifacts-{run}"
    clients["s3"].create_bucket(Bucket=artifacts)
    clients["s3"].put_object(Bucket=artifacts, Key="code.zip", Body=_code_zip())
    vpc = clients["ec2"].create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet = clients["ec2"].create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24")["Subnet"]
    # Reading it also makes moto load its public parameters, which the stack resolves.
    ami = clients["ssm"].get_parameter(Name=MOTO_GPU_AMI_PARAMETER)["Parameter"]["Value"]
    template = _translated(artifacts)
    # The function URL is one of the resources moto does not create: no attribute to output.
    template["Outputs"].pop("StatusFunctionUrl")
    # moto resolves an SSM parameter's default even when a value is passed, and it does not
    # know the default's (the Deep Learning AMI's), so the default itself is swapped.
    template["Parameters"]["GpuAmiId"]["Default"] = MOTO_GPU_AMI_PARAMETER

    name = f"pagedrop-tpl-{run}"
    parameters = {
        "WorkerImageUri": IMAGE,
        "VpcId": vpc,
        "SubnetIds": subnet["SubnetId"],
    }
    clients["cloudformation"].create_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    stack = _wait(clients["cloudformation"], name)
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    summaries = clients["cloudformation"].list_stack_resources(StackName=name)
    created = {
        r["LogicalResourceId"]: r["ResourceType"]
        for r in summaries["StackResourceSummaries"]
        if r.get("LogicalResourceId") and r["ResourceStatus"] == "CREATE_COMPLETE"
    }
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return Deployed(name, template, outputs, created, clients, ami)


@pytest.fixture(scope="module")
def local(deployed: Deployed) -> LocalStack:
    """What `pagedrop local` builds from the same template, on the same endpoint."""
    c = deployed.clients
    prefix = f"{deployed.name}-local"
    return create_local_stack(c["s3"], c["sqs"], c["dynamodb"], bucket=prefix, prefix=prefix)


def test_every_resource_moto_models_is_created(deployed: Deployed) -> None:
    declared = {
        logical_id: resource["Type"]
        for logical_id, resource in deployed.template["Resources"].items()
        if resource.get("Condition") != "UseExistingBucket"
    }
    # The alarm topic exists only with AlarmEmail; the default creates none.
    declared = {
        k: t for k, t in declared.items() if k not in {"AlarmTopic", "AlarmEmailSubscription"}
    }
    expected = {k: t for k, t in declared.items() if t not in MOTO_NOT_CREATED}
    assert deployed.created == expected
    assert {"AWS::AutoScaling::AutoScalingGroup", "AWS::Lambda::Function"} <= set(expected.values())


def test_outputs_name_what_the_stack_created(deployed: Deployed) -> None:
    outputs = deployed.outputs
    assert outputs["BucketName"] == f"{deployed.name}-{ACCOUNT}-{REGION}"
    deployed.clients["s3"].head_bucket(Bucket=outputs["BucketName"])
    assert (outputs["InputPrefix"], outputs["OutputPrefix"]) == ("input/", "output/")
    deployed.clients["dynamodb"].describe_table(TableName=outputs["TableName"])
    assert outputs["WorkerGroupName"] == f"{deployed.name}-workers"
    assert outputs["WorkerLogGroupName"] == f"/pagedrop/{deployed.name}/worker"
    assert deployed.queue_attributes("QueueUrl")["QueueArn"] == outputs["QueueArn"]


def test_queues_match_the_local_stack(deployed: Deployed, local: LocalStack) -> None:
    sqs = deployed.clients["sqs"]
    local_work = sqs.get_queue_attributes(QueueUrl=local.queue_url, AttributeNames=["All"])
    local_dlq = sqs.get_queue_attributes(QueueUrl=local.dlq_url, AttributeNames=["All"])
    for stack_queue, local_queue in (
        (deployed.queue_attributes("QueueUrl"), local_work["Attributes"]),
        (deployed.queue_attributes("DeadLetterQueueUrl"), local_dlq["Attributes"]),
    ):
        assert {a: stack_queue.get(a) for a in COMPARED_QUEUE_ATTRIBUTES} == {
            a: local_queue.get(a) for a in COMPARED_QUEUE_ATTRIBUTES
        }
    stack_redrive = json.loads(deployed.queue_attributes("QueueUrl")["RedrivePolicy"])
    local_redrive = json.loads(local_work["Attributes"]["RedrivePolicy"])
    assert stack_redrive["maxReceiveCount"] == local_redrive["maxReceiveCount"] == 5
    assert stack_redrive["deadLetterTargetArn"] == deployed.outputs["DeadLetterQueueArn"]


def _table_shape(dynamodb: Any, name: str) -> dict[str, Any]:
    table = dynamodb.describe_table(TableName=name)["Table"]
    return {
        "keys": table["KeySchema"],
        "attributes": sorted(
            (a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]
        ),
        "billing": table["BillingModeSummary"]["BillingMode"],
        "indexes": sorted(
            (i["IndexName"], json.dumps(i["KeySchema"]), i["Projection"]["ProjectionType"])
            for i in table.get("GlobalSecondaryIndexes", [])
        ),
    }


def test_table_matches_the_local_stack(deployed: Deployed, local: LocalStack) -> None:
    dynamodb = deployed.clients["dynamodb"]
    stack_table = _table_shape(dynamodb, deployed.outputs["TableName"])
    assert stack_table == _table_shape(dynamodb, local.table_name)
    assert stack_table["billing"] == "PAY_PER_REQUEST"
    assert [index[0] for index in stack_table["indexes"]] == ["by-status"]


def test_bucket_encryption_matches_the_local_stack(deployed: Deployed, local: LocalStack) -> None:
    s3 = deployed.clients["s3"]

    def rules(bucket: str) -> list[dict[str, Any]]:
        configuration = s3.get_bucket_encryption(Bucket=bucket)
        return [
            rule["ApplyServerSideEncryptionByDefault"]
            for rule in configuration["ServerSideEncryptionConfiguration"]["Rules"]
        ]

    assert rules(deployed.outputs["BucketName"]) == rules(local.bucket)
    assert rules(local.bucket) == [{"SSEAlgorithm": "AES256"}]


def _launch_data(deployed: Deployed) -> tuple[dict[str, Any], dict[str, Any]]:
    (group,) = deployed.clients["autoscaling"].describe_auto_scaling_groups(
        AutoScalingGroupNames=[deployed.outputs["WorkerGroupName"]]
    )["AutoScalingGroups"]
    template_id = group["LaunchTemplate"]["LaunchTemplateId"]
    versions = deployed.clients["ec2"].describe_launch_template_versions(
        LaunchTemplateId=template_id
    )["LaunchTemplateVersions"]
    return group, versions[0]["LaunchTemplateData"]


def test_fleet_is_built_from_the_parameters(deployed: Deployed) -> None:
    group, data = _launch_data(deployed)
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (0, 4, 0)
    assert group["NewInstancesProtectedFromScaleIn"] is False
    assert data["InstanceType"] == "g6.xlarge"
    assert data["ImageId"] == deployed.ami  # resolved from the SSM parameter
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    (root,) = data["BlockDeviceMappings"]
    assert root["Ebs"]["Encrypted"] is True
    assert "arn:aws:iam::" in data["IamInstanceProfile"]["Arn"]


def test_worker_environment_names_the_created_resources(deployed: Deployed) -> None:
    _, data = _launch_data(deployed)
    user_data = base64.b64decode(data["UserData"]).decode()
    env_block = re.search(r"<<EOF\n(.*?)\nEOF\n", user_data, re.S)
    assert env_block
    env = dict(line.split("=", 1) for line in env_block.group(1).splitlines())
    outputs = deployed.outputs
    assert env["PAGEDROP_BUCKET"] == outputs["BucketName"]
    assert env["PAGEDROP_QUEUE_URL"] == outputs["QueueUrl"]
    assert env["PAGEDROP_DLQ_URL"] == outputs["DeadLetterQueueUrl"]
    assert env["PAGEDROP_TABLE_NAME"] == outputs["TableName"]
    assert env["PAGEDROP_ASG_NAME"] == outputs["WorkerGroupName"]
    assert f'IMAGE="{IMAGE}"' in user_data
    assert f'awslogs-group="{outputs["WorkerLogGroupName"]}"' in user_data


def test_dlq_function_consumes_the_dead_letter_queue(deployed: Deployed) -> None:
    lam = deployed.clients["lambda"]
    functions = {
        f["Handler"]: f
        for f in lam.list_functions()["Functions"]
        if f["FunctionName"].startswith(f"{deployed.name}-")
    }
    assert set(functions) == {
        "handler.lambdas.dlq.lambda_handler",
        "handler.lambdas.status.handler",
    }
    dlq_function = functions["handler.lambdas.dlq.lambda_handler"]
    (mapping,) = lam.list_event_source_mappings(FunctionName=dlq_function["FunctionName"])[
        "EventSourceMappings"
    ]
    assert mapping["EventSourceArn"] == deployed.outputs["DeadLetterQueueArn"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    environment = dlq_function["Environment"]["Variables"]
    assert environment["PAGEDROP_TABLE_NAME"] == deployed.outputs["TableName"]
    assert environment["PAGEDROP_REGION"] == REGION
