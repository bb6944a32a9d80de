"""S3 reads and writes: exact-version downloads and output uploads."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from urllib3.exceptions import ProtocolError

from handler.aws import error_code
from handler.errors import PagedropError, TransientError
from handler.events.model import ObjectRef

DOWNLOAD_CHUNK_BYTES = 1024 * 1024
DOWNLOAD_ATTEMPTS = 4  # a dropped body is resumed this many times at most
DOWNLOAD_BACKOFF_S = 0.5  # then 1 s, 2 s
# What a body read raises when the connection drops or stalls mid-download.
_STREAM_ERRORS = (
    ResponseStreamingError,
    IncompleteReadError,
    ReadTimeoutError,
    ConnectionClosedError,
    ProtocolError,
    ConnectionError,
)
GONE_CODES = frozenset(
    {"NoSuchKey", "NoSuchVersion", "404", "NotFound", "PreconditionFailed", "412"}
)


FENCED_PUT_ATTEMPTS = 3
# A conditional write that lost: PreconditionFailed, or 409 when two writes race.
CONFLICT_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})
DELETE_BATCH_MAX = 1000  # DeleteObjects takes at most 1,000 keys
# Characters XML 1.0 cannot carry: a key holding one cannot go in DeleteObjects' XML body.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class ObjectChanged(PagedropError):
    """The version an event names is gone: overwritten or deleted since the event."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a HEAD says about the object's current (or named) version."""

    size: int
    etag: str
    version_id: str | None
    content_type: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredObject:
    """An output as written: its key, byte size and sha256 (what the manifest lists)."""

    key: str
    size: int
    sha256: str

    @classmethod
    def of(cls, key: str, data: bytes) -> StoredObject:
        return cls(key=key, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def _version_args(ref: ObjectRef) -> dict[str, str]:
    """Pin a read to the event's version: VersionId if known, else If-Match on the ETag."""
    if ref.version_id:
        return {"VersionId": ref.version_id}
    if ref.etag:
        return {"IfMatch": f'"{ref.etag}"'}
    return {}


class ObjectStore:
    """One bucket's objects."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    def head_current(self, ref: ObjectRef) -> ObjectInfo:
        """The key's current version; :class:`ObjectChanged` if the event names another
        (an overwritten or deleted object: its event is stale)."""
        info = self._head(ref.bucket, ref.key)
        if (ref.version_id and info.version_id != ref.version_id) or (
            ref.etag and info.etag != ref.etag
        ):
            raise ObjectChanged(f"s3://{ref.bucket}/{ref.key} has a newer version")
        return info

    def _head(self, bucket: str, key: str) -> ObjectInfo:
        try:
            response = self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in GONE_CODES:
                raise ObjectChanged(f"s3://{bucket}/{key} was deleted") from exc
            raise
        return ObjectInfo(
            size=int(response.get("ContentLength", 0)),
            etag=str(response.get("ETag", "")).strip('"'),
            # "null" is S3's version id of every write to an unversioned or suspended bucket.
            version_id=response.get("VersionId") if response.get("VersionId") != "null" else None,
            content_type=str(response.get("ContentType", "")),
            metadata={k.lower(): v for k, v in response.get("Metadata", {}).items()},
        )

    def download(self, ref: ObjectRef, destination: Path) -> int:
        """Stream the exact version to ``destination``; returns the byte count.

        A connection that drops mid-body is resumed where it stopped (a ranged GET pinned
        to the same version), at most ``DOWNLOAD_ATTEMPTS`` times with a growing pause;
        then the fault is raised as transient.
        """
        written = 0
        with destination.open("wb") as out:
            for attempt in range(DOWNLOAD_ATTEMPTS):
                try:
                    self._copy_from(ref, out, written)
                    break
                except _STREAM_ERRORS as exc:
                    out.flush()
                    written = out.tell()
                    if attempt + 1 == DOWNLOAD_ATTEMPTS:
                        raise TransientError(
                            f"download of s3://{ref.bucket}/{ref.key} kept failing: {exc}"
                        ) from exc
                    time.sleep(DOWNLOAD_BACKOFF_S * 2**attempt)
        # Measured once the file is closed: until then its last bytes may still be buffered.
        return destination.stat().st_size

    def _copy_from(self, ref: ObjectRef, out: BinaryIO, offset: int) -> None:
        args = _version_args(ref)
        if offset:
            args["Range"] = f"bytes={offset}-"
        try:
            response = self._s3.get_object(Bucket=ref.bucket, Key=ref.key, **args)
        except ClientError as exc:
            if error_code(exc) in GONE_CODES:
                raise ObjectChanged(f"s3://{ref.bucket}/{ref.key} changed or was deleted") from exc
            raise
        if offset and not str(response.get("ContentRange", "")).startswith(f"bytes {offset}-"):
            # The range was not honoured (a proxy or an S3-compatible store may ignore it):
            # the body is the whole version, so the file starts over rather than grow a copy.
            out.seek(0)
            out.truncate()
        expected = int(response.get("ContentLength", -1))
        copied = 0
        for chunk in response["Body"].iter_chunks(DOWNLOAD_CHUNK_BYTES):
            out.write(chunk)
            copied += len(chunk)
        if 0 <= expected != copied:
            raise IncompleteReadError(actual_bytes=copied, expected_bytes=expected)

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str,
        metadata: dict[str, str] | None = None,
    ) -> StoredObject:
        self._s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            Metadata=metadata or {},
        )
        return StoredObject.of(key, data)

    def put_fenced(
        self,
        key: str,
        data: bytes,
        content_type: str,
        fence: Callable[[], None],
    ) -> StoredObject:
        """Write only while ``fence`` passes, and only over what was there when it passed.

        Read the object's ETag, run the fence (it raises when this worker lost its lease),
        then write conditionally on that ETag (or on there being no object). A worker
        that passed its fence and then stalled finds the object changed under it (412),
        checks its fence again and stops; the owner of the lease always wins.
        """
        for _ in range(FENCED_PUT_ATTEMPTS):
            current = self._etag(key)
            fence()
            condition = {"IfMatch": current} if current else {"IfNoneMatch": "*"}
            try:
                self._s3.put_object(
                    Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **condition
                )
            except ClientError as exc:
                if error_code(exc) in CONFLICT_CODES:
                    continue  # written by someone else since the read: judge again
                raise
            return StoredObject.of(key, data)
        raise TransientError(f"s3://{self.bucket}/{key} kept changing while it was written")

    def _etag(self, key: str) -> str | None:
        try:
            return str(self._s3.head_object(Bucket=self.bucket, Key=key)["ETag"])
        except ClientError as exc:
            if error_code(exc) in GONE_CODES:
                return None
            raise

    def get(self, key: str) -> tuple[bytes, dict[str, str]] | None:
        """An object's bytes and user metadata, or None when there is no such key."""
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in GONE_CODES:
                return None
            raise
        metadata = {k.lower(): v for k, v in response.get("Metadata", {}).items()}
        return response["Body"].read(), metadata

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def delete_keys(self, keys: list[str]) -> None:
        """Delete keys in batches; keys XML cannot carry are deleted one by one (in the URL)."""
        batchable = [k for k in keys if not _NOT_XML.search(k)]
        for key in keys:
            if _NOT_XML.search(key):
                self._s3.delete_object(Bucket=self.bucket, Key=key)
        for start in range(0, len(batchable), DELETE_BATCH_MAX):
            chunk = batchable[start : start + DELETE_BATCH_MAX]
            response = self._s3.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True},
            )
            errors = response.get("Errors", [])
            if errors:  # the call succeeds as a whole while keys fail one by one
                raise TransientError(
                    f"{len(errors)} of {len(chunk)} deletes failed: "
                    f"{errors[0].get('Code', '?')} {errors[0].get('Message', '')}".strip()
                )
