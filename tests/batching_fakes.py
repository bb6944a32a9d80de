"""A scripted batching engine (the GPU engines' interface) for tests without a model."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from handler.documents.pages import PageInput
from handler.engines.base import Element, ElementType, PageResult
from tests.conftest import mid_page


class SlowBatcher:
    """A batching engine whose pages finish on another thread, after ``delay_s`` each.

    Pages listed in ``finish_first`` finish at once, so results arrive out of page order.
    Records how many pages were in flight at most, and on which thread pages were drawn.
    """

    name = "vlm"

    def __init__(self, *, max_in_flight: int = 3, delay_s: float = 0.05) -> None:
        self.max_in_flight = max_in_flight
        self.delay_s = delay_s
        self.fail: dict[int, Exception] = {}
        self.finish_first: set[int] = set()
        self.drawn_on: set[str] = set()
        self.in_flight = 0
        self.peak = 0
        self.released = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=8)

    def convert(self, page: PageInput) -> PageResult:
        return self.submit(page).result()

    def submit(self, page: PageInput) -> Future[PageResult]:
        self.drawn_on.add(threading.current_thread().name)
        box = mid_page(page)
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        return self._pool.submit(self._run, page.number, page.layout_width, page.layout_height, box)

    def _run(self, number: int, width: int, height: int, box: tuple) -> PageResult:
        try:
            time.sleep(0 if number in self.finish_first else self.delay_s)
            if number in self.fail:
                raise self.fail[number]
            text = f"page {number} read by the batcher"
            element = Element(ElementType.NARRATIVE_TEXT, text, box)
            return PageResult(number, width, height, self.name, [element])
        finally:
            with self._lock:
                self.in_flight -= 1

    def release_memory(self) -> None:
        self.released += 1
