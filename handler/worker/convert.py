"""Converting the pages of one open document in page order, batched where the engine batches."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, wait
from dataclasses import dataclass

from handler.documents.pages import PageInput
from handler.engines.base import BatchingEngine, PageResult
from handler.engines.registry import AUTO, TEXT_ENGINE, EngineSet
from handler.engines.routing import ocr_read_less
from handler.errors import BadInput, DocumentTimeout, PagedropError
from handler.outputs.elements import SourceContext, page_elements
from handler.outputs.markdown import failed_page_markdown, page_markdown
from handler.outputs.writer import PageOutput

log = logging.getLogger(__name__)

# While pages wait for their batch, stop requests and the deadline are checked this often.
WAIT_SLICE_S = 1.0


class Interrupted(PagedropError):
    """The worker is shutting down (or lost its lease): stop between pages."""


@dataclass(frozen=True, slots=True)
class ConvertOptions:
    requested_engine: str  # "auto" or an engine name
    deadline: float  # time.monotonic() value after which the document times out
    timeout_s: float


def convert_page(
    page: PageInput, engines: EngineSet, requested: str, source: SourceContext
) -> PageOutput:
    """One page through its engine. A bad page becomes a failed PageOutput, not an error."""
    started = time.perf_counter()
    engine_name = requested
    try:
        engine = engines.for_page(page, requested)
        engine_name = engine.name
        result = engine.convert(page)
    except BadInput as exc:
        return _failed(page.number, engine_name, exc.message, started)
    except Exception as exc:
        if not _is_mupdf_error(exc):
            raise
        return _failed(page.number, engine_name, f"the page is damaged: {exc}", started)
    return _finish(page, result, engines, requested, source, started)


def _finish(
    page: PageInput,
    result: PageResult,
    engines: EngineSet,
    requested: str,
    source: SourceContext,
    started: float,
) -> PageOutput:
    """A page's engine result as its output, after the OCR look-back (auto mode only)."""
    try:
        if requested == AUTO and result.engine != TEXT_ENGINE and ocr_read_less(page, result):
            log.info(
                "page %d: OCR read less than the text layer offers; keeping the text layer",
                page.number,
            )
            result = engines.get(TEXT_ENGINE).convert(page)
    except BadInput as exc:
        return _failed(page.number, result.engine, exc.message, started)
    except Exception as exc:
        if not _is_mupdf_error(exc):
            raise
        return _failed(page.number, result.engine, f"the page is damaged: {exc}", started)
    elements = page_elements(result, source)
    return PageOutput(
        page_number=page.number,
        markdown=page_markdown(elements),
        elements=elements,
        engine=result.engine,
        seconds=time.perf_counter() - started,
    )


@dataclass(slots=True)
class _InFlight:
    """A page handed to a batching engine, or one already converted, in page order."""

    page: PageInput
    started: float
    engine: str
    future: Future[PageResult] | None = None
    output: PageOutput | None = None
    limit: int = 1  # the engine's max_in_flight

    def ready(self) -> bool:
        return self.output is not None or (self.future is not None and self.future.done())


def convert_pages(
    pages: Iterable[PageInput],
    engines: EngineSet,
    source: SourceContext,
    options: ConvertOptions,
    on_page: Callable[[PageOutput], None],
    should_stop: Callable[[], bool],
) -> list[PageOutput]:
    """Convert pages, handing each to ``on_page`` in page order as soon as it is done.

    A page whose engine batches (the GPU engines, :class:`BatchingEngine`) is submitted and
    the next pages are drawn while it waits for its batch: up to the engine's
    ``max_in_flight`` pages are in flight, so the CPU prepares the next batch while the GPU
    runs the current one. Every other page is converted on the spot. Everything that
    touches the document (routing, drawing, the text layer) stays on this thread.

    Checks between pages, and while it waits for a batch, whether to stop (shutdown, lost
    lease) or whether the document has run past its deadline.
    """
    done: list[PageOutput] = []
    queue: deque[_InFlight] = deque()

    def emit_ready() -> None:
        while queue and queue[0].ready():
            output = _settle(queue.popleft(), engines, options.requested_engine, source)
            on_page(output)
            done.append(output)

    def check() -> None:
        if should_stop():
            raise Interrupted("stopping between pages")
        if time.monotonic() > options.deadline:
            raise DocumentTimeout(options.timeout_s)

    for page in pages:
        check()
        queue.append(_start(page, engines, options.requested_engine, source))
        emit_ready()
        while _waiting(queue) >= _max_in_flight(queue):
            _wait_for_head(queue, check)
            emit_ready()
    while queue:
        _wait_for_head(queue, check)
        emit_ready()
    return done


def _start(page: PageInput, engines: EngineSet, requested: str, source: SourceContext) -> _InFlight:
    """Route ``page``; submit it to a batching engine, or convert it now."""
    started = time.perf_counter()
    engine_name = requested
    try:
        engine = engines.for_page(page, requested)
        engine_name = engine.name
        if isinstance(engine, BatchingEngine):
            future = engine.submit(page)
            return _InFlight(page, started, engine_name, future, limit=engine.max_in_flight)
    except BadInput as exc:
        return _InFlight(
            page,
            started,
            engine_name,
            output=_failed(page.number, engine_name, exc.message, started),
        )
    except Exception as exc:
        if not _is_mupdf_error(exc):
            raise
        failed = _failed(page.number, engine_name, f"the page is damaged: {exc}", started)
        return _InFlight(page, started, engine_name, output=failed)
    output = convert_page(page, engines, requested, source)
    return _InFlight(page, started, output.engine, output=output)


def _settle(
    item: _InFlight, engines: EngineSet, requested: str, source: SourceContext
) -> PageOutput:
    if item.output is not None:
        return item.output
    assert item.future is not None
    try:
        result = item.future.result()
    except BadInput as exc:
        return _failed(item.page.number, item.engine, exc.message, item.started)
    return _finish(item.page, result, engines, requested, source, item.started)


def _waiting(queue: deque[_InFlight]) -> int:
    return sum(1 for item in queue if item.future is not None and not item.future.done())


def _max_in_flight(queue: deque[_InFlight]) -> int:
    """The smallest ``max_in_flight`` among the engines of the pages waiting (at least 1)."""
    return max(1, min((item.limit for item in queue if item.future is not None), default=1))


def _wait_for_head(queue: deque[_InFlight], check: Callable[[], None]) -> None:
    """Wait until the first page is done, checking for stop and deadline every second."""
    head = queue[0]
    while not head.ready():
        check()
        assert head.future is not None
        wait([head.future], timeout=WAIT_SLICE_S)


def _failed(number: int, engine: str, reason: str, started: float) -> PageOutput:
    return PageOutput(
        page_number=number,
        markdown=failed_page_markdown(number, reason),
        elements=[],
        engine=engine,
        seconds=time.perf_counter() - started,
        error=reason,
    )


def _is_mupdf_error(exc: Exception) -> bool:
    """MuPDF reports a damaged page with its own exception types (RuntimeError subclasses)."""
    return isinstance(exc, RuntimeError) and type(exc).__module__.startswith(("pymupdf", "fitz"))
