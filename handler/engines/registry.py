"""Engines by name, built lazily: a worker that never meets a scan never loads OCR models."""

from __future__ import annotations

import threading
from collections.abc import Callable

from handler.documents.pages import PageInput
from handler.engines.base import Engine
from handler.engines.batching import BatchStats
from handler.errors import EngineUnavailable
from handler.settings import Settings

TEXT_ENGINE = "text-layer"
AUTO = "auto"


def _text_layer(settings: Settings) -> Engine:
    from handler.engines.text_layer import TextLayerEngine

    return TextLayerEngine()


def _rapidocr(settings: Settings) -> Engine:
    from handler.engines.rapidocr_engine import RapidOcrEngine

    return RapidOcrEngine(threads=settings.ocr_threads or None)


def _paddleocr_vl(settings: Settings) -> Engine:
    from handler.engines.paddleocr_vl import PaddleOcrVlEngine

    return PaddleOcrVlEngine(
        settings,
        layout=settings.paddleocr_vl_layout,
        max_new_tokens=settings.vlm_max_new_tokens or None,
        max_pixels=settings.vlm_max_pixels or None,
    )


def _vlm(settings: Settings) -> Engine:
    from handler.engines.vlm.engine import VlmEngine

    return VlmEngine(settings)


FACTORIES: dict[str, Callable[[Settings], Engine]] = {
    TEXT_ENGINE: _text_layer,
    "rapidocr": _rapidocr,
    "paddleocr-vl": _paddleocr_vl,
    "vlm": _vlm,
}


class EngineSet:
    """The engines one worker uses, each built on first use and then kept."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._built: dict[str, Engine] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Engine:
        with self._lock:
            if name not in self._built:
                factory = FACTORIES.get(name)
                if factory is None:
                    known = ", ".join(sorted(FACTORIES))
                    raise EngineUnavailable(f"unknown engine {name!r}; known here: {known}")
                self._built[name] = factory(self._settings)
            return self._built[name]

    def release_memory(self) -> None:
        """Let every engine built so far free its cached device memory (between documents)."""
        with self._lock:
            built = list(self._built.values())
        for engine in built:
            release = getattr(engine, "release_memory", None)
            if callable(release):
                release()

    def take_batch_stats(self) -> dict[str, BatchStats]:
        """Each batching engine's :class:`BatchStats` since the last call, by engine name."""
        with self._lock:
            built = list(self._built.items())
        taken: dict[str, BatchStats] = {}
        for name, engine in built:
            take = getattr(engine, "batch_stats", None)
            if callable(take):
                taken[name] = take()
        return taken

    def for_page(self, page: PageInput, requested: str = AUTO) -> Engine:
        """The engine for one page: a forced engine, or the text layer where it is usable."""
        if requested != AUTO:
            if requested == TEXT_ENGINE and page.pdf_page is None:
                return self.get(self._settings.ocr_engine)  # an image has no text layer
            return self.get(requested)
        from handler.engines.routing import needs_ocr

        if needs_ocr(page):
            return self.get(self._settings.ocr_engine)
        return self.get(TEXT_ENGINE)
