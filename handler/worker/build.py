"""Wiring a worker from settings and clients (the entry points call this)."""

from __future__ import annotations

import threading

from handler.aws import Clients
from handler.engines.registry import EngineSet
from handler.health import HealthReporter
from handler.metrics import Metrics
from handler.settings import Settings
from handler.status.store import StatusStore
from handler.storage.objects import ObjectStore
from handler.worker.document import DocumentProcessor
from handler.worker.heartbeat import Heartbeat
from handler.worker.loop import Worker, default_worker_id


def status_store(settings: Settings, clients: Clients) -> StatusStore:
    return StatusStore(
        clients.dynamodb,
        settings.table_name,
        lease_s=settings.lease_s,
        retention_days=settings.retention_days,
    )


def build_worker(
    settings: Settings,
    clients: Clients,
    engines: EngineSet | None = None,
    *,
    metrics: Metrics | None = None,
) -> Worker:
    """A worker on the settings' queue; ``engines`` may be shared between workers.

    ``metrics`` defaults to the settings' (EMF lines on stdout, or none when disabled).
    """
    metrics = metrics or Metrics.from_settings(settings)
    worker_id = settings.worker_id or default_worker_id()
    status = status_store(settings, clients)
    heartbeat = Heartbeat(
        clients.sqs,
        settings.queue_url,
        status,
        interval_s=settings.heartbeat_interval_s,
        visibility_timeout_s=settings.visibility_timeout_s,
    )
    stop = threading.Event()
    processor = DocumentProcessor(
        settings,
        ObjectStore(clients.s3, settings.bucket),
        status,
        engines or EngineSet(settings),
        heartbeat,
        worker_id,
        should_stop=stop.is_set,
        metrics=metrics,
    )
    return Worker(
        clients.sqs,
        settings.queue_url,
        settings.dlq_url,
        processor,
        heartbeat,
        settings,
        stop_event=stop,
        metrics=metrics,
        health=HealthReporter(settings.health_file, worker=worker_id),
    )
