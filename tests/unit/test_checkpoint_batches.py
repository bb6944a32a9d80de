"""Batched page checkpoints (handler/worker/checkpoints.py), with a fake clock and fake writes."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest

from handler.errors import LeaseLost
from handler.outputs.page import PageOutput
from handler.worker.checkpoints import FENCE_MAX_AGE_S, CheckpointBatches


def _page(number: int) -> PageOutput:
    return PageOutput(page_number=number, markdown=f"p{number}", elements=[], engine="e", seconds=0)


@dataclass
class Journal:
    """What the batcher did, in order: ("fence", pages so far), ("write", n), ("written", n)."""

    events: list[tuple[str, int]] = field(default_factory=list)
    now: float = 0.0
    lease_lost: bool = False
    failing: set[int] = field(default_factory=set)
    hold: threading.Event | None = None  # page writes wait for it when set
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, what: str, number: int) -> None:
        with self.lock:
            self.events.append((what, number))

    def fence(self) -> None:
        if self.lease_lost:
            raise LeaseLost("taken over")
        self.note("fence", sum(1 for e in self.events if e[0] == "added"))

    def fence_again(self) -> None:
        if self.lease_lost:
            raise LeaseLost("taken over")
        self.note("fence again", 0)

    def write(self, page: PageOutput) -> None:
        if self.hold is not None:
            assert self.hold.wait(5)
        if page.page_number in self.failing:
            raise OSError(f"write of page {page.page_number} failed")
        self.note("write", page.page_number)

    def of(self, what: str) -> list[int]:
        return [n for kind, n in self.events if kind == what]


def _batches(
    journal: Journal, interval_s: float, max_pages: int = 32, threads: int = 8
) -> CheckpointBatches:
    return CheckpointBatches(
        fence=journal.fence,
        fence_again=journal.fence_again,
        write_page=journal.write,
        on_written=lambda page: journal.note("written", page.page_number),
        interval_s=interval_s,
        clock=lambda: journal.now,
        max_pages=max_pages,
        threads=threads,
    )


def _convert(journal: Journal, batches: CheckpointBatches, numbers: range, step_s: float) -> None:
    """What the conversion loop does: check between pages, one page per ``step_s``."""
    for number in numbers:
        batches.check()
        journal.now += step_s
        journal.note("added", number)
        batches.add(_page(number))


def test_pages_are_fenced_and_written_in_batches_by_conversion_time() -> None:
    # Given pages of 1 s each and an interval of 2.5 s
    journal = Journal()
    with _batches(journal, interval_s=2.5) as batches:
        # When 7 pages are converted and the conversion finishes
        _convert(journal, batches, range(1, 8), step_s=1.0)
        batches.finish()
    # Then there is one fence a batch (after pages 3, 6 and at the end), each before its
    # batch's writes, and every page is reported written once
    assert journal.of("fence") == [3, 6, 7]
    assert sorted(journal.of("write")) == list(range(1, 8))
    assert sorted(journal.of("written")) == list(range(1, 8))
    fences = [i for i, e in enumerate(journal.events) if e[0] == "fence"]
    writes = {n: i for i, (kind, n) in enumerate(journal.events) if kind == "write"}
    for number, index in writes.items():
        assert index > fences[(number - 1) // 3]


def test_a_batch_holds_at_most_max_pages_and_interval_zero_is_a_page_a_batch() -> None:
    journal = Journal()
    with _batches(journal, interval_s=60, max_pages=4) as batches:
        _convert(journal, batches, range(1, 10), step_s=0.01)
        batches.finish()
    assert journal.of("fence") == [4, 8, 9]

    journal = Journal()
    with _batches(journal, interval_s=0) as batches:
        _convert(journal, batches, range(1, 4), step_s=0.01)
        batches.finish()
    assert journal.of("fence") == [1, 2, 3]


def test_a_failed_fence_writes_nothing_of_its_batch() -> None:
    journal = Journal()
    with _batches(journal, interval_s=2.5) as batches:
        _convert(journal, batches, range(1, 4), step_s=1.0)  # pages 1-3 flushed
        batches.finish()
        journal.lease_lost = True
        journal.note("added", 4)
        # When the lease is lost before the next batch
        with pytest.raises(LeaseLost):
            batches.add(_page(4))
            batches.finish()
    # Then page 4 was never written
    assert sorted(journal.of("write")) == [1, 2, 3]


def test_a_failed_write_stops_the_conversion_at_the_next_page_boundary() -> None:
    # Given page 2's write failing, a batch a page
    journal = Journal(failing={2})
    # When pages go on being converted
    with _batches(journal, interval_s=0) as batches, pytest.raises(OSError, match="page 2"):
        _convert(journal, batches, range(1, 10), step_s=0.1)
    # Then the error surfaces before page 4 at the latest (page 3's flush waits for page 2's
    # batch), the pages written are reported, and page 2 is not
    assert max(journal.of("added")) <= 3
    assert 2 not in journal.of("written") and 1 in journal.of("written")


def test_at_most_one_batch_is_in_flight() -> None:
    # Given the writes of the first batch held up
    journal = Journal(hold=threading.Event())
    batches = _batches(journal, interval_s=0)
    batches.add(_page(1))  # fenced; its write waits
    second = threading.Thread(target=batches.add, args=(_page(2),))
    # When the next batch is due
    second.start()
    second.join(0.3)
    # Then its flush waits for the batch in flight: no second fence yet
    assert second.is_alive() and journal.of("fence") == [0]
    journal.hold.set()
    second.join(5)
    batches.finish()
    batches.close()
    assert len(journal.of("fence")) == 2 and sorted(journal.of("written")) == [1, 2]


def test_a_write_long_after_its_fence_passes_the_fence_again() -> None:
    # Given a batch of two pages on one writing thread, the first write held up
    journal = Journal(hold=threading.Event())
    batches = _batches(journal, interval_s=60, threads=1)
    batches.add(_page(1))
    batches.add(_page(2))
    batches.flush()
    # When the second write starts more than FENCE_MAX_AGE_S after the fence, the lease
    # having been lost meanwhile
    journal.now += FENCE_MAX_AGE_S + 1
    journal.lease_lost = True
    journal.hold.set()
    # Then it checks the lease first and finds it gone: page 2 is not written
    with pytest.raises(LeaseLost):
        batches.finish()
    batches.close()
    assert journal.of("write") == [1] and journal.of("written") == [1]


def test_close_waits_for_the_batch_in_flight_and_does_not_raise() -> None:
    journal = Journal(hold=threading.Event(), failing={1})
    batches = _batches(journal, interval_s=0)
    batches.add(_page(1))
    threading.Timer(0.2, journal.hold.set).start()
    batches.close()  # the caller leaves on an error of its own
    assert journal.hold.is_set()
