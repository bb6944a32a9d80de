"""One document from event to final status: the path of DESIGN §1, steps 3 to 9."""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from handler.aws import is_transient
from handler.documents.limits import Limits
from handler.documents.messages import check_size
from handler.documents.open import open_document
from handler.engines.registry import EngineSet
from handler.errors import BadInput, ErrorCategory, LeaseLost, TransientError
from handler.events.model import ObjectRef
from handler.outputs.elements import SourceContext
from handler.outputs.manifest import Timings, build_manifest, engines_used
from handler.outputs.writer import OutputWriter, PageOutput
from handler.settings import Settings
from handler.status.model import ClaimOutcome, Status, version_token
from handler.status.store import Claim, StatusStore
from handler.storage.keys import KeyOutsidePrefix, check_output_key_length, output_prefix_for
from handler.storage.objects import ObjectChanged, ObjectInfo, ObjectStore
from handler.worker.convert import ConvertOptions, Interrupted, convert_pages
from handler.worker.heartbeat import Heartbeat
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
    ) -> None:
        self._settings = settings
        self._objects = objects
        self._status = status
        self._engines = engines
        self._heartbeat = heartbeat
        self._worker_id = worker_id
        self._should_stop = should_stop
        self._current: Claim | None = None
        self._limits = Limits(
            max_bytes=settings.max_bytes,
            max_pages=settings.max_pages,
            max_pixels_per_page=settings.max_pixels_per_page,
        )

    def process(self, ref: ObjectRef) -> Outcome:
        """Take one document as far as it goes; never raises for a fault of AWS or the file."""
        try:
            out_prefix = output_prefix_for(
                ref.key, self._settings.input_prefix, self._settings.output_prefix
            )
        except KeyOutsidePrefix as exc:
            return Outcome(Disposition.DELETE, f"ignored: {exc}")
        try:
            info = self._objects.head_current(ref)
            ref = _with_head(ref, info)
            result = self._status.claim(ref, self._worker_id, out_prefix)
        except ObjectChanged:
            return Outcome(Disposition.DELETE, "stale: the object changed or is gone")
        except Exception as exc:
            return _retry(exc, ref)
        if result.outcome is ClaimOutcome.BUSY:
            # Look again just after the lease ends (each look costs a receive of the message).
            until = result.item.lease_until if result.item else time.time() + 30
            delay = math.ceil(until - time.time()) + BUSY_MARGIN_S
            return Outcome(Disposition.LATER, "busy: another worker holds it", max(delay, 1))
        if result.outcome is not ClaimOutcome.CLAIMED:
            return Outcome(Disposition.DELETE, result.outcome.value)
        assert result.claim is not None
        return self._work(ref, info, out_prefix, result.claim)

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
            return self._fail(claim, exc.category, exc.message)
        except ObjectChanged:
            return self._fail(
                claim,
                ErrorCategory.INTERNAL,
                "The object was overwritten or deleted while it was being converted; "
                "a newer upload is converted from its own event.",
            )
        except LeaseLost:
            return Outcome(Disposition.RETRY, "lease lost to another worker")
        except Interrupted:
            self._release(claim)
            return Outcome(Disposition.HAND_BACK, "interrupted")
        except Exception as exc:
            self._release(claim)
            return _retry(exc, ref)
        finally:
            self._current = None
            if self._heartbeat is not None:
                self._heartbeat.set_claim(None)

    def _convert(self, ref: ObjectRef, info: ObjectInfo, out_prefix: str, claim: Claim) -> Status:
        started = time.monotonic()
        check_size(info.size, self._settings.max_bytes)  # before downloading anything
        check_output_key_length(out_prefix)
        options = options_from_metadata(info.metadata, self._settings.engine)
        filename = ref.key.rsplit("/", 1)[-1]
        with tempfile.TemporaryDirectory(prefix="pagedrop-") as tmp:
            path = Path(tmp) / "source"  # never a name taken from the key
            self._objects.download(ref, path)
            downloaded = time.monotonic()
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
                self._status.progress(
                    claim,
                    pages_done=len(pages),
                    pages_total=len(numbers),
                    engines=engines_used(pages.values()),
                )

                def on_page(page: PageOutput) -> None:
                    # The progress write is conditional on the lease: it is also the fence
                    # that keeps a worker whose lease was taken over from writing the page.
                    pages[page.page_number] = page
                    self._status.progress(
                        claim,
                        pages_done=len(pages),
                        pages_total=len(numbers),
                        engines=engines_used(pages.values()),
                    )
                    writer.write_page(page)

                todo = [n for n in numbers if n not in pages]
                convert_pages(
                    document.pages(todo),
                    self._engines,
                    source,
                    ConvertOptions(
                        requested_engine=options.engine,
                        deadline=started + self._settings.document_timeout_s,
                        timeout_s=self._settings.document_timeout_s,
                    ),
                    on_page,
                    self._stop_requested,
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
        writer.write_document(ordered)
        writer.remove_stale_pages(keep=numbers)
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
        self._status.complete(
            claim,
            status,
            pages_done=len(ordered),
            pages_total=len(numbers),
            engines=engines_used(ordered),
        )
        return status

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

    def _fail(self, claim: Claim, category: ErrorCategory, message: str) -> Outcome:
        try:
            self._status.fail(claim, category, message)
        except LeaseLost:
            return Outcome(Disposition.RETRY, "lease lost before the failure was written")
        return Outcome(Disposition.DELETE, f"failed: {category.value}", status=Status.FAILED)

    def _release(self, claim: Claim) -> None:
        try:
            self._status.release(claim)
        except Exception as exc:  # the lease then simply runs out
            log.warning("could not release the lease: %s", exc, extra={"pk": claim.pk})


def _sentence(text: str | None) -> str:
    text = (text or "unknown error").strip()
    return text if text.endswith(".") else f"{text}."


def _retry(exc: Exception, ref: ObjectRef) -> Outcome:
    """A fault (retry with backoff) or a bug (logged with its traceback, retried too)."""
    if isinstance(exc, TransientError) or is_transient(exc):
        log.warning("transient fault, will retry: %s", exc, extra={"pk": ref.pk})
    else:
        log.exception("unexpected error (a bug), will retry", extra={"pk": ref.pk})
    return Outcome(Disposition.RETRY, f"error: {type(exc).__name__}")


def _with_head(ref: ObjectRef, info: ObjectInfo) -> ObjectRef:
    """Fill in what the event left out (moto's events carry no version id) from the HEAD."""
    return replace(
        ref,
        etag=ref.etag or info.etag or None,
        version_id=ref.version_id or info.version_id or None,
        size=info.size,
    )
