"""S3 reads and writes: exact-version downloads and output uploads."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from handler.aws import error_code
from handler.errors import PagedropError
from handler.events.model import ObjectRef

DOWNLOAD_CHUNK_BYTES = 1024 * 1024
GONE_CODES = frozenset(
    {"NoSuchKey", "NoSuchVersion", "404", "NotFound", "PreconditionFailed", "412"}
)


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

    def head(self, ref: ObjectRef) -> ObjectInfo:
        """The version the event names; :class:`ObjectChanged` if it is no longer there."""
        try:
            response = self._s3.head_object(Bucket=ref.bucket, Key=ref.key, **_version_args(ref))
        except ClientError as exc:
            if error_code(exc) in GONE_CODES:
                raise ObjectChanged(f"s3://{ref.bucket}/{ref.key} changed or was deleted") from exc
            raise
        return ObjectInfo(
            size=int(response.get("ContentLength", 0)),
            etag=str(response.get("ETag", "")).strip('"'),
            version_id=response.get("VersionId"),
            content_type=str(response.get("ContentType", "")),
            metadata={k.lower(): v for k, v in response.get("Metadata", {}).items()},
        )

    def download(self, ref: ObjectRef, destination: Path) -> int:
        """Stream the exact version to ``destination``; returns the byte count."""
        try:
            response = self._s3.get_object(Bucket=ref.bucket, Key=ref.key, **_version_args(ref))
        except ClientError as exc:
            if error_code(exc) in GONE_CODES:
                raise ObjectChanged(f"s3://{ref.bucket}/{ref.key} changed or was deleted") from exc
            raise
        body = response["Body"]
        with destination.open("wb") as out:
            shutil.copyfileobj(body, out, DOWNLOAD_CHUNK_BYTES)
        return destination.stat().st_size

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
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
            chunk = keys[start : start + 1000]
            self._s3.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True},
            )
