"""The systems the benchmark compares, each turning one document into markdown.

- ``pagedrop``: the product's own path without AWS: ``open_document``, the worker's
  :class:`~handler.engines.registry.EngineSet` with engine ``auto``, ``convert_page`` per
  page, ``assemble_document`` for the document's markdown and elements.
- ``pymupdf4llm``: ``pymupdf4llm.to_markdown`` with its defaults (image files are first
  wrapped into a PDF with PyMuPDF, since it reads documents, not images).
- ``rapidocr``: plain RapidOCR on each page's render (200 DPI for PDF pages, an image's own
  pixels), its lines in the detector's order joined by newlines; the line classifier off.

Models are loaded by :meth:`System.warm_up` before anything is timed.
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from PIL import Image

from handler.documents.limits import Limits
from handler.documents.open import open_document
from handler.settings import Settings

if TYPE_CHECKING:
    from handler.engines.registry import EngineSet
    from handler.outputs.document import DocumentOutputs
    from handler.outputs.page import PageOutput

#: Generous limits: the benchmark measures quality, it does not refuse documents.
BENCH_LIMITS = Limits(max_bytes=2**31, max_pages=5000, max_pixels_per_page=400_000_000)


@dataclass(slots=True)
class SystemOutput:
    markdown: str
    pages: int
    seconds: float
    extra_tables_html: list[str] = field(default_factory=list)  # tables reported beside it
    engines: list[str] = field(default_factory=list)
    error: str | None = None


class System(Protocol):
    name: str

    def warm_up(self, documents: list[Path]) -> None:
        """Load every model ``run`` will need (converting ``documents``, untimed)."""
        ...

    def run(self, document: Path) -> SystemOutput: ...


def _convert_untimed(system: System, documents: list[Path]) -> None:
    for document in documents:
        # A document that fails here fails again in the timed run, where it is reported.
        with contextlib.suppress(Exception):
            system.run(document)


def run_timed(system: System, document: Path) -> SystemOutput:
    """``system.run`` that reports a failure as an empty output with its error."""
    started = time.perf_counter()
    try:
        return system.run(document)
    except Exception as exc:  # a baseline that fails on a file scores as empty output
        return SystemOutput(
            "", 0, time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}"
        )


class PagedropSystem:
    name = "pagedrop"

    def __init__(self, settings: Settings | None = None, engines: EngineSet | None = None) -> None:
        from handler.engines.registry import EngineSet

        self._settings = settings or Settings()
        # bench/engines.py passes an EngineSet that times each engine's convert calls.
        self._engines = engines or EngineSet(self._settings)

    def warm_up(self, documents: list[Path]) -> None:
        # The OCR models load on the first OCR page, which ``documents`` may not have.
        with tempfile.TemporaryDirectory(prefix="pagedrop-bench-") as tmp:
            blank = Path(tmp) / "blank.png"
            Image.new("RGB", (64, 64), "white").save(blank)
            self._convert(blank, self._settings.ocr_engine)
        _convert_untimed(self, documents)

    def run(self, document: Path) -> SystemOutput:
        started = time.perf_counter()
        pages, outputs = self._convert(document, "auto")
        seconds = time.perf_counter() - started
        tables = [
            e["metadata"]["text_as_html"]
            for e in outputs.elements
            if e["type"] == "Table" and e["metadata"].get("text_as_html")
        ]
        return SystemOutput(
            outputs.markdown,
            len(pages),
            seconds,
            extra_tables_html=tables,
            engines=sorted({p.engine for p in pages}),
            error="; ".join(p.error for p in pages if p.error) or None,
        )

    def _convert(self, document: Path, engine: str) -> tuple[list[PageOutput], DocumentOutputs]:
        from handler.outputs.document import assemble_document
        from handler.outputs.elements import SourceContext
        from handler.worker.convert import convert_page

        with open_document(
            document, BENCH_LIMITS, dpi=self._settings.ocr_dpi, filename=document.name
        ) as doc:
            source = SourceContext(document.name, doc.type.mime, "bench")
            pages = [convert_page(page, self._engines, engine, source) for page in doc.pages()]
        return pages, assemble_document(pages)


class Pymupdf4llmSystem:
    name = "pymupdf4llm"

    def __init__(self) -> None:
        try:
            import pymupdf4llm
        except ImportError as exc:
            raise RuntimeError(
                "the pymupdf4llm baseline needs the bench extra: pip install -e '.[bench]'"
            ) from exc
        self._to_markdown = pymupdf4llm.to_markdown

    def warm_up(self, documents: list[Path]) -> None:
        _convert_untimed(self, documents)

    def run(self, document: Path) -> SystemOutput:
        import pymupdf

        started = time.perf_counter()
        with pymupdf.open(document) as opened:
            pdf = opened if opened.is_pdf else pymupdf.open("pdf", opened.convert_to_pdf())
            pages = pdf.page_count
            with _quiet(pymupdf):
                markdown = self._to_markdown(pdf)
        return SystemOutput(markdown, pages, time.perf_counter() - started)


@contextlib.contextmanager
def _quiet(pymupdf: Any) -> Iterator[None]:
    """pymupdf4llm prints parser messages (through PyMuPDF) and progress to stdout, where
    the benchmark prints its table: send them nowhere while it runs."""
    sink = io.StringIO()
    pymupdf.set_messages(stream=sink)
    try:
        with contextlib.redirect_stdout(sink):
            yield
    finally:
        pymupdf.set_messages(stream=sys.stdout)


class RapidOcrLinesSystem:
    name = "rapidocr"

    def __init__(self, dpi: int = 200) -> None:
        from rapidocr import RapidOCR

        self._dpi = dpi
        # The classifier flips good lines (FACTS.md); the log level only quiets it.
        self._ocr: Any = RapidOCR(params={"Global.use_cls": False, "Global.log_level": "warning"})

    def warm_up(self, documents: list[Path]) -> None:
        _convert_untimed(self, documents)

    def run(self, document: Path) -> SystemOutput:
        started = time.perf_counter()
        pages: list[str] = []
        with open_document(document, BENCH_LIMITS, dpi=self._dpi, filename=document.name) as doc:
            for page in doc.pages():
                rgb = page.render()
                result = self._ocr(np.ascontiguousarray(rgb[:, :, ::-1]))  # it expects BGR
                pages.append("\n".join(t for t in (result.txts or ()) if t.strip()))
        return SystemOutput("\n\n".join(pages), len(pages), time.perf_counter() - started)


SYSTEMS = {
    "pagedrop": PagedropSystem,
    "pymupdf4llm": Pymupdf4llmSystem,
    "rapidocr": RapidOcrLinesSystem,
}
