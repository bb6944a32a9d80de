"""One document from event to final status: the path of DESIGN §1, steps 3 to 9."""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from handler import logs
from handler.aws import is_transient
from handler.documents.limits import Limits
from handler.documents.messages import check_size
from handler.documents.open import open_document
from handler.documents.pages import PageInput
from handler.engines.registry import AUTO, TEXT_ENGINE, EngineSet
from handler.errors import BadInput, EngineUnavailable, ErrorCategory, LeaseLost, TransientError
from handler.events.model import ObjectRef
from handler.health import engine_needs_gpu, gpu_present
from handler.metrics import Metrics
from handler.outputs.elements import SourceContext
from handler.outputs.manifest import Timings, build_manifest, engines_used
from handler.outputs.writer import OutputWriter, PageOutput
from handler.settings import Settings
from handler.status.model import ClaimOutcome, Status, version_token
from handler.status.store import Claim, StatusStore
from handler.storage.keys import KeyOutsidePrefix, check_output_key_length, output_prefix_for
from handler.storage.objects import ObjectChanged, ObjectInfo, ObjectStore
from handler.worker.checkpoints import CheckpointBatches
from handler.worker.convert import ConvertOptions, Interrupted, convert_pages
from handler.worker.heartbeat import Heartbeat
from handler.worker.observe import BUG, FAULT, LEASE_LOST, DocumentObserver
from handler.worker.options import options_from_metadata

log = logging.getLogger(__name__)

BUSY_MARGIN_S = 2  # seconds past another worker's lease before its document is looked at again


class Disposition(StrEnum):
    """What to do with the message once a document is dealt with."""

    DELETE = "delete"  # finished, failed for good, duplicate, stale or not ours
    RETRY = "retry"  # transient fault or bug: let the message reappear
    LATER = "later"  # another worker holds it: look again when its lease ends
    HAND_BACK = "hand_back"  # shutting down: make it visible again now


@dataclass(frozen=True, slots=True)
class Outcome:
    disposition: Disposition
    reason: str
    delay_s: int = 0  # for LATER
    status: Status | None = None
    log_context: logs.DocumentLogContext | None = None  # the ids its log lines carried


class DocumentProcessor:
    """Runs one document through claim, download, conversion and outputs."""

    def __init__(
        self,
        settings: Settings,
        objects: ObjectStore,
        status: StatusStore,
        engines: EngineSet,
        heartbeat: Heartbeat | None,
        worker_id: str,
        should_stop: Callable[[], bool] = lambda: False,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self._settings = settings
        self._objects = objects
        self._status = status
        self._engines = engines
        self._heartbeat = heartbeat
        self._worker_id = worker_id
        self._should_stop = should_stop
        self._current: Claim | None = None
        self._observe = DocumentObserver(metrics or Metrics.disabled())
        self._limits = Limits(
            max_bytes=settings.max_bytes,
            max_pages=settings.max_pages,
            max_pixels_per_page=settings.max_pixels_per_page,
        )

    def process(self, ref: ObjectRef, receive_count: int | None = None) -> Outcome:
        """Take one document as far as it goes; never raises for a fault of AWS or the file.

        Its log lines carry the version the HEAD found, which is what the status item
        records; without a HEAD, the version the event names.
        """
        with logs.document_context(ref.pk, version_token(ref)) as context:
            try:
                out_prefix = output_prefix_for(
                    ref.key, self._settings.input_prefix, self._settings.output_prefix
                )
                info = self._objects.head_current(ref)
            except Exception as exc:
                self._observe.received(ref, receive_count)
                return replace(self._not_started(exc), log_context=context)
        ref = _with_head(ref, info)
        with logs.document_context(ref.pk, version_token(ref)) as context:
            self._observe.received(ref, receive_count)
            return replace(self._claim_and_work(ref, info, out_prefix), log_context=context)

    def _not_started(self, exc: Exception) -> Outcome:
        if isinstance(exc, KeyOutsidePrefix):
            self._observe.ignored(str(exc))
            return Outcome(Disposition.DELETE, f"ignored: {exc}")
        if isinstance(exc, ObjectChanged):
            self._observe.stale("the object changed or is gone")
            return Outcome(Disposition.DELETE, "stale: the object changed or is gone")
        return self._retry(exc)

    def _claim_and_work(self, ref: ObjectRef, info: ObjectInfo, out_prefix: str) -> Outcome:
        try:
            result = self._status.claim(ref, self._worker_id, out_prefix)
        except Exception as exc:
            return self._retry(exc)
        if result.outcome is ClaimOutcome.BUSY:
            # Look again just after the lease ends (each look costs a receive of the message).
            until = result.item.lease_until if result.item else time.time() + 30
            delay = max(math.ceil(until - time.time()) + BUSY_MARGIN_S, 1)
            self._observe.busy(result.item.worker if result.item else "", delay)
            return Outcome(Disposition.LATER, "busy: another worker holds it", delay)
        if result.outcome is ClaimOutcome.DUPLICATE:
            self._observe.duplicate()
        elif result.outcome is ClaimOutcome.STALE:
            self._observe.stale("a newer version is recorded")
        if result.outcome is not ClaimOutcome.CLAIMED:
            return Outcome(Disposition.DELETE, result.outcome.value)
        assert result.claim is not None
        self._observe.claimed(ref, result.claim)
        return self._work(ref, info, out_prefix, result.claim)

    def load_engines(self) -> tuple[list[str], bool]:
        """Build the engines the settings name, at start rather than on the first page.

        Returns their names and whether one needs a GPU; raises ``EngineUnavailable`` when
        one cannot start (or needs a GPU this machine lacks). An engine with a ``load()``
        method loads its models here; the others load them on their first page.
        """
        names = {TEXT_ENGINE, self._settings.ocr_engine}
        if self._settings.engine != AUTO:
            names.add(self._settings.engine)
        needs_gpu = False
        for name in sorted(names):
            engine = self._engines.get(name)
            if engine_needs_gpu(engine):
                needs_gpu = True
                if not gpu_present():
                    raise EngineUnavailable(f"The {name} engine needs a GPU and none was found.")
            load = getattr(engine, "load", None)
            if callable(load):
                load()
            describe = getattr(engine, "describe", None)
            if callable(describe):  # the GPU engines: device, GPU memory, dtype, model folder
                log.info("engine %s: %s", name, describe())
        return sorted(names), needs_gpu

    def abandon(self) -> None:
        """Release the lease of the document in progress (a forced shutdown)."""
        if self._current is not None:
            self._release(self._current)

    def _work(self, ref: ObjectRef, info: ObjectInfo, out_prefix: str, claim: Claim) -> Outcome:
        self._current = claim
        if self._heartbeat is not None:
            self._heartbeat.set_claim(claim)
        try:
            status = self._convert(ref, info, out_prefix, claim)
            return Outcome(Disposition.DELETE, "done", status=status)
        except BadInput as exc:
            return self._fail(ref, claim, exc.category, exc.message)
        except ObjectChanged:
            return self._fail(
                ref,
                claim,
                ErrorCategory.INTERNAL,
                "The object was overwritten or deleted while it was being converted; "
                "a newer upload is converted from its own event.",
            )
        except LeaseLost:
            return self._lease_lost("lease lost to another worker")
        except Interrupted:
            log.info("interrupted between pages: handing the document back")
            self._release(claim)
            return Outcome(Disposition.HAND_BACK, "interrupted")
        except Exception as exc:
            self._release(claim)
            return self._retry(exc)
        finally:
            self._current = None
            if self._heartbeat is not None:
                self._heartbeat.set_claim(None)
            self._engines.release_memory()  # GPU memory goes back between documents
            self._observe.batches(self._engines.take_batch_stats())

    def _convert(self, ref: ObjectRef, info: ObjectInfo, out_prefix: str, claim: Claim) -> Status:
        started = time.monotonic()
        check_size(info.size, self._settings.max_bytes)  # before downloading anything
        check_output_key_length(out_prefix)
        options = options_from_metadata(info.metadata, self._settings.engine)
        filename = ref.key.rsplit("/", 1)[-1]
        with tempfile.TemporaryDirectory(prefix="pagedrop-") as tmp:
            path = Path(tmp) / "source"  # never a name taken from the key
            before_download = time.monotonic()
            self._objects.download(ref, path)
            downloaded = time.monotonic()
            self._observe.downloaded(info.size, downloaded - before_download)
            with open_document(
                path, self._limits, dpi=self._settings.ocr_dpi, filename=filename
            ) as document:
                numbers = options.page_numbers(document.page_count)
                source = SourceContext(
                    filename,
                    document.type.mime,
                    version_token(ref),
                    options.languages or self._settings.languages,
                )
                writer = OutputWriter(
                    self._objects,
                    out_prefix,
                    source.version,
                    fence=lambda: self._status.heartbeat(claim),
                )
                pages = writer.load_checkpoints()
                pages = {n: p for n, p in pages.items() if n in numbers}
                self._observe.planned(len(numbers), len(pages), options.engine)

                def progress() -> None:
                    # Conditional on the lease: before each batch of page files, it is also
                    # the fence that keeps a worker whose lease was taken over from writing.
                    self._status.progress(
                        claim,
                        pages_done=len(pages),
                        pages_total=len(numbers),
                        engines=engines_used(pages.values()),
                    )

                progress()
                self._convert_pages(
                    document.pages([n for n in numbers if n not in pages]),
                    source,
                    ConvertOptions(
                        requested_engine=options.engine,
                        deadline=started + self._settings.document_timeout_s,
                        timeout_s=self._settings.document_timeout_s,
                    ),
                    pages,
                    writer,
                    progress,
                    claim,
                )
                mime, document_pages = document.type.mime, document.page_count
        converted = time.monotonic()
        ordered = [pages[n] for n in numbers]
        status = self._final_status(ordered)
        failed = [p for p in ordered if p.error]
        if status is Status.FAILED:
            # No document.md or manifest: the manifest means "complete" to downstream.
            raise BadInput(
                ErrorCategory.CORRUPT,
                f"{len(failed)} of {len(ordered)} pages could not be converted; "
                f"the first: {_sentence(failed[0].error)}",
            )
        writer.write_document(ordered, keep=numbers)
        timings = Timings(
            download_s=downloaded - started,
            convert_s=converted - downloaded,
            total_s=time.monotonic() - started,
        )
        writer.write_manifest(
            build_manifest(
                ref,
                content_type=mime,
                status=status,
                pages=ordered,
                document_pages=document_pages,
                timings=timings,
                attempt=claim.attempt,
            )
        )
        self._observe.outputs_written(out_prefix, len(ordered))
        self._status.complete(
            claim,
            status,
            pages_done=len(ordered),
            pages_total=len(numbers),
            engines=engines_used(ordered),
        )
        self._observe.finished(ref, status, ordered)
        return status

    def _convert_pages(
        self,
        inputs: Iterable[PageInput],
        source: SourceContext,
        options: ConvertOptions,
        pages: dict[int, PageOutput],
        writer: OutputWriter,
        progress: Callable[[], None],
        claim: Claim,
    ) -> None:
        """Convert ``inputs`` into ``pages``, checkpointing them in batches behind the engine
        (handler/worker/checkpoints.py); every page is written when this returns."""

        def on_page(page: PageOutput) -> None:
            pages[page.page_number] = page
            batches.add(page)

        def should_stop() -> bool:
            batches.check()  # a batch that failed to write stops the conversion here
            return self._stop_requested()

        with CheckpointBatches(
            fence=progress,
            fence_again=lambda: self._status.heartbeat(claim),
            write_page=writer.write_page,
            on_written=self._observe.page_done,
            interval_s=self._settings.checkpoint_interval_s,
        ) as batches:
            try:
                convert_pages(inputs, self._engines, source, options, on_page, should_stop)
            except Interrupted:
                # Shutting down: what was converted is kept (a batch's worth of writes at
                # most), so the next worker resumes after it.
                try:
                    batches.finish()
                except Exception as exc:
                    log.warning("could not checkpoint the converted pages: %s", exc)
                raise
            batches.finish()

    def _final_status(self, pages: list[PageOutput]) -> Status:
        failed = sum(1 for p in pages if p.error)
        if failed == 0:
            return Status.SUCCEEDED
        if failed / len(pages) > self._settings.max_failed_page_share or failed == len(pages):
            return Status.FAILED
        return Status.PARTIAL

    def _stop_requested(self) -> bool:
        lost = self._heartbeat is not None and self._heartbeat.lease_lost.is_set()
        if lost:
            raise LeaseLost("the lease was taken over")
        return self._should_stop()

    def _fail(self, ref: ObjectRef, claim: Claim, category: ErrorCategory, message: str) -> Outcome:
        try:
            self._status.fail(claim, category, message)
        except LeaseLost:
            return self._lease_lost("lease lost before the failure was written")
        self._observe.failed(ref, category, message)
        return Outcome(Disposition.DELETE, f"failed: {category.value}", status=Status.FAILED)

    def _lease_lost(self, reason: str) -> Outcome:
        log.warning("%s: stopping, the message will reappear", reason)
        self._observe.retry(LEASE_LOST)
        return Outcome(Disposition.RETRY, reason)

    def _retry(self, exc: Exception) -> Outcome:
        """A fault (retry with backoff) or a bug (logged with its traceback, retried too)."""
        if isinstance(exc, TransientError) or is_transient(exc):
            log.warning("transient fault, will retry: %s", exc)
            self._observe.retry(FAULT)
        else:
            log.exception("unexpected error (a bug), will retry")
            self._observe.retry(BUG)
        return Outcome(Disposition.RETRY, f"error: {type(exc).__name__}")

    def _release(self, claim: Claim) -> None:
        try:
            self._status.release(claim)
        except Exception as exc:  # the lease then simply runs out
            log.warning("could not release the lease: %s", exc, extra={"pk": claim.pk})


def _sentence(text: str | None) -> str:
    text = (text or "unknown error").strip()
    return text if text.endswith(".") else f"{text}."


def _with_head(ref: ObjectRef, info: ObjectInfo) -> ObjectRef:
    """Fill in what the event left out (moto's events carry no version id) from the HEAD."""
    return replace(
        ref,
        etag=ref.etag or info.etag or None,
        version_id=ref.version_id or info.version_id or None,
        size=info.size,
    )
