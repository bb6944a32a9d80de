"""A status item as people read it: the fields ``pagedrop status`` and the status function show.

Pure functions over a stored item. The item's bookkeeping (lease token, revision, TTL) stays
out: it means nothing to a reader and must not leave the table.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from handler.status.model import FINAL_STATUSES, StatusItem

# What a reader may see of an item, in this order.
PUBLIC_FIELDS = (
    "bucket",
    "key",
    "status",
    "pages_done",
    "pages_total",
    "engine",
    "attempt",
    "version_id",
    "etag",
    "size",
    "received_at",
    "started_at",
    "finished_at",
    "updated_at",
    "output_prefix",
    "error",
)


def plain(value: Any) -> Any:
    """DynamoDB's Decimals and sets as JSON numbers and lists."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [plain(v) for v in value]
    return value


def parse_time(value: object) -> datetime | None:
    """An item's ISO-8601 UTC stamp (``…Z``), or None when absent or unreadable."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def duration_s(raw: dict[str, Any], now: datetime) -> float | None:
    """Started to finished, or to ``now`` while it runs; None when it never started here
    (e.g. marked FAILED/exhausted by the DLQ function)."""
    started = parse_time(raw.get("started_at"))
    if started is None:
        return None
    finished = parse_time(raw.get("finished_at"))
    if finished is None and raw.get("status") in FINAL_STATUSES:
        return None
    return ((finished or now) - started).total_seconds()


def item_summary(item: StatusItem, now: datetime) -> dict[str, Any]:
    """The item's public fields as JSON values, with ``engines`` and ``duration_s``."""
    raw = item.raw
    summary: dict[str, Any] = {
        name: plain(raw[name]) for name in PUBLIC_FIELDS if raw.get(name) not in (None, "")
    }
    if summary.get("size", 0) < 0:
        del summary["size"]  # the worker stores -1 for a size the event did not give
    summary["engines"] = summary.pop("engine", [])
    summary["error"] = plain(raw.get("error")) or None
    seconds = duration_s(raw, now)
    summary["duration_s"] = round(seconds, 3) if seconds is not None else None
    return summary
