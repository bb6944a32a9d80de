"""The ``rapidocr`` engine: PP-OCR detection and recognition on the CPU (ONNX Runtime).

The models ship inside the ``rapidocr`` wheel, so the engine runs offline. Settings are the
measured ones (shared FACTS): the per-line 180-degree classifier off (it flips good lines),
ONNX Runtime's CPU memory arena on, pages larger than the recogniser likes scaled down
before OCR. Whole pages turned by 90/180/270 degrees are righted first
(:mod:`handler.engines.orientation`).

OCR gives text lines. Column gutters are found from the lines' ink, and lines that the
detector ran across a narrow gutter are cut there and read again (:func:`find_gutters`,
:func:`cut_at_gutters`). :func:`lines_to_elements` then groups the lines into typed elements
in reading order (columns one after the other, paragraphs, titles, list items, page
numbers).
"""

from __future__ import annotations

import itertools
import os
import re
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from handler.engines.base import BBox, Element, ElementType, PageResult
from handler.engines.orientation import estimate_orientation, right_image, righted_size
from handler.errors import EngineUnavailable

if TYPE_CHECKING:
    from handler.documents.pages import PageInput

#: Longest side (pixels) of the image given to OCR; rapidocr's own default cap.
DEFAULT_MAX_SIDE = 2000
#: Pages rendered finer than this (PDF pages with a known DPI) are scaled down to it.
DEFAULT_TARGET_DPI = 200
_MAX_THREADS = 8


def default_threads() -> int:
    """ONNX Runtime intra-op threads: the CPUs this process may use, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, _MAX_THREADS))


@dataclass(frozen=True, slots=True)
class OcrLine:
    """One recognised text line, in layout pixels of the (righted) page."""

    text: str
    score: float
    x0: float
    y0: float
    x1: float
    y1: float
    height: float  # across the line, so a slightly skewed line is not counted as taller

    @classmethod
    def from_quad(cls, quad: Any, text: str, score: float) -> OcrLine:
        """From a detector box: 4 points clockwise from the top-left."""
        q = np.asarray(quad, dtype=np.float64).reshape(4, 2)
        height = (float(np.linalg.norm(q[3] - q[0])) + float(np.linalg.norm(q[2] - q[1]))) / 2
        x0, y0 = q.min(axis=0)
        x1, y1 = q.max(axis=0)
        return cls(text, float(score), float(x0), float(y0), float(x1), float(y1), height)

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2


class RapidOcrEngine:
    """CPU OCR with rapidocr (PP-OCR through ONNX Runtime), offline.

    ``convert`` renders the page, scales it down when it is larger than ``max_side`` pixels
    or finer than ``target_dpi`` (PDF pages), rights a page turned by 90/180/270 degrees
    (``detect_orientation``), runs detection and recognition, cuts lines that run across a
    column gutter, and groups the lines into elements. Element boxes are in layout pixels
    of the *righted* page, and the returned ``PageResult.width``/``height`` are the righted
    page's size: for a page turned by 90 or 270 degrees they are the page's
    ``layout_height``/``layout_width`` swapped.

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
        detect_orientation: bool = True,
        text_score: float = 0.5,
    ) -> None:
        self.threads = threads or default_threads()
        self.max_side = max_side
        self.target_dpi = target_dpi
        self.detect_orientation = detect_orientation
        self.text_score = text_score
        self._ocr: Any = None
        self._empty_cls: Any = None  # rapidocr's TextClsOutput, once loaded
        self._no_text: type[Exception] = Exception  # rapidocr's "nothing found" error
        self._lock = threading.Lock()

    # -- the rapidocr object ---------------------------------------------------------------

    def _engine(self) -> Any:
        if self._ocr is None:
            try:
                from rapidocr import RapidOCR
                from rapidocr.ch_ppocr_cls import TextClsOutput
                from rapidocr.main import RapidOCRError
            except ImportError as exc:  # the wheel or ONNX Runtime is missing or broken
                raise EngineUnavailable(
                    f"The rapidocr engine needs the 'rapidocr' and 'onnxruntime' packages: {exc}"
                ) from exc
            params = {
                "Global.use_cls": False,  # the line classifier flips good lines (FACTS)
                "Global.text_score": self.text_score,
                "Global.max_side_len": self.max_side,
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
            self._ocr = ocr
        return self._ocr

    # -- one page --------------------------------------------------------------------------

    def ocr_scale(self, page: PageInput) -> float:
        """Factor (at most 1) by which the page is scaled down before OCR."""
        scale = 1.0
        longest = max(page.layout_width, page.layout_height)
        if longest > self.max_side:
            scale = self.max_side / longest
        if page.pdf_page is not None and page.dpi > self.target_dpi:
            scale = min(scale, self.target_dpi / page.dpi)
        return scale

    def convert(self, page: PageInput) -> PageResult:
        """OCR one page; see the class docstring for the coordinate system of the result."""
        started = time.perf_counter()
        image = _to_bgr(page.render())
        height, width = image.shape[:2]
        scale = self.ocr_scale(page)
        if scale < 1.0:
            import cv2  # a rapidocr dependency

            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        with self._lock:
            angle, image, quads, texts, scores = self._read(image)
            gutters: list[tuple[float, float]] = []
            if len(quads) >= _MIN_LINES_FOR_GUTTERS:
                quads, texts, scores, gutters = self._split_at_gutters(image, quads, texts, scores)
        out_w, out_h = righted_size(page.layout_width, page.layout_height, angle)
        img_h, img_w = image.shape[:2]
        factor = np.array([out_w / img_w, out_h / img_h])
        lines = [
            OcrLine.from_quad(np.asarray(q, dtype=np.float64) * factor, t, s)
            for q, t, s in zip(quads, texts, scores, strict=True)
            if t.strip()
        ]
        gutters = [(lo * factor[0], hi * factor[0]) for lo, hi in gutters]
        elements = lines_to_elements(lines, out_w, out_h, gutters=gutters)
        return PageResult(
            page_number=page.number,
            width=out_w,
            height=out_h,
            engine=self.name,
            elements=elements,
            seconds=time.perf_counter() - started,
        )

    def _read(
        self, image: np.ndarray
    ) -> tuple[int, np.ndarray, Sequence[Any], Sequence[str], Sequence[float]]:
        """(angle, righted image, boxes, texts, scores) of a BGR image; boxes in the righted
        image's pixels.

        The steps are those of ``RapidOCR.__call__`` (same results), split so that the
        orientation check can look at the detector's boxes before recognition runs.
        """
        ocr = self._engine()
        no_text = self._no_text
        prepared, record = ocr.preprocess_img(image)
        try:
            crops, det = ocr.detect_and_crop(prepared, record)
        except no_text:  # no text found
            return 0, image, [], [], []
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
                return angle, righted, *_unpack(out)
        try:
            rec = ocr.recognize_txt(crops)
        except no_text:
            return 0, image, [], [], []
        out = ocr.build_final_output(image, det, self._empty_cls(), rec, crops, record)
        return 0, image, *_unpack(out)

    def _split_at_gutters(
        self, image: np.ndarray, quads: Sequence[Any], texts: Sequence[str], scores: Sequence[float]
    ) -> tuple[list[Any], list[str], list[float], list[tuple[float, float]]]:
        """Find column gutters from the lines' ink; cut lines that the detector ran across a
        gutter and read the pieces again. Returns the lines and the gutters (image pixels).

        The detector joins the lines of two columns when the gutter is narrow (FACTS); the
        recognised text then mixes both columns. A line that crosses a gutter (found by
        :func:`find_gutters`) with no ink in the gutter's middle is cut there.
        """
        boxes = [_axis_box(q, image.shape[1], image.shape[0]) for q in quads]
        median_h = float(np.median([b[3] - b[1] for b in boxes]))
        dark = _dark_mask(image)
        inks = [_line_ink(dark, b) for b in boxes]
        cover = np.zeros(image.shape[1], dtype=np.int32)
        for (x0, _, x1, _), ink in zip(boxes, inks, strict=True):
            if x1 - x0 >= _GUTTER_LINE_WIDTH * median_h:  # text lines, not labels
                cover[x0 : x0 + len(ink)] += ink
        gutters = find_gutters(cover, min_width=max(3, round(0.35 * median_h)))
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
        kept = [_axis_box(q, image.shape[1], image.shape[0]) for q in out_quads]
        pieces = [p for p in pieces if not any(_covered(p, other) for other in kept)]
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


# -- column gutters ---------------------------------------------------------------------------

_MIN_LINES_FOR_GUTTERS = 8
_GUTTER_MIN_LINES = 4  # lines with ink on each side of a gutter
_GUTTER_LINE_WIDTH = 4  # only lines at least this many line heights wide count


def _axis_box(quad: Any, width: int, height: int) -> tuple[int, int, int, int]:
    q = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    x0, y0 = np.floor(q.min(axis=0)).astype(int)
    x1, y1 = np.ceil(q.max(axis=0)).astype(int)
    x0, x1 = min(max(0, x0), width), min(max(0, x1), width)
    y0, y1 = min(max(0, y0), height), min(max(0, y1), height)
    return int(x0), int(y0), int(max(x1, x0 + 1)), int(max(y1, y0 + 1))


def _covered(piece: tuple[int, int, int, int], other: tuple[int, int, int, int]) -> bool:
    """Whether another line's box on the same row already holds most of ``piece`` (the
    detector's boxes can overlap: a piece cut from one may repeat the end of another)."""
    x0, y0, x1, y1 = piece
    ox0, oy0, ox1, oy1 = other
    rows = min(y1, oy1) - max(y0, oy0)
    cols = min(x1, ox1) - max(x0, ox0)
    return rows > 0.5 * (y1 - y0) and cols > 0.7 * (x1 - x0)


def _dark_mask(image: np.ndarray) -> np.ndarray:
    """Ink pixels of a BGR page (Otsu threshold)."""
    import cv2  # a rapidocr dependency

    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    _, mask = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    return mask > 0


def _line_ink(dark: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Which pixel columns of the box hold ink in the line's middle rows (the detector
    pads its boxes, so the outer rows may hold the neighbouring lines' ascenders)."""
    x0, y0, x1, y1 = box
    margin = (y1 - y0) // 4
    rows = dark[y0 + margin : max(y0 + margin + 1, y1 - margin), x0:x1]
    return np.asarray(rows.any(axis=0), dtype=bool)


def find_gutters(
    cover: np.ndarray, *, min_width: int, min_lines: int = _GUTTER_MIN_LINES
) -> list[tuple[int, int]]:
    """Column gutters: runs ``[lo, hi)`` of pixel columns where (almost) no text line has
    ink while at least ``min_lines`` lines have ink on both sides.

    ``cover[x]`` is the number of text lines with ink in pixel column ``x``. "Almost no" is
    at most 2 lines or 15% of the emptier side's lines (a title, a footer or a page number
    may cross a gutter).
    """
    if cover.size == 0:
        return []
    left = np.maximum.accumulate(cover)
    right = np.maximum.accumulate(cover[::-1])[::-1]
    sides = np.minimum(left, right)
    low = (sides >= min_lines) & (cover <= np.maximum(2, 0.15 * sides))
    gutters: list[tuple[int, int]] = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], low.astype(np.int8), [0]])))
    for lo, hi in zip(edges[::2], edges[1::2], strict=True):
        if hi - lo >= min_width:
            gutters.append((int(lo), int(hi)))
    return gutters


def cut_at_gutters(
    box: tuple[int, int, int, int], ink: np.ndarray, gutters: Sequence[tuple[int, int]], pad: int
) -> list[tuple[int, int, int, int]]:
    """Pieces of a line box cut at every gutter centre it covers with no ink in the middle
    half of the gutter.

    Each piece is trimmed to its ink (plus ``pad`` pixels), so a box that only reaches into a
    gutter comes back as one trimmed piece; a line that crosses no gutter comes back as one
    piece, unchanged.
    """
    x0, y0, x1, y1 = box
    cuts = []
    for lo, hi in gutters:
        centre, quarter = (lo + hi) // 2, (hi - lo) // 4
        middle = ink[max(x0, lo + quarter) - x0 : max(x0, min(x1, hi - quarter)) - x0]
        if x0 < centre < x1 and not middle.any():
            cuts.append(centre)
    if not cuts:
        return [box]
    pieces = []
    for a, b in itertools.pairwise([x0, *cuts, x1]):
        cols = np.flatnonzero(ink[a - x0 : b - x0])
        if cols.size == 0:
            continue
        pieces.append(
            (max(x0, a + int(cols[0]) - pad), y0, min(x1, a + int(cols[-1]) + 1 + pad), y1)
        )
    return pieces


# -- from lines to elements --------------------------------------------------------------------

_BULLET_GLYPHS = "•●○◦▪▫■□‣\u2043∙·◆◇►▶➢✓✔❖"
_DASHES = "\u2013\u2014"  # en and em dash
_BULLET_RE = re.compile(rf"^(?:[{_BULLET_GLYPHS}]\s*|[-{_DASHES}*+]\s+)(?=\S)")
_ENUM_RE = re.compile(r"^(?:\(?\d{1,3}[.)]|\(?[a-z][)]|\([a-z]\)|\(?[ivx]{1,5}[.)])\s+\S")
_PAGE_NUMBER_RE = re.compile(
    rf"^(?:page\s*|seite\s*|p\.\s*)?[-{_DASHES}(\[]?\s*(?:\d{{1,4}}|[ivxlc]{{1,6}})\s*[-{_DASHES})\]]?"
    r"(?:\s*(?:/|of|von)\s*\d{1,4})?$",
    re.IGNORECASE,
)
_SENTENCE_END = tuple('.!?:;"”»)')
_HYPHENS = ("-", "¬", "\u00ad", "\u2010")  # hyphen-minus, not sign, soft hyphen, hyphen


def _is_bullet(text: str) -> bool:
    return bool(_BULLET_RE.match(text))


def _is_enumeration(text: str) -> bool:
    return bool(_ENUM_RE.match(text))


def box_gutters(lines: Sequence[OcrLine], median_h: float) -> list[tuple[float, float]]:
    """Column gutters from line boxes alone (when no image is at hand): like
    :func:`find_gutters` on box coverage instead of ink coverage."""
    if not lines:
        return []
    width = int(np.ceil(max(ln.x1 for ln in lines))) + 2
    cover = np.zeros(width, dtype=np.int32)
    for ln in lines:
        if ln.x1 - ln.x0 >= _GUTTER_LINE_WIDTH * median_h:
            cover[max(0, int(ln.x0)) : int(np.ceil(ln.x1))] += 1
    found = find_gutters(cover, min_width=max(2, round(0.3 * median_h)))
    return [(float(lo), float(hi)) for lo, hi in found]


class _Orderer:
    """Reading order by recursive XY cuts on line boxes, column cuts first.

    Columns are cut only at the page's gutters (found from the ink or the boxes of many
    lines, so a stray gap between two labels is no column). A region that a gutter crosses
    from top to bottom (no line over the gutter's centre, lines on both sides) is read
    column by column. Otherwise it is cut into horizontal bands at vertical gaps, and
    consecutive bands stay together while together they can still be cut at a gutter (a
    run of two-column rows is one two-column region); a band that spans the gutter (a
    title, a wide caption, a page number in the middle) separates such regions.
    """

    def __init__(
        self, lines: Sequence[OcrLine], median_h: float, gutters: Sequence[tuple[float, float]]
    ) -> None:
        self.lines = lines
        # a line crosses a gutter when it covers its centre (padded boxes reach into it)
        self.cuts = sorted((lo + hi) / 2 for lo, hi in gutters)
        # the detector pads boxes; shrink them vertically so neighbouring lines do not touch
        self.core = [(ln.y0 + 0.2 * ln.height, ln.y1 - 0.2 * ln.height) for ln in lines]

    def _columns(self, idx: list[int]) -> list[list[int]]:
        cols = [idx]
        for cut in self.cuts:
            last = cols[-1]
            if any(self.lines[i].x0 < cut < self.lines[i].x1 for i in last):
                continue  # a line crosses this gutter here
            left = [i for i in last if self.lines[i].cx < cut]
            right = [i for i in last if self.lines[i].cx >= cut]
            if left and right:
                cols[-1:] = [left, right]
        return cols

    def _bands(self, idx: list[int]) -> list[list[int]]:
        order = sorted(idx, key=lambda i: self.core[i][0])
        bands: list[list[int]] = []
        bottom = -np.inf
        for i in order:
            lo, hi = self.core[i]
            if bands and lo <= bottom:
                bands[-1].append(i)
                bottom = max(bottom, hi)
            else:
                bands.append([i])
                bottom = hi
        return bands

    def _rows(self, idx: list[int]) -> list[int]:
        """Lines sorted top to bottom, lines on the same row left to right."""
        order = sorted(idx, key=lambda i: self.lines[i].cy)
        rows: list[list[int]] = []
        for i in order:
            ln = self.lines[i]
            if rows:
                last = self.lines[rows[-1][-1]]
                if abs(ln.cy - last.cy) < 0.5 * min(ln.height, last.height):
                    rows[-1].append(i)
                    continue
            rows.append([i])
        return [i for row in rows for i in sorted(row, key=lambda j: self.lines[j].x0)]

    def order(self, idx: list[int]) -> list[int]:
        if len(idx) <= 1:
            return idx
        cols = self._columns(idx)
        if len(cols) > 1:
            return [i for col in cols for i in self.order(col)]
        bands = self._bands(idx)
        groups: list[list[int]] = []
        group_split = False
        for band in bands:
            band_split = len(self._columns(band)) > 1
            if groups:
                joined = groups[-1] + band
                if len(self._columns(joined)) > 1 or (not group_split and not band_split):
                    groups[-1] = joined
                    group_split = group_split or band_split
                    continue
            groups.append(list(band))
            group_split = band_split
        if len(groups) == 1:  # one flow: no column anywhere
            return [i for band in bands for i in self._rows(band)]
        return [i for group in groups for i in self.order(group)]


def _merge_row_fragments(lines: list[OcrLine], median_h: float) -> list[OcrLine]:
    """Join consecutive pieces of one printed line that the detector cut apart."""
    out: list[OcrLine] = []
    for ln in lines:
        if out:
            prev = out[-1]
            overlap = min(prev.y1, ln.y1) - max(prev.y0, ln.y0)
            gap = ln.x0 - prev.x1
            if (
                overlap > 0.6 * min(prev.height, ln.height)
                and -0.5 * median_h < gap < 2.5 * median_h
                and max(prev.height, ln.height) < 1.3 * min(prev.height, ln.height)
            ):
                n_prev, n_ln = len(prev.text), len(ln.text)
                out[-1] = OcrLine(
                    f"{prev.text} {ln.text}",
                    (prev.score * n_prev + ln.score * n_ln) / max(1, n_prev + n_ln),
                    min(prev.x0, ln.x0),
                    min(prev.y0, ln.y0),
                    max(prev.x1, ln.x1),
                    max(prev.y1, ln.y1),
                    max(prev.height, ln.height),
                )
                continue
        out.append(ln)
    return out


def _join_lines(texts: Sequence[str]) -> str:
    """Lines joined by spaces; a word hyphenated across a line break before a lowercase
    letter is joined again ("ent-" + "falten" -> "entfalten")."""
    text = ""
    for t in texts:
        t = t.strip()
        if not text:
            text = t
        elif text.endswith(_HYPHENS) and len(text) >= 2 and text[-2].isalpha() and t[:1].islower():
            text = text[:-1] + t
        else:
            text = f"{text} {t}"
    return text


def _blocks(lines: list[OcrLine], median_h: float) -> list[list[OcrLine]]:
    """Consecutive lines (in reading order) grouped into paragraphs / blocks."""
    pitches = [
        b.cy - a.cy for a, b in itertools.pairwise(lines) if 0.5 < (b.cy - a.cy) / median_h < 3
    ]
    pitch = statistics.median(pitches) if pitches else 1.2 * median_h
    tol = 0.8 * median_h
    blocks: list[list[OcrLine]] = []
    for ln in lines:
        block = blocks[-1] if blocks else None
        if block is None or not _continues(block, ln, pitch, tol, median_h):
            blocks.append([ln])
        else:
            block.append(ln)
    return blocks


def _continues(
    block: list[OcrLine], ln: OcrLine, pitch: float, tol: float, median_h: float
) -> bool:
    prev = block[-1]
    first = block[0]
    step = ln.cy - prev.cy
    if step <= 0.3 * min(prev.height, ln.height) or step > 1.45 * pitch:
        return False  # same row (a separate cell) or a blank-line gap
    if max(prev.height, ln.height) > 1.3 * min(prev.height, ln.height):
        return False  # different text size
    x0 = min(b.x0 for b in block)
    x1 = max(b.x1 for b in block)
    if min(x1, ln.x1) - max(x0, ln.x0) <= 0:
        return False  # not below the block
    if _is_bullet(ln.text):
        return False
    finished = prev.text.rstrip().endswith(_SENTENCE_END)
    if _is_enumeration(ln.text) and finished:
        return False
    right = max(x1, ln.x1)
    short = right - prev.x1 > max(4 * median_h, 0.25 * (right - x0))
    if short and finished and (ln.text[:1].isupper() or ln.text[:1].isdigit()):
        return False  # the previous line ended a paragraph
    centred = abs(ln.cx - prev.cx) < tol and abs(ln.x0 - prev.x0) > tol
    if len(block) == 1:
        if ln.x0 < first.x0 + tol:
            return True  # same left edge, or the first line was indented
        is_item = _is_bullet(first.text) or _is_enumeration(first.text)
        return is_item or centred  # hanging indent of a list item; centred lines
    left = statistics.median(b.x0 for b in block[1:])
    return abs(ln.x0 - left) < tol or centred


def _classify(
    block: list[OcrLine], text: str, median_h: float, width: int, height: int, text_span: BBox
) -> tuple[ElementType, int | None, str]:
    block_h = statistics.median(ln.height for ln in block)
    x0 = min(ln.x0 for ln in block)
    x1 = max(ln.x1 for ln in block)
    y0 = min(ln.y0 for ln in block)
    y1 = max(ln.y1 for ln in block)
    outermost = y0 <= text_span[1] or y1 >= text_span[3]  # nothing above it, or below
    near_edge = y1 < 0.12 * height or y0 > 0.88 * height
    in_margin = (outermost or near_edge) and (x1 - x0) < 0.3 * width
    if len(block) == 1 and in_margin and _PAGE_NUMBER_RE.match(text):
        return ElementType.PAGE_NUMBER, None, text
    if _is_bullet(text):
        return ElementType.LIST_ITEM, None, _BULLET_RE.sub("", text, count=1)
    if _is_enumeration(text):
        return ElementType.LIST_ITEM, None, text
    ratio = block_h / median_h
    if (
        ratio >= 1.35
        and len(block) <= 3
        and len(text) <= 120
        and not text.endswith((",", ";"))
        and any(c.isalpha() for c in text)
    ):
        return ElementType.TITLE, 1 if ratio >= 1.8 else 2, text
    return ElementType.NARRATIVE_TEXT, None, text


def lines_to_elements(
    lines: Sequence[OcrLine],
    width: int,
    height: int,
    *,
    gutters: Sequence[tuple[float, float]] | None = None,
) -> list[Element]:
    """Group OCR lines into typed elements in reading order.

    ``gutters`` are the page's column gutters as x-ranges (the engine finds them from the
    ink; when None they are found from the line boxes). Lines are ordered column by column
    (:class:`_Orderer`), pieces of one printed line are
    joined, consecutive lines with the same left edge (or a first-line / hanging indent),
    the same text size and no blank-line gap form one block. A block becomes a
    ``PageNumber`` (a lone number above or below all other text, or near the page's top or
    bottom edge), a ``ListItem`` (bullet or
    enumeration; a bullet glyph is dropped from the text), a ``Title`` (short, lines at
    least 1.35 times the page's median line height; level 1 from 1.8 times) or
    ``NarrativeText``. ``prob`` is the mean recognition score of the block's lines; boxes
    are clamped to the ``width`` x ``height`` page.
    """
    lines = [ln for ln in lines if ln.text.strip()]
    if not lines:
        return []
    median_h = statistics.median(ln.height for ln in lines) or 1.0
    if gutters is None:
        gutters = box_gutters(lines, median_h)
    order = _Orderer(lines, median_h, gutters).order(list(range(len(lines))))
    ordered = _merge_row_fragments([lines[i] for i in order], median_h)
    text_span = (
        min(ln.x0 for ln in lines),
        min(ln.y0 for ln in lines),
        max(ln.x1 for ln in lines),
        max(ln.y1 for ln in lines),
    )
    elements: list[Element] = []
    for block in _blocks(ordered, median_h):
        text = _join_lines([ln.text for ln in block])
        kind, level, text = _classify(block, text, median_h, width, height, text_span)
        bbox = (
            min(max(0.0, min(ln.x0 for ln in block)), float(width)),
            min(max(0.0, min(ln.y0 for ln in block)), float(height)),
            min(max(0.0, max(ln.x1 for ln in block)), float(width)),
            min(max(0.0, max(ln.y1 for ln in block)), float(height)),
        )
        prob = float(np.mean([ln.score for ln in block]))
        elements.append(Element(kind, text, bbox, level=level, prob=round(prob, 4)))
    return elements


def page_text(result: PageResult) -> str:
    """The page's text, one element per paragraph, in reading order."""
    return "\n\n".join(el.text for el in result.elements)
