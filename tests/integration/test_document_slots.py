"""Document slots: one worker process converts several documents at once on shared engines,
so a batching engine gets pages of several documents together."""

from __future__ import annotations

from pathlib import Path

import pytest

from handler.aws import Clients
from handler.engines.registry import FACTORIES
from handler.settings import Settings
from handler.worker.build import build_slots, status_store
from tests.batching_fakes import SlowBatcher
from tests.conftest import upload

pytestmark = pytest.mark.integration


def _one_page_pdfs(folder: Path, count: int) -> list[Path]:
    import pymupdf

    paths = []
    for number in range(count):
        document = pymupdf.open()
        document.new_page().insert_text((72, 300), f"Receipt number {number} for one page.")
        path = folder / f"receipt-{number}.pdf"
        document.save(path)
        paths.append(path)
    return paths


def test_slots_share_one_engine_and_overlap_their_documents(
    stack_settings: Settings,
    clients: Clients,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a batching engine shared by three slots, and six one-page documents
    engine = SlowBatcher(max_in_flight=8, delay_s=0.6)
    built: list[SlowBatcher] = []

    def factory(settings: Settings) -> SlowBatcher:
        built.append(engine)
        return engine

    monkeypatch.setitem(FACTORIES, "vlm", factory)
    settings = stack_settings.model_copy(
        update={"engine": "vlm", "ocr_engine": "vlm", "document_slots": 3}
    )
    keys = [upload(clients, settings, p, p.name) for p in _one_page_pdfs(tmp_path, 6)]
    # When the slots run until the queue is empty
    slots = build_slots(settings, clients)
    stats = slots.run(max_idle_polls=2)
    # Then every document succeeded, the engine was built once, and pages of different
    # documents were in the engine at the same time
    assert stats.documents == 6
    assert len(built) == 1
    assert engine.peak >= 2
    store = status_store(settings, clients)
    for key in keys:
        item = store.get(f"{settings.bucket}/{key}")
        assert item is not None and item.status.value == "SUCCEEDED", item.raw if item else key
    # And only the first slot writes the health file
    assert slots.workers[0].health.path == settings.health_file
    assert all(w.health.path is None for w in slots.workers[1:])
