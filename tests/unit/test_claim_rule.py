"""The claim rule of DESIGN §4 as a pure function."""

from __future__ import annotations

import pytest

from handler.events.model import ObjectRef
from handler.status.model import ClaimOutcome, Status, StatusItem, decide_claim

NOW = 1_000_000.0


def _ref(etag: str = "e1", sequencer: str | None = None, version_id: str | None = None):
    return ObjectRef(
        bucket="b", key="input/a.pdf", etag=etag, sequencer=sequencer, version_id=version_id
    )


def _item(status: Status, version: str = "e1", lease_until: float = 0, sequencer: str = ""):
    return StatusItem(
        {
            "status": status.value,
            "version": version,
            "lease_until": lease_until,
            "sequencer": sequencer,
        }
    )


def test_no_item_is_claimed() -> None:
    assert decide_claim(None, _ref(), NOW) is ClaimOutcome.CLAIMED


@pytest.mark.parametrize("status", [Status.SUCCEEDED, Status.PARTIAL, Status.FAILED])
def test_same_version_already_final_is_a_duplicate(status: Status) -> None:
    assert decide_claim(_item(status), _ref(), NOW) is ClaimOutcome.DUPLICATE


def test_same_version_with_a_live_lease_is_busy() -> None:
    item = _item(Status.PROCESSING, lease_until=NOW + 10)
    assert decide_claim(item, _ref(), NOW) is ClaimOutcome.BUSY


def test_same_version_with_an_expired_lease_is_taken_over() -> None:
    item = _item(Status.PROCESSING, lease_until=NOW - 1)
    assert decide_claim(item, _ref(), NOW) is ClaimOutcome.CLAIMED


def test_an_older_event_by_sequencer_is_stale() -> None:
    item = _item(Status.SUCCEEDED, version="e2", sequencer="0055AED6DCD90281E6")
    event = _ref(etag="e1", sequencer="0055AED6DCD90281E5")
    assert decide_claim(item, event, NOW) is ClaimOutcome.STALE


def test_a_newer_version_takes_over_even_a_live_lease() -> None:
    item = _item(Status.PROCESSING, version="e1", lease_until=NOW + 100, sequencer="0A")
    assert decide_claim(item, _ref(etag="e2", sequencer="0B"), NOW) is ClaimOutcome.CLAIMED


def test_sequencers_of_different_lengths_compare_as_padded_hex() -> None:
    # "FF" is 255, "0100" is 256: the longer one is newer although "F" > "0" as text
    item = _item(Status.SUCCEEDED, version="e1", sequencer="FF")
    assert decide_claim(item, _ref(etag="e2", sequencer="0100"), NOW) is ClaimOutcome.CLAIMED
    item = _item(Status.SUCCEEDED, version="e2", sequencer="0100")
    assert decide_claim(item, _ref(etag="e1", sequencer="FF"), NOW) is ClaimOutcome.STALE


def test_version_id_identifies_the_version_when_present() -> None:
    item = _item(Status.SUCCEEDED, version="v1")
    assert decide_claim(item, _ref(etag="e1", version_id="v1"), NOW) is ClaimOutcome.DUPLICATE
    assert decide_claim(item, _ref(etag="e1", version_id="v2"), NOW) is ClaimOutcome.CLAIMED


def test_a_version_whose_retries_ran_out_may_be_tried_again() -> None:
    item = StatusItem(
        {"status": "FAILED", "version": "e1", "error": {"category": "exhausted", "message": "x"}}
    )
    assert decide_claim(item, _ref(), NOW) is ClaimOutcome.CLAIMED
    bad_input = StatusItem(
        {"status": "FAILED", "version": "e1", "error": {"category": "corrupt", "message": "x"}}
    )
    assert decide_claim(bad_input, _ref(), NOW) is ClaimOutcome.DUPLICATE
