"""The one mapping from AWS and file failures to a sentence (``handler/console/errors.py``)."""

from __future__ import annotations

import pytest
from boto3.exceptions import RetriesExceededError, S3UploadFailedError
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from handler.console.errors import ConsoleError, Target, describe

LOCAL = Target(
    endpoint_url="http://127.0.0.1:4566",
    region="us-east-1",
    bucket="docs",
    table_name="status",
    queue_urls=("http://127.0.0.1:4566/1/work",),
)
AWS = Target(region="eu-west-1", profile="ops", bucket="docs", table_name="status")


def _client_error(code: str, operation: str, http: int = 400, **error: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} happened.", **error},
            "ResponseMetadata": {"HTTPStatusCode": http},
        },
        operation,
    )


@pytest.mark.parametrize(
    ("exc", "target", "sentence"),
    [
        (
            _client_error("NoSuchBucket", "PutObject", 404, BucketName="other"),
            LOCAL,
            "The bucket 'other' does not exist at http://127.0.0.1:4566: check --bucket or "
            "PAGEDROP_BUCKET.",
        ),
        (
            _client_error("404", "HeadBucket", 404),
            AWS,
            "The bucket 'docs' does not exist in eu-west-1: check --bucket or PAGEDROP_BUCKET.",
        ),
        (
            _client_error("ResourceNotFoundException", "GetItem"),
            AWS,
            "The status table 'status' does not exist in eu-west-1: check --table-name or "
            "PAGEDROP_TABLE_NAME.",
        ),
        (
            _client_error("AWS.SimpleQueueService.NonExistentQueue", "ReceiveMessage"),
            LOCAL,
            "The queue http://127.0.0.1:4566/1/work does not exist at http://127.0.0.1:4566: "
            "check --queue-url/--dlq-url or PAGEDROP_QUEUE_URL/PAGEDROP_DLQ_URL.",
        ),
        (
            _client_error("NoSuchKey", "GetObject", 404, Key="input/a.pdf"),
            AWS,
            "There is no s3://docs/input/a.pdf in eu-west-1 (GetObject said NoSuchKey).",
        ),
        (
            _client_error("AccessDenied", "PutObject", 403),
            AWS,
            "Access denied: the AWS identity in use may not call PutObject in eu-west-1 "
            "(profile ops; check its IAM policy).",
        ),
        (
            _client_error("403", "HeadBucket", 403),
            LOCAL,
            "Access denied: the AWS identity in use may not call HeadBucket at "
            "http://127.0.0.1:4566 (boto3's default credentials; check its IAM policy).",
        ),
        (
            _client_error("InvalidAccessKeyId", "PutObject", 403),
            AWS,
            "The AWS credentials were refused (InvalidAccessKeyId) in eu-west-1: they are wrong "
            "or expired (profile ops).",
        ),
        (
            _client_error("ProvisionedThroughputExceededException", "Query"),
            AWS,
            "AWS kept failing Query (ProvisionedThroughputExceededException) after 5 attempts "
            "in eu-west-1: try again in a while.",
        ),
        (
            _client_error("ValidationException", "Scan"),
            AWS,
            "AWS refused Scan in eu-west-1: ValidationException: ValidationException happened.",
        ),
        (
            NoCredentialsError(),
            AWS,
            "No usable AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or use "
            "--profile (against a local endpoint any values do, e.g. testing).",
        ),
        (
            ProfileNotFound(profile="ops"),
            AWS,
            "The AWS profile 'ops' is not in the AWS config files (~/.aws/config, "
            "~/.aws/credentials, or AWS_CONFIG_FILE).",
        ),
        (
            EndpointConnectionError(endpoint_url="https://s3.eu-west-1.amazonaws.com/docs"),
            AWS,
            "Cannot reach AWS at https://s3.eu-west-1.amazonaws.com/docs: check the network "
            "and --region (eu-west-1).",
        ),
        (
            EndpointConnectionError(endpoint_url="http://127.0.0.1:4566/docs"),
            LOCAL,
            "Cannot reach the AWS endpoint http://127.0.0.1:4566: is it running (pagedrop "
            "local) and is --endpoint-url right?",
        ),
        (
            ReadTimeoutError(endpoint_url="http://127.0.0.1:4566/"),
            LOCAL,
            "The connection to http://127.0.0.1:4566 broke off: try again.",
        ),
        (
            PermissionError(13, "Permission denied", "/data/a.pdf"),
            LOCAL,
            "Cannot use /data/a.pdf: Permission denied.",
        ),
        (
            OSError(98, "Address already in use"),
            LOCAL,
            "The port is already in use: choose another --port (0 picks a free one).",
        ),
        (ConsoleError("Give KEYs."), LOCAL, "Give KEYs."),
    ],
)
def test_each_failure_is_one_sentence(exc: BaseException, target: Target, sentence: str) -> None:
    assert describe(exc, target) == sentence


def _upload_file_failing() -> None:
    """What boto3's upload_file does: re-raise a ClientError as S3UploadFailedError inside its
    ``except`` block (so the ClientError is only the implicit ``__context__``)."""
    try:
        raise _client_error("NoSuchBucket", "PutObject", 404, BucketName="docs")
    except ClientError as inner:
        raise S3UploadFailedError(f"Failed to upload a.pdf to docs/a.pdf: {inner}")  # noqa: B904


def test_transfer_wrappers_are_seen_through() -> None:
    with pytest.raises(S3UploadFailedError) as caught:
        _upload_file_failing()
    assert describe(caught.value, LOCAL) == (
        "The bucket 'docs' does not exist at http://127.0.0.1:4566: check --bucket or "
        "PAGEDROP_BUCKET."
    )
    retries = RetriesExceededError(EndpointConnectionError(endpoint_url="http://x"))
    assert str(describe(retries, LOCAL)).startswith("Cannot reach the AWS endpoint")


def test_anything_else_is_a_bug_and_has_no_sentence() -> None:
    assert describe(ValueError("oops"), LOCAL) is None
    assert describe(KeyError("status"), LOCAL) is None
