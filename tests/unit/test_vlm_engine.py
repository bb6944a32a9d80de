"""The vlm engine on a tiny random PaddleOCR-VL (tests/vlm_models.py), loaded through its real
path: from a folder, on the CPU, batched generation with left padding, out-of-memory halving,
and a scanned page through to elements in layout pixels."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from handler.documents.limits import Limits  # noqa: E402
from handler.documents.open import open_document  # noqa: E402
from handler.documents.pages import PageInput  # noqa: E402
from handler.documents.raster import scaled_size  # noqa: E402
from handler.engines.base import BatchingEngine, PageResult  # noqa: E402
from handler.engines.registry import EngineSet  # noqa: E402
from handler.engines.vlm import engine as engine_module  # noqa: E402
from handler.engines.vlm import generate as gen  # noqa: E402
from handler.engines.vlm.engine import VlmEngine  # noqa: E402
from handler.engines.vlm.loading import load_vlm  # noqa: E402
from handler.errors import EngineUnavailable, TransientError  # noqa: E402
from handler.settings import Settings  # noqa: E402
from tests import vlm_models  # noqa: E402

pytestmark = pytest.mark.models

SCAN = Path(__file__).resolve().parent.parent / "data" / "scanned" / "docling__ocr_test.pdf"
WAIT = 60.0
NEW_TOKENS = 6


def settings_for(folder: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "vlm_model_path": folder,
        "device": "cpu",
        "vlm_max_new_tokens": NEW_TOKENS,
        "gpu_batch_size": 4,
        "gpu_batch_wait_ms": 2000,  # a batch fills with the pages a test submits at once
        # few image tokens a page (the profile's limits are for real pages)
        "vlm_min_pixels": vlm_models.MIN_PIXELS,
        "vlm_max_pixels": vlm_models.MAX_PIXELS,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def noise_page(number: int, width: int, height: int) -> PageInput:
    image = np.random.default_rng(number).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return PageInput(
        number=number, layout_width=width, layout_height=height, dpi=72, scale=1.0,
        render=lambda: image,
    )  # fmt: skip


@pytest.fixture
def make_engine(tiny_paddleocr_vl_dir: Path) -> Iterator:
    built: list[VlmEngine] = []

    def make(**overrides: object) -> VlmEngine:
        engine = VlmEngine(settings_for(tiny_paddleocr_vl_dir, **overrides))
        built.append(engine)
        return engine

    yield make
    for engine in built:
        engine.close()


@pytest.fixture
def batch_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch that reaches generation."""
    sizes: list[int] = []
    real = gen.generate

    def counting(model, processor, batch, **kwargs):  # type: ignore[no-untyped-def]
        sizes.append(int(batch["input_ids"].shape[0]))
        return real(model, processor, batch, **kwargs)

    monkeypatch.setattr(gen, "generate", counting)
    return sizes


def texts(result: PageResult) -> list[str]:
    return [element.text for element in result.elements]


# -- start-up ---------------------------------------------------------------------------------


def test_loads_from_the_folder_through_the_real_path(make_engine, tiny_paddleocr_vl_dir):
    engine = make_engine()
    assert isinstance(engine, BatchingEngine)
    assert type(engine._model).__name__ == "PaddleOCRVLForConditionalGeneration"
    assert engine._processor.tokenizer.padding_side == "left"
    assert engine.max_in_flight == 8
    assert not engine.needs_gpu
    described = engine.describe()
    for part in ("paddleocr-vl", "cpu", "float32", str(tiny_paddleocr_vl_dir), "batch size 4"):
        assert part in described


def test_the_registry_builds_it(tiny_paddleocr_vl_dir):
    engine = EngineSet(settings_for(tiny_paddleocr_vl_dir)).get("vlm")
    try:
        assert isinstance(engine, VlmEngine)
    finally:
        engine.close()


def test_a_missing_model_folder_names_the_download_command(tmp_path):
    with pytest.raises(EngineUnavailable, match="`pagedrop models download paddleocr-vl`"):
        VlmEngine(Settings(model_dir=tmp_path, device="cpu"))


def test_cuda_without_a_gpu_is_refused_at_start_up(tiny_paddleocr_vl_dir, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(EngineUnavailable, match="no CUDA GPU"):
        VlmEngine(settings_for(tiny_paddleocr_vl_dir, device="cuda"))


def test_an_unknown_profile_is_refused(tiny_paddleocr_vl_dir):
    with pytest.raises(EngineUnavailable, match="unknown vlm model 'nope'"):
        VlmEngine(settings_for(tiny_paddleocr_vl_dir, vlm_model="nope"))


def test_a_checkpoint_transformers_cannot_load_is_unavailable(tiny_paddleocr_vl_dir, tmp_path):
    broken = shutil.copytree(tiny_paddleocr_vl_dir, tmp_path / "broken")
    (broken / "config.json").write_text('{"model_type": "no-such-model"}')
    with pytest.raises(EngineUnavailable, match="could not be loaded from"):
        load_vlm(broken, "paddleocr-vl", device="cpu", dtype=torch.float32)


def test_without_transformers_the_error_names_the_extra(tiny_paddleocr_vl_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(EngineUnavailable, match=r"pip install 'pagedrop\[vlm\]'"):
        load_vlm(tiny_paddleocr_vl_dir, "paddleocr-vl", device="cpu", dtype=torch.float32)


# -- batches ----------------------------------------------------------------------------------


def test_pages_of_different_sizes_are_batched_and_come_back_in_order(make_engine, batch_sizes):
    # given four pages of different sizes (so different numbers of image tokens: padding)
    engine = make_engine()
    pages = [noise_page(n, 90 + 50 * n, 300 - 40 * n) for n in range(1, 5)]
    # when they are submitted together
    futures = [engine.submit(page) for page in pages]
    results = [future.result(WAIT) for future in futures]
    # then they ran as one batch, and each result is its page's
    assert batch_sizes == [4]
    assert [r.page_number for r in results] == [1, 2, 3, 4]
    assert [(r.width, r.height) for r in results] == [
        (p.layout_width, p.layout_height) for p in pages
    ]
    assert all(r.engine == "vlm" and r.elements and r.seconds > 0 for r in results)
    # and each page reads as it does alone: the left padding changed nothing
    single = make_engine(gpu_batch_size=1, gpu_batch_wait_ms=0)
    alone = [texts(single.convert(page)) for page in pages]
    assert [texts(r) for r in results] == alone
    assert len({tuple(t) for t in alone}) > 1  # the pages' answers differ: order is checked


def test_collated_pages_are_the_processors_own_batch(make_engine):
    engine = make_engine()
    prepared = [
        gen.prepare_page(
            engine._processor, noise_page(n, w, h).render(), engine._text, engine._image_kwargs
        )
        for n, (w, h) in enumerate([(120, 300), (260, 90)], start=1)
    ]
    mine = gen.collate(prepared, engine._pad_token_id)
    theirs = gen.prepare_batch(engine._processor, prepared, engine._image_kwargs)
    assert mine is not None
    assert set(mine) == set(theirs)
    for key in theirs:
        assert torch.equal(mine[key], theirs[key]), key
    assert (mine["input_ids"][1, :4] == engine._pad_token_id).all()  # the short one: left


def test_out_of_memory_halves_the_batch_until_it_fits(make_engine, monkeypatch):
    # given a GPU that runs out of memory on any batch of more than one page
    freed: list[int] = []
    monkeypatch.setattr(engine_module, "release_cuda_memory", lambda: freed.append(1))
    real = gen.generate
    sizes: list[int] = []

    def small_gpu(model, processor, batch, **kwargs):  # type: ignore[no-untyped-def]
        sizes.append(int(batch["input_ids"].shape[0]))
        if sizes[-1] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
        return real(model, processor, batch, **kwargs)

    monkeypatch.setattr(gen, "generate", small_gpu)
    engine = make_engine()
    pages = [noise_page(n, 100 + 20 * n, 120) for n in range(1, 5)]
    # when four pages are submitted together
    results = [f.result(WAIT) for f in [engine.submit(page) for page in pages]]
    # then every page is read, one at a time in the end, and the smaller size is kept
    assert [r.page_number for r in results] == [1, 2, 3, 4]
    assert all(r.elements for r in results)
    assert sizes == [4, 2, 1, 1, 2, 1, 1]
    assert engine.batch_size == 1 and engine.max_in_flight == 2
    assert len(freed) == 3


def test_out_of_memory_on_one_page_is_a_transient_error(make_engine, monkeypatch):
    def no_memory(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(gen, "generate", no_memory)
    engine = make_engine(gpu_batch_size=1)
    with pytest.raises(TransientError, match="out of memory"):
        engine.convert(noise_page(1, 100, 100))


def test_release_memory_empties_the_cuda_cache(make_engine, monkeypatch):
    engine = make_engine()
    emptied: list[int] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(1))
    engine.release_memory()
    assert emptied == [1]


# -- pages ------------------------------------------------------------------------------------


def test_the_pixel_limits_reach_the_image_processor(make_engine):
    page = noise_page(1, 400, 400).render()

    def image_pixels(engine: VlmEngine) -> int:
        prepared = gen.prepare_page(engine._processor, page, engine._text, engine._image_kwargs)
        return int(prepared.features["image_grid_thw"].prod()) * 14 * 14

    small = image_pixels(make_engine(vlm_max_pixels=28 * 28 * 16))
    large = image_pixels(make_engine(vlm_max_pixels=28 * 28 * 100))
    assert small <= 28 * 28 * 16 < large <= 28 * 28 * 100


def test_a_page_is_drawn_no_larger_than_max_pixels(make_engine):
    engine = make_engine(vlm_max_pixels=1_003_520)
    letter = noise_page(1, 1700, 2200)  # a letter page at 200 DPI
    width, height = scaled_size(1700, 2200, engine.render_scale(letter))
    assert width * height <= 1_003_520 * 1.01
    assert width * height >= 1_003_520 * 0.98
    assert engine.render_scale(noise_page(2, 800, 1000)) == 1.0  # small pages as they are


def test_a_scanned_page_gives_elements_in_layout_pixels(make_engine):
    # given a scanned PDF page, drawn small (the tiny model reads few image tokens)
    engine = make_engine(vlm_max_pixels=28 * 28 * 64, gpu_batch_size=1)
    limits = Limits(max_bytes=64 * 1024 * 1024, max_pages=10, max_pixels_per_page=50_000_000)
    with open_document(SCAN, limits, dpi=200, filename=SCAN.name) as doc:
        page = next(iter(doc.pages()))
        # when the engine reads it
        result = engine.convert(page)
    # then the elements are in the page's own pixel space
    assert (result.width, result.height) == (page.layout_width, page.layout_height)
    assert result.engine == "vlm" and result.page_number == 1
    assert result.elements
    for element in result.elements:
        x0, y0, x1, y1 = element.bbox
        assert 0 <= x0 < x1 <= page.layout_width
        assert 0 <= y0 < y1 <= page.layout_height
        assert element.text.strip()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_auto_picks_cuda_and_half_precision(make_engine):
    engine = make_engine(device="auto", vlm_dtype="auto")
    assert engine.device == "cuda" and engine.needs_gpu
    assert engine.dtype in (torch.bfloat16, torch.float16)
    assert "cuda" in engine.describe() and "GiB" in engine.describe()
    results = [f.result(WAIT) for f in [engine.submit(noise_page(n, 150, 200)) for n in (1, 2)]]
    assert all(r.elements for r in results)
    engine.release_memory()
