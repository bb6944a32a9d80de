"""Find pages that are rotated by 90, 180 or 270 degrees, and right them before OCR.

The decision reuses the text detector's boxes, which the OCR computes anyway, so an upright
page pays only for a text-line classifier run on a few crops (milliseconds):

1. **90/270 or 0/180.** Text lines are long and thin. If most of the detected text (weighted
   by line length) lies in boxes taller than wide, the page is turned by 90 or 270 degrees;
   otherwise by 0 or 180.
2. **Which of the two.** The longest lines are cropped and turned to lie horizontally (tall
   crops a quarter turn counter-clockwise). On a horizontal page the bundled 0/180
   text-line classifier votes first; when it finds the page upright (the usual case) that is
   the answer. When it votes "upside down", and always on a vertical page, the recogniser
   reads the sample crops both ways round and the way with the higher mean confidence wins:
   the classifier alone flips some long upright lines, the recogniser settles it.

Angles follow one convention throughout: ``angle`` is how far the page content is turned
*clockwise* from upright; :func:`right_image` turns it back (counter-clockwise by
``angle``). The righted page of a 90/270 page has width and height swapped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

ANGLES = (0, 90, 180, 270)

#: classifier: crops -> (label, score) per crop, label "0" or "180"
Classify = Callable[[list[np.ndarray]], Sequence[tuple[str, float]]]
#: recogniser: crops -> recognition confidence (0..1) per crop
Recognize = Callable[[list[np.ndarray]], Sequence[float]]

_MIN_ASPECT = 2.5  # long side / short side of a crop worth judging (a few characters at least)
_MAX_SAMPLE = 10


def box_sides(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Width (along the top/bottom edges) and height of quadrilateral boxes, shape (N, 4, 2).

    Points run clockwise from the top-left, as the detector returns them.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4, 2)
    width = np.maximum(
        np.linalg.norm(b[:, 1] - b[:, 0], axis=1), np.linalg.norm(b[:, 2] - b[:, 3], axis=1)
    )
    height = np.maximum(
        np.linalg.norm(b[:, 3] - b[:, 0], axis=1), np.linalg.norm(b[:, 2] - b[:, 1], axis=1)
    )
    return width, height


def is_vertical_page(boxes: np.ndarray) -> bool:
    """Whether most detected text (by line length) runs in boxes taller than wide."""
    if len(boxes) == 0:
        return False
    width, height = box_sides(boxes)
    tall = height >= 1.5 * width
    wide = width >= 1.5 * height
    return float(height[tall].sum()) > float(width[wide].sum())


def _horizontal_crop(crop: np.ndarray, vertical: bool) -> np.ndarray:
    """A crop turned to lie horizontally: tall crops a quarter turn counter-clockwise."""
    if vertical and crop.shape[0] > crop.shape[1]:
        return np.ascontiguousarray(np.rot90(crop, 1))
    return crop


def sample_crops(
    boxes: np.ndarray, crops: Sequence[np.ndarray], vertical: bool, limit: int = _MAX_SAMPLE
) -> list[np.ndarray]:
    """The longest line crops in the page's main direction, each lying horizontally.

    ``crops[i]`` is the image of ``boxes[i]``; crops that the detector pipeline already
    turned (rapidocr turns crops at least 1.5 times taller than wide a quarter turn
    counter-clockwise) are left as they are, so every crop is turned the same way.
    """
    if len(boxes) == 0:
        return []
    width, height = box_sides(boxes)
    long_side = np.where(vertical, height, width)
    short_side = np.maximum(np.where(vertical, width, height), 1.0)
    aspect = long_side / short_side
    candidates = [i for i in np.argsort(-long_side) if aspect[i] >= _MIN_ASPECT]
    if not candidates:
        candidates = [i for i in np.argsort(-long_side) if aspect[i] >= 1.5]
    return [_horizontal_crop(crops[i], vertical) for i in candidates[:limit]]


def _flip_share(votes: Sequence[tuple[str, float]]) -> float:
    """Mean probability, over the crops, that a crop is upside down."""
    p180 = [score if "180" in label else 1.0 - score for label, score in votes]
    return float(np.mean(p180)) if p180 else 0.0


def _mean_score(recognize: Recognize, crops: list[np.ndarray]) -> float:
    scores = [float(s) for s in recognize(crops)]
    return float(np.mean(scores)) if scores else 0.0


def estimate_orientation(
    boxes: np.ndarray,
    crops: Sequence[np.ndarray],
    classify: Classify,
    recognize: Recognize | None = None,
) -> int:
    """How far (0, 90, 180 or 270 degrees, clockwise) the page content is turned.

    ``boxes``: detected text boxes (N, 4, 2) in any pixel frame of the page; ``crops``: the
    image of each box, as cut by the detector pipeline. ``recognize`` settles the cases the
    classifier is not trusted with (see the module docstring); without it the classifier's
    majority decides. Returns 0 when there is nothing to judge.
    """
    if len(boxes) == 0 or len(crops) != len(boxes):
        return 0
    vertical = is_vertical_page(boxes)
    sample = sample_crops(boxes, crops, vertical)
    if not sample:
        return 0
    base = 90 if vertical else 0
    if not vertical:
        flip = _flip_share(classify(sample))
        if flip < 0.5:
            return 0
        if recognize is None:
            return 180
    elif recognize is None:
        return base + 180 if _flip_share(classify(sample)) >= 0.5 else base
    assert recognize is not None
    turned = [np.ascontiguousarray(np.rot90(c, 2)) for c in sample]
    as_is, flipped = _mean_score(recognize, sample), _mean_score(recognize, turned)
    return base + 180 if flipped > as_is else base


def right_image(image: np.ndarray, angle: int) -> np.ndarray:
    """Turn an image whose content is ``angle`` degrees clockwise from upright back upright."""
    if angle not in ANGLES:
        raise ValueError(f"angle must be one of {ANGLES}, not {angle}")
    if angle == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, angle // 90))


def righted_size(width: int, height: int, angle: int) -> tuple[int, int]:
    """(width, height) of a page of this size once righted."""
    return (height, width) if angle in (90, 270) else (width, height)
