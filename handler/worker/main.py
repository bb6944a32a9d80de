"""``pagedrop worker``: start-up (weights from S3 if configured), the slots, the signals."""

from __future__ import annotations

import logging

from handler.aws import Clients
from handler.settings import Settings
from handler.worker.loop import WorkerStats

log = logging.getLogger(__name__)


def run_worker(settings: Settings, clients: Clients) -> WorkerStats:
    """Run the worker until SIGTERM/SIGINT: ``settings.document_slots`` slots on shared
    engines. Raises ``EngineUnavailable`` before taking a message when an engine cannot
    start (weights missing, no GPU for a GPU engine)."""
    from handler.models.s3sync import sync_models_at_start
    from handler.worker.build import build_slots

    fetched = sync_models_at_start(settings, clients.s3)
    if fetched:
        log.info("fetched %d model file(s) from %s", fetched, settings.model_s3_uri)
    slots = build_slots(settings, clients)
    slots.install_signal_handlers()
    return slots.run()
