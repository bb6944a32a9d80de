"""Failures a person sees as one sentence: the console's own, and AWS's, translated.

:func:`describe` is the one mapping from botocore/boto3 exceptions (and local file errors) to
a sentence; ``pagedrop``'s ``main`` uses it for every command. It returns ``None`` for an
exception it does not know, which is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSLError,
)

from handler.aws import MAX_ATTEMPTS, TRANSIENT_CODES, error_code
from handler.errors import PagedropError

if TYPE_CHECKING:
    from handler.settings import Settings

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class ConsoleError(PagedropError):
    """A failure the command explains in one sentence, with the exit code to end with."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class Target:
    """What the command was talking to, so that a sentence can name it."""

    endpoint_url: str | None = None
    region: str = ""
    profile: str | None = None
    bucket: str = ""
    table_name: str = ""
    queue_urls: tuple[str, ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> Target:
        return cls(
            endpoint_url=settings.endpoint_url,
            region=settings.region,
            profile=settings.profile,
            bucket=settings.bucket,
            table_name=settings.table_name,
            queue_urls=tuple(url for url in (settings.queue_url, settings.dlq_url) if url),
        )


BUCKET_MISSING = frozenset({"NoSuchBucket"})
TABLE_MISSING = frozenset({"ResourceNotFoundException", "TableNotFoundException"})
QUEUE_MISSING = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
KEY_MISSING = frozenset({"NoSuchKey", "NoSuchVersion"})
NOT_FOUND = frozenset({"404", "NotFound"})  # what a HEAD says: no body, so no better code
DENIED = frozenset(
    {"AccessDenied", "AccessDeniedException", "403", "Forbidden", "AuthorizationError"}
)
BAD_CREDENTIALS = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidToken",
        "AuthFailure",
    }
)


def describe(exc: BaseException, target: Target) -> str | None:
    """One sentence for an AWS or local-file failure; ``None`` for anything else."""
    if isinstance(exc, ConsoleError):
        return exc.message
    cause = _unwrap(exc)
    if isinstance(cause, ClientError):
        return _client_error(cause, target)
    if isinstance(cause, BotoCoreError):
        return _botocore_error(cause, target)
    if isinstance(cause, OSError) and cause.filename is not None:
        return f"Cannot use {cause.filename}: {cause.strerror or cause}."
    if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
        return "The port is already in use: choose another --port (0 picks a free one)."
    return None


def _unwrap(exc: BaseException) -> BaseException:
    """The AWS error inside boto3's transfer wrappers (S3UploadFailedError re-raises a
    ClientError inside its ``except`` block; RetriesExceededError keeps ``last_exception``)."""
    seen = 0
    while not isinstance(exc, ClientError | BotoCoreError) and seen < 5:
        inner = getattr(exc, "last_exception", None) or exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc, seen = inner, seen + 1
    return exc


def _client_error(exc: ClientError, target: Target) -> str:
    code, operation = error_code(exc), exc.operation_name
    error = exc.response.get("Error", {})
    where = _where(target)
    if code in BUCKET_MISSING or (code in NOT_FOUND and operation == "HeadBucket"):
        bucket = error.get("BucketName") or target.bucket
        return f"The bucket {bucket!r} does not exist{where}: check --bucket or PAGEDROP_BUCKET."
    if code in TABLE_MISSING:
        return (
            f"The status table {target.table_name!r} does not exist{where}: check --table-name "
            "or PAGEDROP_TABLE_NAME."
        )
    if code in QUEUE_MISSING:
        urls = " or ".join(target.queue_urls) or "(none set)"
        return (
            f"The queue {urls} does not exist{where}: check --queue-url/--dlq-url or "
            "PAGEDROP_QUEUE_URL/PAGEDROP_DLQ_URL."
        )
    if code in KEY_MISSING or (code in NOT_FOUND and operation == "HeadObject"):
        key = error.get("Key")
        named = f"s3://{target.bucket}/{key}" if key else f"an object in {target.bucket!r}"
        return f"There is no {named}{where} ({operation} said {code})."
    if code in DENIED:
        return (
            f"Access denied: the AWS identity in use may not call {operation}{where} "
            f"({_identity(target)}; check its IAM policy)."
        )
    if code in BAD_CREDENTIALS:
        return (
            f"The AWS credentials were refused ({code}){where}: they are wrong or expired "
            f"({_identity(target)})."
        )
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in TRANSIENT_CODES or status >= 500:
        return (
            f"AWS kept failing {operation} ({code}) after {MAX_ATTEMPTS} attempts{where}: "
            "try again in a while."
        )
    message = str(error.get("Message") or "").rstrip(".")
    return f"AWS refused {operation}{where}: {code}{': ' + message if message else ''}."


def _botocore_error(exc: BotoCoreError, target: Target) -> str:
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        return (
            "No usable AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or use "
            "--profile (against a local endpoint any values do, e.g. testing)."
        )
    if isinstance(exc, ProfileNotFound):
        profile = exc.kwargs.get("profile") or target.profile
        return (
            f"The AWS profile {profile!r} is not in the AWS config files "
            "(~/.aws/config, ~/.aws/credentials, or AWS_CONFIG_FILE)."
        )
    if isinstance(exc, NoRegionError):
        return "No AWS region: use --region or PAGEDROP_REGION."
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | SSLError):
        if target.endpoint_url:
            return (
                f"Cannot reach the AWS endpoint {target.endpoint_url}: is it running "
                "(pagedrop local) and is --endpoint-url right?"
            )
        url = exc.kwargs.get("endpoint_url") or "AWS"
        return f"Cannot reach AWS at {url}: check the network and --region ({target.region})."
    if isinstance(exc, ConnectionClosedError | ReadTimeoutError):
        return f"The connection to {target.endpoint_url or 'AWS'} broke off: try again."
    return f"An AWS call failed{_where(target)}: {str(exc).rstrip('.')}."


def _where(target: Target) -> str:
    if target.endpoint_url:
        return f" at {target.endpoint_url}"
    return f" in {target.region}" if target.region else ""


def _identity(target: Target) -> str:
    return f"profile {target.profile}" if target.profile else "boto3's default credentials"
