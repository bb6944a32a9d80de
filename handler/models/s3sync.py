"""Model folders from S3: ``PAGEDROP_MODEL_S3_URI`` synced into the model folder at start-up.

A fleet can take its weights from a bucket instead of baking them into the image. The prefix
mirrors the model folder (``s3://bucket/models/paddleocr-vl/config.json`` becomes
``<model_dir>/paddleocr-vl/config.json``); fill it with ``aws s3 sync MODEL_DIR s3://...``.

Only what changed is fetched: a file is skipped when its size matches and either the ETag
recorded when it was last fetched (``.pagedrop-s3sync.json`` in the model folder) matches
the object's, or, with no record, its modification time is the object's (a fetched file
gets the object's LastModified as its mtime). Each file is written to a temporary name
beside it and renamed into place, so an interrupted sync never leaves a truncated file
under the real name. Local files that are not in S3 are left alone.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from handler.aws import error_code
from handler.errors import EngineUnavailable

if TYPE_CHECKING:
    from handler.settings import Settings

log = logging.getLogger(__name__)

RECORD = ".pagedrop-s3sync.json"  # relative path -> ETag of the object it was fetched from
S3_SCHEME = "s3://"


@dataclass(frozen=True, slots=True)
class RemoteFile:
    key: str
    relative: str  # path under the prefix, '/'-separated
    size: int
    etag: str
    modified: datetime


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix/")`` (the prefix ends with
    '/' unless empty); anything else is ``EngineUnavailable``."""
    if not uri.startswith(S3_SCHEME) or not uri[len(S3_SCHEME) :].split("/", 1)[0]:
        raise EngineUnavailable(
            f"PAGEDROP_MODEL_S3_URI must look like s3://bucket/prefix/, not {uri!r}"
        )
    bucket, _, prefix = uri[len(S3_SCHEME) :].partition("/")
    prefix = prefix.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


def sync_from_s3(s3: Any, uri: str, model_dir: Path) -> int:
    """Bring ``model_dir`` up to date with the objects under ``uri``; the number of files
    fetched. ``EngineUnavailable`` (one sentence) when the prefix cannot be read or is empty."""
    bucket, prefix = parse_s3_uri(uri)
    try:
        remote = _listing(s3, bucket, prefix)
        if not remote:
            raise EngineUnavailable(
                f"{uri} holds no model files: upload the model folders there "
                f"(aws s3 sync MODEL_DIR {uri})"
            )
        model_dir.mkdir(parents=True, exist_ok=True)
        record = _read_record(model_dir)
        known = dict(record)
        fetched = 0
        for item in remote:
            target = model_dir.joinpath(*PurePosixPath(item.relative).parts)
            if _up_to_date(target, item, record.get(item.relative)):
                record[item.relative] = item.etag  # matched by time: compare ETags next time
                continue
            _fetch(s3, bucket, item, target)
            record[item.relative] = item.etag
            _write_record(model_dir, record)  # after each file: a crash keeps what was done
            fetched += 1
        if record != known:
            _write_record(model_dir, record)
    except (ClientError, BotoCoreError) as exc:
        code = error_code(exc) or type(exc).__name__
        raise EngineUnavailable(f"cannot sync the models from {uri}: {code}: {exc}") from exc
    log.info(
        "models synced from %s: %d file(s) fetched, %d up to date",
        uri,
        fetched,
        len(remote) - fetched,
    )
    return fetched


def sync_models_at_start(settings: Settings, s3: Any) -> int:
    """What the worker runs before it builds its engines: the sync, when
    ``PAGEDROP_MODEL_S3_URI`` is set (0 files otherwise)."""
    if not settings.model_s3_uri:
        return 0
    return sync_from_s3(s3, settings.model_s3_uri, settings.model_dir)


def _listing(s3: Any, bucket: str, prefix: str) -> list[RemoteFile]:
    files = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            relative = obj["Key"][len(prefix) :]
            if not relative or relative.endswith("/"):
                continue  # the prefix itself, or a "folder" marker
            if not _safe(relative):
                log.warning("skipped %s: not a plain path under the prefix", obj["Key"])
                continue
            files.append(
                RemoteFile(
                    key=obj["Key"],
                    relative=relative,
                    size=int(obj["Size"]),
                    etag=str(obj["ETag"]).strip('"'),
                    modified=obj["LastModified"],
                )
            )
    return files


def _safe(relative: str) -> bool:
    """A relative path that stays under the model folder (no '..', no absolute path) and
    does not overwrite the sync's own record."""
    parts = PurePosixPath(relative).parts
    return (
        bool(parts)
        and not relative.startswith("/")
        and all(part not in ("", ".", "..") for part in parts)
        and relative != RECORD
    )


def _up_to_date(target: Path, item: RemoteFile, recorded_etag: str | None) -> bool:
    try:
        stat = target.stat()
    except FileNotFoundError:
        return False
    if stat.st_size != item.size:
        return False
    if recorded_etag is not None:
        return recorded_etag == item.etag
    return int(stat.st_mtime) == int(item.modified.timestamp())


def _fetch(s3: Any, bucket: str, item: RemoteFile, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        s3.download_file(bucket, item.key, str(part))
        stamp = item.modified.timestamp()
        os.utime(part, (stamp, stamp))
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    log.debug("fetched s3://%s/%s (%d bytes)", bucket, item.key, item.size)


def _read_record(model_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((model_dir / RECORD).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_record(model_dir: Path, record: dict[str, str]) -> None:
    path = model_dir / RECORD
    part = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    part.write_text(json.dumps(record, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(part, path)
