"""Batches for a GPU engine: items queued from any thread, run a batch at a time on one thread.

The GPU engines prepare each page on the CPU in the thread that submits it (drawing, image
preprocessing, tokenising), then queue it here. One daemon thread takes up to
``batch_size`` queued items, waiting at most ``wait_s`` for a partial batch to fill, and
calls ``run`` with them; each item's future gets its result, or the exception ``run``
raised. While that thread runs batch k on the GPU, the submitting threads prepare the items
of batch k+1 (the worker keeps up to the engine's ``max_in_flight`` pages submitted).

A batch that runs out of GPU memory (``is_oom``) is split in halves and the halves retried,
after ``on_oom`` (which frees cached memory); the smaller batch size is kept for the batches
that follow, so a worker settles at the size its GPU holds. A single item that still runs
out of memory fails with :class:`TransientError`: the document is retried later, maybe on a
larger GPU, instead of failing as bad input.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

from handler.errors import TransientError

log = logging.getLogger(__name__)

P = TypeVar("P")
R = TypeVar("R")


@dataclass(slots=True)
class _Job(Generic[P, R]):
    item: P
    future: Future[R]


@dataclass(slots=True)
class BatchStats:
    """What a runner did since the stats were last taken (the worker's GPU metrics)."""

    batches: int = 0  # batches that ran to the end (the halves of a split one count each)
    pages: int = 0  # items in them
    seconds: float = 0.0  # time in ``run`` for them
    out_of_memory: int = 0  # batches that ran out of memory (and were split, or failed)


class _Stop:
    """Queued by ``close`` after the last job: the thread ends when it reaches it."""


_STOP = _Stop()


class BatchRunner(Generic[P, R]):
    """Runs ``run`` on batches of submitted items, on a thread of its own (module docstring)."""

    def __init__(
        self,
        run: Callable[[list[P]], list[R]],
        *,
        batch_size: int,
        wait_s: float,
        name: str,
        is_oom: Callable[[BaseException], bool] = lambda exc: False,
        on_oom: Callable[[], None] = lambda: None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        if wait_s < 0:
            raise ValueError(f"wait_s must not be negative, not {wait_s}")
        self.name = name
        self._run = run
        self._batch_size = batch_size
        self._wait_s = wait_s
        self._is_oom = is_oom
        self._on_oom = on_oom
        self._queue: queue.SimpleQueue[_Job[P, R] | _Stop] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._stats = BatchStats()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=f"batches-{name}", daemon=True)
        self._thread.start()

    @property
    def batch_size(self) -> int:
        """Items per batch now: the configured size, halved after each out-of-memory batch."""
        return self._batch_size

    def submit(self, item: P) -> Future[R]:
        """Queue ``item`` for a coming batch; its future gets the item's result."""
        future: Future[R] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the {self.name} batch runner is closed")
            self._queue.put(_Job(item, future))
        return future

    def take_stats(self) -> BatchStats:
        """The counts since the last call, and start counting afresh."""
        with self._lock:
            taken, self._stats = self._stats, BatchStats()
        return taken

    def close(self) -> None:
        """Run what is queued, then stop the thread (waits for it, unless called from it)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(_STOP)
        if threading.current_thread() is not self._thread:
            self._thread.join()

    # -- the runner's thread ---------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if isinstance(first, _Stop):
                return
            jobs = [first]
            stop = self._fill(jobs)
            self._execute(jobs)
            if stop:
                return

    def _fill(self, jobs: list[_Job[P, R]]) -> bool:
        """Add queued jobs up to the batch size, waiting at most ``wait_s`` for them to come.
        True when ``close`` was reached (the thread ends after this batch)."""
        deadline = time.monotonic() + self._wait_s
        while len(jobs) < self._batch_size:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                job = self._queue.get(timeout=remaining)
            except queue.Empty:
                return False
            if isinstance(job, _Stop):
                return True
            jobs.append(job)
        return False

    def _execute(self, jobs: list[_Job[P, R]]) -> None:
        """Run one batch, halving it on out-of-memory, and settle every job's future."""
        live = [job for job in jobs if job.future.set_running_or_notify_cancel()]
        pending: deque[list[_Job[P, R]]] = deque([live] if live else [])
        while pending:
            chunk = pending.popleft()
            started = time.perf_counter()
            try:
                results = self._run([job.item for job in chunk])
                if len(results) != len(chunk):
                    raise RuntimeError(
                        f"{self.name}: a batch of {len(chunk)} gave {len(results)} results"
                    )
            except Exception as exc:
                failure: Exception = exc
            else:
                seconds = time.perf_counter() - started
                log.debug("%s: batch of %d in %.2f s", self.name, len(chunk), seconds)
                with self._lock:
                    self._stats.batches += 1
                    self._stats.pages += len(chunk)
                    self._stats.seconds += seconds
                for job, result in zip(chunk, results, strict=True):
                    job.future.set_result(result)
                continue
            if not self._is_oom(failure):
                for job in chunk:
                    job.future.set_exception(failure)
                continue
            # the traceback's frames hold the failed batch's tensors: drop them before freeing
            failure.__traceback__ = None
            with self._lock:
                self._stats.out_of_memory += 1
            self._free_memory()
            if len(chunk) == 1:
                chunk[0].future.set_exception(self._out_of_memory(failure))
                continue
            half = math.ceil(len(chunk) / 2)
            self._batch_size = min(self._batch_size, half)
            log.warning(
                "%s: out of GPU memory on a batch of %d; retrying it in halves (batch size now %d)",
                self.name,
                len(chunk),
                self._batch_size,
            )
            pending.extendleft(reversed([chunk[:half], chunk[half:]]))

    def _free_memory(self) -> None:
        try:
            self._on_oom()
        except Exception:  # freeing memory must not lose the batch
            log.exception("%s: freeing memory after out-of-memory failed", self.name)

    def _out_of_memory(self, exc: BaseException) -> TransientError:
        error = TransientError(
            f"GPU out of memory on a single page ({self.name}), after emptying the cache: {exc}"
        )
        error.__cause__ = exc
        return error
