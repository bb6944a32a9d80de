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
from handler.worker.protection import ScaleInProtection
from handler.worker.protection import from_settings as protection_from_settings
from handler.worker.slots import WorkerSlots


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
    health: HealthReporter | None = None,
    protection: ScaleInProtection | None = None,
) -> Worker:
    """A worker on the settings' queue; ``engines`` may be shared between workers.

    ``metrics`` defaults to the settings' (EMF lines on stdout, or none when disabled);
    ``health`` to a reporter writing the settings' health file. ``protection`` (the
    fleet's scale-in protection, :func:`handler.worker.protection.from_settings`) is held
    while the worker holds messages; None: not in a fleet.
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
        health=health or HealthReporter(settings.health_file, worker=worker_id),
        protection=protection,
    )


def build_slots(settings: Settings, clients: Clients) -> WorkerSlots:
    """``settings.document_slots`` workers sharing one set of engines (and so the GPU's
    batches); the first reports health, the others keep theirs in memory."""
    engines = EngineSet(settings)
    metrics = Metrics.from_settings(settings)
    protection = protection_from_settings(settings, clients)  # one per instance, shared
    base_id = settings.worker_id or default_worker_id()
    workers = [build_worker(settings, clients, engines, metrics=metrics, protection=protection)]
    for index in range(1, settings.document_slots):
        slot = settings.model_copy(update={"worker_id": f"{base_id}#{index}", "health_port": 0})
        workers.append(
            build_worker(
                slot,
                clients,
                engines,
                metrics=metrics,
                health=HealthReporter(None),
                protection=protection,
            )
        )
    return WorkerSlots(workers)
