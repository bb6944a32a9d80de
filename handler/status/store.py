"""The DynamoDB status store: every transition is one conditional write (DESIGN §4).

The claim reads the item, judges it with :func:`~handler.status.model.decide_claim`, and
writes conditionally on the item being exactly what it judged (its ``rev`` counter), so two
workers racing for one document cannot both win. Every later write of a claim (heartbeat,
progress, completion, failure) is conditional on the writer's ``lease_token``: a worker whose
lease was taken over gets :class:`~handler.errors.LeaseLost` and cannot touch the new
owner's state.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from handler.aws import error_code
from handler.errors import ErrorCategory, LeaseLost
from handler.events.model import ObjectRef
from handler.status.model import (
    ClaimOutcome,
    Status,
    StatusItem,
    decide_claim,
    utc_now_iso,
    version_token,
)

STATUS_INDEX = "by-status"
CLAIM_RACE_RETRIES = 3
SECONDS_PER_DAY = 86_400

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_ddb(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in values.items()}


def _from_ddb(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


@dataclass(frozen=True, slots=True)
class Claim:
    """What a successful claim hands the worker: the proof it holds the lease."""

    pk: str
    token: str
    attempt: int
    worker: str


@dataclass(frozen=True, slots=True)
class ClaimResult:
    outcome: ClaimOutcome
    claim: Claim | None = None
    item: StatusItem | None = None  # the item as it was before the claim


class StatusStore:
    """Conditional reads and writes of status items."""

    def __init__(
        self,
        dynamodb: Any,
        table_name: str,
        *,
        lease_s: int,
        retention_days: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ddb = dynamodb
        self._table = table_name
        self._lease_s = lease_s
        self._retention_s = retention_days * SECONDS_PER_DAY
        self._clock = clock

    # -- reads -------------------------------------------------------------------------

    def get(self, pk: str) -> StatusItem | None:
        response = self._ddb.get_item(
            TableName=self._table, Key={"pk": {"S": pk}}, ConsistentRead=True
        )
        item = response.get("Item")
        return StatusItem(_from_ddb(item)) if item else None

    def list_by_status(self, status: Status, limit: int = 100) -> Iterator[StatusItem]:
        """Items in one status, most recently updated first (the ``by-status`` index)."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": STATUS_INDEX,
            "KeyConditionExpression": "#status = :status",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {":status": {"S": status.value}},
            "ScanIndexForward": False,
        }
        seen = 0
        while seen < limit:
            response = self._ddb.query(**kwargs, Limit=min(100, limit - seen))
            for raw in response.get("Items", []):
                seen += 1
                yield StatusItem(_from_ddb(raw))
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # -- the claim ---------------------------------------------------------------------

    def claim(self, ref: ObjectRef, worker: str, output_prefix: str) -> ClaimResult:
        """Try to take the document; see :func:`decide_claim` for the rule."""
        for _ in range(CLAIM_RACE_RETRIES):
            before = self.get(ref.pk)
            now = self._clock()
            outcome = decide_claim(before, ref, now)
            if outcome is not ClaimOutcome.CLAIMED:
                return ClaimResult(outcome, item=before)
            claim = Claim(
                pk=ref.pk,
                token=uuid.uuid4().hex,
                attempt=self._next_attempt(before, ref),
                worker=worker,
            )
            try:
                self._put_claim(ref, claim, before, output_prefix, now)
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                if not self._holds(claim):
                    continue  # someone else wrote in between: judge again
                # Our own write, applied, answered with a fault and retried: it is ours.
            return ClaimResult(ClaimOutcome.CLAIMED, claim=claim, item=before)
        return ClaimResult(ClaimOutcome.BUSY, item=self.get(ref.pk))

    @staticmethod
    def _next_attempt(before: StatusItem | None, ref: ObjectRef) -> int:
        if before is not None and before.version == version_token(ref):
            return before.attempt + 1
        return 1

    def _put_claim(
        self,
        ref: ObjectRef,
        claim: Claim,
        before: StatusItem | None,
        output_prefix: str,
        now: float,
    ) -> None:
        stamp = utc_now_iso(now)
        received = stamp
        if before is not None and before.version == version_token(ref):
            received = str(before.raw.get("received_at", stamp))
        item: dict[str, Any] = {
            "pk": ref.pk,
            "bucket": ref.bucket,
            "key": ref.key,
            "status": Status.PROCESSING.value,
            "version": version_token(ref),
            "etag": ref.etag or "",
            "version_id": ref.version_id or "",
            "sequencer": ref.sequencer or "",
            "size": ref.size if ref.size is not None else -1,
            "attempt": claim.attempt,
            "worker": claim.worker,
            "lease_token": claim.token,
            "lease_until": int(now + self._lease_s),
            "pages_total": 0,
            "pages_done": 0,
            "engine": [],
            "received_at": received,
            "started_at": stamp,
            "updated_at": stamp,
            "output_prefix": output_prefix,
            "expires_at": int(now + self._retention_s),
            "rev": (before.rev + 1) if before else 1,
        }
        if ref.event_time:
            item["event_time"] = ref.event_time
        if before is None:
            condition = "attribute_not_exists(pk)"
            values: dict[str, Any] = {}
        else:
            # Exactly the item decide_claim judged: nobody wrote in between.
            condition = "rev = :rev"
            values = {":rev": {"N": str(before.rev)}}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Item": _to_ddb(item),
            "ConditionExpression": condition,
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
        self._ddb.put_item(**kwargs)

    # -- writes by the lease holder ----------------------------------------------------

    def heartbeat(self, claim: Claim) -> None:
        """Extend the lease by another ``lease_s`` seconds."""
        self._update_held(claim, {"lease_until": int(self._clock() + self._lease_s)})

    def progress(
        self, claim: Claim, *, pages_done: int, pages_total: int, engines: list[str]
    ) -> None:
        self._update_held(
            claim, {"pages_done": pages_done, "pages_total": pages_total, "engine": engines}
        )

    def complete(
        self,
        claim: Claim,
        status: Status,
        *,
        pages_done: int,
        pages_total: int,
        engines: list[str],
        error: tuple[ErrorCategory, str] | None = None,
    ) -> None:
        """Final write: SUCCEEDED, PARTIAL or FAILED, by the lease holder only."""
        values: dict[str, Any] = {
            "status": status.value,
            "pages_done": pages_done,
            "pages_total": pages_total,
            "engine": engines,
            "finished_at": utc_now_iso(self._clock()),
            "lease_until": 0,
        }
        if error is not None:
            values["error"] = {"category": error[0].value, "message": error[1]}
        self._update_held(claim, values)

    def fail(self, claim: Claim, category: ErrorCategory, message: str) -> None:
        """Final write FAILED with the error's category and message."""
        self._update_held(
            claim,
            {
                "status": Status.FAILED.value,
                "error": {"category": category.value, "message": message},
                "finished_at": utc_now_iso(self._clock()),
                "lease_until": 0,
            },
        )

    def release(self, claim: Claim) -> None:
        """Give the lease up without finishing (shutdown): the next worker may claim at once."""
        self._update_held(claim, {"lease_until": 0})

    def _update_held(self, claim: Claim, values: dict[str, Any]) -> None:
        values = {**values, "updated_at": utc_now_iso(self._clock())}
        update, names, bound = _set_expression(values)
        names["#status"] = "status"
        bound[":token"] = claim.token
        bound[":processing"] = Status.PROCESSING.value
        bound[":one"] = 1
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"pk": {"S": claim.pk}},
                UpdateExpression=f"{update} ADD rev :one",
                # Only the holder of this claim, and only while the document is in progress.
                ConditionExpression="lease_token = :token AND #status = :processing",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_to_ddb(bound),
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            # botocore retries a write that was applied but answered with a fault; the retry
            # then fails its condition. That write was ours: the item shows its result.
            if not self._holds(claim, values.get("status", Status.PROCESSING.value)):
                raise LeaseLost(f"the lease on {claim.pk} was taken over") from exc

    def _holds(self, claim: Claim, status: str = Status.PROCESSING.value) -> bool:
        """Whether the item is this claim's, in ``status`` (read after a failed condition)."""
        item = self.get(claim.pk)
        return (
            item is not None
            and item.raw.get("lease_token") == claim.token
            and item.raw.get("status") == status
        )

    # -- writes without a lease --------------------------------------------------------

    def mark_exhausted(self, ref: ObjectRef, message: str) -> bool:
        """Mark a document whose retries are used up FAILED/exhausted (the DLQ function).

        Only when there is no item yet, or the item still describes this version and is not
        final: a newer version, or a document that did finish, is left alone. Returns
        whether it wrote.
        """
        now = self._clock()
        stamp = utc_now_iso(now)
        update, names, bound = _set_expression(
            {
                "status": Status.FAILED.value,
                "error": {"category": ErrorCategory.EXHAUSTED.value, "message": message},
                "finished_at": stamp,
                "updated_at": stamp,
                "lease_until": 0,
                "version": version_token(ref),
                "bucket": ref.bucket,
                "key": ref.key,
                "expires_at": int(now + self._retention_s),
            }
        )
        # What an item created here needs for a redrive of this version; kept if present.
        kept = {
            name: value
            for name, value in {
                "etag": ref.etag,
                "version_id": ref.version_id,
                "sequencer": ref.sequencer,
                "size": ref.size,
            }.items()
            if value is not None
        }
        for i, (name, value) in enumerate(kept.items()):
            update += f", #k{i} = if_not_exists(#k{i}, :k{i})"
            names[f"#k{i}"] = name
            bound[f":k{i}"] = value
        names.update({"#s": "status", "#v": "version", "#r": "received_at"})
        bound.update(
            {
                ":processing": Status.PROCESSING.value,
                ":version": version_token(ref),
                ":now": stamp,
                ":one": 1,
            }
        )
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"pk": {"S": ref.pk}},
                UpdateExpression=f"{update}, #r = if_not_exists(#r, :now) ADD rev :one",
                ConditionExpression=(
                    "attribute_not_exists(pk) OR (#v = :version AND #s = :processing)"
                ),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_to_ddb(bound),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True


def _set_expression(values: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``SET #a0 = :v0, ...`` with every name aliased (DynamoDB reserves many words)."""
    names: dict[str, str] = {}
    bound: dict[str, Any] = {}
    parts = []
    for i, (name, value) in enumerate(values.items()):
        names[f"#a{i}"] = name
        bound[f":v{i}"] = value
        parts.append(f"#a{i} = :v{i}")
    return "SET " + ", ".join(parts), names, bound
