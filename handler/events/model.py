"""The frozen types an SQS body is parsed into. No raw dict travels past the parser."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """One created object named by an event: which bytes of which key, in which version."""

    bucket: str
    key: str  # decoded (never URL-encoded)
    size: int | None = None
    etag: str | None = None  # without quotes
    version_id: str | None = None
    sequencer: str | None = None  # hex string; compare with sequencer_key()
    event_time: str | None = None  # ISO-8601 as the event gave it
    event_name: str = "ObjectCreated:Put"
    source: str = "s3"  # "s3" | "eventbridge"

    @property
    def pk(self) -> str:
        """Partition key of the status item: ``<bucket>/<key>``."""
        return f"{self.bucket}/{self.key}"


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """What one SQS body holds: zero or more object references, or a test event."""

    refs: tuple[ObjectRef, ...] = field(default_factory=tuple)
    is_test_event: bool = False


def sequencer_key(sequencer: str | None) -> int | None:
    """Make S3 sequencers comparable.

    S3 documents that sequencers of one key are compared as hexadecimal strings after
    left-padding the shorter with zeros; as integers that is the same order.
    """
    if not sequencer:
        return None
    try:
        return int(sequencer, 16)
    except ValueError:
        return None
