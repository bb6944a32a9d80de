"""One document's status with links to its outputs: what the status function answers.

The status item says where the document stands; for ``SUCCEEDED`` and ``PARTIAL`` the
manifest of the version the item names adds its timings and presigned links to every
output it lists (handler/outputs/links.py). A key without an item is ``QUEUED`` while its
object is in the bucket (uploaded, not picked up yet), as ``pagedrop status`` shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from handler.errors import PagedropError
from handler.outputs.links import check_expiry, published_outputs
from handler.status.model import Status
from handler.status.store import StatusStore
from handler.status.summary import item_summary
from handler.storage.keys import output_prefix_for

QUEUED = "QUEUED"
LINKS_PER_ANSWER = 500  # links per answer (each ~1-1.5 KB): far under the 6 MB response cap
WITH_OUTPUTS = frozenset({Status.SUCCEEDED, Status.PARTIAL})


class DocumentNotFound(PagedropError):
    """No status item and no such object under the input prefix."""


@dataclass(frozen=True, slots=True)
class Place:
    """Where documents and their outputs are (from settings)."""

    bucket: str
    input_prefix: str
    output_prefix: str


def describe_document(
    key: str,
    *,
    store: StatusStore,
    s3: Any,
    place: Place,
    link_expiry_s: int,
    offset: int = 0,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The status of ``s3://<bucket>/<key>`` as JSON values, with links to its outputs.

    Raises ``KeyOutsidePrefix`` for a key that is not a source document,
    :class:`DocumentNotFound` for one nobody uploaded, and ``OutputsUnavailable`` when a
    finished document's outputs are no longer those of the version its item names.
    """
    check_expiry(link_expiry_s)
    default_prefix = output_prefix_for(key, place.input_prefix, place.output_prefix)
    now = now or datetime.now(UTC)
    item = store.get(f"{place.bucket}/{key}")
    if item is None:
        if not _uploaded(s3, place.bucket, key):
            raise DocumentNotFound(f"s3://{place.bucket}/{key}: no such document")
        return {"bucket": place.bucket, "key": key, "status": QUEUED}
    answer = item_summary(item, now)
    answer.setdefault("bucket", place.bucket)
    answer.setdefault("key", key)
    if item.status not in WITH_OUTPUTS:
        return answer
    outputs = published_outputs(
        s3,
        place.bucket,
        str(item.raw.get("output_prefix") or default_prefix),
        version_id=str(item.raw.get("version_id") or "") or None,
        etag=str(item.raw.get("etag") or "") or None,
        expires_s=link_expiry_s,
        now=now,
        offset=offset,
        limit=LINKS_PER_ANSWER,
    )
    answer["timings"] = outputs.manifest.get("timings")
    answer["manifest"] = outputs.manifest_link.as_json()
    answer["outputs"] = [link.as_json() for link in outputs.links]
    answer["outputs_total"] = outputs.total
    answer["next_offset"] = outputs.next_offset
    answer["links_expire_at"] = outputs.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return answer


def _uploaded(s3: Any, bucket: str, key: str) -> bool:
    """Whether ``key`` is in the bucket. A listing rather than a HEAD: the function may list
    the input prefix but has no need to read the documents themselves."""
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    # The key itself sorts before every longer key that starts with it.
    return any(obj["Key"] == key for obj in listing.get("Contents", []))
