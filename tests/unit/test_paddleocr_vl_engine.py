"""The paddleocr-vl engine: local folders only, typed start-up failures, and a real run of
paddleocr's PaddleOCRVL pipeline (transformers backend) with a tiny random recogniser.

The tiny model's text is random: the run checks the structure of what comes back, not the
words. Without paddleocr, torch and transformers (the project's own venv) those tests skip;
the rest run everywhere.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from handler.documents.limits import Limits
from handler.documents.open import open_document
from handler.documents.pages import PageInput
from handler.engines.base import PageResult
from handler.engines.paddleocr_vl import (
    MAX_SIDE,
    TARGET_DPI,
    VL_MODEL_NAME,
    PaddleOcrVlEngine,
    is_out_of_memory,
    render_scale,
)
from handler.errors import EngineUnavailable
from handler.settings import Settings

DATA = Path(__file__).parent.parent / "data"
LIMITS = Limits(max_bytes=50_000_000, max_pages=100, max_pixels_per_page=40_000_000)
#: What paddlex reads the recogniser's name from (``Global.model_name``); it must be the
#: name the pipeline's configuration gives the recogniser, or paddlex refuses the folder
#: (paddlex/inference/models/utils/model_resolver.py).
INFERENCE_YML = f"Global:\n  model_name: {VL_MODEL_NAME}\n"


def settings_for(model_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "model_dir": model_dir,
        "paddleocr_vl_backend": "transformers",
        "device": "cpu",
        "gpu_batch_size": 2,
        "gpu_batch_wait_ms": 500,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def fake_model(folder: Path) -> Path:
    """A folder that passes the file checks (not a loadable model)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "inference.yml").write_text(INFERENCE_YML)
    (folder / "model.safetensors").write_bytes(b"x")
    return folder


# -- start-up checks (no paddleocr needed) ---------------------------------------------------


def test_missing_weights_name_the_download_command(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable, match="pagedrop models download paddleocr-vl"):
        PaddleOcrVlEngine(settings_for(tmp_path))


def test_a_recogniser_without_inference_yml_is_refused(tmp_path: Path) -> None:
    folder = fake_model(tmp_path / "paddleocr-vl")
    (folder / "inference.yml").unlink()

    with pytest.raises(EngineUnavailable, match=r"inference\.yml"):
        PaddleOcrVlEngine(settings_for(tmp_path), layout=False)


def test_a_missing_layout_model_is_refused(tmp_path: Path) -> None:
    fake_model(tmp_path / "paddleocr-vl")

    with pytest.raises(EngineUnavailable, match="PP-DocLayoutV2"):
        PaddleOcrVlEngine(settings_for(tmp_path))


def test_without_paddleocr_the_error_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_model(tmp_path / "paddleocr-vl")
    monkeypatch.setitem(sys.modules, "paddleocr", None)  # import paddleocr -> ImportError

    with pytest.raises(EngineUnavailable, match=r"pip install 'pagedrop\[paddle\]'"):
        PaddleOcrVlEngine(settings_for(tmp_path), layout=False)


def blank(width: int, height: int, dpi: int, pdf: bool) -> PageInput:
    def render() -> np.ndarray:
        return np.zeros((height, width, 3), np.uint8)

    return PageInput(1, width, height, dpi, dpi / 72, render, pdf_page=object() if pdf else None)


@pytest.mark.parametrize(
    ("page", "factor"),
    [
        (blank(1700, 2200, 200, pdf=True), TARGET_DPI / 200),
        (blank(850, 1100, 100, pdf=True), 1.0),  # never drawn larger than the layout
        (blank(3000, 4000, 72, pdf=False), MAX_SIDE / 4000),
        (blank(640, 480, 72, pdf=False), 1.0),
    ],
)
def test_render_scale(page: PageInput, factor: float) -> None:
    assert render_scale(page) == pytest.approx(factor)


@pytest.mark.parametrize(
    ("exc", "oom"),
    [
        (MemoryError("ResourceExhaustedError: Out of memory error on GPU 0."), True),
        (RuntimeError("(ResourceExhausted) Out of memory error on GPU 0. Cannot allocate"), True),
        (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
        (ValueError("Model name mismatch"), False),
    ],
)
def test_out_of_memory_is_recognised(exc: BaseException, oom: bool) -> None:
    assert is_out_of_memory(exc) is oom


# -- a real pipeline run (paddleocr + torch + transformers) ----------------------------------


@pytest.fixture(scope="module")
def engine(
    tiny_paddleocr_vl_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PaddleOcrVlEngine]:
    pytest.importorskip("paddleocr")
    model_dir = tmp_path_factory.mktemp("paddle-models")
    folder = shutil.copytree(tiny_paddleocr_vl_dir, model_dir / "paddleocr-vl")
    (folder / "inference.yml").write_text(INFERENCE_YML)
    # No layout model offline (PP-DocLayoutV2 ships only with the real snapshot): each page
    # is read as one block with the "OCR:" prompt. 8 new tokens and a small pixel budget keep
    # a page under a second.
    built = PaddleOcrVlEngine(
        settings_for(model_dir), layout=False, max_new_tokens=8, max_pixels=200_000
    )
    yield built
    built.close()


@pytest.mark.models
def test_a_scanned_image_comes_back_as_a_page_result(engine: PaddleOcrVlEngine) -> None:
    path = DATA / "scanned" / "tess__phototest.tif"
    with open_document(path, LIMITS, dpi=150, filename=path.name) as document:
        page = next(document.pages())
        result = engine.convert(page)

    assert isinstance(result, PageResult)
    assert (result.page_number, result.engine, result.error) == (1, "paddleocr-vl", None)
    assert (result.width, result.height) == (page.layout_width, page.layout_height)
    assert result.elements and all(e.text for e in result.elements)
    for element in result.elements:
        x0, y0, x1, y1 = element.bbox
        assert 0 <= x0 < x1 <= result.width and 0 <= y0 < y1 <= result.height
    assert result.seconds > 0


@pytest.mark.models
def test_pdf_pages_submitted_together_come_back_in_batches(
    engine: PaddleOcrVlEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    predict = engine._pipeline.predict

    def counted(images: list[np.ndarray], **kwargs: object) -> object:
        batches.append(len(images))
        return predict(images, **kwargs)

    monkeypatch.setattr(engine._pipeline, "predict", counted)
    path = DATA / "born_digital" / "pysf__multicolumn.pdf"
    with open_document(path, LIMITS, dpi=200, filename=path.name) as document:
        pages = list(document.pages([1, 2, 3]))
        futures = [engine.submit(page) for page in pages]  # drawn here, read in batches of 2
        results = [future.result(timeout=120) for future in futures]

    assert sorted(batches, reverse=True) == [2, 1]
    assert [r.page_number for r in results] == [1, 2, 3]
    for page, result in zip(pages, results, strict=True):
        # read at 144 DPI, boxes in the 200-DPI layout: the one block covers the whole page
        assert (result.width, result.height) == (page.layout_width, page.layout_height)
        assert result.elements[0].bbox[1] == 0.0
        assert result.elements[-1].bbox[3] == pytest.approx(page.layout_height, abs=1.0)
    assert engine.max_in_flight == 4


@pytest.mark.models
def test_describe_says_backend_device_and_folders(engine: PaddleOcrVlEngine) -> None:
    line = engine.describe()

    assert "transformers backend" in line and "on cpu" in line and "no layout model" in line
    assert not engine.needs_gpu


class RecordingPipeline:
    """Stands in for ``paddleocr.PaddleOCRVL``: keeps what the engine built it with."""

    built: ClassVar[dict[str, object]] = {}

    def __init__(self, **kwargs: object) -> None:
        RecordingPipeline.built = kwargs

    def close(self) -> None:
        pass


@pytest.mark.models
@pytest.mark.parametrize("nested", [False, True])
def test_the_pipeline_gets_the_local_folders_and_the_layout_models_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nested: bool
) -> None:
    pytest.importorskip("paddlex")
    import handler.engines.paddleocr_vl as module

    snapshot = tmp_path / "paddleocr-vl"
    recogniser = fake_model(snapshot / "PaddleOCR-VL-0.9B" if nested else snapshot)
    layout = snapshot / "PP-DocLayoutV2"
    layout.mkdir()
    (layout / "inference.yml").write_text("Global:\n  model_name: PP-DocLayoutV2\n")
    (layout / "inference.pdiparams").write_bytes(b"x")
    monkeypatch.setattr(module, "_import_pipeline", lambda: RecordingPipeline)

    engine = PaddleOcrVlEngine(settings_for(tmp_path, gpu_batch_size=4))
    engine.close()

    built = RecordingPipeline.built
    assert built["vl_rec_model_dir"] == str(recogniser)
    assert built["layout_detection_model_dir"] == str(layout)
    assert built["use_layout_detection"] is True
    assert (built["pipeline_version"], built["engine"], built["device"]) == (
        "v1",
        "transformers",
        "cpu",
    )
    config: dict[str, Any] = built["paddlex_config"]  # type: ignore[assignment]
    assert config["batch_size"] == 4
    assert config["SubModules"]["LayoutDetection"]["model_name"] == "PP-DocLayoutV2"
    assert config["SubModules"]["LayoutDetection"]["engine"] == "paddle"  # *.pdiparams
    assert config["SubModules"]["VLRecognition"]["model_name"] == VL_MODEL_NAME
