"""Presigned links to one conversion's outputs, pinned to the objects its manifest lists.

The status item names a source version; its outputs are the ones whose ``manifest.json``
describes that version. On a versioned bucket each link carries the ``versionId`` of the
object the manifest listed, so a newer upload converted while the link is out does not change
what it returns. On an unversioned bucket only the current objects exist: the links are plain,
and a manifest about another version means the outputs asked for are gone.

Which version of an output the manifest listed: the newest one written no later than the
manifest (written last, DESIGN §2) with the listed size. S3 stamps objects to the second, so
a newer conversion writing the same key within the second its predecessor's manifest was
written could be taken for it; that conversion would already have claimed the document,
and its status item, read first, would not ask for these links.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from handler.aws import error_code
from handler.errors import PagedropError

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MAX_EXPIRY_S = 7 * 24 * 3600  # a SigV4 presigned URL lives at most 7 days
MANIFESTS_READ_MAX = 5  # older manifests read when looking for the version asked for
NULL_VERSION = "null"  # S3's version id of objects written while versioning was off
_GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})


class OutputsUnavailable(PagedropError):
    """The outputs of the version asked for are not, or no longer, all in the bucket."""


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    """One stored version of a key, as ListObjectVersions reports it."""

    version_id: str
    last_modified: datetime
    size: int


@dataclass(frozen=True, slots=True)
class OutputLink:
    key: str
    name: str  # relative to the output prefix: document.md, pages/0001.json
    size: int
    sha256: str
    version_id: str | None
    url: str

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "key": self.key,
            "bytes": self.size,
            "sha256": self.sha256,
            "version_id": self.version_id,
            "url": self.url,
        }


@dataclass(frozen=True, slots=True)
class PublishedOutputs:
    """A finished conversion's manifest and links to (a page of) its outputs."""

    manifest: dict[str, Any]
    manifest_link: OutputLink
    links: list[OutputLink]
    total: int  # outputs the manifest lists
    offset: int
    expires_at: datetime

    @property
    def next_offset(self) -> int | None:
        end = self.offset + len(self.links)
        return end if end < self.total else None


def check_expiry(expires_s: int) -> int:
    """A link lifetime S3 accepts (1 s to 7 days), or ValueError."""
    if not 1 <= expires_s <= MAX_EXPIRY_S:
        raise ValueError(f"link expiry must be 1 to {MAX_EXPIRY_S} seconds, not {expires_s}")
    return expires_s


def describes(source: Mapping[str, Any], version_id: str | None, etag: str | None) -> bool:
    """Whether a manifest's ``source`` is the version named by ``version_id`` / ``etag``."""
    theirs = str(source.get("version_id") or "")
    if version_id and theirs:
        return theirs == version_id
    return bool(etag) and str(source.get("etag") or "").strip('"') == str(etag).strip('"')


def published_outputs(
    s3: Any,
    bucket: str,
    prefix: str,
    *,
    version_id: str | None,
    etag: str | None,
    expires_s: int,
    now: datetime,
    offset: int = 0,
    limit: int = 500,
) -> PublishedOutputs:
    """The manifest under ``prefix`` that describes the source version, and links to
    outputs ``offset`` to ``offset + limit`` of the ones it lists (in its order).

    Raises :class:`OutputsUnavailable` when no manifest describes that version or an output
    it lists is gone.
    """
    check_expiry(expires_s)
    versions = _versions_under(s3, bucket, prefix)
    manifest_key = prefix + MANIFEST_NAME
    manifest, manifest_version = _manifest_of(
        s3, bucket, manifest_key, versions.get(manifest_key, []), version_id, etag
    )
    listed = [entry for entry in manifest.get("outputs", []) if _inside(entry, prefix)]
    window = listed[offset : offset + limit]
    links = [
        _link(
            s3, bucket, prefix, entry, _listed_version(versions, entry, manifest_version), expires_s
        )
        for entry in window
    ]
    manifest_link = _link(
        s3,
        bucket,
        prefix,
        {"key": manifest_key, "bytes": manifest_version.size, "sha256": ""},
        manifest_version,
        expires_s,
    )
    return PublishedOutputs(
        manifest=manifest,
        manifest_link=manifest_link,
        links=links,
        total=len(listed),
        offset=offset,
        expires_at=now + timedelta(seconds=expires_s),
    )


def _versions_under(s3: Any, bucket: str, prefix: str) -> dict[str, list[ObjectVersion]]:
    """Every stored version of every key under ``prefix``, newest first per key."""
    found: dict[str, list[ObjectVersion]] = {}
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            found.setdefault(version["Key"], []).append(
                ObjectVersion(
                    version_id=str(version.get("VersionId") or NULL_VERSION),
                    last_modified=version["LastModified"],
                    size=int(version.get("Size", 0)),
                )
            )
    for history in found.values():
        # S3 lists a key's versions newest first; sorting keeps that order among equal stamps.
        history.sort(key=lambda v: v.last_modified, reverse=True)
    return found


def _manifest_of(
    s3: Any,
    bucket: str,
    key: str,
    history: list[ObjectVersion],
    version_id: str | None,
    etag: str | None,
) -> tuple[dict[str, Any], ObjectVersion]:
    for stored in history[:MANIFESTS_READ_MAX]:
        manifest = _read_json(s3, bucket, key, stored)
        if manifest is not None and describes(manifest.get("source") or {}, version_id, etag):
            return manifest, stored
    raise OutputsUnavailable(
        f"no manifest under s3://{bucket}/{key} describes this version of the source: its "
        "outputs were replaced or removed"
    )


def _read_json(s3: Any, bucket: str, key: str, stored: ObjectVersion) -> dict[str, Any] | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=key, **_version_arg(stored))["Body"].read()
    except ClientError as exc:
        if error_code(exc) in _GONE_CODES:
            return None
        raise
    try:
        manifest = json.loads(body)
    except ValueError:
        log.warning("s3://%s/%s (version %s) is not JSON", bucket, key, stored.version_id)
        return None
    return manifest if isinstance(manifest, dict) else None


def _inside(entry: Any, prefix: str) -> bool:
    """Only keys under the output prefix are signed, whatever a manifest says."""
    if isinstance(entry, dict) and str(entry.get("key", "")).startswith(prefix):
        return True
    log.warning("manifest entry outside %s ignored: %r", prefix, entry)
    return False


def _listed_version(
    versions: Mapping[str, list[ObjectVersion]], entry: Mapping[str, Any], manifest: ObjectVersion
) -> ObjectVersion:
    key, size = str(entry["key"]), int(entry.get("bytes", -1))
    for stored in versions.get(key, []):
        if stored.last_modified <= manifest.last_modified and stored.size == size:
            return stored
    raise OutputsUnavailable(f"{key}, listed in the manifest, is no longer in the bucket")


def _link(
    s3: Any,
    bucket: str,
    prefix: str,
    entry: Mapping[str, Any],
    stored: ObjectVersion,
    expires_s: int,
) -> OutputLink:
    key = str(entry["key"])
    params = {"Bucket": bucket, "Key": key, **_version_arg(stored)}
    url = s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s)
    pinned = stored.version_id if stored.version_id != NULL_VERSION else None
    return OutputLink(
        key=key,
        name=key[len(prefix) :],
        size=stored.size,
        sha256=str(entry.get("sha256", "")),
        version_id=pinned,
        url=url,
    )


def _version_arg(stored: ObjectVersion) -> dict[str, str]:
    return {"VersionId": stored.version_id} if stored.version_id != NULL_VERSION else {}
