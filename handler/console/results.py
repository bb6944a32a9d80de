"""``pagedrop results``: a finished document's outputs, downloaded and checked.

Only a document whose status item says it finished with outputs (``SUCCEEDED`` or
``PARTIAL``) is downloaded. Each file listed in ``manifest.json`` is checked against the
manifest's sha256, so a download that raced a newer version's conversion is caught.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from handler.aws import error_code
from handler.console.errors import ConsoleError
from handler.console.tables import format_bytes, format_duration, render_table
from handler.settings import Settings
from handler.status.model import Status
from handler.status.store import StatusStore
from handler.storage.keys import KeyOutsidePrefix, output_prefix_for, safe_relative_path

MANIFEST = "manifest.json"
ONLY = {"md": "document.md", "json": "elements.json", "manifest": MANIFEST}
HASH_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Written:
    path: Path
    size: int


@dataclass(frozen=True, slots=True)
class Results:
    key: str
    manifest: dict[str, Any]
    folder: Path
    written: list[Written]


def download_results(
    s3: Any, store: StatusStore, settings: Settings, key: str, out: Path, only: set[str]
) -> Results:
    """Download the outputs of ``key`` (all of them, or the ``only`` ones) under ``out``."""
    uri = f"s3://{settings.bucket}/{key}"
    _check_finished(s3, store, settings, key, uri)
    try:
        prefix = output_prefix_for(key, settings.input_prefix, settings.output_prefix)
    except KeyOutsidePrefix as exc:
        raise ConsoleError(f"{key} is not a source document: {exc}.") from None
    manifest = _manifest(s3, settings.bucket, prefix, uri)
    names = _listing(s3, settings.bucket, prefix)
    if only:
        wanted = {ONLY[choice] for choice in only}
        if missing := wanted - set(names):
            raise ConsoleError(
                f"{uri} has no {' or '.join(sorted(missing))} under s3://{settings.bucket}/{prefix}."
            )
        names = [name for name in names if name in wanted]
    folder = out / safe_relative_path(prefix[len(settings.output_prefix) :])
    expected = {
        str(entry["key"])[len(prefix) :]: str(entry.get("sha256", ""))
        for entry in manifest.get("outputs", [])
        if str(entry.get("key", "")).startswith(prefix)
    }
    written = []
    for name in names:
        path = folder / safe_relative_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(settings.bucket, prefix + name, str(path))
        if expected.get(name) and _sha256(path) != expected[name]:
            raise ConsoleError(
                f"s3://{settings.bucket}/{prefix}{name} does not match its manifest: the "
                "document is being converted again; try once it has finished."
            )
        written.append(Written(path, path.stat().st_size))
    return Results(key, manifest, folder, written)


def results_report(results: Results) -> str:
    """The manifest's summary and the files written."""
    manifest = results.manifest
    pages = manifest.get("pages", [])
    failed = [str(p.get("page")) for p in pages if p.get("status") == "failed"]
    converted, total = manifest.get("page_count", len(pages)), manifest.get("document_pages")
    if total and total != converted:
        counted = f"{converted} of {total} pages"  # a page selection
    else:
        counted = f"{converted} page{'' if converted == 1 else 's'}"
    engines = ",".join(manifest.get("engines", [])) or "-"
    seconds = (manifest.get("timings") or {}).get("total_s")
    lines = [
        f"{results.key}: {manifest.get('status')}, {counted}, engines {engines}, "
        f"{format_duration(seconds)} in the worker"
    ]
    if failed:
        lines.append(f"pages that failed: {', '.join(failed)}")
    lines.append(f"wrote {len(results.written)} file(s) to {results.folder}:")
    rows = [
        (f"  {w.path.relative_to(results.folder)}", format_bytes(w.size)) for w in results.written
    ]
    if rows:
        lines.append(render_table(rows))
    return "\n".join(lines)


def _check_finished(s3: Any, store: StatusStore, settings: Settings, key: str, uri: str) -> None:
    item = store.get(f"{settings.bucket}/{key}")
    if item is None:
        s3.head_bucket(Bucket=settings.bucket)  # a wrong bucket is said as such
        raise ConsoleError(
            f"{uri} has no status: it was never submitted, or no worker has picked it up yet."
        )
    raw = item.raw
    if item.status == Status.PROCESSING:
        raise ConsoleError(
            f"{uri} is not finished: it is PROCESSING ({raw.get('pages_done', 0)}/"
            f"{raw.get('pages_total', 0)} pages); `pagedrop status --follow {key}` waits for it."
        )
    if item.status == Status.FAILED:
        error = raw.get("error") or {}
        raise ConsoleError(
            f"{uri} FAILED ({error.get('category')}: {str(error.get('message')).rstrip('.')}), "
            "so it has no outputs."
        )


def _manifest(s3: Any, bucket: str, prefix: str, uri: str) -> dict[str, Any]:
    try:
        body = s3.get_object(Bucket=bucket, Key=prefix + MANIFEST)["Body"].read()
    except ClientError as exc:
        if error_code(exc) not in ("NoSuchKey", "404"):
            raise
        raise ConsoleError(
            f"{uri} is finished but s3://{bucket}/{prefix}{MANIFEST} is missing: is "
            "PAGEDROP_OUTPUT_PREFIX the workers' output prefix?"
        ) from None
    manifest: dict[str, Any] = json.loads(body)
    return manifest


def _listing(s3: Any, bucket: str, prefix: str) -> list[str]:
    """Every key under ``prefix``, relative to it."""
    names = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        names += [obj["Key"][len(prefix) :] for obj in page.get("Contents", [])]
    return sorted(names)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
