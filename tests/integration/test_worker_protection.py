"""The worker protects its instance from scale-in while it holds a message, and lifts it idle."""

from __future__ import annotations

from typing import Any

import pytest

from handler.aws import Clients
from handler.settings import Settings
from handler.worker.build import build_worker
from handler.worker.protection import ScaleInProtection
from tests.conftest import SAMPLES, upload

pytestmark = pytest.mark.integration


class RecordingAutoScaling:
    """Records SetInstanceProtection calls, and what the worker was doing at each."""

    def __init__(self) -> None:
        self.calls: list[bool] = []

    def set_instance_protection(self, **kwargs: Any) -> dict:
        assert kwargs["InstanceIds"] == ["i-0123456789abcdef0"]
        assert kwargs["AutoScalingGroupName"] == "pagedrop-workers"
        self.calls.append(kwargs["ProtectedFromScaleIn"])
        return {}


def test_protected_while_converting_and_open_to_scale_in_when_idle(
    stack_settings: Settings, clients: Clients
) -> None:
    autoscaling = RecordingAutoScaling()
    protection = ScaleInProtection(autoscaling, "pagedrop-workers", "i-0123456789abcdef0")
    sample = next(p for p in sorted(SAMPLES.iterdir()) if p.suffix == ".pdf")
    upload(clients, stack_settings, sample, sample.name)
    worker = build_worker(stack_settings, clients, protection=protection)
    stats = worker.run(max_idle_polls=1)
    assert stats.documents == 1
    # protected when the message came, lifted at the empty poll after it; nothing more
    assert autoscaling.calls == [True, False]
    assert protection.protected is False


def test_one_protection_shared_by_slots_lifts_only_when_all_are_idle() -> None:
    autoscaling = RecordingAutoScaling()
    protection = ScaleInProtection(autoscaling, "pagedrop-workers", "i-0123456789abcdef0")
    protection.busy("slot-0")
    protection.busy("slot-1")
    protection.idle("slot-0")
    assert autoscaling.calls == [True]  # slot-1 still works
    protection.idle("slot-1")
    protection.idle("slot-1")
    assert autoscaling.calls == [True, False]
