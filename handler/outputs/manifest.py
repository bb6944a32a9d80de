"""``manifest.json``: the completion signal downstream reads (DESIGN §2).

The writer adds the list of outputs (key, bytes, sha256) when it writes the manifest last.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from handler import __version__
from handler.events.model import ObjectRef
from handler.outputs.writer import PageOutput
from handler.status.model import Status


@dataclass(frozen=True, slots=True)
class Timings:
    download_s: float
    convert_s: float
    total_s: float


def engines_used(pages: Iterable[PageOutput]) -> list[str]:
    return sorted({p.engine for p in pages if p.engine})


def build_manifest(
    ref: ObjectRef,
    *,
    content_type: str,
    status: Status,
    pages: list[PageOutput],
    document_pages: int,
    timings: Timings,
    attempt: int,
) -> dict[str, Any]:
    """Everything about one finished conversion except the output list."""
    return {
        "source": {
            "bucket": ref.bucket,
            "key": ref.key,
            "version_id": ref.version_id,
            "etag": ref.etag,
            "size": ref.size,
            "content_type": content_type,
        },
        "status": status.value,
        "page_count": len(pages),
        "document_pages": document_pages,
        "pages": [_page_entry(p) for p in pages],
        "engines": engines_used(pages),
        "timings": {
            "download_s": round(timings.download_s, 3),
            "convert_s": round(timings.convert_s, 3),
            "total_s": round(timings.total_s, 3),
        },
        "attempt": attempt,
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "pagedrop_version": __version__,
    }


def _page_entry(page: PageOutput) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "page": page.page_number,
        "engine": page.engine,
        "seconds": round(page.seconds, 3),
        "status": "failed" if page.error else "ok",
    }
    if page.error:
        entry["error"] = page.error
    if page.resumed:
        entry["resumed"] = True
    return entry
