"""Page checkpoints written in batches, behind the engine.

Converted pages are collected and flushed as a batch once the conversion since the last
flush passes the checkpoint interval (or the batch holds :data:`MAX_BATCH_PAGES`, or the
document ends). A flush is one conditional progress write, the lease fence, on the
converting thread, then the batch's page files written by a small pool while the engine goes
on with the next pages. At most one batch is in flight: the next flush waits for it. A
failed write surfaces at the next page boundary (:meth:`CheckpointBatches.check`), so the
conversion stops there, as it did when every page was written before the next began.

What a crash loses: the pages converted since the last flush and those of a batch still in
flight; their files either exist complete (a page counts when its JSON exists) or the next
attempt converts them again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from types import TracebackType

from handler import logs
from handler.outputs.page import PageOutput

log = logging.getLogger(__name__)

# Pages written at once. boto3 clients are thread-safe; 8 keeps a born-digital batch's
# writes (two PUTs a page) behind the engine here, well within the clients' pool of 32.
WRITE_THREADS = 8
# A batch never holds more pages than this, whatever the interval: it bounds the writes a
# shutdown waits for (64 PUTs, 8 rounds on the pool) and the time a batch's files are
# written after its fence; one fence per 32 born-digital pages is well under 1% of them.
MAX_BATCH_PAGES = 32
# A page write that starts longer than this after the batch's fence passes the fence again
# first (S3 retrying with backoff, a slow pool): a worker that lost its lease meanwhile
# then stops instead of writing. Keeps that window near what it was with a fence a page.
FENCE_MAX_AGE_S = 1.0


class CheckpointBatches:
    """The page checkpoints of one document conversion.

    ``fence`` is the conditional progress write (raises ``LeaseLost``), called on the
    converting thread; ``fence_again`` re-checks the lease from a writing thread;
    ``write_page`` writes one page's files (markdown, then the JSON that marks it done);
    ``on_written`` is told of each page once its files are written, on the converting thread.
    Use as a context manager: leaving it waits for a batch still in flight, so nothing is
    written for the document after it.
    """

    def __init__(
        self,
        *,
        fence: Callable[[], None],
        fence_again: Callable[[], None],
        write_page: Callable[[PageOutput], None],
        on_written: Callable[[PageOutput], None],
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_pages: int = MAX_BATCH_PAGES,
        threads: int = WRITE_THREADS,
    ) -> None:
        self._fence = fence
        self._fence_again = fence_again
        self._write_page = write_page
        self._on_written = on_written
        self._interval_s = interval_s
        self._clock = clock
        self._max_pages = max_pages
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="pagedrop-checkpoint")
        self._context = logs.current_document()  # the writing threads log as this document
        self._pending: list[PageOutput] = []
        self._in_flight: list[tuple[PageOutput, Future[None]]] = []
        self._last_flush = clock()
        self._fence_lock = threading.Lock()
        self._fenced_at = 0.0

    def add(self, page: PageOutput) -> None:
        """A converted page; flushes the batch when it is due."""
        self._pending.append(page)
        due = self._clock() - self._last_flush >= self._interval_s
        if due or len(self._pending) >= self._max_pages:
            self.flush()

    def check(self) -> None:
        """Between pages: raise the error of a batch that finished badly, if any."""
        if self._in_flight and all(f.done() for _, f in self._in_flight):
            self._settle()

    def flush(self) -> None:
        """Wait for the batch in flight, fence, then start writing the pending pages."""
        self._settle()
        self._last_flush = self._clock()
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        self._fence()
        with self._fence_lock:
            self._fenced_at = self._clock()
        self._in_flight = [(page, self._pool.submit(self._write, page)) for page in batch]

    def finish(self) -> None:
        """Flush what is pending and wait until every page is written."""
        self.flush()
        self._settle()

    def _settle(self) -> None:
        """Wait for the batch in flight; report its pages, or raise its first error."""
        batch, self._in_flight = self._in_flight, []
        wait([f for _, f in batch])
        errors = [e for _, f in batch if (e := f.exception()) is not None]
        for page, future in batch:
            if future.exception() is None:
                self._on_written(page)
        if errors:
            raise errors[0]

    def _write(self, page: PageOutput) -> None:
        with logs.bound(self._context):
            with self._fence_lock:
                if self._clock() - self._fenced_at > FENCE_MAX_AGE_S:
                    self._fence_again()
                    self._fenced_at = self._clock()
            self._write_page(page)

    def close(self) -> None:
        """Wait for the batch in flight without raising (the caller is already leaving on an
        error of its own), then stop the pool."""
        try:
            self._settle()
        except Exception as exc:
            log.warning("a checkpoint batch failed while the conversion stopped: %s", exc)
        finally:
            self._pool.shutdown(wait=True)

    def __enter__(self) -> CheckpointBatches:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
