"""The worker's long-poll loop (DESIGN §1 steps 1, 2, 9, 10).

Receive a batch, parse each body once, run its documents one after another, and settle
each message by what happened: delete, leave for retry, look again later, or hand back.
SIGTERM (or :meth:`Worker.stop`) stops receiving; the document in progress stops between
pages, its finished pages stay checkpointed, and every unfinished message is made
visible again at once, so the bound on shutdown is one page plus a few API calls.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from handler import logs
from handler.aws import is_transient
from handler.errors import EngineUnavailable, PoisonMessage
from handler.events.parse import parse_body
from handler.health import HealthReporter, HealthServer, default_max_age_s
from handler.metrics import POISON_MESSAGES, RECEIVE_ERRORS, Metrics
from handler.settings import Settings
from handler.worker.document import Disposition, DocumentProcessor, Outcome
from handler.worker.heartbeat import Heartbeat
from handler.worker.protection import ScaleInProtection

log = logging.getLogger(__name__)

# Backoff after a failed receive (the endpoint is down or throttling), seconds.
RECEIVE_BACKOFF_S = (1, 2, 5, 10, 30)
# After its wait, a long poll's answer may still be on its way; seconds.
POLL_END_SLACK_S = 5


@dataclass(slots=True)
class WorkerStats:
    messages: int = 0
    documents: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: Outcome) -> None:
        self.documents += 1
        key = outcome.status.value if outcome.status else outcome.reason.split(":")[0]
        self.outcomes[key] = self.outcomes.get(key, 0) + 1


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    """Polls one queue and processes what arrives until stopped."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        dlq_url: str,
        processor: DocumentProcessor,
        heartbeat: Heartbeat,
        settings: Settings,
        *,
        stop_event: threading.Event | None = None,
        metrics: Metrics | None = None,
        health: HealthReporter | None = None,
        protection: ScaleInProtection | None = None,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._dlq_url = dlq_url
        self._processor = processor
        self._heartbeat = heartbeat
        self._wait_s = settings.receive_wait_s
        self._batch = settings.receive_batch
        self._visibility_s = settings.visibility_timeout_s
        self._retry_delay_s = settings.retry_delay_s
        # Shared with the processor, which checks it between pages.
        self._stopping = stop_event or threading.Event()
        self._finished = threading.Event()
        self._grace_s = settings.shutdown_grace_s
        self._poll_started: float | None = None  # monotonic start of the poll in progress
        self._settings = settings
        self._metrics = metrics or Metrics.disabled()
        self.health = health or HealthReporter(None)
        self.stats = WorkerStats()
        # Scale-in protection while this worker holds messages (None: not in a fleet).
        self._protection = protection
        self._slot = f"worker-{id(self):x}"

    # -- control -----------------------------------------------------------------------

    def stop(self) -> None:
        """Stop receiving; the current document stops between pages."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the worker gracefully (main thread only).

        The document in progress stops after its current page. Should that page take longer
        than ``shutdown_grace_s``, a watchdog releases the lease, hands every held message
        back and ends the process (exit status 0), so the bound on shutdown holds even for a
        page stuck in an engine. An idle worker's long poll is let run out (at most
        ``receive_wait_s``) and whatever it brings is handed back: a poll abandoned half way
        leaves SQS holding what it received for the whole visibility timeout.
        """

        def on_signal(signum: int, frame: object) -> None:
            if not self.stopping:
                log.info("signal %s: stopping", signal.Signals(signum).name)
                self.stop()
                threading.Thread(target=self._watchdog, name="shutdown", daemon=True).start()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)

    def _watchdog(self) -> None:
        if not self.watch_shutdown():
            os._exit(0)

    def watch_shutdown(self) -> bool:
        """After a stop: wait for :meth:`run` to end within the grace (or, idle in a long
        poll, until the poll ends); else hand everything back. True if run ended by itself;
        False means the caller must end the process (a page is stuck in an engine)."""
        if self._finished.wait(self._grace_s):
            return True
        poll_started = self._poll_started
        if poll_started is not None:
            # Idle in a long poll: let it end by itself (see install_signal_handlers).
            poll_ends = poll_started + self._wait_s + POLL_END_SLACK_S
            if self._finished.wait(max(0.0, poll_ends - time.monotonic())):
                return True
        log.error(
            "still busy %.0f s after the stop signal: handing back and exiting", self._grace_s
        )
        self.force_hand_back()
        return False

    def force_hand_back(self) -> None:
        """Release the document in progress and hand every held message back (the process
        is about to end with a page stuck in an engine)."""
        self._processor.abandon()
        self._hand_back_all()
        self._unprotect()
        self._metrics.flush()
        self.health.stopped()

    def _protect(self) -> None:
        if self._protection is not None:
            self._protection.busy(self._slot)

    def _unprotect(self) -> None:
        if self._protection is not None:
            self._protection.idle(self._slot)

    def run(self, *, max_idle_polls: int | None = None) -> WorkerStats:
        """Poll until stopped (or, for batch runs, after ``max_idle_polls`` empty polls).

        Raises ``EngineUnavailable`` before receiving anything when an engine cannot start.
        """
        self._get_ready()
        server = self._start_health_server()
        self._heartbeat.start()
        idle = failures = 0
        try:
            while not self.stopping:
                try:
                    messages = self._receive()
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    delay = RECEIVE_BACKOFF_S[min(failures, len(RECEIVE_BACKOFF_S) - 1)]
                    failures += 1
                    log.warning("receive failed, retrying in %ss: %s", delay, exc)
                    self._metrics.count(RECEIVE_ERRORS)
                    self._metrics.flush()
                    self._stopping.wait(delay)
                    continue
                failures = 0
                self.health.polled()
                if not messages:
                    # Idle: scale-in may take this instance (a restarted container's first
                    # empty poll also lifts what a crashed worker left set).
                    self._unprotect()
                    idle += 1
                    if max_idle_polls is not None and idle >= max_idle_polls:
                        break
                    continue
                idle = 0
                self._protect()  # before any document is claimed
                self.handle_batch(messages)
        finally:
            self.health.stopping()
            self._hand_back_all()
            self._unprotect()
            self._heartbeat.stop()
            self._metrics.flush()
            self.health.stopped()
            if server is not None:
                server.stop()
            self._finished.set()
        return self.stats

    def _get_ready(self) -> None:
        """Load the engines and report readiness (or why not, and raise)."""
        try:
            names, needs_gpu = self._processor.load_engines()
        except EngineUnavailable as exc:
            self.health.not_ready(str(exc))
            log.error("not ready: %s", exc)
            raise
        # A needed GPU was found (else load_engines raised); None: nobody looked for one.
        self.health.engines_ready(
            names, gpu_required=needs_gpu, gpu_found=True if needs_gpu else None
        )
        log.info("ready: engines %s", ", ".join(names))

    def _start_health_server(self) -> HealthServer | None:
        port = self._settings.health_port
        if not port:
            return None
        max_age = default_max_age_s(self._settings)
        server = HealthServer(self.health, self._settings.health_host, port, max_age).start()
        log.info("health endpoint on http://%s:%d/health", self._settings.health_host, server.port)
        return server

    # -- one batch ---------------------------------------------------------------------

    def _receive(self) -> list[dict[str, Any]]:
        self._poll_started = time.monotonic()
        try:
            response = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=self._batch,
                WaitTimeSeconds=self._wait_s,
                # The worker's own timeout, not the queue's: its heartbeat is timed against it.
                VisibilityTimeout=self._visibility_s,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            )
        finally:
            self._poll_started = None
        return list(response.get("Messages", []))

    def handle_batch(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            self._heartbeat.hold(message["MessageId"], message["ReceiptHandle"])
        for message in messages:
            if self.stopping:
                break  # the rest are handed back in run()'s finally
            self.stats.messages += 1
            try:
                self._handle(message)
            except Exception as exc:
                # Settling failed (or a bug): the message reappears; the worker goes on.
                self._heartbeat.drop(message["MessageId"])
                if is_transient(exc):
                    log.warning("could not settle a message, it will reappear: %s", exc)
                else:
                    log.exception("unexpected error handling a message; it will reappear")
            finally:
                self._metrics.flush()  # per document: CloudWatch sees each one as it ends

    def _handle(self, message: dict[str, Any]) -> None:
        message_id = message["MessageId"]
        try:
            parsed = parse_body(message.get("Body", ""))
        except PoisonMessage as exc:
            self._to_dead_letters(message, exc.reason)
            self._settle(message, Disposition.DELETE)
            return
        if parsed.is_test_event:
            log.info("s3:TestEvent deleted", extra={"message_id": message_id})
            self._settle(message, Disposition.DELETE)
            return
        worst = Outcome(Disposition.DELETE, "no documents")
        outcomes = []
        for ref in parsed.refs:
            if self.stopping:
                worst = Outcome(Disposition.HAND_BACK, "stopping")
                break
            self.health.busy(self._settings.document_timeout_s)
            try:
                outcome = self._processor.process(ref, _receive_count(message))
            finally:
                self.health.idle()
            self.stats.count(outcome)
            outcomes.append(outcome)
            worst = _worse(worst, outcome)
        self._settle(message, worst.disposition, worst.delay_s)
        for outcome in outcomes:
            with logs.bound(outcome.log_context):
                log.info(
                    "message settled: %s (%s)",
                    worst.disposition.value,
                    outcome.reason,
                    extra={
                        "message_id": message_id,
                        "disposition": worst.disposition.value,
                        "status": outcome.status.value if outcome.status else None,
                    },
                )

    def _settle(self, message: dict[str, Any], disposition: Disposition, delay_s: int = 0) -> None:
        receipt = message["ReceiptHandle"]
        self._heartbeat.drop(message["MessageId"])
        if disposition is Disposition.DELETE:
            self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=receipt)
            return
        delay = {
            Disposition.RETRY: self._retry_delay_s,
            Disposition.LATER: delay_s,
            Disposition.HAND_BACK: 0,
        }[disposition]
        self._sqs.change_message_visibility(
            QueueUrl=self._queue_url, ReceiptHandle=receipt, VisibilityTimeout=max(0, delay)
        )

    def _to_dead_letters(self, message: dict[str, Any], reason: str) -> None:
        """A poison body goes to the DLQ with its reason; it is never silently dropped."""
        log.error(
            "poison message to the DLQ: %s", reason, extra={"message_id": message["MessageId"]}
        )
        self._metrics.count(POISON_MESSAGES)
        self._sqs.send_message(
            QueueUrl=self._dlq_url,
            MessageBody=message.get("Body", "") or json.dumps({"empty": True}),
            MessageAttributes={
                "pagedrop-reason": {"DataType": "String", "StringValue": reason[:1000]},
                "pagedrop-source-message-id": {
                    "DataType": "String",
                    "StringValue": message["MessageId"],
                },
                "pagedrop-failed-at": {
                    "DataType": "String",
                    "StringValue": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                },
            },
        )

    def _hand_back_all(self) -> None:
        """Make every message still held visible again (shutdown)."""
        held = self._heartbeat.held()
        for message_id, receipt in held.items():
            self._heartbeat.drop(message_id)  # first: no extension may follow the hand-back
            try:
                self._sqs.change_message_visibility(
                    QueueUrl=self._queue_url, ReceiptHandle=receipt, VisibilityTimeout=0
                )
            except Exception as exc:
                log.warning("could not hand back %s: %s", message_id, exc)
        if held:
            log.info("handed back %d message(s)", len(held))


def _receive_count(message: dict[str, Any]) -> int | None:
    count = (message.get("Attributes") or {}).get("ApproximateReceiveCount")
    return int(count) if count and str(count).isdigit() else None


_SEVERITY = {
    Disposition.DELETE: 0,
    Disposition.LATER: 1,
    Disposition.RETRY: 2,
    Disposition.HAND_BACK: 3,
}


def _worse(a: Outcome, b: Outcome) -> Outcome:
    """A message with several documents is settled by its least finished one."""
    return b if _SEVERITY[b.disposition] > _SEVERITY[a.disposition] else a
