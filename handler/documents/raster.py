"""Pixel helpers shared by the PDF and image readers: every page renders to RGB uint8."""

from __future__ import annotations

import numpy as np
from PIL import Image

WHITE = 255


def fit_rgb(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    """Return ``arr`` as a writable (height, width, 3) array, cropping or padding with white.

    Renderers round page sizes their own way (a pixel more or less than the layout size);
    the engines are promised exactly the layout size.
    """
    if arr.shape[0] == height and arr.shape[1] == width:
        return arr if arr.flags.writeable else arr.copy()
    out = np.full((height, width, 3), WHITE, dtype=np.uint8)
    h = min(height, arr.shape[0])
    w = min(width, arr.shape[1])
    out[:h, :w] = arr[:h, :w]
    return out


def scaled_size(width: int, height: int, factor: float) -> tuple[int, int]:
    """The pixel size of a ``width`` x ``height`` page drawn at ``factor`` times its size."""
    return max(1, round(width * factor)), max(1, round(height * factor))


def resize_rgb(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    """``arr`` resized to (height, width, 3); area averaging, which keeps thin strokes when
    shrinking (nearest or bilinear sampling drops them)."""
    if arr.shape[0] == height and arr.shape[1] == width:
        return arr
    import cv2  # opencv comes with rapidocr; only OCR asks for a smaller page

    return cv2.resize(arr, (width, height), interpolation=cv2.INTER_AREA)


def image_to_rgb(im: Image.Image) -> np.ndarray:
    """Convert a loaded Pillow image of any mode to an RGB uint8 array.

    Transparent pixels are composited onto white (black text on a transparent background
    would otherwise become black on black). 16-bit and 32-bit grey images are scaled to
    8 bits by their bit depth (12-bit data stored in 16 bits is recognised by its maximum).
    """
    mode = im.mode
    if mode == "RGB":
        return np.array(im)
    if mode.startswith("I") or mode == "F":
        return _grey_to_rgb(_scale_to_8bit(np.asarray(im)))
    has_alpha = mode in ("LA", "La", "PA", "RGBa") or (mode == "P" and "transparency" in im.info)
    if has_alpha:
        im = im.convert("RGBA")
    if im.mode == "RGBA":
        background = Image.new("RGB", im.size, (WHITE, WHITE, WHITE))
        background.paste(im, mask=im.getchannel("A"))
        return np.array(background)
    return np.array(im.convert("RGB"))


def _scale_to_8bit(values: np.ndarray) -> np.ndarray:
    a = values.astype(np.float32)
    if a.size == 0:
        return a.astype(np.uint8)
    hi = float(a.max())
    if values.dtype.kind == "f" and hi <= 1.0:
        top = 1.0  # float images in 0..1
    elif hi <= 255:
        top = 255.0
    elif hi <= 4095:
        top = 4095.0
    elif hi <= 65535:
        top = 65535.0
    else:
        top = hi
    return np.clip(a * (255.0 / top), 0, 255).round().astype(np.uint8)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[:, :, np.newaxis], 3, axis=2)
