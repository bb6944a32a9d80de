"""The soak test's end-state checks: the table, the output prefix and the queues agree.

Each check is a :class:`Check` (name, passed, a one-line detail). The audit of the outputs
reads every manifest, HEADs every source and GETs every output it lists, comparing sizes
and sha256.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from handler.status.model import Status

MANIFEST_NAME = "manifest.json"
QUEUE_COUNTS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)
SHOWN_PROBLEMS = 3  # examples quoted in a failed check's detail

_deserializer = TypeDeserializer()


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class ExpectedDocument:
    """What the soak uploaded: the source key, its output prefix and its page count."""

    key: str
    output_prefix: str
    pages: int


def scan_table(dynamodb: Any, table: str) -> dict[str, dict[str, Any]]:
    """Every status item, by ``pk`` (a consistent scan, all pages)."""
    items: dict[str, dict[str, Any]] = {}
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        response = dynamodb.scan(**kwargs)
        for raw in response.get("Items", []):
            item = {k: _deserializer.deserialize(v) for k, v in raw.items()}
            items[str(item["pk"])] = item
        if "LastEvaluatedKey" not in response:
            return items
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _problems(problems: list[str]) -> str:
    shown = "; ".join(problems[:SHOWN_PROBLEMS])
    more = f" (and {len(problems) - SHOWN_PROBLEMS} more)" if len(problems) > SHOWN_PROBLEMS else ""
    return f"{len(problems)} problem(s): {shown}{more}"


def check_statuses(
    expected: Mapping[str, ExpectedDocument], items: Mapping[str, Mapping[str, Any]]
) -> list[Check]:
    """Every document SUCCEEDED with all its pages; nothing PROCESSING; no stray items."""
    wrong = []
    for pk, document in expected.items():
        item = items.get(pk)
        if item is None:
            wrong.append(f"{pk}: no status item")
        elif item.get("status") != Status.SUCCEEDED.value:
            wrong.append(f"{pk}: {item.get('status')} {item.get('error') or ''}".rstrip())
        elif (item.get("pages_done"), item.get("pages_total")) != (document.pages,) * 2:
            wrong.append(
                f"{pk}: pages {item.get('pages_done')}/{item.get('pages_total')}, "
                f"expected {document.pages}"
            )
    processing = [pk for pk, i in items.items() if i.get("status") == Status.PROCESSING.value]
    strays = [pk for pk in items if pk not in expected]
    succeeded = len(expected) - len(wrong)
    return [
        Check(
            "every document SUCCEEDED",
            not wrong,
            f"{succeeded}/{len(expected)}" + (f"; {_problems(wrong)}" if wrong else ""),
        ),
        Check(
            "no item left PROCESSING",
            not processing,
            f"{len(processing)} PROCESSING"
            + (f": {processing[:SHOWN_PROBLEMS]}" if processing else ""),
        ),
        Check(
            "no status item for a key that was not uploaded",
            not strays,
            f"{len(strays)} stray" + (f": {strays[:SHOWN_PROBLEMS]}" if strays else ""),
        ),
    ]


@dataclass(slots=True)
class OutputAudit:
    """What the output prefix holds, against the table and the sources."""

    manifests: int = 0  # manifest.json objects anywhere under the output prefix
    objects: int = 0  # objects under the output prefix
    outputs_checked: int = 0  # outputs fetched and compared with their manifest entry
    pages: int = 0
    resumed_pages: int = 0
    manifest_problems: list[str] = field(default_factory=list)
    output_problems: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)  # under no document's output prefix


@dataclass(slots=True)
class _DocumentAudit:
    manifest_problems: list[str] = field(default_factory=list)
    output_problems: list[str] = field(default_factory=list)
    outputs_checked: int = 0
    pages: int = 0
    resumed_pages: int = 0


def audit_outputs(
    s3: Any,
    bucket: str,
    output_prefix: str,
    expected: Mapping[str, ExpectedDocument],
    items: Mapping[str, Mapping[str, Any]],
    *,
    threads: int = 8,
) -> OutputAudit:
    """Read every document's manifest, its source's HEAD and every output it lists."""
    keys = sorted(_list_keys(s3, bucket, output_prefix))
    audit = OutputAudit(
        objects=len(keys), manifests=sum(1 for k in keys if k.endswith("/" + MANIFEST_NAME))
    )
    claimed: set[str] = set()
    jobs = []
    for pk, document in expected.items():
        under = _keys_under(keys, document.output_prefix)
        claimed.update(under)
        jobs.append((document, items.get(pk, {}), under))
    audit.orphans = [k for k in keys if k not in claimed]

    def one(job: tuple[ExpectedDocument, Mapping[str, Any], list[str]]) -> _DocumentAudit:
        return _audit_document(s3, bucket, *job)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for result in pool.map(one, jobs):
            audit.manifest_problems.extend(result.manifest_problems)
            audit.output_problems.extend(result.output_problems)
            audit.outputs_checked += result.outputs_checked
            audit.pages += result.pages
            audit.resumed_pages += result.resumed_pages
    return audit


def output_checks(audit: OutputAudit, items: Mapping[str, Mapping[str, Any]]) -> list[Check]:
    succeeded = sum(1 for i in items.values() if i.get("status") == Status.SUCCEEDED.value)
    return [
        Check(
            "table SUCCEEDED count equals manifests under the output prefix",
            succeeded == audit.manifests,
            f"{succeeded} SUCCEEDED, {audit.manifests} manifests",
        ),
        Check(
            "one manifest per document, naming the source's current version",
            not audit.manifest_problems,
            _problems(audit.manifest_problems) if audit.manifest_problems else "all match HEAD",
        ),
        Check(
            "every listed output exists with its size and sha256; nothing unlisted",
            not audit.output_problems and not audit.orphans,
            _problems(audit.output_problems + [f"orphan {k}" for k in audit.orphans])
            if audit.output_problems or audit.orphans
            else f"{audit.outputs_checked} outputs of {audit.objects} objects verified",
        ),
    ]


def _list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


def _keys_under(sorted_keys: list[str], prefix: str) -> list[str]:
    start = bisect.bisect_left(sorted_keys, prefix)
    end = start
    while end < len(sorted_keys) and sorted_keys[end].startswith(prefix):
        end += 1
    return sorted_keys[start:end]


def _audit_document(
    s3: Any, bucket: str, document: ExpectedDocument, item: Mapping[str, Any], keys: list[str]
) -> _DocumentAudit:
    result = _DocumentAudit()
    manifests = [k for k in keys if k.rsplit("/", 1)[-1] == MANIFEST_NAME]
    if len(manifests) != 1:
        result.manifest_problems.append(f"{document.key}: {len(manifests)} manifests")
        return result
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifests[0])["Body"].read())
    head = s3.head_object(Bucket=bucket, Key=document.key)
    result.manifest_problems.extend(
        f"{document.key}: {problem}"
        for problem in _manifest_problems(manifest, head, item, document)
    )
    result.pages = int(manifest.get("page_count", 0))
    result.resumed_pages = sum(1 for page in manifest.get("pages", []) if page.get("resumed"))
    listed = {entry["key"]: entry for entry in manifest.get("outputs", [])}
    for key in sorted(set(keys) - set(listed) - set(manifests)):
        result.output_problems.append(f"{key}: not listed in its manifest")
    for key, entry in listed.items():
        problem = _output_problem(s3, bucket, key, entry)
        result.outputs_checked += 1
        if problem:
            result.output_problems.append(f"{key}: {problem}")
    return result


def _manifest_problems(
    manifest: Mapping[str, Any],
    head: Mapping[str, Any],
    item: Mapping[str, Any],
    document: ExpectedDocument,
) -> Iterable[str]:
    source = manifest.get("source") or {}
    etag = str(head.get("ETag", "")).strip('"')
    version_id = head.get("VersionId") if head.get("VersionId") != "null" else None
    if source.get("key") != document.key:
        yield f"manifest names source {source.get('key')!r}"
    if source.get("etag") != etag:
        yield f"manifest etag {source.get('etag')} but HEAD {etag}"
    if (source.get("version_id") or None) != version_id:
        yield f"manifest version {source.get('version_id')} but HEAD {version_id}"
    if item.get("etag") != etag:
        yield f"status item etag {item.get('etag')} but HEAD {etag}"
    if manifest.get("status") != Status.SUCCEEDED.value:
        yield f"manifest status {manifest.get('status')}"
    if manifest.get("page_count") != document.pages:
        yield f"manifest page_count {manifest.get('page_count')}, expected {document.pages}"
    if item and manifest.get("attempt") != int(item.get("attempt", 0)):
        yield f"manifest of attempt {manifest.get('attempt')}, table says {item.get('attempt')}"


def _output_problem(s3: Any, bucket: str, key: str, entry: Mapping[str, Any]) -> str | None:
    try:
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return "listed in the manifest but missing"
    if len(data) != entry.get("bytes"):
        return f"{len(data)} bytes, manifest says {entry.get('bytes')}"
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        return "sha256 differs from the manifest"
    return None


def queue_counts(sqs: Any, url: str) -> dict[str, int]:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(QUEUE_COUNTS))
    return {name: int(attributes["Attributes"].get(name, 0)) for name in QUEUE_COUNTS}


def wait_queues_empty(
    sqs: Any,
    queues: Mapping[str, str],
    settle_s: float,
    *,
    poll_s: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Check]:
    """Each queue shows no visible, in-flight or delayed message, within ``settle_s``.

    A message can outlive its document's final write by up to a visibility timeout (a worker
    killed between the completion and the delete: the message comes back and is deleted as
    a duplicate), hence the settle time.
    """
    deadline = clock() + settle_s
    while True:
        counts = {name: queue_counts(sqs, url) for name, url in queues.items()}
        empty = all(not any(c.values()) for c in counts.values())
        if empty or clock() >= deadline:
            break
        sleep(poll_s)
    return [
        Check(
            f"{name} empty",
            not any(c.values()),
            ", ".join(f"{k.removeprefix('ApproximateNumberOf')} {v}" for k, v in c.items()),
        )
        for name, c in counts.items()
    ]
