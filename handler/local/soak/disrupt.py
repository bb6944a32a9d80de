"""When the soak test disrupts a worker, which one, and with which signal.

Two ways to place the disruptions: spread over the run's progress (each at a random share
of documents final, between ``FIRST_SHARE`` and ``LAST_SHARE``, so they all happen however
fast the machine is), or on the clock (``every_s`` apart on average). A worker in the
middle of a document is preferred: at a due moment the plan waits up to
``HOLDER_PATIENCE_S`` for one before taking any running worker.
"""

from __future__ import annotations

import random
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from handler.local.soak.fleet import WorkerProcess
from handler.status.model import Status

FIRST_SHARE, LAST_SHARE = 0.05, 0.9  # of documents final, where progress-placed ones fall
CLOCK_JITTER = (0.5, 1.5)  # a clock interval is every_s times a draw from this range
HOLDER_PATIENCE_S = 3.0


@dataclass(slots=True)
class Disruptions:
    """What was done."""

    kills: int = 0
    kills_mid_document: int = 0  # the victim held a live lease when it was killed
    stops: int = 0


class DisruptionPlan:
    def __init__(
        self,
        kills: int,
        stops: int,
        rng: random.Random,
        *,
        every_s: float | None,
        start: float,
    ) -> None:
        self._signals = [signal.SIGKILL] * kills + [signal.SIGTERM] * stops
        rng.shuffle(self._signals)
        self._rng = rng
        self._every_s = every_s
        self._thresholds = sorted(rng.uniform(FIRST_SHARE, LAST_SHARE) for _ in self._signals)
        self._next_at = start + self._interval()
        self._due_since: float | None = None
        self.done = Disruptions()

    def due(self, now: float, done_share: float) -> bool:
        """Whether a disruption is due (by the clock, or by the share of documents final)."""
        if not self._signals:
            return False
        if self._every_s is None:
            return done_share >= self._thresholds[0]
        return now >= self._next_at

    def choose(self, now: float, holders: Sequence[WorkerProcess]) -> bool | None:
        """For a due disruption: None (wait for a holder), True (a holder) or False (any)."""
        if holders:
            return True
        self._due_since = self._due_since if self._due_since is not None else now
        return False if now - self._due_since >= HOLDER_PATIENCE_S else None

    def take(self, now: float, mid_document: bool) -> signal.Signals:
        """The signal for this disruption; counts it and places the next one."""
        sig = self._signals.pop(0)
        self._thresholds.pop(0)
        self._next_at = now + self._interval()
        self._due_since = None
        if sig is signal.SIGKILL:
            self.done.kills += 1
            self.done.kills_mid_document += mid_document
        else:
            self.done.stops += 1
        return sig

    def _interval(self) -> float:
        return (self._every_s or 0.0) * self._rng.uniform(*CLOCK_JITTER)


def lease_holders(
    items: Mapping[str, Mapping[str, Any]], running: Sequence[WorkerProcess], now: float
) -> list[WorkerProcess]:
    """Running workers that hold a live lease on a document in progress (by worker id)."""
    by_id = {worker.worker_id: worker for worker in running}
    holders = {
        str(item.get("worker"))
        for item in items.values()
        if item.get("status") == Status.PROCESSING.value and float(item.get("lease_until", 0)) > now
    }
    return [by_id[w] for w in sorted(holders) if w in by_id]
