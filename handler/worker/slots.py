"""Several document slots in one worker process, sharing its engines.

Each slot is a full :class:`~handler.worker.loop.Worker` on the same queue (its own
receives, heartbeat, leases and settling); the slots share one
:class:`~handler.engines.registry.EngineSet`, so with a batching GPU engine the pages of the
documents in the slots share generation batches: one-page documents (photos, receipts) fill
a batch together instead of running one page at a time. Only the first slot writes the
health file and serves ``/health``; the others run with an in-memory reporter.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterable, Sequence

from handler.worker.loop import Worker, WorkerStats

log = logging.getLogger(__name__)


class WorkerSlots:
    """Runs ``workers`` side by side until they stop; a stop signal stops them all."""

    def __init__(self, workers: Sequence[Worker]) -> None:
        if not workers:
            raise ValueError("at least one worker slot")
        self.workers = list(workers)
        self._errors: list[BaseException] = []

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop every slot (main thread only). Each slot gets the
        shutdown bound of a single worker; if any has a page stuck in an engine after it,
        every slot hands its messages back and the process ends (exit status 0)."""

        def on_signal(signum: int, frame: object) -> None:
            if not any(worker.stopping for worker in self.workers):
                log.info("signal %s: stopping %d slots", signal.Signals(signum).name, len(self))
                self.stop()
                threading.Thread(target=self._watchdog, name="shutdown", daemon=True).start()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)

    def __len__(self) -> int:
        return len(self.workers)

    def _watchdog(self) -> None:
        clean: list[bool] = []
        watchers = [
            threading.Thread(target=lambda w=worker: clean.append(w.watch_shutdown()))
            for worker in self.workers
        ]
        for watcher in watchers:
            watcher.start()
        for watcher in watchers:
            watcher.join()
        if not all(clean):
            os._exit(0)

    def run(self, *, max_idle_polls: int | None = None) -> WorkerStats:
        """Run every slot (the first on this thread) and return their summed stats.

        An error that ends one slot (an engine that cannot start) stops the others and is
        raised here once they have handed their messages back.
        """
        threads = [
            threading.Thread(
                target=self._run_slot, args=(worker, max_idle_polls), name=f"slot-{index}"
            )
            for index, worker in enumerate(self.workers[1:], start=1)
        ]
        for thread in threads:
            thread.start()
        self._run_slot(self.workers[0], max_idle_polls)
        for thread in threads:
            thread.join()
        if self._errors:
            raise self._errors[0]
        return _summed(worker.stats for worker in self.workers)

    def _run_slot(self, worker: Worker, max_idle_polls: int | None) -> None:
        try:
            worker.run(max_idle_polls=max_idle_polls)
        except BaseException as exc:
            self._errors.append(exc)
            self.stop()


def _summed(stats: Iterable[WorkerStats]) -> WorkerStats:
    total = WorkerStats()
    for one in stats:
        total.messages += one.messages
        total.documents += one.documents
        for key, count in one.outcomes.items():
            total.outcomes[key] = total.outcomes.get(key, 0) + count
    return total
