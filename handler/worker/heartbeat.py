"""Keeping held work alive: message visibility and the DynamoDB lease, on a timer."""

from __future__ import annotations

import logging
import threading
from typing import Any

from handler import logs
from handler.aws import is_transient
from handler.errors import LeaseLost
from handler.status.store import Claim, StatusStore

log = logging.getLogger(__name__)

SQS_BATCH_MAX = 10  # ChangeMessageVisibilityBatch takes at most 10 entries


class Heartbeat:
    """A daemon thread that, every ``interval_s``, extends the visibility of every message the
    worker holds and the lease of the claim it is working on.

    A lease found taken over sets :attr:`lease_lost`; the conversion checks it between
    pages and stops. What the thread logs for a claim carries that document's ids (the log
    context of the thread that set the claim).
    """

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        status: StatusStore,
        *,
        interval_s: float,
        visibility_timeout_s: int,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._status = status
        self._interval_s = interval_s
        self._visibility_s = visibility_timeout_s
        self._lock = threading.Lock()
        # Held while visibility is being extended; drop() waits for it, so that no extension
        # of a message can land after the loop has settled it (handed back, retry delay).
        self._extending = threading.Lock()
        self._receipts: dict[str, str] = {}  # message id -> receipt handle
        self._claim: Claim | None = None
        self._claim_context: logs.DocumentLogContext | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self.lease_lost = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._interval_s + 5)

    def hold(self, message_id: str, receipt_handle: str) -> None:
        with self._lock:
            self._receipts[message_id] = receipt_handle

    def drop(self, message_id: str) -> None:
        """Stop extending a message; returns once no extension of it is in flight."""
        with self._extending, self._lock:
            self._receipts.pop(message_id, None)

    def held(self) -> dict[str, str]:
        with self._lock:
            return dict(self._receipts)

    def set_claim(self, claim: Claim | None) -> None:
        with self._lock:
            self._claim = claim
            self._claim_context = logs.current_document() if claim is not None else None
            self.lease_lost.clear()

    def beat(self) -> None:
        """One round of extensions (the thread calls this; tests may call it directly)."""
        with self._lock:
            context = self._claim_context
        with logs.bound(context):
            self._beat()

    def _beat(self) -> None:
        with self._extending:
            with self._lock:
                receipts = list(self._receipts.items())
            self._extend_visibility(receipts)
        with self._lock:
            claim = self._claim
        if claim is not None:
            try:
                self._status.heartbeat(claim)
                log.debug("lease extended", extra={"attempt": claim.attempt})
            except LeaseLost:
                with self._lock:
                    # The document may have been finished (and another begun) while the
                    # write was in flight: only a lease lost on the current claim counts.
                    if self._claim is claim:
                        log.warning("lease lost", extra={"pk": claim.pk})
                        self.lease_lost.set()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("lease heartbeat failed, will retry: %s", exc)

    def _extend_visibility(self, receipts: list[tuple[str, str]]) -> None:
        for start in range(0, len(receipts), SQS_BATCH_MAX):
            chunk = receipts[start : start + SQS_BATCH_MAX]
            try:
                response = self._sqs.change_message_visibility_batch(
                    QueueUrl=self._queue_url,
                    Entries=[
                        {
                            "Id": str(i),
                            "ReceiptHandle": receipt,
                            "VisibilityTimeout": self._visibility_s,
                        }
                        for i, (_, receipt) in enumerate(chunk)
                    ],
                )
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("visibility heartbeat failed, will retry: %s", exc)
                continue
            # A batch call succeeds as a whole while its entries may fail one by one.
            failed = response.get("Failed", [])
            if failed:
                log.warning(
                    "visibility not extended for %d of %d message(s), will retry: %s",
                    len(failed),
                    len(chunk),
                    ", ".join(sorted({str(f.get("Code", "?")) for f in failed})),
                )

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.beat()
            except Exception:  # a bug here must not kill the worker silently
                log.exception("heartbeat failed")
