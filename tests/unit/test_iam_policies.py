"""Every IAM policy in template.yaml grants only what the stack needs.

The policies are read as CloudFormation would produce them (intrinsic functions resolved
offline, with both the defaults and every optional feature switched on), from the template
and, where ``samtranslator`` is installed, from its SAM translation (which would show what
SAM adds by itself). An Allow statement fails the test when it names a wildcard action, uses
NotAction or NotResource, grants Resource "*" for an action not on the allow-list below, or
names a whole service's resources (any bucket, any object of a bucket). Each role's actions
are compared with the set the code needs, so a new permission is a conscious change here.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handler.local.template import load_template, offline_resolver

ROOT_TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"

REQUIRED_PARAMETERS = {
    "WorkerImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/pagedrop-worker:1",
    "VpcId": "vpc-0123456789abcdef0",
    "SubnetIds": ["subnet-0123456789abcdef0"],
}
EVERY_OPTION = {
    "ExistingBucketName": "their-bucket",
    "EnableSessionManager": "true",
    "AlarmEmail": "ops@example.com",
}
PARAMETER_SETS = [
    pytest.param({}, id="defaults"),
    pytest.param(EVERY_OPTION, id="every-option"),
]

# Actions AWS authorizes only on Resource "*", each with why the stack needs it.
STAR_RESOURCE_ALLOWED = {
    "ecr:GetAuthorizationToken": "ECR's registry login has no resource-level permissions; "
    "the pulls it enables are limited to the worker image's one repository",
}
# AWS managed policies a role may carry, each with why.
MANAGED_POLICIES_ALLOWED = {
    "AmazonSSMManagedInstanceCore": "Session Manager on the workers instead of SSH; only "
    "with EnableSessionManager=true (off by default)",
}

# What each role's code calls (handler/worker, handler/storage, handler/status/store.py,
# handler/lambdas/*, the Docker awslogs driver). A change here is a change of privileges.
EXPECTED_ACTIONS = {
    "WorkerRole": {
        "s3:GetObject",  # inputs (exact version) and its own output checkpoints
        "s3:GetObjectVersion",
        "s3:PutObject",  # outputs
        "s3:DeleteObject",  # page files an older, longer version left behind
        "s3:ListBucket",  # the output prefix, and 404 (not 403) for keys not written yet
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",  # heartbeat, retry delay, hand-back
        "sqs:GetQueueAttributes",  # `pagedrop worker --check`
        "sqs:SendMessage",  # poison messages to the DLQ
        "dynamodb:GetItem",
        "dynamodb:PutItem",  # the claim
        "dynamodb:UpdateItem",  # heartbeat, progress, completion
        "dynamodb:DescribeTable",  # `pagedrop worker --check`
        "logs:CreateLogStream",  # the awslogs driver
        "logs:PutLogEvents",
        "ecr:GetAuthorizationToken",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchCheckLayerAvailability",
        "autoscaling:SetInstanceProtection",  # no scale-in while it holds a document
        "autoscaling:SetInstanceHealth",  # replaced when its worker container is unhealthy
    },
    "DlqFunctionRole": {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "sqs:ReceiveMessage",  # the event source mapping
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",  # mark FAILED/exhausted
    },
    "StatusFunctionRole": {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "dynamodb:GetItem",
        "s3:GetObject",  # the manifest, and what presigned links open
        "s3:GetObjectVersion",
        "s3:ListBucket",  # was a key uploaded
        "s3:ListBucketVersions",  # the versions of a document's outputs
    },
}

_IDENTITY_POLICY_TYPES = {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}
_RESOURCE_POLICY_TYPES = {
    "AWS::S3::BucketPolicy": "PolicyDocument",
    "AWS::SQS::QueuePolicy": "PolicyDocument",
    "AWS::SNS::TopicPolicy": "PolicyDocument",
}
_WHOLE_SERVICE = re.compile(r"arn:[^:]+:[^:]+:[^:]*:[^:]*:\*")
_ANY_S3_OBJECT = re.compile(r"arn:[^:]+:s3:::([^/]*\*.*|[^/]+/\*)")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return _as_list(document.get("Statement", []))


def _resolved(template: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """Every resource whose condition holds, with its intrinsic functions resolved."""
    resolver = offline_resolver(template, {**REQUIRED_PARAMETERS, **parameters})
    conditions = template.get("Conditions") or {}
    kept = {}
    for logical_id, resource in template["Resources"].items():
        condition = resource.get("Condition")
        if condition and not resolver.resolve({"Condition": condition}):
            continue
        assert condition is None or condition in conditions
        kept[logical_id] = {**resource, "Properties": resolver.resolve(resource.get("Properties"))}
    return kept


def _identity_statements(
    resources: dict[str, Any],
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, statement) for every identity policy statement the resources declare."""
    for logical_id, resource in resources.items():
        properties = resource.get("Properties") or {}
        if resource["Type"] == "AWS::IAM::Role":
            for policy in properties.get("Policies", []):
                for statement in _statements(policy["PolicyDocument"]):
                    yield f"{logical_id}/{policy['PolicyName']}", statement
        elif resource["Type"] in _IDENTITY_POLICY_TYPES:
            for statement in _statements(properties["PolicyDocument"]):
                yield logical_id, statement
        elif resource["Type"] == "AWS::Serverless::Function":
            for policy in _as_list(properties.get("Policies", [])):
                if isinstance(policy, dict) and "Statement" in policy:
                    for statement in _statements(policy):
                        yield logical_id, statement


def _problems(where: str, statement: dict[str, Any]) -> list[str]:
    if statement.get("Effect") != "Allow":
        return []
    problems = [f"{where}: {key}" for key in ("NotAction", "NotResource") if key in statement]
    actions = [str(a) for a in _as_list(statement.get("Action", []))]
    resources = [str(r) for r in _as_list(statement.get("Resource", []))]
    problems += [f"{where}: wildcard action {a}" for a in actions if "*" in a]
    if "*" in resources:
        unlisted = sorted(set(actions) - set(STAR_RESOURCE_ALLOWED))
        if unlisted or resources != ["*"]:
            problems.append(f"{where}: Resource * for {unlisted or actions}")
    for resource in resources:
        if _WHOLE_SERVICE.fullmatch(resource) or _ANY_S3_OBJECT.fullmatch(resource):
            problems.append(f"{where}: {resource} names every resource of its kind")
    return problems


def _all_problems(resources: dict[str, Any]) -> list[str]:
    problems = [p for where, s in _identity_statements(resources) for p in _problems(where, s)]
    for logical_id, resource in resources.items():
        document_key = _RESOURCE_POLICY_TYPES.get(resource["Type"])
        if document_key:
            for statement in _statements(resource["Properties"][document_key]):
                public = statement.get("Principal") in ("*", {"AWS": "*"})
                if statement.get("Effect") == "Allow" and public:
                    problems.append(f"{logical_id}: allows everyone")
        lambda_permission = resource["Type"] == "AWS::Lambda::Permission"
        if lambda_permission and resource["Properties"].get("Principal") == "*":
            problems.append(f"{logical_id}: lets anyone invoke")
        if resource["Type"] == "AWS::IAM::Role":
            for statement in _statements(resource["Properties"]["AssumeRolePolicyDocument"]):
                if set(statement.get("Principal", {})) != {"Service"}:
                    problems.append(f"{logical_id}: assumable by {statement.get('Principal')}")
    return problems


def _managed_policy_names(resources: dict[str, Any]) -> list[str]:
    names = []
    for resource in resources.values():
        properties = resource.get("Properties") or {}
        arns = (
            properties.get("ManagedPolicyArns", []) if resource["Type"] == "AWS::IAM::Role" else []
        )
        names += [str(arn).rsplit("/", 1)[-1] for arn in _as_list(arns)]
        if resource["Type"] == "AWS::Serverless::Function":
            names += [p for p in _as_list(properties.get("Policies", [])) if isinstance(p, str)]
    return names


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(ROOT_TEMPLATE)


@pytest.mark.parametrize("parameters", PARAMETER_SETS)
def test_no_policy_grants_wildcards(template: dict[str, Any], parameters: dict[str, Any]) -> None:
    assert _all_problems(_resolved(template, parameters)) == []


def test_each_role_has_exactly_the_actions_its_code_needs(template: dict[str, Any]) -> None:
    resources = _resolved(template, {})
    granted: dict[str, set[str]] = {}
    for where, statement in _identity_statements(resources):
        role = where.split("/")[0]
        granted.setdefault(role, set()).update(_as_list(statement.get("Action", [])))
    assert {role: granted.get(role, set()) for role in EXPECTED_ACTIONS} == EXPECTED_ACTIONS


def test_object_access_stays_under_the_prefixes(template: dict[str, Any]) -> None:
    resources = _resolved(template, EVERY_OPTION)
    for where, statement in _identity_statements(resources):
        for resource in map(str, _as_list(statement.get("Resource", []))):
            if resource.startswith("arn:aws:s3:::") and "/" in resource:
                assert resource in {
                    "arn:aws:s3:::their-bucket/input/*",
                    "arn:aws:s3:::their-bucket/output/*",
                }, where


@pytest.mark.parametrize(
    ("parameters", "expected"), [({}, []), (EVERY_OPTION, ["AmazonSSMManagedInstanceCore"])]
)
def test_managed_policies_only_from_the_allow_list(
    template: dict[str, Any], parameters: dict[str, Any], expected: list[str]
) -> None:
    names = _managed_policy_names(_resolved(template, parameters))
    assert names == expected
    assert set(names) <= set(MANAGED_POLICIES_ALLOWED)


def test_the_checks_catch_what_they_are_for() -> None:
    bad = {
        "Role": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}}]
                },
                "Policies": [
                    {
                        "PolicyName": "p",
                        "PolicyDocument": {
                            "Statement": [
                                {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b"},
                                {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"},
                                {"Effect": "Allow", "NotAction": "iam:*", "Resource": "x"},
                                {
                                    "Effect": "Allow",
                                    "Action": "s3:GetObject",
                                    "Resource": "arn:aws:s3:::b/*",
                                },
                                {
                                    "Effect": "Allow",
                                    "Action": "sqs:SendMessage",
                                    "Resource": "arn:aws:sqs:us-east-1:1:*",
                                },
                            ]
                        },
                    }
                ],
            },
        },
        "Public": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "PolicyDocument": {"Statement": [{"Effect": "Allow", "Principal": "*"}]}
            },
        },
    }
    assert len(_all_problems(bad)) == 7


def test_sam_adds_no_policy_of_its_own(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    transform = pytest.importorskip("samtranslator.translator.transform").transform
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    sam = copy.deepcopy(template)
    for resource in sam["Resources"].values():
        properties = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            if key in properties:
                properties[key] = "s3://pagedrop-artifacts/code.zip"
    translated = transform(sam, {}, NoManagedPolicies())
    for parameters in (p.values[0] for p in PARAMETER_SETS):
        resources = _resolved(translated, parameters)
        assert _all_problems(resources) == []
        assert set(_managed_policy_names(resources)) <= set(MANAGED_POLICIES_ALLOWED)
        roles = {k for k, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
        assert roles == set(EXPECTED_ACTIONS), "SAM made a role of its own"
