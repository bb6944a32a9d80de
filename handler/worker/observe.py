"""What one document's path tells an operator: one log line per step, and its metrics.

The document processor calls these at each step, so that its own code stays about the
document. Lines are logged inside the document's log context (:mod:`handler.logs`), so they
carry its ``correlation_id``; none of them holds document content. Per-page lines are DEBUG
(a 2000-page document must not write 2000 INFO lines); everything else is INFO, or WARNING
for what an operator may have to act on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from handler import metrics as m
from handler.engines.batching import BatchStats
from handler.errors import ErrorCategory
from handler.events.model import ObjectRef
from handler.metrics import Metrics
from handler.outputs.writer import PageOutput
from handler.status.model import Status
from handler.status.store import Claim

log = logging.getLogger("handler.worker.document")

# Causes of a retry (the ``cause`` dimension of the Retries metric).
FAULT, BUG, LEASE_LOST = "fault", "bug", "lease_lost"


@dataclass(slots=True)
class _EngineTally:
    pages: int = 0
    failed: int = 0
    seconds: float = 0.0


class DocumentObserver:
    """Logs and metrics of the document in progress (one at a time, like the worker)."""

    def __init__(self, metrics: Metrics, clock: Callable[[], float] = time.time) -> None:
        self._metrics = metrics
        self._clock = clock
        self._tally: dict[str, _EngineTally] = {}

    # -- before the claim ------------------------------------------------------------------

    def received(self, ref: ObjectRef, receive_count: int | None) -> None:
        log.info(
            "received",
            extra={
                "event_name": ref.event_name,
                "event_time": ref.event_time,
                "event_source": ref.source,
                "size": ref.size,
                "receive_count": receive_count,
            },
        )

    def ignored(self, reason: str) -> None:
        log.warning("ignored: %s", reason)

    def stale(self, why: str) -> None:
        self._metrics.count(m.STALE_EVENTS_DROPPED)
        log.info("stale event dropped: %s", why)

    def duplicate(self) -> None:
        self._metrics.count(m.DUPLICATES_SUPPRESSED)
        log.info("duplicate: this version already reached a final status")

    def busy(self, worker: str, delay_s: int) -> None:
        log.info(
            "busy: another worker holds the lease; looking again in %d s",
            delay_s,
            extra={"holder": worker},
        )

    # -- the claimed document ----------------------------------------------------------------

    def claimed(self, ref: ObjectRef, claim: Claim) -> None:
        self._tally = {}
        wait = _since(ref.event_time, self._clock())
        if wait is not None:
            self._metrics.seconds(m.QUEUE_WAIT, wait)
        log.info(
            "claimed (attempt %d)",
            claim.attempt,
            extra={"attempt": claim.attempt, "worker": claim.worker, "queue_wait_s": wait},
        )

    def downloaded(self, size: int, seconds: float) -> None:
        log.info("downloaded %d bytes in %.2f s", size, seconds, extra={"bytes": size})

    def planned(self, pages_total: int, checkpointed: int, requested_engine: str) -> None:
        """Pages are routed to engines one by one as they are converted (the route reads the
        page); the line gives the counts, and ``finished`` the pages per engine."""
        log.info(
            "planned %d page(s): %d to convert, %d from checkpoints, engine %s",
            pages_total,
            pages_total - checkpointed,
            checkpointed,
            requested_engine,
            extra={"pages_total": pages_total, "checkpointed": checkpointed},
        )

    def page_done(self, page: PageOutput) -> None:
        tally = self._tally.setdefault(page.engine, _EngineTally())
        tally.pages += 1
        tally.seconds += page.seconds
        if page.error:
            tally.failed += 1
            self._metrics.count(m.PAGES_FAILED, engine=page.engine)
            self._metrics.count(m.PAGES_FAILED)
        else:
            self._metrics.count(m.PAGES_CONVERTED, engine=page.engine)
            self._metrics.count(m.PAGES_CONVERTED)
        log.debug(
            "page %d %s: %s, %.2f s",
            page.page_number,
            "failed" if page.error else "done",
            page.engine,
            page.seconds,
            extra={"page": page.page_number, "engine": page.engine, "seconds": page.seconds},
        )

    def outputs_written(self, prefix: str, pages: int) -> None:
        log.info("outputs written under %s (%d page(s))", prefix, pages)

    def finished(self, ref: ObjectRef, status: Status, pages: Sequence[PageOutput]) -> None:
        """SUCCEEDED or PARTIAL: the status item says so."""
        used = sorted({p.engine for p in pages})
        failed = sum(1 for p in pages if p.error)
        self._metrics.count(m.DOCUMENTS_CONVERTED)
        for engine in used:
            self._metrics.count(m.DOCUMENTS_CONVERTED, engine=engine)
        self._end(ref)
        log.info(
            "finished %s: %d page(s), %d failed, engines %s",
            status.value,
            len(pages),
            failed,
            ",".join(used) or "-",
            extra={"status": status.value, "pages_failed": failed},
        )

    def failed(self, ref: ObjectRef, category: ErrorCategory, message: str) -> None:
        """FAILED with its category (bad input, timeout, overwritten while converting)."""
        self._metrics.count(m.DOCUMENTS_FAILED, category=category.value)
        self._metrics.count(m.DOCUMENTS_FAILED)
        self._end(ref)
        log.info(
            "finished FAILED (%s): %s",
            category.value,
            message,
            extra={"status": Status.FAILED.value, "error_category": category.value},
        )

    def retry(self, cause: str) -> None:
        """The document is left for another attempt (the message reappears)."""
        self._metrics.count(m.RETRIES, cause=cause)
        self._metrics.count(m.RETRIES)
        if cause == LEASE_LOST:
            self._metrics.count(m.LEASES_LOST)
        self._per_page_seconds()

    def batches(self, stats: Mapping[str, BatchStats]) -> None:
        """The batching engines' work since the last document (handler/engines/batching.py).

        With several document slots the engines are shared, so the numbers belong to the
        worker's last stretch of time rather than to one document; summed, they are exact.
        """
        for engine, taken in stats.items():
            if taken.out_of_memory:
                self._metrics.count(m.GPU_OUT_OF_MEMORY, taken.out_of_memory, engine=engine)
            if not taken.batches:
                continue
            self._metrics.count(m.GPU_BATCHES, taken.batches, engine=engine)
            self._metrics.value(m.GPU_PAGES_PER_BATCH, taken.pages / taken.batches, engine=engine)
            self._metrics.seconds(
                m.GPU_SECONDS_PER_BATCH, taken.seconds / taken.batches, engine=engine
            )

    def _end(self, ref: ObjectRef) -> None:
        latency = _since(ref.event_time, self._clock())
        if latency is not None:
            self._metrics.seconds(m.END_TO_END_LATENCY, latency)
        self._per_page_seconds()

    def _per_page_seconds(self) -> None:
        """One value per engine and document: the mean over the pages of this attempt."""
        for engine, tally in self._tally.items():
            if tally.pages:
                self._metrics.seconds(
                    m.CONVERSION_SECONDS_PER_PAGE, tally.seconds / tally.pages, engine=engine
                )
        self._tally = {}


def _since(event_time: str | None, now: float) -> float | None:
    """Seconds from an event's ISO-8601 time to ``now`` (None when the event has no time)."""
    if not event_time:
        return None
    try:
        then = datetime.fromisoformat(event_time.replace("Z", "+00:00"))
    except ValueError:
        return None
    if then.tzinfo is None:
        return None  # S3 and EventBridge always give UTC; a naive time is not to be guessed
    return max(0.0, now - then.timestamp())
