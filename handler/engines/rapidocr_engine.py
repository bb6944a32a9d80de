"""The ``rapidocr`` engine: PP-OCR detection and recognition on the CPU (ONNX Runtime).

The models ship inside the ``rapidocr`` wheel, so the engine runs offline. Settings are the
measured ones (shared FACTS): the per-line 180-degree classifier off (it flips good lines),
ONNX Runtime's CPU memory arena on, each page drawn at the size the recogniser reads best
(:meth:`RapidOcrEngine.ocr_scale`). Whole pages turned by 90/180/270 degrees are righted first
(:mod:`handler.engines.orientation`).

OCR gives text lines. Column gutters are found from the lines' ink, and lines that the
detector ran across a narrow gutter are cut there and read again
(:mod:`handler.engines.ocr_columns`). The page's ink also gives its ruling lines and the
ink that is not text (:class:`~handler.engines.ocr_rulings.PageInk`, with every box the
detector found text in, read or not). :mod:`handler.engines.ocr_layout` then groups the
lines into typed elements in reading order (tables, figures, columns one after the other,
paragraphs, titles, list items, captions, page numbers).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from handler.engines.base import PageResult
from handler.engines.ocr_columns import (
    MIN_LINES_FOR_GUTTERS,
    axis_box,
    cut_at_gutters,
    ink_gutters,
    is_covered_by,
)
from handler.engines.ocr_layout import OcrLine, lines_to_elements
from handler.engines.ocr_rulings import PageInk, ink_mask
from handler.engines.orientation import estimate_orientation, right_image, righted_size
from handler.errors import EngineUnavailable

if TYPE_CHECKING:
    from handler.documents.pages import PageInput

# How large a page OCR reads (``RapidOcrEngine.ocr_scale``), chosen with
# bench/resolution.py (docs/engines.md, Resolution, has the table). The recogniser reads each
# line at 48 pixels high whatever the page's size, so the page's size only decides how much
# detail the detector and the line crops get, while the detector's time grows with the pixels.
#: PDF pages are drawn at this resolution for OCR (DPI-equivalent). Measured: CER and word
#: recall the same from 150 to 300 DPI on born-digital pages drawn as 300-DPI scans and on
#: 6-8 point print, and 150 DPI took 16% less time per page than 182; but on the corpus's
#: real scanned page (redp5110 page 3) 150 and 165 DPI lost the lone "i" of a large title
#: ("DB2 for i Center of Excellence") that 180 reads (bench/quality.py, heading recall).
DEFAULT_TARGET_DPI = 180
#: Longest side (pixels) of the image given to OCR (rapidocr's own default), unless that
#: would take a PDF page below ``DEFAULT_MIN_DPI``. Image files meet it when they are
#: larger: a 600-DPI book scan read at 1600, 2000 or 2500 pixels gave the same CER.
DEFAULT_MAX_SIDE = 2000
#: A PDF page is never read coarser than this (a large page, a poster): 6-point print read
#: without error at 125 DPI and began to fail at 100; 150 leaves a margin for real scans,
#: which are blurrier than the drawn pages measured.
DEFAULT_MIN_DPI = 150
#: rapidocr's own longest-side cap, set out of the way: the engine sizes pages itself.
_RAPIDOCR_MAX_SIDE = 1_000_000
_MAX_THREADS = 8


def default_threads() -> int:
    """ONNX Runtime intra-op threads: the CPUs this process may use, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, _MAX_THREADS))


class RapidOcrEngine:
    """CPU OCR with rapidocr (PP-OCR through ONNX Runtime), offline.

    ``convert`` renders the page at the size OCR reads (:meth:`ocr_scale`), rights a page
    turned by 90/180/270 degrees (``detect_orientation``), runs detection and recognition,
    cuts lines that run across a column gutter, and groups the lines into elements. Element
    boxes are in layout pixels of the *righted* page, and the returned
    ``PageResult.width``/``height`` are the righted page's size: for a page turned by 90 or
    270 degrees they are the page's ``layout_height``/``layout_width`` swapped.

    The rapidocr object (and its ONNX sessions) is created on first use, once per engine;
    calls are serialised by a lock (ONNX Runtime uses ``threads`` cores per call).
    """

    name = "rapidocr"

    def __init__(
        self,
        *,
        threads: int | None = None,
        max_side: int = DEFAULT_MAX_SIDE,
        target_dpi: int = DEFAULT_TARGET_DPI,
        min_dpi: int = DEFAULT_MIN_DPI,
        cap_at_source: bool = True,
        detect_orientation: bool = True,
        text_score: float = 0.5,
    ) -> None:
        self.threads = threads or default_threads()
        self.max_side = max_side
        self.target_dpi = target_dpi
        self.min_dpi = min_dpi
        self.cap_at_source = cap_at_source
        self.detect_orientation = detect_orientation
        self.text_score = text_score
        self._ocr: Any = None
        self._empty_cls: Any = None  # rapidocr's TextClsOutput, once loaded
        self._no_text: type[Exception] = Exception  # rapidocr's "nothing found" error
        self._map_boxes: Any = None  # rapidocr's detector-to-image box mapping
        self._lock = threading.Lock()

    # -- the rapidocr object ---------------------------------------------------------------

    def _engine(self) -> Any:
        if self._ocr is None:
            try:
                from rapidocr import RapidOCR
                from rapidocr.ch_ppocr_cls import TextClsOutput
                from rapidocr.main import RapidOCRError
                from rapidocr.utils.process_img import map_boxes_to_original
            except ImportError as exc:  # the wheel or ONNX Runtime is missing or broken
                raise EngineUnavailable(
                    f"The rapidocr engine needs the 'rapidocr' and 'onnxruntime' packages: {exc}"
                ) from exc
            params = {
                "Global.use_cls": False,  # the line classifier flips good lines (FACTS)
                "Global.text_score": self.text_score,
                "Global.max_side_len": _RAPIDOCR_MAX_SIDE,
                "Global.log_level": "warning",
                "EngineConfig.onnxruntime.enable_cpu_mem_arena": True,
                "EngineConfig.onnxruntime.intra_op_num_threads": self.threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
            try:
                ocr = RapidOCR(params=params)
            except Exception as exc:
                raise EngineUnavailable(f"rapidocr could not start: {exc}") from exc
            self._empty_cls, self._no_text = TextClsOutput, RapidOCRError
            self._map_boxes = map_boxes_to_original
            self._ocr = ocr
        return self._ocr

    # -- one page --------------------------------------------------------------------------

    def ocr_scale(self, page: PageInput) -> float:
        """The size OCR reads the page at, as a factor (at most 1) of its layout size.

        A PDF page: ``target_dpi``, but no finer than the scan it shows (a 150-DPI scan
        gains nothing from 300; ``cap_at_source``), and no larger than ``max_side`` pixels
        unless that would go below ``min_dpi``. An image: its own pixels, no larger than
        ``max_side`` (the resolution an image states is often wrong: phones write 72, a
        file without one gets 300, so it sets nothing here). Never above the layout size,
        which the page-size limits were checked at.
        """
        longest = max(page.layout_width, page.layout_height)
        if page.pdf_page is None:  # an image (or a lost page, which fails when drawn)
            return min(1.0, self.max_side / longest)
        goal = float(self.target_dpi)
        if self.cap_at_source:
            source = page.source_dpi()
            if source is not None:
                goal = min(goal, source)
        factor = goal / page.dpi
        if longest * factor > self.max_side:
            floor = min(float(self.min_dpi), goal) / page.dpi
            factor = max(self.max_side / longest, floor)
        return min(1.0, factor)

    def convert(self, page: PageInput) -> PageResult:
        """OCR one page; see the class docstring for the coordinate system of the result."""
        started = time.perf_counter()
        # drawn once at the size OCR reads (a PDF page is never drawn large and shrunk)
        image = _to_bgr(page.render_scaled(self.ocr_scale(page)))
        with self._lock:
            reading = self._read(image)
            angle, image, quads, texts, scores = reading[:5]
            dark = ink_mask(image) if len(quads) else None
            gutters: list[tuple[float, float]] = []
            if dark is not None and len(quads) >= MIN_LINES_FOR_GUTTERS:
                quads, texts, scores, gutters = self._split_at_gutters(
                    image, dark, quads, texts, scores
                )
        out_w, out_h = righted_size(page.layout_width, page.layout_height, angle)
        img_h, img_w = image.shape[:2]
        factor = np.array([out_w / img_w, out_h / img_h])
        lines = [
            OcrLine.from_quad(np.asarray(q, dtype=np.float64) * factor, t, s)
            for q, t, s in zip(quads, texts, scores, strict=True)
            if t.strip()
        ]
        gutters = [(lo * factor[0], hi * factor[0]) for lo, hi in gutters]
        ink = None
        if dark is not None and lines:
            line_h = float(np.median([ln.height for ln in lines])) / factor[1]  # image pixels
            ink = PageInk.of_image(image, dark, (out_w, out_h), line_h, reading.detected)
        elements = lines_to_elements(lines, out_w, out_h, gutters=gutters, ink=ink)
        return PageResult(
            page_number=page.number,
            width=out_w,
            height=out_h,
            engine=self.name,
            elements=elements,
            seconds=time.perf_counter() - started,
        )

    def _read(self, image: np.ndarray) -> _Reading:
        """The text of a BGR image, righted first when it is turned; boxes in the righted
        image's pixels.

        The steps are those of ``RapidOCR.__call__`` (same results), split so that the
        orientation check can look at the detector's boxes before recognition runs, and
        so that the boxes of text read with too low a confidence are kept apart
        (``_Reading.detected``).
        """
        ocr = self._engine()
        no_text = self._no_text
        nothing = _Reading(0, image, [], [], [], [])
        prepared, record = ocr.preprocess_img(image)
        try:
            crops, det = ocr.detect_and_crop(prepared, record)
        except no_text:  # no text found
            return nothing
        if self.detect_orientation:
            angle = estimate_orientation(
                det.boxes,
                crops,
                classify=lambda imgs: ocr.cls_and_rotate(imgs)[1].cls_res,
                recognize=lambda imgs: ocr.recognize_txt(imgs).scores,
            )
            if angle:
                righted = right_image(image, angle)
                out = ocr(righted, use_det=True, use_cls=False, use_rec=True)
                quads, texts, scores = _unpack(out)
                return _Reading(angle, righted, quads, texts, scores, list(quads))
        try:
            rec = ocr.recognize_txt(crops)
        except no_text:
            return nothing
        # every detected box in image pixels, before build_final_output drops (in place)
        # those read as nothing or with a low score: text in a script the recogniser
        # does not know is still text, not a figure
        height, width = image.shape[:2]
        detected = list(self._map_boxes(np.array(det.boxes, copy=True), record, height, width))
        out = ocr.build_final_output(image, det, self._empty_cls(), rec, crops, record)
        quads, texts, scores = _unpack(out)
        return _Reading(0, image, quads, texts, scores, detected)

    def _split_at_gutters(
        self,
        image: np.ndarray,
        dark: np.ndarray,
        quads: Sequence[Any],
        texts: Sequence[str],
        scores: Sequence[float],
    ) -> tuple[list[Any], list[str], list[float], list[tuple[float, float]]]:
        """Find column gutters from the lines' ink; cut lines that the detector ran across a
        gutter and read the pieces again. Returns the lines and the gutters (image pixels).

        The detector joins the lines of two columns when the gutter is narrow (FACTS); the
        recognised text then mixes both columns. A line that crosses a gutter (found by
        :func:`~handler.engines.ocr_columns.find_gutters`) with no ink in the gutter's middle is
        cut there.
        """
        boxes = [axis_box(q, image.shape[1], image.shape[0]) for q in quads]
        median_h = float(np.median([b[3] - b[1] for b in boxes]))
        inks, gutters = ink_gutters(dark, boxes, median_h)
        if not gutters:
            return list(quads), list(texts), [float(x) for x in scores], []
        out_quads: list[Any] = []
        out_texts: list[str] = []
        out_scores: list[float] = []
        pieces: list[tuple[int, int, int, int]] = []
        for i, (box, ink) in enumerate(zip(boxes, inks, strict=True)):
            segments = cut_at_gutters(box, ink, gutters, pad=max(1, round(0.15 * median_h)))
            if len(segments) > 1:
                pieces.extend(segments)
                continue
            quad = quads[i]
            if segments and segments[0] != box:  # the box reached into a gutter, the ink not
                x0, y0, x1, y1 = segments[0]
                quad = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
            out_quads.append(quad)
            out_texts.append(texts[i])
            out_scores.append(float(scores[i]))
        kept = [axis_box(q, image.shape[1], image.shape[0]) for q in out_quads]
        pieces = [p for p in pieces if not any(is_covered_by(p, other) for other in kept)]
        if pieces:
            crops = [np.ascontiguousarray(image[y0:y1, x0:x1]) for x0, y0, x1, y1 in pieces]
            try:
                rec = self._engine().recognize_txt(crops)
                found = list(zip(pieces, rec.txts, rec.scores, strict=True))
            except self._no_text:
                found = []
            for (x0, y0, x1, y1), text, score in found:
                if text.strip() and score >= self.text_score:
                    out_quads.append([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
                    out_texts.append(text)
                    out_scores.append(float(score))
        return out_quads, out_texts, out_scores, [(float(lo), float(hi)) for lo, hi in gutters]


class _Reading(NamedTuple):
    angle: int  # how far the page was turned (clockwise), 0/90/180/270
    image: np.ndarray  # the righted image
    quads: Sequence[Any]
    texts: Sequence[str]
    scores: Sequence[float]
    detected: Sequence[Any]  # every box with text, read with a low score or not


def _unpack(out: Any) -> tuple[Sequence[Any], Sequence[str], Sequence[float]]:
    boxes = getattr(out, "boxes", None)
    texts = getattr(out, "txts", None)
    scores = getattr(out, "scores", None)
    if boxes is None or texts is None or scores is None or len(boxes) == 0:
        return [], [], []
    return list(boxes), list(texts), [float(s) for s in scores]


def _to_bgr(rgb: np.ndarray) -> np.ndarray:
    """The renderer's RGB (or grey/RGBA) uint8 image as contiguous BGR, as rapidocr expects."""
    img = np.asarray(rgb)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.shape[2] == 4:
        img = img[:, :, :3]
    elif img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img[:, :, ::-1])
