"""template.yaml: it parses, declares what the local stack and the worker rely on, ships as data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from handler.local.resources import (
    BUCKET_ID,
    DEAD_LETTER_QUEUE_ID,
    STATUS_TABLE_ID,
    WORK_QUEUE_ID,
    WORK_QUEUE_POLICY_ID,
    create_table_request,
    queue_attributes,
)
from handler.local.template import (
    TEMPLATE_ENV,
    CfnLoader,
    TemplateError,
    find_template,
    load_template,
    parameter_defaults,
)
from handler.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ROOT_TEMPLATE = ROOT / "template.yaml"
PACKAGED_TEMPLATE = ROOT / "handler" / "resources" / "template.yaml"


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template(ROOT_TEMPLATE)


def test_packaged_copy_is_identical_to_the_root_template() -> None:
    assert PACKAGED_TEMPLATE.read_bytes() == ROOT_TEMPLATE.read_bytes(), (
        "handler/resources/template.yaml is out of date: "
        "cp template.yaml handler/resources/template.yaml"
    )


def test_find_template_prefers_the_env_then_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TEMPLATE_ENV, raising=False)
    assert find_template() == ROOT_TEMPLATE
    other = tmp_path / "t.yaml"
    other.write_text("Resources: {}\n")
    monkeypatch.setenv(TEMPLATE_ENV, str(other))
    assert find_template() == other
    monkeypatch.setenv(TEMPLATE_ENV, str(tmp_path / "missing.yaml"))
    with pytest.raises(FileNotFoundError):
        find_template()


def test_short_tags_become_long_forms(template: dict) -> None:
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"  # a string, not a date
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    bucket = template["Resources"][BUCKET_ID]
    assert bucket["Properties"]["BucketName"] == {
        "Fn::Sub": "${AWS::StackName}-${AWS::AccountId}-${AWS::Region}"
    }
    (queue_config,) = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert queue_config["Queue"] == {"Fn::GetAtt": [WORK_QUEUE_ID, "Arn"]}


def test_loader_handles_every_short_tag_shape() -> None:
    text = (
        "a: !Ref X\n"
        "b: !GetAtt [R, Arn]\n"
        "c: !Sub ['${x}', {x: !Ref Y}]\n"
        "d: !If [Cond, 1, !Ref AWS::NoValue]\n"
        "e: !Select [0, !Split [',', 'p,q']]\n"
        "f: !Join ['', [a, !Ref Z]]\n"
        "g: !Equals [!Condition C, true]\n"
    )
    parsed = yaml.load(text, Loader=CfnLoader)
    assert parsed == {
        "a": {"Ref": "X"},
        "b": {"Fn::GetAtt": ["R", "Arn"]},
        "c": {"Fn::Sub": ["${x}", {"x": {"Ref": "Y"}}]},
        "d": {"Fn::If": ["Cond", 1, {"Ref": "AWS::NoValue"}]},
        "e": {"Fn::Select": [0, {"Fn::Split": [",", "p,q"]}]},
        "f": {"Fn::Join": ["", ["a", {"Ref": "Z"}]]},
        "g": {"Fn::Equals": [{"Condition": "C"}, True]},
    }


def test_notification_is_on_the_input_prefix_only(template: dict) -> None:
    bucket = template["Resources"][BUCKET_ID]
    configs = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert configs == [
        {
            "Event": "s3:ObjectCreated:*",
            "Queue": {"Fn::GetAtt": [WORK_QUEUE_ID, "Arn"]},
            "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": {"Ref": "InputPrefix"}}]}},
        }
    ]
    # The bucket waits for the queue policy (S3 checks it may send when the notification is set).
    assert bucket["DependsOn"] == WORK_QUEUE_POLICY_ID


def test_parameter_defaults_agree_with_settings(template: dict) -> None:
    params = parameter_defaults(template)
    defaults = Settings()
    assert params["InputPrefix"] == defaults.input_prefix == "input/"
    assert params["OutputPrefix"] == defaults.output_prefix == "output/"
    assert params["VisibilityTimeout"] == defaults.visibility_timeout_s == 300
    assert params["RetentionDays"] == defaults.retention_days == 30
    assert params["MaxReceiveCount"] == 5
    assert params["DeadLetterRetentionSeconds"] == 14 * 24 * 3600


def test_queue_policy_names_the_bucket_without_a_reference(template: dict) -> None:
    policy = template["Resources"][WORK_QUEUE_POLICY_ID]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    source_arn = statement["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Sub"]
    bucket_name = template["Resources"][BUCKET_ID]["Properties"]["BucketName"]["Fn::Sub"]
    assert source_arn == "arn:${AWS::Partition}:s3:::" + bucket_name
    assert statement["Condition"]["StringEquals"] == {
        "aws:SourceAccount": {"Ref": "AWS::AccountId"}
    }
    assert BUCKET_ID not in _referenced(policy)  # no Ref/GetAtt to the bucket: no cycle


def _referenced(node: object) -> set[str]:
    """Logical ids named by Ref, Fn::GetAtt or ${X}/${X.Attr} in Fn::Sub anywhere in node."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= _referenced(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
                if isinstance(value, list):
                    found |= _referenced(value[1])
            else:
                found |= _referenced(value)
    return found


def test_status_table_translates_to_create_table(template: dict) -> None:
    properties = template["Resources"][STATUS_TABLE_ID]["Properties"]
    request = create_table_request(properties, "t")
    assert request["TableName"] == "t"
    assert request["BillingMode"] == "PAY_PER_REQUEST"
    assert request["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    (gsi,) = request["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "by-status"
    assert gsi["KeySchema"] == [
        {"AttributeName": "status", "KeyType": "HASH"},
        {"AttributeName": "updated_at", "KeyType": "RANGE"},
    ]
    assert gsi["Projection"] == {"ProjectionType": "ALL"}
    assert "TimeToLiveSpecification" not in request  # applied after creation
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_unknown_table_property_is_an_error() -> None:
    with pytest.raises(TemplateError, match="NewShinyThing"):
        create_table_request({"NewShinyThing": 1}, "t")


def test_queue_properties_translate_to_attributes(template: dict) -> None:
    work = template["Resources"][WORK_QUEUE_ID]["Properties"]
    assert work["ReceiveMessageWaitTimeSeconds"] == 20
    assert work["SqsManagedSseEnabled"] is True
    assert work["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": [DEAD_LETTER_QUEUE_ID, "Arn"]
    }
    resolved = dict(work, RedrivePolicy={"deadLetterTargetArn": "arn:x", "maxReceiveCount": 5})
    attributes = queue_attributes(resolved)
    assert attributes["SqsManagedSseEnabled"] == "true"
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": "arn:x",
        "maxReceiveCount": 5,
    }


def test_bucket_is_locked_down(template: dict) -> None:
    properties = template["Resources"][BUCKET_ID]["Properties"]
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(properties["PublicAccessBlockConfiguration"].values())
    (statement,) = template["Resources"]["BucketPolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_outputs_name_what_a_worker_needs(template: dict) -> None:
    assert {
        "BucketName",
        "InputPrefix",
        "OutputPrefix",
        "QueueUrl",
        "DeadLetterQueueUrl",
        "TableName",
    } <= set(template["Outputs"])


def test_cfn_lint_is_clean() -> None:
    api = pytest.importorskip("cfnlint.api", reason="cfn-lint is not installed here")
    matches = api.lint_file(ROOT_TEMPLATE, config=api.ManualArgs(regions=["us-east-1"]))
    assert [str(match) for match in matches] == []
