"""The GPU engines end to end in the local pipeline, with a tiny random PaddleOCR-VL on the CPU.

A document goes in through S3, a real worker converts it with the engine loaded from a local
model folder through its real loading path, and the status and outputs come out. The tiny
model's words are random: these tests check the path, not the reading (that needs the real
weights and a GPU: bench/gpu.py, docs/gpu.md).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from handler.aws import Clients
from handler.settings import Settings
from handler.worker.build import status_store
from tests.conftest import DATA, SAMPLES, drain, read_outputs, upload

pytestmark = [pytest.mark.integration, pytest.mark.models]


def _check_document(clients: Clients, settings: Settings, key: str, engines: list[str]) -> None:
    item = status_store(settings, clients).get(f"{settings.bucket}/{key}")
    assert item is not None, key
    assert item.raw["status"] == "SUCCEEDED", item.raw.get("error")
    outputs = read_outputs(clients, settings, key)
    manifest = json.loads(outputs["manifest.json"])
    assert [page["engine"] for page in manifest["pages"]] == engines
    elements = json.loads(outputs["elements.json"])
    for element in elements:
        meta = element["metadata"]
        assert meta["engine"] in engines
        assert meta["coordinates"]["system"] == "PixelSpace"
        x_values = [x for x, _ in meta["coordinates"]["points"]]
        assert 0 <= min(x_values) <= max(x_values) <= meta["coordinates"]["layout_width"]
    assert "document.md" in outputs


def test_the_vlm_engine_converts_scans_and_leaves_text_pages_to_the_text_layer(
    stack_settings: Settings,
    clients: Clients,
    tiny_paddleocr_vl_dir: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    # Given a worker whose OCR engine is the vlm engine on a local model folder
    settings = stack_settings.model_copy(
        update={
            "ocr_engine": "vlm",
            "vlm_model_path": tiny_paddleocr_vl_dir,
            "device": "cpu",
            "vlm_max_new_tokens": 8,
            "gpu_batch_size": 4,
            "gpu_batch_wait_ms": 100,
        }
    )
    photo = upload(clients, settings, SAMPLES / "tess__phototest.tif", "photo.tif")
    mixed = upload(clients, settings, SAMPLES / "mixed.pdf", "mixed.pdf")
    scan = upload(clients, settings, DATA / "scanned" / "docling__ocr_test.pdf", "scan.pdf")
    # When it drains the queue
    with caplog.at_level(logging.INFO, logger="handler.worker.document"):
        drain(settings, clients)
    # Then the worker said at start where the engine runs
    assert f"engine vlm: paddleocr-vl on cpu (no GPU), float32, model {tiny_paddleocr_vl_dir}" in (
        caplog.text
    )
    # And every document succeeded, its scanned pages read by the vlm engine
    _check_document(clients, settings, photo, ["vlm"])
    _check_document(clients, settings, mixed, ["text-layer", "vlm"])
    _check_document(clients, settings, scan, ["vlm"])
    # And the worker published its GPU batches (EMF lines on stdout)
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    batches = [blob for blob in emf if blob.get("engine") == "vlm" and "GpuBatches" in blob]
    assert sum(sum(blob["GpuBatches"]) for blob in batches) >= 1


def test_the_paddleocr_vl_engine_runs_its_transformers_backend(
    stack_settings: Settings,
    clients: Clients,
    tiny_paddleocr_vl_dir: Path,
    tmp_path: Path,
) -> None:
    pytest.importorskip("paddleocr")
    pytest.importorskip("torch")
    # Given the model folder laid out as `pagedrop models download paddleocr-vl` leaves it
    # (the layout model cannot be had offline: pages are read whole)
    from tests.unit.test_paddleocr_vl_engine import INFERENCE_YML

    folder = shutil.copytree(tiny_paddleocr_vl_dir, tmp_path / "models" / "paddleocr-vl")
    (folder / "inference.yml").write_text(INFERENCE_YML)
    settings = stack_settings.model_copy(
        update={
            "engine": "paddleocr-vl",
            "ocr_engine": "paddleocr-vl",
            "model_dir": tmp_path / "models",
            "paddleocr_vl_backend": "transformers",
            "paddleocr_vl_layout": False,
            "device": "cpu",
            "vlm_max_new_tokens": 8,
            "vlm_max_pixels": 200_000,
            "gpu_batch_size": 2,
            "gpu_batch_wait_ms": 100,
        }
    )
    photo = upload(clients, settings, SAMPLES / "tess__phototest.tif", "photo.tif")
    # When a worker drains the queue, then the document succeeded through paddleocr-vl
    drain(settings, clients)
    _check_document(clients, settings, photo, ["paddleocr-vl"])
