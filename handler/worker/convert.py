"""Converting the pages of one open document, page by page, with checkpoints."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from handler.documents.pages import PageInput
from handler.engines.registry import AUTO, TEXT_ENGINE, EngineSet
from handler.engines.routing import ocr_read_less
from handler.errors import BadInput, DocumentTimeout, PagedropError
from handler.outputs.elements import SourceContext, page_elements
from handler.outputs.markdown import failed_page_markdown, page_markdown
from handler.outputs.writer import PageOutput

log = logging.getLogger(__name__)


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
        if requested == AUTO and engine_name != TEXT_ENGINE and ocr_read_less(page, result):
            log.info(
                "page %d: OCR read less than the text layer offers; keeping the text layer",
                page.number,
            )
            engine_name = TEXT_ENGINE
            result = engines.get(TEXT_ENGINE).convert(page)
    except BadInput as exc:
        return _failed(page.number, engine_name, exc.message, started)
    except Exception as exc:
        if not _is_mupdf_error(exc):
            raise
        return _failed(page.number, engine_name, f"the page is damaged: {exc}", started)
    elements = page_elements(result, source)
    return PageOutput(
        page_number=page.number,
        markdown=page_markdown(elements),
        elements=elements,
        engine=result.engine,
        seconds=time.perf_counter() - started,
    )


def convert_pages(
    pages: Iterable[PageInput],
    engines: EngineSet,
    source: SourceContext,
    options: ConvertOptions,
    on_page: Callable[[PageOutput], None],
    should_stop: Callable[[], bool],
) -> list[PageOutput]:
    """Convert pages in order, handing each to ``on_page`` as soon as it is done.

    Checks between pages whether to stop (shutdown, lost lease) or whether the document
    has run past its deadline.
    """
    done: list[PageOutput] = []
    for page in pages:
        if should_stop():
            raise Interrupted("stopping between pages")
        if time.monotonic() > options.deadline:
            raise DocumentTimeout(options.timeout_s)
        output = convert_page(page, engines, options.requested_engine, source)
        on_page(output)
        done.append(output)
    return done


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
