"""The status state machine against DynamoDB on the embedded endpoint."""

from __future__ import annotations

import pytest

from handler.aws import Clients
from handler.errors import ErrorCategory, LeaseLost
from handler.events.model import ObjectRef
from handler.settings import Settings
from handler.status.model import ClaimOutcome, Status
from handler.status.store import StatusStore

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _store(settings: Settings, clients: Clients, clock: Clock) -> StatusStore:
    return StatusStore(
        clients.dynamodb, settings.table_name, lease_s=60, retention_days=7, clock=clock
    )


def _ref(settings: Settings, etag: str = "e1") -> ObjectRef:
    return ObjectRef(bucket=settings.bucket, key="input/a.pdf", etag=etag, size=10)


def test_only_one_of_two_workers_claims(stack_settings: Settings, clients: Clients) -> None:
    clock = Clock()
    store = _store(stack_settings, clients, clock)
    first = store.claim(_ref(stack_settings), "w1", "output/a.pdf/")
    second = store.claim(_ref(stack_settings), "w2", "output/a.pdf/")
    assert first.outcome is ClaimOutcome.CLAIMED
    assert second.outcome is ClaimOutcome.BUSY
    item = store.get(_ref(stack_settings).pk)
    assert item is not None and item.worker == "w1" and item.status is Status.PROCESSING
    assert item.raw["expires_at"] == int(clock.now + 7 * 86400)


def test_an_expired_lease_is_taken_over_and_the_old_holder_cannot_write(
    stack_settings: Settings, clients: Clients
) -> None:
    # Given w1's claim whose lease ran out, and w2 taking the document over
    clock = Clock()
    store = _store(stack_settings, clients, clock)
    old = store.claim(_ref(stack_settings), "w1", "out/").claim
    clock.now += 61
    new = store.claim(_ref(stack_settings), "w2", "out/")
    assert new.outcome is ClaimOutcome.CLAIMED and new.claim is not None
    assert new.claim.attempt == 2
    # When the old holder tries to write, then it is refused on every transition
    assert old is not None
    with pytest.raises(LeaseLost):
        store.heartbeat(old)
    with pytest.raises(LeaseLost):
        store.progress(old, pages_done=1, pages_total=2, engines=["text-layer"])
    with pytest.raises(LeaseLost):
        store.complete(old, Status.SUCCEEDED, pages_done=2, pages_total=2, engines=[])
    with pytest.raises(LeaseLost):
        store.fail(old, ErrorCategory.CORRUPT, "x")
    # And the new holder's writes go through
    store.heartbeat(new.claim)
    store.complete(new.claim, Status.SUCCEEDED, pages_done=2, pages_total=2, engines=["rapidocr"])
    item = store.get(_ref(stack_settings).pk)
    assert item is not None and item.status is Status.SUCCEEDED and item.worker == "w2"


def test_heartbeat_extends_the_lease(stack_settings: Settings, clients: Clients) -> None:
    clock = Clock()
    store = _store(stack_settings, clients, clock)
    claim = store.claim(_ref(stack_settings), "w1", "out/").claim
    assert claim is not None
    clock.now += 50
    store.heartbeat(claim)
    clock.now += 50  # past the first lease, within the extended one
    assert store.claim(_ref(stack_settings), "w2", "out/").outcome is ClaimOutcome.BUSY


def test_finished_version_is_a_duplicate_and_a_new_version_is_claimed(
    stack_settings: Settings, clients: Clients
) -> None:
    store = _store(stack_settings, clients, Clock())
    claim = store.claim(_ref(stack_settings), "w1", "out/").claim
    assert claim is not None
    store.fail(claim, ErrorCategory.ENCRYPTED, "The PDF is password-protected.")
    again = store.claim(_ref(stack_settings), "w2", "out/")
    assert again.outcome is ClaimOutcome.DUPLICATE
    newer = store.claim(_ref(stack_settings, etag="e2"), "w2", "out/")
    assert newer.outcome is ClaimOutcome.CLAIMED and newer.claim is not None
    assert newer.claim.attempt == 1
    item = store.get(_ref(stack_settings).pk)
    assert item is not None and "error" not in item.raw


def test_released_lease_can_be_claimed_at_once(stack_settings: Settings, clients: Clients) -> None:
    store = _store(stack_settings, clients, Clock())
    claim = store.claim(_ref(stack_settings), "w1", "out/").claim
    assert claim is not None
    store.release(claim)
    assert store.claim(_ref(stack_settings), "w2", "out/").outcome is ClaimOutcome.CLAIMED


def test_exhausted_marks_only_an_unfinished_item_of_the_same_version(
    stack_settings: Settings, clients: Clients
) -> None:
    store = _store(stack_settings, clients, Clock())
    claim = store.claim(_ref(stack_settings), "w1", "out/").claim
    assert claim is not None
    assert store.mark_exhausted(_ref(stack_settings, etag="old"), "x") is False
    assert store.mark_exhausted(_ref(stack_settings), "retries used up") is True
    item = store.get(_ref(stack_settings).pk)
    assert item is not None and item.status is Status.FAILED
    assert item.raw["error"] == {"category": "exhausted", "message": "retries used up"}
    with pytest.raises(LeaseLost):
        store.heartbeat(claim)


def test_list_by_status_uses_the_index(stack_settings: Settings, clients: Clients) -> None:
    clock = Clock()
    store = _store(stack_settings, clients, clock)
    for i in range(3):
        ref = ObjectRef(bucket=stack_settings.bucket, key=f"input/{i}.pdf", etag="e")
        claim = store.claim(ref, "w", "out/").claim
        assert claim is not None
        clock.now += 1
        if i != 1:
            store.fail(claim, ErrorCategory.CORRUPT, "bad")
    failed = [i.raw["key"] for i in store.list_by_status(Status.FAILED)]
    assert failed == ["input/2.pdf", "input/0.pdf"]
    assert [i.raw["key"] for i in store.list_by_status(Status.PROCESSING)] == ["input/1.pdf"]
