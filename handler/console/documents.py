"""What ``pagedrop status`` shows about documents, and how it finds them.

A document is a source key. Its view comes from its status item; a key with no item yet is
``QUEUED`` when the object is in the bucket (uploaded, its event not processed yet) and
``NOT FOUND`` when it is not.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from handler.aws import error_code
from handler.console.errors import ConsoleError
from handler.console.tables import format_duration, render_table
from handler.status.model import FINAL_STATUSES, Status, StatusItem
from handler.status.store import StatusStore
from handler.status.summary import duration_s, plain

QUEUED = "QUEUED"
NOT_FOUND = "NOT FOUND"
HEADER = ("key", "status", "pages", "engines", "duration", "error")
BATCH_GET_MAX = 100  # BatchGetItem reads at most 100 keys a call (DynamoDB quota)
UNPROCESSED_RETRIES = 5  # BatchGetItem may hand back keys it had no capacity for
UNPROCESSED_BACKOFF_S = 0.2
_MISSING_CODES = frozenset({"404", "NotFound", "NoSuchKey"})
_deserializer = TypeDeserializer()


@dataclass(frozen=True, slots=True)
class DocumentView:
    """One row of the status table."""

    key: str
    status: str  # a Status value, QUEUED or NOT_FOUND
    item: StatusItem | None = None

    @property
    def raw(self) -> dict[str, Any]:
        return self.item.raw if self.item else {}

    @property
    def final(self) -> bool:
        """Nothing more will happen to it without a new upload (or it does not exist)."""
        return self.status in FINAL_STATUSES or self.status == NOT_FOUND

    @property
    def pages(self) -> str:
        if self.item is None:
            return "-"
        return f"{self.raw.get('pages_done', 0)}/{self.raw.get('pages_total', 0)}"

    @property
    def engines(self) -> str:
        return ",".join(self.raw.get("engine") or []) or "-"

    @property
    def error(self) -> str:
        if self.status == QUEUED:
            return "waiting for a worker"
        if self.status == NOT_FOUND:
            return "no such object and no status"
        error = self.raw.get("error") or {}
        return f"{error.get('category')}: {error.get('message')}" if error else ""

    def duration_s(self, now: datetime) -> float | None:
        """Started to finished, or to ``now`` while it runs."""
        return duration_s(self.raw, now)

    def row(self, now: datetime) -> tuple[str, ...]:
        duration = format_duration(self.duration_s(now))
        return (self.key, self.status, self.pages, self.engines, duration, self.error)

    def change_token(self) -> tuple[str, ...]:
        """What a change of is worth printing again (not the ticking duration)."""
        return (self.status, self.pages, self.engines, self.error)

    def as_json(self) -> dict[str, Any]:
        if self.item is None:
            return {"key": self.key, "status": self.status}
        return plain(self.raw)


def status_table(views: Sequence[DocumentView], now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return render_table([HEADER, *(view.row(now) for view in views)])


def summary_line(views: Sequence[DocumentView]) -> str:
    """``3 documents: 2 SUCCEEDED, 1 PROCESSING``."""
    counts = Counter(view.status for view in views)
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    noun = "document" if len(views) == 1 else "documents"
    return f"{len(views)} {noun}: {parts}" if views else "no documents"


@dataclass(frozen=True, slots=True)
class SourceVersion:
    """The version of a source object that was just uploaded."""

    version_id: str | None
    etag: str

    def described_by(self, item: StatusItem) -> bool:
        """Whether ``item`` is about this version (and not an older upload of the key)."""
        stored_id = str(item.raw.get("version_id") or "")
        if self.version_id and stored_id:
            return stored_id == self.version_id
        return str(item.raw.get("etag") or "").strip('"') == self.etag


class DocumentLookup:
    """Reads status items (and, for keys without one, whether the object exists)."""

    def __init__(self, store: StatusStore, dynamodb: Any, s3: Any, table_name: str, bucket: str):
        self._store = store
        self._ddb = dynamodb
        self._s3 = s3
        self._table = table_name
        self._bucket = bucket
        self._uploaded: set[str] = set()  # keys seen in the bucket: no need to HEAD again
        self._bucket_checked = False

    def views(
        self, keys: Sequence[str], versions: Mapping[str, SourceVersion] | None = None
    ) -> list[DocumentView]:
        """The documents of ``keys``, in that order. A key with a version in ``versions``
        is QUEUED until its item is about that version: an older upload's final status
        says nothing about the new one."""
        items = self._get_many([f"{self._bucket}/{key}" for key in keys])
        views = []
        for key in keys:
            item = items.get(f"{self._bucket}/{key}")
            version = (versions or {}).get(key)
            if item is not None and version is not None and not version.described_by(item):
                item = None
            views.append(self._view(key, item))
        return views

    def by_status(self, status: Status, limit: int) -> list[DocumentView]:
        """Documents in ``status``, most recently updated first (the ``by-status`` index)."""
        return [_from_item(item) for item in self._store.list_by_status(status, limit=limit)]

    def by_prefix(self, prefix: str, limit: int) -> list[DocumentView]:
        """Documents whose key starts with ``prefix``, by key.

        The table's only key is ``pk``, so this is a Scan filtered on ``begins_with(pk)``:
        it reads (and is billed for) the whole table, however few items match.
        """
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "begins_with(pk, :prefix)",
            "ExpressionAttributeValues": {":prefix": {"S": f"{self._bucket}/{prefix}"}},
        }
        found: list[DocumentView] = []
        while len(found) < limit:
            response = self._ddb.scan(**kwargs)
            found += [_from_item(StatusItem(_from_ddb(raw))) for raw in response.get("Items", [])]
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        if not found:
            self._s3.head_bucket(Bucket=self._bucket)  # "no documents" only for a real bucket
        return sorted(found, key=lambda view: view.key)[:limit]

    def _view(self, key: str, item: StatusItem | None) -> DocumentView:
        if item is not None:
            return _from_item(item, key)
        return DocumentView(key, QUEUED if self._exists(key) else NOT_FOUND)

    def _exists(self, key: str) -> bool:
        if key in self._uploaded:
            return True
        try:
            self._s3.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) not in _MISSING_CODES:
                raise
            if not self._bucket_checked:
                # A HEAD's 404 does not say whether the key or the bucket is missing.
                self._s3.head_bucket(Bucket=self._bucket)
                self._bucket_checked = True
            return False
        self._uploaded.add(key)
        return True

    def _get_many(self, pks: Iterable[str]) -> dict[str, StatusItem]:
        unique = list(dict.fromkeys(pks))  # BatchGetItem refuses a key named twice
        found: dict[str, StatusItem] = {}
        for start in range(0, len(unique), BATCH_GET_MAX):
            chunk = unique[start : start + BATCH_GET_MAX]
            request: dict[str, Any] = {
                self._table: {"Keys": [{"pk": {"S": pk}} for pk in chunk], "ConsistentRead": True}
            }
            for attempt in range(UNPROCESSED_RETRIES + 1):
                response = self._ddb.batch_get_item(RequestItems=request)
                for raw in response.get("Responses", {}).get(self._table, []):
                    item = StatusItem(_from_ddb(raw))
                    found[str(item.raw["pk"])] = item
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(UNPROCESSED_BACKOFF_S * 2**attempt)
            if request:
                raise ConsoleError(
                    f"DynamoDB kept some of {len(chunk)} status reads unprocessed (throttled): "
                    "try again in a while."
                )
        return found


def _from_item(item: StatusItem, key: str | None = None) -> DocumentView:
    raw = item.raw
    return DocumentView(key or str(raw.get("key") or raw["pk"]), str(raw.get("status")), item)


def _from_ddb(raw: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in raw.items()}
