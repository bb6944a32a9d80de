"""Building AWS clients: the one place that knows about endpoints, regions and retries.

Clients are built by the entry points and passed down; nothing creates a client at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from handler.settings import Settings

# botocore's "standard" retry mode: exponential backoff with jitter, retries throttling
# and 5xx (https://boto3.amazonaws.com/v1/documentation/api/latest/guide/retries.html).
# Attempts per call, the first one included. (botocore's ``max_attempts`` key counts retries
# only, so 5 there meant 6 attempts; ``total_max_attempts`` counts them all.)
MAX_ATTEMPTS = 5
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30  # long polls wait 20 s, so reads must outlast them

# Error codes that mean "try again later", whatever the service.
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "InternalError",
        "InternalServerError",
        "InternalFailure",
        "RequestTimeout",
        "RequestTimeoutException",
        "TransactionInProgressException",
    }
)


@dataclass(frozen=True, slots=True)
class Clients:
    """The three clients the worker uses."""

    s3: Any
    sqs: Any
    dynamodb: Any


def client_config() -> Config:
    return Config(
        retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        max_pool_connections=32,
    )


def make_clients(settings: Settings, session: boto3.Session | None = None) -> Clients:
    """Build S3, SQS and DynamoDB clients for the settings' region, endpoint and profile."""
    session = session or boto3.Session(profile_name=settings.profile, region_name=settings.region)
    kwargs: dict[str, Any] = {"config": client_config(), "region_name": settings.region}
    if settings.endpoint_url:
        kwargs["endpoint_url"] = settings.endpoint_url
    return Clients(
        s3=session.client("s3", **kwargs),
        sqs=session.client("sqs", **kwargs),
        dynamodb=session.client("dynamodb", **kwargs),
    )


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError, or '' for anything else."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_transient(exc: BaseException) -> bool:
    """True for faults worth retrying later: throttling, 5xx, network trouble."""
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error_code(exc) in TRANSIENT_CODES or int(status or 0) >= 500
    return isinstance(exc, BotoCoreError | ConnectionError | TimeoutError)
