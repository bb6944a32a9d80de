"""BatchRunner with plain callables: batches, order, waiting, out-of-memory halving, errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from handler.engines.batching import BatchRunner
from handler.errors import TransientError

WAIT = 5.0  # seconds any single step may take before a test fails


class FakeOom(RuntimeError):
    """Stands in for torch.OutOfMemoryError."""


class Recorder:
    """A ``run`` that records each batch and answers ``item * 10``.

    Its first batch (the item ``"gate"``) blocks until :meth:`open`, so that the items
    submitted meanwhile are all queued when the next batch is formed.
    """

    def __init__(self, fail: Callable[[list[object]], Exception | None] = lambda items: None):
        self.batches: list[list[object]] = []
        self.fail = fail
        self.gate_running = threading.Event()
        self._gate = threading.Event()

    def __call__(self, items: list[object]) -> list[object]:
        if items == ["gate"]:
            self.gate_running.set()
            assert self._gate.wait(WAIT)
            return ["open"]
        self.batches.append(list(items))
        error = self.fail(items)
        if error is not None:
            raise error
        return [item * 10 for item in items]  # type: ignore[operator]

    def open(self) -> None:
        self._gate.set()


@pytest.fixture
def runners() -> Iterator[list[BatchRunner]]:
    made: list[BatchRunner] = []
    yield made
    for runner in made:
        runner.close()


def gated(
    runners: list[BatchRunner], run: Recorder, **kwargs: object
) -> BatchRunner[object, object]:
    """A runner whose thread is busy with the gate batch when this returns."""
    runner: BatchRunner[object, object] = BatchRunner(run, name="test", **kwargs)  # type: ignore[arg-type]
    runners.append(runner)
    runner.submit("gate")
    assert run.gate_running.wait(WAIT)
    return runner


def test_queued_items_run_in_full_batches_and_results_keep_their_items(runners):
    # given 7 items queued while the runner is busy
    run = Recorder()
    runner = gated(runners, run, batch_size=3, wait_s=0)
    futures = [runner.submit(i) for i in range(7)]
    # when it is free again
    run.open()
    # then they run 3 at a time, in the order submitted, each future with its own result
    assert [f.result(WAIT) for f in futures] == [i * 10 for i in range(7)]
    assert run.batches == [[0, 1, 2], [3, 4, 5], [6]]


def test_a_partial_batch_waits_for_more_items_at_most_wait_s(runners):
    run = Recorder()
    runner: BatchRunner[int, int] = BatchRunner(run, batch_size=4, wait_s=0.4, name="test")
    runners.append(runner)
    started = time.monotonic()
    first = runner.submit(1)
    time.sleep(0.05)
    second = runner.submit(2)
    # the two items share a batch, which ran once the wait was over (not full)
    assert (first.result(WAIT), second.result(WAIT)) == (10, 20)
    elapsed = time.monotonic() - started
    assert run.batches == [[1, 2]]
    assert 0.35 <= elapsed < WAIT


def test_a_full_batch_does_not_wait(runners):
    run = Recorder()
    runner: BatchRunner[int, int] = BatchRunner(run, batch_size=2, wait_s=WAIT * 2, name="test")
    runners.append(runner)
    started = time.monotonic()
    futures = [runner.submit(i) for i in (1, 2)]
    assert [f.result(WAIT) for f in futures] == [10, 20]
    assert time.monotonic() - started < WAIT


def test_out_of_memory_halves_the_batch_and_keeps_the_smaller_size(runners):
    # given a GPU that holds at most 2 items per batch
    freed = []
    run = Recorder(fail=lambda items: FakeOom("CUDA out of memory") if len(items) > 2 else None)
    runner = gated(
        runners,
        run,
        batch_size=8,
        wait_s=0,
        is_oom=lambda exc: isinstance(exc, FakeOom),
        on_oom=lambda: freed.append(1),
    )
    futures = [runner.submit(i) for i in range(8)]
    run.open()
    # then every item gets its result, halves were retried in order, the size stays at 2
    assert [f.result(WAIT) for f in futures] == [i * 10 for i in range(8)]
    assert [len(batch) for batch in run.batches] == [8, 4, 2, 2, 4, 2, 2]
    assert [x for batch in run.batches if len(batch) == 2 for x in batch] == list(range(8))
    assert runner.batch_size == 2
    assert len(freed) == 3
    # and later batches are no larger
    later = [runner.submit(i) for i in range(3)]
    assert [f.result(WAIT) for f in later] == [0, 10, 20]
    assert all(len(batch) <= 2 for batch in run.batches[7:])


def test_stats_count_batches_pages_and_out_of_memory_splits_since_last_taken(runners):
    run = Recorder(fail=lambda items: FakeOom("CUDA out of memory") if len(items) > 2 else None)
    runner = gated(
        runners, run, batch_size=4, wait_s=0, is_oom=lambda exc: isinstance(exc, FakeOom)
    )
    futures = [runner.submit(i) for i in range(4)]
    run.open()
    assert [f.result(WAIT) for f in futures] == [0, 10, 20, 30]
    stats = runner.take_stats()
    # the gate's batch of 1, then the batch of 4 that ran out of memory and its halves
    assert (stats.batches, stats.pages, stats.out_of_memory) == (3, 5, 1)
    assert stats.seconds >= 0
    assert runner.take_stats().batches == 0  # taken: counting starts afresh


def test_out_of_memory_on_a_single_item_is_a_transient_error(runners):
    freed = []
    run = Recorder(fail=lambda items: FakeOom("CUDA out of memory"))
    runner: BatchRunner[int, int] = BatchRunner(
        run,
        batch_size=1,
        wait_s=0,
        name="test",
        is_oom=lambda exc: isinstance(exc, FakeOom),
        on_oom=lambda: freed.append(1),
    )
    runners.append(runner)
    error = runner.submit(1).exception(WAIT)
    assert isinstance(error, TransientError)
    assert "out of memory" in str(error)
    assert isinstance(error.__cause__, FakeOom)
    assert freed == [1]


def test_a_failing_on_oom_does_not_lose_the_batch(runners):
    def broken_free() -> None:
        raise OSError("no")

    run = Recorder(fail=lambda items: FakeOom("oom") if len(items) > 1 else None)
    runner = gated(
        runners,
        run,
        batch_size=2,
        wait_s=0,
        is_oom=lambda exc: isinstance(exc, FakeOom),
        on_oom=broken_free,
    )
    futures = [runner.submit(i) for i in (1, 2)]
    run.open()
    assert [f.result(WAIT) for f in futures] == [10, 20]


def test_an_error_fails_every_item_of_its_batch_and_the_runner_goes_on(runners):
    run = Recorder(fail=lambda items: ValueError("bad batch") if 3 in items else None)
    runner = gated(runners, run, batch_size=2, wait_s=0)
    futures = [runner.submit(i) for i in (1, 2, 3, 4, 5)]
    run.open()
    assert [futures[0].result(WAIT), futures[1].result(WAIT)] == [10, 20]
    for failed in futures[2:4]:
        error = failed.exception(WAIT)
        assert isinstance(error, ValueError) and str(error) == "bad batch"
    assert futures[4].result(WAIT) == 50
    assert not isinstance(futures[2].exception(), TransientError)  # not an OOM: not retried


def test_a_run_that_returns_too_few_results_fails_the_batch(runners):
    runner: BatchRunner[int, int] = BatchRunner(
        lambda items: items[:-1], batch_size=1, wait_s=0, name="short"
    )
    runners.append(runner)
    error = runner.submit(1).exception(WAIT)
    assert isinstance(error, RuntimeError)
    assert "gave 0 results" in str(error)


def test_a_cancelled_item_is_not_run(runners):
    run = Recorder()
    runner = gated(runners, run, batch_size=4, wait_s=0)
    kept, cancelled = runner.submit(1), runner.submit(2)
    assert cancelled.cancel()
    run.open()
    assert kept.result(WAIT) == 10
    assert run.batches == [[1]]


def test_close_finishes_the_queued_items_then_stops():
    def slow(items: list[int]) -> list[int]:
        time.sleep(0.02)
        return items

    runner: BatchRunner[int, int] = BatchRunner(slow, batch_size=2, wait_s=0, name="closing")
    futures = [runner.submit(i) for i in range(5)]
    runner.close()
    assert all(f.done() for f in futures)
    assert [f.result() for f in futures] == list(range(5))
    assert not runner._thread.is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        runner.submit(6)
    runner.close()  # twice is fine


@pytest.mark.parametrize(("size", "wait"), [(0, 0.0), (1, -1.0)])
def test_bad_sizes_are_refused(size, wait):
    with pytest.raises(ValueError):
        BatchRunner(lambda items: items, batch_size=size, wait_s=wait, name="bad")
