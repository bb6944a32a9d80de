"""bench/gpu.py: the smoke run on the CPU, the real architectures' sizes, and the inputs
built without the hub (the same as the transformers processors make)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

pytestmark = pytest.mark.models

from PIL import Image  # noqa: E402

from bench import gpu  # noqa: E402
from bench._gpu_models import (  # noqa: E402
    MODELS,
    batch_inputs,
    count_parameters,
    image_processor,
    model_config,
    patchify,
)

PIXELS = {"min_pixels": 28 * 28 * 4, "max_pixels": 28 * 28 * 40}


def _pages() -> list[Image.Image]:
    rng = np.random.default_rng(7)
    sizes = [(300, 230), (100, 140)]  # height, width: 35 and 20 merged patches
    return [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for h, w in sizes]


def test_the_tiny_run_on_the_cpu_measures_every_model_batch_size_and_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "gpu.json"

    assert gpu.main(["--tiny", "--device", "cpu", "--json", str(out)]) == 0

    record = json.loads(out.read_text())
    runs = record["runs"]
    assert [(r["model"], r["batch"], r["overlap"]) for r in runs] == [
        (model, batch, overlap) for model in MODELS for batch in (1, 2) for overlap in (False, True)
    ]
    for run in runs:
        assert run["error"] is None
        assert run["pages"] == max(2, 2 * run["batch"])  # --pages 2, --min-batches 2
        assert run["new_tokens"] == 4 * run["pages"]  # exactly --new-tokens per page
        assert run["pages_per_s"] > 0 and run["tokens_per_s"] == pytest.approx(
            4 * run["pages_per_s"]
        )
        assert len(run["prep_s"]) == len(run["gen_s"]) == run["pages"] // run["batch"]
        assert run["peak_gib"] is None and run["gpu_util"] is None  # no GPU: not measured
    printed = capsys.readouterr().out
    assert "pages/s" in printed and "GPU util %" in printed
    assert printed.count("n/a") >= len(runs)


def test_without_cuda_the_gpu_run_is_refused_with_a_sentence(
    capsys: pytest.CaptureFixture[str],
) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")

    assert gpu.main(["--models", "paddleocr-vl"]) == gpu.EXIT_USAGE
    assert "no CUDA device here" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "low", "high"), [("paddleocr-vl", 0.75e9, 1.0e9), ("nanonets-ocr-s", 3.6e9, 3.9e9)]
)
def test_the_configs_build_the_real_architectures(name: str, low: float, high: float) -> None:
    # PaddleOCR-VL "0.9B" (SigLIP-400M-style encoder + ERNIE-4.5-0.3B); Qwen2.5-VL-3B: 3.75B
    assert low < count_parameters(model_config(MODELS[name])) < high


@pytest.mark.parametrize("name", list(MODELS))
def test_the_fallback_patching_equals_the_transformers_image_processor(name: str) -> None:
    model = MODELS[name]
    processor = image_processor(model, **PIXELS)
    assert processor is not None, "this transformers has the PIL image processors"

    expected = processor(images=_pages(), return_tensors="np")
    values, grids = patchify(_pages(), model, **PIXELS)

    assert grids.tolist() == expected["image_grid_thw"].tolist()
    assert values.shape == expected["pixel_values"].shape
    np.testing.assert_allclose(values, expected["pixel_values"], atol=1e-4)


@pytest.mark.parametrize("name", list(MODELS))
def test_a_batch_is_left_padded_with_one_placeholder_per_merged_patch(name: str) -> None:
    model = MODELS[name]
    config = model_config(model, tiny=True)

    inputs = batch_inputs(model, config, _pages(), prompt="OCR:", processor=None, **PIXELS)

    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    per_page = (inputs["image_grid_thw"].prod(-1) // 4).tolist()
    assert (ids == config["image_token_id"]).sum(-1).tolist() == per_page
    assert per_page[0] != per_page[1]  # so one row is padded
    assert inputs["mm_token_type_ids"].sum(-1).tolist() == per_page
    short = int(np.argmin(mask.sum(-1).tolist()))
    pad = int(ids.shape[1] - mask[short].sum())
    assert pad > 0 and mask[short, :pad].sum() == 0 and mask[short, pad:].all()
    assert (ids[short, :pad] == config["pad_token_id"]).all()
    assert ids[short, pad] == config["bos_token_id"]
