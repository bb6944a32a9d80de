"""template.yaml: it parses, declares what the local stack and the worker rely on, ships as data."""

from __future__ import annotations

import base64
import importlib
import json
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

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
    Resolver,
    TemplateError,
    find_template,
    load_template,
    offline_resolver,
    parameter_defaults,
)
from handler.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ROOT_TEMPLATE = ROOT / "template.yaml"
PACKAGED_TEMPLATE = ROOT / "handler" / "resources" / "template.yaml"
LAMBDA_MAKEFILE = ROOT / "infra" / "lambda" / "Makefile"
LAYER_REQUIREMENTS = ROOT / "layers" / "shared" / "requirements.txt"

# What `sam deploy --guided` must ask for: only the fleet's parameters have no default.
REQUIRED_PARAMETERS = {
    "WorkerImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/pagedrop-worker:1",
    "VpcId": "vpc-0123456789abcdef0",
    "SubnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
}


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
    text, variables = statement["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Sub"]
    assert text == "arn:${AWS::Partition}:s3:::${BucketName}"
    # The stack's own bucket by its fixed name, or the existing bucket named by a parameter.
    bucket_name = template["Resources"][BUCKET_ID]["Properties"]["BucketName"]
    assert variables["BucketName"] == {
        "Fn::If": ["CreateBucket", bucket_name, {"Ref": "ExistingBucketName"}]
    }
    assert statement["Condition"]["StringEquals"] == {
        "aws:SourceAccount": {"Ref": "AWS::AccountId"}
    }
    assert BUCKET_ID not in _referenced(policy)  # no Ref/GetAtt to the bucket: no cycle


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ("", "arn:aws:s3:::pagedrop-123456789012-us-east-1"),
        ("their-bucket", "arn:aws:s3:::their-bucket"),
    ],
)
def test_queue_policy_admits_the_bucket_in_use(
    template: dict, existing: str, expected: str
) -> None:
    resolver = _resolver(template, ExistingBucketName=existing)
    policy = resolver.resolve(template["Resources"][WORK_QUEUE_POLICY_ID]["Properties"])
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == expected


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


# --------------------------------------------------------------------------------------------
# The deployed stack: parameters, the worker fleet, the functions, the alarms
# --------------------------------------------------------------------------------------------


def _resolver(template: dict, **parameters: Any) -> Resolver:
    return offline_resolver(template, {**REQUIRED_PARAMETERS, **parameters})


def _resources_of_type(template: dict, resource_type: str) -> dict[str, dict]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def test_every_parameter_is_described_and_grouped(template: dict) -> None:
    parameters = template["Parameters"]
    for name, spec in parameters.items():
        assert len(spec.get("Description", "")) > 20, f"{name} needs a Description (deploy.md)"
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [name for group in groups for name in group["Parameters"]]
    assert sorted(grouped) == sorted(parameters)


def test_only_the_fleet_parameters_have_no_default(template: dict) -> None:
    without_default = {
        name for name, spec in template["Parameters"].items() if "Default" not in spec
    }
    assert without_default == set(REQUIRED_PARAMETERS)
    assert set(parameter_defaults(template)) == set(template["Parameters"]) - without_default


def _allowed_pattern(template: dict, name: str) -> re.Pattern[str]:
    return re.compile(template["Parameters"][name]["AllowedPattern"])


@pytest.mark.parametrize(
    ("uri", "repository_arn"),
    [
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/pagedrop-worker:1",
            "arn:aws:ecr:us-east-1:123456789012:repository/pagedrop-worker",
        ),
        (
            "210987654321.dkr.ecr.eu-west-1.amazonaws.com/team/pagedrop.worker:v1.2-gpu",
            "arn:aws:ecr:eu-west-1:210987654321:repository/team/pagedrop.worker",
        ),
        (
            "123456789012.dkr.ecr.us-west-2.amazonaws.com/pagedrop@sha256:" + "a" * 64,
            "arn:aws:ecr:us-west-2:123456789012:repository/pagedrop",
        ),
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/pagedrop",
            "arn:aws:ecr:us-east-1:123456789012:repository/pagedrop",
        ),
    ],
)
def test_instances_may_pull_only_the_image_repository(
    template: dict, uri: str, repository_arn: str
) -> None:
    assert _allowed_pattern(template, "WorkerImageUri").match(uri)
    role = _resolver(template, WorkerImageUri=uri).resolve(
        template["Resources"]["WorkerRole"]["Properties"]
    )
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    (pull,) = [s for s in statements if s["Sid"] == "PullWorkerImage"]
    assert pull["Resource"] == repository_arn


@pytest.mark.parametrize(
    "uri",
    [
        "pagedrop-worker:1",
        "docker.io/library/pagedrop:1",
        "public.ecr.aws/acme/pagedrop:1",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/Upper:1",
    ],
)
def test_image_uri_must_be_a_private_ecr_image(template: dict, uri: str) -> None:
    assert not _allowed_pattern(template, "WorkerImageUri").match(uri)


def _user_data(template: dict, **parameters: Any) -> str:
    resolver = _resolver(template, **parameters)
    data = template["Resources"]["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    return base64.b64decode(resolver.resolve(data["UserData"])).decode()


def _env_file(user_data: str) -> dict[str, str]:
    """The PAGEDROP_* lines the user data writes to the container's --env-file."""
    block = re.search(r"cat > /etc/pagedrop/worker\.env <<EOF\n(.*?)\nEOF\n", user_data, re.S)
    assert block, "the user data writes /etc/pagedrop/worker.env"
    return dict(line.split("=", 1) for line in block.group(1).splitlines())


def _settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_user_data_is_valid_bash(template: dict) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash here")
    checked = subprocess.run(
        [bash, "-n"], input=_user_data(template), capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr


def test_worker_container_runs_the_image_on_the_gpu_with_its_logs_shipped(template: dict) -> None:
    user_data = _user_data(template)
    run = user_data[user_data.index("docker run") :]
    run = run[: run.index('"$IMAGE"') + len('"$IMAGE"')]  # the command, up to its image
    for option in (
        "--gpus all",
        "--restart unless-stopped",
        "--env-file /etc/pagedrop/worker.env",
        "--log-driver awslogs",
        '--log-opt awslogs-group="/pagedrop/pagedrop/worker"',
        '--log-opt awslogs-region="$REGION"',
    ):
        assert option in run
    # EMF lines must stay one event each (docs/operations.md): no multiline options.
    assert "multiline" not in run and "datetime-format" not in run
    stop_timeout = int(re.search(r"--stop-timeout (\d+)", run).group(1))  # type: ignore[union-attr]
    grace = float(_env_file(user_data)["PAGEDROP_SHUTDOWN_GRACE_S"])
    assert stop_timeout > grace + 10, "docker must wait longer than the worker's grace"
    assert run.rstrip().endswith('"$IMAGE"')


def test_an_instance_whose_worker_is_unhealthy_is_replaced(template: dict) -> None:
    # The user data installs a watch that runs every minute and marks the instance unhealthy
    # (the group then replaces it) when the container's health check says unhealthy or it
    # keeps restarting; an image that cannot be pulled does the same.
    user_data = _user_data(template)
    watch = re.search(r"<<'WATCH'\n(.*?)\nWATCH\n", user_data, re.S)
    assert watch, "the user data writes the health watch"
    script = watch.group(1)
    assert "{{.State.Health.Status}}" in script and "{{.RestartCount}}" in script
    assert "set-instance-health" in script and "--health-status Unhealthy" in script
    assert "OnUnitActiveSec=1min" in user_data
    assert "systemctl enable --now pagedrop-health-watch.timer" in user_data
    pull_loop = user_data[user_data.index("for attempt in") : user_data.index("docker run")]
    assert "mark_unhealthy" in pull_loop


@pytest.mark.parametrize("engine", ["paddleocr-vl", "vlm"])
def test_worker_environment_is_valid_settings(
    template: dict, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert engine in template["Parameters"]["Engine"]["AllowedValues"]
    env = _env_file(_user_data(template, Engine=engine))
    fields = set(Settings.model_fields)
    unknown = [name for name in env if name.removeprefix("PAGEDROP_").lower() not in fields]
    assert unknown == [], "not a setting (a typo?)"
    env["PAGEDROP_WORKER_ID"] = "i-0123456789abcdef0"  # $INSTANCE_ID, filled in at boot
    settings = _settings_from(env, monkeypatch)
    assert settings.bucket == "pagedrop-123456789012-us-east-1"
    assert (settings.input_prefix, settings.output_prefix) == ("input/", "output/")
    assert settings.queue_url == "WorkQueue-ref"
    assert settings.dlq_url == "DeadLetterQueue-ref"
    assert settings.table_name == "StatusTable-ref"
    assert settings.region == "us-east-1"
    assert settings.visibility_timeout_s == 300
    assert settings.retention_days == 30
    assert settings.ocr_engine == engine
    assert settings.device == "cuda"
    assert str(settings.model_dir) == "/opt/pagedrop/models"  # where the Dockerfile puts them
    assert str(settings.health_file) == "/tmp/pagedrop-health.json"
    assert settings.health_port == 0
    assert settings.asg_name == "pagedrop-workers"


def test_every_vlm_model_choice_is_a_profile(template: dict) -> None:
    from handler.engines.vlm.profiles import PROFILES

    assert set(template["Parameters"]["VlmModel"]["AllowedValues"]) <= set(PROFILES)


def test_function_environment_is_valid_settings(
    template: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    env = {k: str(v) for k, v in _resolver(template).resolve(variables).items()}
    settings = _settings_from(env, monkeypatch)
    assert settings.bucket == "pagedrop-123456789012-us-east-1"
    assert settings.table_name == "StatusTable-ref"
    assert settings.region == "us-east-1"  # the stack's Region, not the settings' default
    env_existing = _resolver(template, ExistingBucketName="their-bucket").resolve(variables)
    assert env_existing["PAGEDROP_BUCKET"] == "their-bucket"


def test_the_group_name_is_the_same_for_group_policy_and_worker(template: dict) -> None:
    resolver = _resolver(template)
    group = resolver.resolve(template["Resources"]["WorkerGroup"]["Properties"])
    role = resolver.resolve(template["Resources"]["WorkerRole"]["Properties"])
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    (protection,) = [s for s in statements if "autoscaling:SetInstanceProtection" in s["Action"]]
    assert set(protection["Action"]) == {
        "autoscaling:SetInstanceProtection",
        "autoscaling:SetInstanceHealth",
    }
    name = group["AutoScalingGroupName"]
    assert protection["Resource"].endswith(f":autoScalingGroupName/{name}")
    assert _env_file(_user_data(template))["PAGEDROP_ASG_NAME"] == name


def test_launch_template_is_locked_down(template: dict) -> None:
    data = template["Resources"]["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 2  # the container's hop
    (root,) = data["BlockDeviceMappings"]
    assert root["Ebs"]["Encrypted"] is True
    assert "KeyName" not in data  # no SSH key
    assert data["ImageId"] == {"Ref": "GpuAmiId"}
    assert template["Parameters"]["GpuAmiId"]["Type"].startswith("AWS::SSM::Parameter::Value")
    group = template["Resources"]["WorkerSecurityGroup"]["Properties"]
    assert "SecurityGroupIngress" not in group
    (egress,) = group["SecurityGroupEgress"]
    assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("tcp", 443, 443)


def _alarm_actions(alarm: dict) -> list[Any]:
    return [action["Ref"] for action in alarm["Properties"]["AlarmActions"]]


def test_fleet_wakes_from_zero_tracks_the_backlog_and_goes_back_to_zero(template: dict) -> None:
    resources = template["Resources"]
    group = resources["WorkerGroup"]["Properties"]
    assert "DesiredCapacity" not in group  # owned by the scaling policies
    assert (group["MinSize"], group["MaxSize"]) == (
        {"Ref": "MinInstances"},
        {"Ref": "MaxInstances"},
    )
    assert template["Parameters"]["MinInstances"]["Default"] == 0
    assert group["NewInstancesProtectedFromScaleIn"] is False
    collected = set(group["MetricsCollection"][0]["Metrics"])

    tracking = resources["BacklogTracking"]["Properties"]["TargetTrackingConfiguration"]
    metrics = {m["Id"]: m for m in tracking["CustomizedMetricSpecification"]["Metrics"]}
    assert metrics["backlogperinstance"]["Expression"] == "(waiting + inprogress) / instances"
    assert metrics["instances"]["MetricStat"]["Metric"]["MetricName"] == "GroupInServiceInstances"
    assert tracking["TargetValue"] == {"Ref": "BacklogPerInstance"}

    wake_alarm = resources["WakeFromZeroAlarm"]["Properties"]
    (wake,) = [m for m in wake_alarm["Metrics"] if m.get("ReturnData")]
    assert wake["Expression"] == "IF(waiting > 0 AND FILL(desired, 0) < 1, 1, 0)"
    assert _alarm_actions(resources["WakeFromZeroAlarm"]) == ["WakeFromZeroPolicy"]
    wake_policy = resources["WakeFromZeroPolicy"]["Properties"]
    assert wake_policy["AdjustmentType"] == "ExactCapacity"
    assert [s["ScalingAdjustment"] for s in wake_policy["StepAdjustments"]] == [1]

    idle_alarm = resources["IdleAlarm"]["Properties"]
    (idle,) = [m for m in idle_alarm["Metrics"] if m.get("ReturnData")]
    assert idle["Expression"] == "waiting + inprogress"  # nothing waiting, nothing held
    assert idle_alarm["EvaluationPeriods"] == {"Ref": "IdleMinutesBeforeScaleIn"}
    assert _alarm_actions(resources["IdleAlarm"]) == ["ScaleInWhenIdlePolicy"]
    idle_policy = resources["ScaleInWhenIdlePolicy"]["Properties"]
    assert idle_policy["AdjustmentType"] == "ExactCapacity"
    assert [s["ScalingAdjustment"] for s in idle_policy["StepAdjustments"]] == [0]

    # Every Auto Scaling group metric the math reads is one the group publishes.
    used = {
        m["MetricStat"]["Metric"]["MetricName"]
        for m in [*metrics.values(), *wake_alarm["Metrics"], *idle_alarm["Metrics"]]
        if "MetricStat" in m and m["MetricStat"]["Metric"]["Namespace"] == "AWS/AutoScaling"
    }
    assert used and used <= collected


def _functions(template: dict) -> dict[str, dict]:
    return _resources_of_type(template, "AWS::Serverless::Function")


def test_functions_ship_only_the_package_with_their_own_role_and_logs(template: dict) -> None:
    functions = _functions(template)
    assert set(functions) == {"DlqFunction", "StatusFunction"}
    targets = set(re.findall(r"^build-(\w+)", LAMBDA_MAKEFILE.read_text(), re.M))
    targets |= set(re.findall(r" build-(\w+)", LAMBDA_MAKEFILE.read_text()))
    for logical_id, function in functions.items():
        properties = function["Properties"]
        assert properties["CodeUri"] == "handler"
        assert function["Metadata"]["BuildMethod"] == "makefile"
        assert function["Metadata"]["ContextPath"] == "infra/lambda"
        assert logical_id in targets, f"infra/lambda/Makefile has no build-{logical_id}"
        assert "Policies" not in properties  # an explicit role, nothing SAM adds
        assert properties["Role"] == {"Fn::GetAtt": [f"{logical_id}Role", "Arn"]}
        assert properties["LoggingConfig"] == {"LogGroup": {"Ref": f"{logical_id}LogGroup"}}
    assert "SharedLayer" in targets


@pytest.mark.parametrize("logical_id", ["DlqFunction", "StatusFunction"])
def test_function_handlers_exist(template: dict, logical_id: str) -> None:
    module_name, _, attribute = _functions(template)[logical_id]["Properties"][
        "Handler"
    ].rpartition(".")
    assert callable(getattr(importlib.import_module(module_name), attribute))


def test_dlq_function_reports_partial_batch_failures(template: dict) -> None:
    function = _functions(template)["DlqFunction"]["Properties"]
    (event,) = function["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": [DEAD_LETTER_QUEUE_ID, "Arn"]}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    dlq = template["Resources"][DEAD_LETTER_QUEUE_ID]["Properties"]
    # Lambda refuses an event source whose queue hides messages for less than the timeout.
    assert dlq["VisibilityTimeout"] >= 6 * template["Globals"]["Function"]["Timeout"]


def test_status_function_url_needs_iam(template: dict) -> None:
    function = _functions(template)["StatusFunction"]["Properties"]
    assert function["FunctionUrlConfig"] == {"AuthType": "AWS_IAM"}


# Top-level modules the Lambda runtime (python3.12) provides: boto3 and its dependencies
# (botocore imports certifi when it is there, and uses its own CA bundle when not).
RUNTIME_PROVIDED = {
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "urllib3",
    "dateutil",
    "six",
    "certifi",
}
# What must never be imported by a Lambda function: heavy, native, or for the worker only.
NOT_IN_LAMBDA = {
    "fitz",
    "pymupdf",
    "numpy",
    "PIL",
    "rapidocr",
    "onnxruntime",
    "torch",
    "transformers",
    "paddle",
    "paddleocr",
    "yaml",
    "moto",
}


def _imported_top_level_modules(template: dict) -> set[str]:
    """Third-party top-level modules loaded by importing each function's module and what a
    first invocation imports (settings, clients), in a fresh interpreter."""
    modules = [
        _functions(template)[f]["Properties"]["Handler"].rpartition(".")[0]
        for f in sorted(_functions(template))
    ]
    script = (
        "import importlib, json, sys\n"
        f"for name in {[*modules, 'handler.settings', 'handler.aws']!r}:\n"
        "    importlib.import_module(name)\n"
        "top = {m.split('.')[0] for m in sys.modules}\n"
        "print(json.dumps(sorted(t for t in top if t not in sys.stdlib_module_names)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    # Private names are the interpreter's and the editable install's own.
    return {name for name in json.loads(done.stdout) if not name.startswith("_")} - {"handler"}


def _layer_distributions() -> set[str]:
    """The layer's requirements and, from this environment's metadata, what they pull in."""
    pending = [
        re.split(r"[<>=!~;\[ ]", line.strip(), maxsplit=1)[0]
        for line in LAYER_REQUIREMENTS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    found: set[str] = set()
    while pending:
        name = pending.pop().lower().replace("_", "-")
        if name in found:
            continue
        found.add(name)
        for requirement in metadata.requires(name) or []:
            if "extra ==" not in requirement:
                pending.append(re.split(r"[<>=!~;\[ (]", requirement, maxsplit=1)[0])
    return found


def test_layer_covers_what_the_functions_import_and_nothing_heavy(template: dict) -> None:
    imported = _imported_top_level_modules(template)
    assert imported & NOT_IN_LAMBDA == set()
    distributions = metadata.packages_distributions()
    layer = _layer_distributions()
    missing = {
        module
        for module in imported - RUNTIME_PROVIDED
        if not {d.lower().replace("_", "-") for d in distributions.get(module, [])} & layer
    }
    assert missing == set(), "add their packages to layers/shared/requirements.txt"


def test_alarms_cover_dead_letters_backlog_and_errors(template: dict) -> None:
    alarms = _resources_of_type(template, "AWS::CloudWatch::Alarm")
    notifying = {
        logical_id
        for logical_id, alarm in alarms.items()
        if alarm["Properties"]["AlarmActions"]
        == {"Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]}
    }
    assert notifying == {
        "DeadLetterQueueAlarm",
        "DocumentsExhaustedAlarm",
        "OldestMessageAlarm",
        "WorkerErrorsAlarm",
        "DlqFunctionErrorsAlarm",
        "StatusFunctionErrorsAlarm",
    }
    assert (
        alarms["OldestMessageAlarm"]["Properties"]["MetricName"] == "ApproximateAgeOfOldestMessage"
    )
    assert alarms["DocumentsExhaustedAlarm"]["Properties"]["Namespace"] == "pagedrop"
    metric_filter = template["Resources"]["WorkerErrorsMetricFilter"]["Properties"]
    assert metric_filter["LogGroupName"] == {"Ref": "WorkerLogGroup"}
    (transformation,) = metric_filter["MetricTransformations"]
    assert alarms["WorkerErrorsAlarm"]["Properties"]["MetricName"] == transformation["MetricName"]
    assert template["Resources"]["AlarmTopic"]["Condition"] == "HasAlarmEmail"


def test_every_checkov_skip_says_why(template: dict) -> None:
    skips = [
        (logical_id, skip)
        for logical_id, resource in template["Resources"].items()
        for skip in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip", [])
    ]
    assert skips
    for logical_id, skip in skips:
        assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]), logical_id
        assert len(skip.get("comment", "")) > 40, f"{logical_id} {skip['id']}: say why"


def test_stack_outputs_name_the_fleet_and_the_status_url(template: dict) -> None:
    assert {
        "WorkerGroupName",
        "WorkerLogGroupName",
        "StatusFunctionUrl",
        "StatusCallerPolicyArn",
        "DeadLetterQueueArn",
    } <= set(template["Outputs"])
    assert template["Outputs"]["ExistingBucketSetup"]["Condition"] == "UseExistingBucket"


@pytest.mark.parametrize(
    ("instance_type", "allowed"),
    [
        ("g6.xlarge", True),
        ("g6e.12xlarge", True),
        ("g4dn.2xlarge", True),
        ("p5.48xlarge", True),
        ("g5g.xlarge", False),  # Graviton: the image is x86_64
        ("p3.2xlarge", False),  # V100: CUDA 13 no longer supports it
        ("m7i.large", False),  # no GPU
    ],
)
def test_instance_type_must_have_a_gpu_the_image_runs_on(
    template: dict, instance_type: str, allowed: bool
) -> None:
    assert bool(_allowed_pattern(template, "InstanceType").match(instance_type)) is allowed
