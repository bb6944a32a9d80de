"""The status function: one document's status and links to its outputs, on a Function URL.

``GET <function URL>/?key=input/reports/q3.pdf`` (or ``?pk=<bucket>/input/reports/q3.pdf``;
``&offset=N`` for the next links of a document with many pages) answers the document's
status as ``pagedrop status`` shows it and, once it is ``SUCCEEDED`` or ``PARTIAL``,
presigned GET links to every output its manifest lists (handler/status/report.py). Encode the
key as a query value (``urllib.parse.urlencode({"key": key})``: ``+`` reads as a space).

The Function URL uses IAM auth: AWS checks the caller's SigV4 signature before this runs.
Answers: 200; 400 for a bad request (no key, a key outside the input prefix, another
bucket); 404 for a key with neither status nor object; 405 for a method other than GET; 409
when a finished document's outputs were replaced; 500, logged here and said in one line with
the request id, for anything else.

A link is signed with the function's own (temporary) credentials and stops working when they
expire, even before the expiry asked for (``PAGEDROP_LINK_EXPIRY_S``, 15 minutes by default,
7 days at most).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from handler.errors import PagedropError
from handler.outputs.links import OutputsUnavailable
from handler.status.report import DocumentNotFound, Place, describe_document
from handler.status.store import StatusStore
from handler.storage.keys import KeyOutsidePrefix

log = logging.getLogger(__name__)

LINK_EXPIRY_DEFAULT_S = 15 * 60
ALLOWED_METHOD = "GET"
_HEADERS = {"content-type": "application/json", "cache-control": "no-store"}


class BadRequest(PagedropError):
    """The request names no document, or names one this function does not serve."""


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """A Function URL event (payload format 2.0), parsed once."""

    method: str
    key: str | None = None
    pk: str | None = None
    offset: str | None = None
    repeated: tuple[str, ...] = ()  # parameters given more than once

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> StatusRequest:
        method = str(event.get("requestContext", {}).get("http", {}).get("method", "")).upper()
        query = _query(event)
        repeated = tuple(sorted(name for name, values in query.items() if len(values) > 1))

        def first(name: str) -> str | None:
            return query[name][0] if name in query else None

        return cls(method, first("key"), first("pk"), first("offset"), repeated)

    def document_key(self, bucket: str) -> str:
        """The source key asked for (a ``pk`` must name ``bucket``)."""
        if self.repeated:
            raise BadRequest(f"give {', '.join(self.repeated)} once")
        if self.key is not None and self.pk is not None:
            raise BadRequest("give key or pk, not both")
        if self.pk is not None:
            named, _, key = self.pk.partition("/")
            if named != bucket:
                raise BadRequest(f"pk must be {bucket}/<key>: this function serves s3://{bucket}")
            return key
        if not self.key:
            raise BadRequest("no document: add ?key=<object key under the input prefix>")
        return self.key

    def link_offset(self) -> int:
        if self.offset is None:
            return 0
        if not self.offset.isdigit():
            raise BadRequest("offset must be a whole number, 0 or more")
        return int(self.offset)


@dataclass(frozen=True, slots=True)
class StatusService:
    """What answering needs: the clients and where things are."""

    store: StatusStore
    s3: Any  # for presigning: SigV4 (see _service)
    place: Place
    link_expiry_s: int


def answer(request: StatusRequest, service: StatusService) -> dict[str, Any]:
    """The Function URL response to ``request`` (expected failures as 4xx answers)."""
    if request.method != ALLOWED_METHOD:
        return response(405, {"message": f"use {ALLOWED_METHOD}"}, allow=ALLOWED_METHOD)
    try:
        body = describe_document(
            request.document_key(service.place.bucket),
            store=service.store,
            s3=service.s3,
            place=service.place,
            link_expiry_s=service.link_expiry_s,
            offset=request.link_offset(),
        )
    except (BadRequest, KeyOutsidePrefix) as exc:
        return response(400, {"message": str(exc)})
    except DocumentNotFound as exc:
        return response(404, {"message": str(exc)})
    except OutputsUnavailable as exc:
        return response(409, {"message": str(exc)})
    return response(200, body)


def response(status: int, body: Mapping[str, Any], **headers: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {**_HEADERS, **headers},
        "body": json.dumps(body, ensure_ascii=False),
        "isBase64Encoded": False,
    }


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (Function URL, IAM auth)."""
    request_id = str(getattr(context, "aws_request_id", "") or "")
    request = StatusRequest.from_event(event)
    try:
        return answer(request, _service())
    except Exception:
        log.exception("status request failed", extra={"request_id": request_id})
        return response(500, {"message": "internal error", "request_id": request_id})


def _query(event: Mapping[str, Any]) -> dict[str, list[str]]:
    """The query's parameters and their values. The raw query string is read when there is
    one: ``queryStringParameters`` joins a repeated name's values with commas."""
    raw = event.get("rawQueryString")
    if raw is None:
        params = event.get("queryStringParameters") or {}
        return {str(name): [str(value)] for name, value in params.items()}
    return parse_qs(str(raw), keep_blank_values=True)


@functools.cache
def _service() -> StatusService:
    """Settings and clients, built on the first request and kept for the warm function."""
    import boto3
    from botocore.config import Config

    from handler.aws import client_config
    from handler.settings import Settings

    settings = Settings()
    session = boto3.Session(profile_name=settings.profile, region_name=settings.region)
    kwargs: dict[str, Any] = {"region_name": settings.region}
    if settings.endpoint_url:
        kwargs["endpoint_url"] = settings.endpoint_url
    # SigV4 named explicitly: left to itself botocore presigns with SigV2 in us-east-1,
    # which SSE-KMS objects refuse and which knows no 7-day limit.
    s3 = session.client(
        "s3", config=client_config().merge(Config(signature_version="s3v4")), **kwargs
    )
    dynamodb = session.client("dynamodb", config=client_config(), **kwargs)
    return StatusService(
        store=StatusStore(
            dynamodb,
            settings.table_name,
            lease_s=settings.lease_s,
            retention_days=settings.retention_days,
        ),
        s3=s3,
        place=Place(settings.bucket, settings.input_prefix, settings.output_prefix),
        # Not a Settings field yet: PAGEDROP_LINK_EXPIRY_S once settings.py has it.
        link_expiry_s=settings.link_expiry_s,
    )
