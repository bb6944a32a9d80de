"""Righting pages turned by 90/180/270 degrees: the decision logic, then real scans."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from handler.documents.limits import Limits
from handler.documents.open import open_document
from handler.engines.base import PageResult
from handler.engines.orientation import (
    estimate_orientation,
    is_vertical_page,
    right_image,
    righted_size,
    sample_crops,
)
from handler.quality import cer

DATA = Path(__file__).resolve().parent.parent / "data" / "scanned"
LIMITS = Limits(max_bytes=64 * 1024 * 1024, max_pages=10, max_pixels_per_page=50_000_000)
SENTENCE = (
    "Docling bundles PDF document conversion to JSON and Markdown in an easy self contained package"
)


def _box(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


WIDE = np.array([_box(10, 10 + 40 * i, 600, 40 + 40 * i) for i in range(6)], dtype=np.float32)
TALL = np.array([_box(10 + 40 * i, 10, 40 + 40 * i, 600) for i in range(6)], dtype=np.float32)


def _crops(boxes: np.ndarray) -> list[np.ndarray]:
    out = []
    for b in boxes:
        w, h = int(b[1][0] - b[0][0]), int(b[3][1] - b[0][1])
        crop = np.zeros((h, w, 3), dtype=np.uint8)
        crop[: h // 2] = 255  # top half white: lets a test see how a crop was turned
        out.append(crop)
    return out


class _Fake:
    """Classifier and recogniser that answer from how a crop is turned."""

    def __init__(self, upright_top_white: bool) -> None:
        self.upright_top_white = upright_top_white
        self.classified = 0
        self.recognised = 0

    def _upright(self, crop: np.ndarray) -> bool:
        return bool(crop[0, crop.shape[1] // 2, 0] == 255) == self.upright_top_white

    def classify(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        self.classified += len(crops)
        assert all(c.shape[1] > c.shape[0] for c in crops), "crops must lie horizontally"
        return [("0", 0.95) if self._upright(c) else ("180", 0.95) for c in crops]

    def recognize(self, crops: list[np.ndarray]) -> list[float]:
        self.recognised += len(crops)
        return [0.98 if self._upright(c) else 0.6 for c in crops]


def test_vertical_page_from_box_shapes() -> None:
    assert not is_vertical_page(WIDE)
    assert is_vertical_page(TALL)
    assert not is_vertical_page(np.zeros((0, 4, 2)))
    mixed = np.concatenate([WIDE, TALL[:1]])  # one rotated label on an upright page
    assert not is_vertical_page(mixed)


def test_upright_page_is_decided_by_the_classifier_alone() -> None:
    fake = _Fake(upright_top_white=True)
    assert estimate_orientation(WIDE, _crops(WIDE), fake.classify, fake.recognize) == 0
    assert fake.classified > 0
    assert fake.recognised == 0  # the cheap path: no recognition on upright pages


def test_upside_down_page_is_confirmed_by_recognition() -> None:
    fake = _Fake(upright_top_white=False)  # every crop reads upside down
    assert estimate_orientation(WIDE, _crops(WIDE), fake.classify, fake.recognize) == 180
    assert fake.recognised > 0


def test_classifier_false_alarm_is_overruled_by_recognition() -> None:
    fake = _Fake(upright_top_white=True)

    def flips_everything(crops: list[np.ndarray]) -> list[tuple[str, float]]:
        return [("180", 0.99)] * len(crops)

    assert estimate_orientation(WIDE, _crops(WIDE), flips_everything, fake.recognize) == 0
    assert estimate_orientation(WIDE, _crops(WIDE), flips_everything, None) == 180


def _tall_crops(top_side: str) -> list[np.ndarray]:
    """Crops of vertical lines whose text top (white) faces ``top_side`` ("left"/"right")."""
    out = []
    for b in TALL:
        w, h = int(b[1][0] - b[0][0]), int(b[3][1] - b[0][1])
        crop = np.zeros((h, w, 3), dtype=np.uint8)
        if top_side == "right":
            crop[:, w // 2 :] = 255
        else:
            crop[:, : w // 2] = 255
        out.append(crop)
    return out


def test_quarter_turns_are_told_apart() -> None:
    fake = _Fake(upright_top_white=True)
    # turned clockwise: the text's top faces right
    assert estimate_orientation(TALL, _tall_crops("right"), fake.classify, fake.recognize) == 90
    # turned counter-clockwise: the text's top faces left
    assert estimate_orientation(TALL, _tall_crops("left"), fake.classify, fake.recognize) == 270


def test_nothing_to_judge_means_upright() -> None:
    fake = _Fake(upright_top_white=False)
    assert estimate_orientation(np.zeros((0, 4, 2)), [], fake.classify, fake.recognize) == 0
    square = np.array([_box(0, 0, 30, 30)], dtype=np.float32)
    assert sample_crops(square, _crops(square), vertical=False) == []
    assert estimate_orientation(square, _crops(square), fake.classify, fake.recognize) == 0


def test_right_image_undoes_clockwise_turns() -> None:
    page = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    turned_cw_90 = np.rot90(page, -1)
    assert np.array_equal(right_image(turned_cw_90, 90), page)
    assert np.array_equal(right_image(np.rot90(page, 2), 180), page)
    assert np.array_equal(right_image(np.rot90(page, 1), 270), page)
    assert right_image(page, 0) is page
    with pytest.raises(ValueError):
        right_image(page, 45)
    assert righted_size(800, 600, 90) == (600, 800)
    assert righted_size(800, 600, 180) == (800, 600)


# -- real pages --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine():
    from handler.engines.rapidocr_engine import RapidOcrEngine

    return RapidOcrEngine()


def _convert(engine, path: Path, dpi: int = 150) -> tuple[PageResult, tuple[int, int]]:
    with open_document(path, LIMITS, dpi=dpi, filename=path.name) as doc:
        page = next(doc.pages())
        return engine.convert(page), (page.layout_width, page.layout_height)


def _text(result: PageResult) -> str:
    return " ".join(el.text for el in result.elements)


def _assert_boxes_inside(result: PageResult) -> None:
    assert result.elements
    for el in result.elements:
        x0, y0, x1, y1 = el.bbox
        assert 0 <= x0 < x1 <= result.width, el
        assert 0 <= y0 < y1 <= result.height, el


@pytest.mark.slow
def test_pdf_rotated_90_reads_like_the_upright_one(engine) -> None:
    upright, upright_size = _convert(engine, DATA / "docling__ocr_test.pdf")
    turned, turned_size = _convert(engine, DATA / "docling__ocr_test_rotated_90.pdf")
    assert turned_size == (upright_size[1], upright_size[0])  # the page is drawn landscape
    assert _text(upright) == SENTENCE
    assert _text(turned) == SENTENCE
    # the result is in the righted page's pixels: portrait again, boxes where upright has them
    assert (turned.width, turned.height) == turned_size[::-1] == upright_size
    _assert_boxes_inside(turned)
    assert np.allclose(turned.elements[0].bbox, upright.elements[0].bbox, atol=10)


@pytest.mark.slow
@pytest.mark.parametrize(
    "turn", [Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_90], ids=["180", "90ccw"]
)
def test_turned_phototest_still_reads(engine, tmp_path: Path, turn: Image.Transpose) -> None:
    path = tmp_path / "turned.png"
    with Image.open(DATA / "tess__phototest.tif") as im:
        im.convert("RGB").transpose(turn).save(path)
        upright_size = im.size
    result, _ = _convert(engine, path)
    assert (result.width, result.height) == upright_size
    reference = (DATA / "gt" / "tess__phototest.txt").read_text(encoding="utf-8")
    assert cer(_text(result), reference) <= 0.03
    _assert_boxes_inside(result)


@pytest.mark.slow
def test_orientation_check_is_cheap_on_upright_pages(
    engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upright pages: one detection, one recognition pass, milliseconds of classifier."""
    from rapidocr import RapidOCR

    import handler.engines.rapidocr_engine as module

    calls = {"detect": 0, "recognize": 0, "whole": 0}
    spent: list[tuple[int, float]] = []

    def counting(name, method):
        def wrapper(self, *args, **kwargs):
            calls[name] += 1
            return method(self, *args, **kwargs)

        return wrapper

    def timed(*args, **kwargs):
        started = time.perf_counter()
        angle = estimate_orientation(*args, **kwargs)
        spent.append((angle, time.perf_counter() - started))
        return angle

    monkeypatch.setattr(RapidOCR, "detect_and_crop", counting("detect", RapidOCR.detect_and_crop))
    monkeypatch.setattr(RapidOCR, "recognize_txt", counting("recognize", RapidOCR.recognize_txt))
    monkeypatch.setattr(RapidOCR, "__call__", counting("whole", RapidOCR.__call__))
    monkeypatch.setattr(module, "estimate_orientation", timed)
    _convert(engine, DATA / "tess__eurotext.tif")
    assert calls == {"detect": 1, "recognize": 1, "whole": 0}
    ((angle, seconds),) = spent
    assert angle == 0
    assert seconds < 0.25  # measured 5-15 ms on 2 CPUs; the page's OCR takes 0.3-0.5 s
