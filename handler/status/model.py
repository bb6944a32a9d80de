"""The status item (DESIGN §4) and the pure rules of the claim state machine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from handler.errors import ErrorCategory
from handler.events.model import ObjectRef, sequencer_key


class Status(StrEnum):
    PROCESSING = "PROCESSING"
    SUCCEEDED = "SUCCEEDED"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"


FINAL_STATUSES = frozenset({Status.SUCCEEDED, Status.PARTIAL, Status.FAILED})


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"  # this worker now holds the document
    DUPLICATE = "duplicate"  # this version already reached a final state: delete the message
    BUSY = "busy"  # another worker's live lease: leave the message for later
    STALE = "stale"  # the item already describes a newer version: delete the message


def utc_now_iso(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def version_token(ref: ObjectRef) -> str:
    """What identifies one version of a key: its VersionId, else its ETag."""
    return ref.version_id or ref.etag or ""


@dataclass(frozen=True, slots=True)
class StatusItem:
    """A read-only view of a status item, as stored."""

    raw: dict[str, Any]

    @property
    def status(self) -> Status:
        return Status(self.raw["status"])

    @property
    def version(self) -> str:
        return str(self.raw.get("version", ""))

    @property
    def sequencer(self) -> str | None:
        return self.raw.get("sequencer") or None

    @property
    def lease_until(self) -> float:
        return float(self.raw.get("lease_until", 0))

    @property
    def attempt(self) -> int:
        return int(self.raw.get("attempt", 0))

    @property
    def error_category(self) -> str | None:
        error = self.raw.get("error")
        return str(error.get("category")) if isinstance(error, dict) else None

    @property
    def rev(self) -> int:
        return int(self.raw.get("rev", 0))

    @property
    def worker(self) -> str:
        return str(self.raw.get("worker", ""))


def decide_claim(item: StatusItem | None, ref: ObjectRef, now: float) -> ClaimOutcome:
    """The claim rule of DESIGN §4, as a pure function of the stored item and the event.

    - no item: claim;
    - the item is for another version: the newer one (by S3 sequencer, when both have one)
      wins; without sequencers the caller has already checked that the event names the
      object's current version, so the event wins;
    - same version, final: duplicate (except FAILED/exhausted: a redriven message may try
      again); same version, live lease: busy; expired lease: claim.
    """
    if item is None:
        return ClaimOutcome.CLAIMED
    if item.version != version_token(ref):
        ours, theirs = sequencer_key(ref.sequencer), sequencer_key(item.sequencer)
        if ours is not None and theirs is not None and ours < theirs:
            return ClaimOutcome.STALE
        return ClaimOutcome.CLAIMED
    if item.status in FINAL_STATUSES:
        if item.error_category == ErrorCategory.EXHAUSTED.value:
            return ClaimOutcome.CLAIMED  # retries ran out; a redriven message tries again
        return ClaimOutcome.DUPLICATE
    if item.lease_until > now:
        return ClaimOutcome.BUSY
    return ClaimOutcome.CLAIMED
