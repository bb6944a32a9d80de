"""The ``paddleocr-vl`` engine: the ``paddleocr`` package's PaddleOCR-VL pipeline, pages
batched on the GPU.

The pipeline (``paddleocr.PaddleOCRVL``) finds a page's blocks with its layout model
(PP-DocLayoutV2: labels and reading order), reads each block with the 0.9B vision-language
recogniser (text, tables as OTSL turned into HTML, formulas as LaTeX, charts) and returns
the blocks; :mod:`handler.engines.paddle_blocks` turns them into elements.

Weights come only from ``PAGEDROP_MODEL_DIR/paddleocr-vl/``, a snapshot of
PaddlePaddle/PaddleOCR-VL: the recogniser (transformers format, with the ``inference.yml``
paddlex reads its name from) at the top, or in ``PaddleOCR-VL-0.9B/`` where a snapshot has
it there, and the layout model in ``PP-DocLayoutV2/``. Both folders are handed to the
pipeline, so it never downloads; a missing one is :class:`EngineUnavailable` at start-up.
``PAGEDROP_PADDLEOCR_VL_BACKEND`` picks the recogniser's engine: ``paddle`` (the GPU
image) or ``transformers`` (anywhere torch runs); the layout model runs on whatever its
folder holds weights for (``paddle`` for ``*.pdiparams``, ``transformers`` for
``*.safetensors``).

A page's way through (:class:`~handler.engines.base.BatchingEngine`): ``submit`` draws the
page in the caller's thread (PDF pages at ``TARGET_DPI``, images at most ``MAX_SIDE``
pixels long) and queues it in a :class:`~handler.engines.batching.BatchRunner`; the
runner's thread calls ``pipeline.predict`` once per batch of pages.

Markdown: the pipeline also writes each page's markdown, but pagedrop's is built from the
elements (:mod:`handler.outputs.markdown`), which carry everything it needs: titles with
levels, tables as HTML, formulas as LaTeX (numbers attached), captions, furniture. The
pipeline's own markdown adds only links to the image crops it would save, which pagedrop
does not write, so it is not kept.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from handler.engines.base import PageResult
from handler.engines.batching import BatchRunner, BatchStats
from handler.engines.devices import is_cuda_oom, pick_device, release_cuda_memory
from handler.engines.paddle_blocks import blocks_to_elements
from handler.errors import EngineUnavailable
from handler.models.local import (
    PADDLEOCR_VL_LAYOUT,
    PADDLEOCR_VL_MODEL,
    model_folder,
    require_model,
)

if TYPE_CHECKING:
    from handler.documents.pages import PageInput
    from handler.settings import Settings

log = logging.getLogger(__name__)

PADDLE_EXTRA = "pip install 'pagedrop[paddle]'"
PIPELINE_VERSION = "v1"  # PaddleOCR-VL with PP-DocLayoutV2 (paddleocr's default is v1.6)
PIPELINE_NAME = "PaddleOCR-VL"  # paddlex's configuration of that version
VL_MODEL_NAME = "PaddleOCR-VL-0.9B"  # what the recogniser folder's inference.yml must name
VL_SUBFOLDER = "PaddleOCR-VL-0.9B"  # where some snapshots keep the recogniser
#: PDF pages are drawn at this resolution: what paddlex's own PDF reader uses (zoom 2.0).
#: The layout model reads the page at 800 x 800 and the recogniser each block between
#: 112,896 and 1,003,520 pixels, so finer drawing only costs time.
TARGET_DPI = 144
#: Longest side (pixels) an image file is read at: a 600-DPI A4 scan comes down to about
#: 250 DPI, above what the recogniser's pixel limit keeps of a full-width paragraph.
MAX_SIDE = 2048
# Paddle's allocation failure ("ResourceExhaustedError: Out of memory error on GPU 0 ...").
_PADDLE_OOM_MESSAGES = ("Out of memory error on GPU", "ResourceExhaustedError")


@dataclass(slots=True)
class _QueuedPage:
    number: int
    width: int  # layout size: the coordinate system of the page's elements
    height: int
    image: np.ndarray  # BGR, as paddlex reads arrays
    seconds: float  # spent drawing it


class PaddleOcrVlEngine:
    """Batched document parsing with the PaddleOCR-VL pipeline (module docstring).

    ``layout=False`` reads each page as one block (no layout model: plain text, boxes
    approximate); ``max_new_tokens`` caps each block's answer (None: the pipeline's 4096);
    ``max_pixels`` caps the pixels the recogniser reads a block at (None: the pipeline's
    1,003,520).
    """

    name = "paddleocr-vl"

    def __init__(
        self,
        settings: Settings,
        *,
        layout: bool = True,
        max_new_tokens: int | None = None,
        max_pixels: int | None = None,
    ) -> None:
        folder = model_folder(settings.model_dir, PADDLEOCR_VL_MODEL)
        self.vl_folder = _recogniser_folder(folder)
        self.layout_folder = (
            # the layout model comes in the same download as the recogniser
            require_model(
                folder / PADDLEOCR_VL_LAYOUT, PADDLEOCR_VL_MODEL, needs=("inference.yml",)
            )
            if layout
            else None
        )
        self.backend = settings.paddleocr_vl_backend
        self.max_new_tokens = max_new_tokens
        self.max_pixels = max_pixels
        started = time.perf_counter()
        paddleocr_vl = _import_pipeline()
        self.device = (
            _torch_device(settings.device)
            if self.backend == "transformers"
            else _paddle_device(settings.device)
        )
        self.needs_gpu = self.device.startswith("gpu")  # the self-check's hook (handler.health)
        self._pipeline = self._build_pipeline(paddleocr_vl, settings.gpu_batch_size)
        self.load_seconds = time.perf_counter() - started
        self._runner: BatchRunner[_QueuedPage, PageResult] = BatchRunner(
            self._run,
            batch_size=settings.gpu_batch_size,
            wait_s=settings.gpu_batch_wait_ms / 1000,
            name=self.name,
            is_oom=is_out_of_memory,
            on_oom=self.release_memory,
        )
        log.info("paddleocr-vl ready: %s", self.describe())

    # -- the BatchingEngine interface ------------------------------------------------------

    @property
    def max_in_flight(self) -> int:
        """Pages the worker keeps submitted: the batch running and the next one being drawn."""
        return 2 * self._runner.batch_size

    @property
    def batch_size(self) -> int:
        return self._runner.batch_size

    def submit(self, page: PageInput) -> Future[PageResult]:
        """Draw ``page`` here and queue it for a batch; ``BadInput`` if it cannot be drawn."""
        started = time.perf_counter()
        rgb = page.render_scaled(self.render_scale(page))
        queued = _QueuedPage(
            page.number,
            page.layout_width,
            page.layout_height,
            np.ascontiguousarray(rgb[:, :, ::-1]),
            time.perf_counter() - started,
        )
        return self._runner.submit(queued)

    def convert(self, page: PageInput) -> PageResult:
        return self.submit(page).result()

    def batch_stats(self) -> BatchStats:
        """Batches, pages, GPU seconds and out-of-memory splits since the last call."""
        return self._runner.take_stats()

    def release_memory(self) -> None:
        """Free cached GPU memory of paddle and torch (between documents, after OOM)."""
        paddle = sys.modules.get("paddle")
        if paddle is not None and paddle.device.is_compiled_with_cuda():
            paddle.device.cuda.empty_cache()
        release_cuda_memory()

    def close(self) -> None:
        """Finish the queued pages, stop the batch thread, close the pipeline."""
        self._runner.close()
        self._pipeline.close()

    def describe(self) -> str:
        """One line for the worker's self-check."""
        layout = f"layout {self.layout_folder}" if self.layout_folder else "no layout model"
        return (
            f"PaddleOCR-VL ({self.backend} backend) on {self.device}, recogniser "
            f"{self.vl_folder}, {layout}, batch size {self.batch_size}, "
            f"loaded in {self.load_seconds:.1f} s"
        )

    # -- the parts -------------------------------------------------------------------------

    def render_scale(self, page: PageInput) -> float:
        return render_scale(page)

    def _build_pipeline(self, paddleocr_vl: Any, batch_size: int) -> Any:
        from paddlex.inference import load_pipeline_config

        config = load_pipeline_config(PIPELINE_NAME)
        config["batch_size"] = batch_size
        if self.layout_folder is not None:
            config["SubModules"]["LayoutDetection"]["engine"] = _engine_for(self.layout_folder)
        try:
            return paddleocr_vl(
                pipeline_version=PIPELINE_VERSION,
                paddlex_config=config,
                vl_rec_model_dir=str(self.vl_folder),
                layout_detection_model_dir=str(self.layout_folder) if self.layout_folder else None,
                use_layout_detection=self.layout_folder is not None,
                use_doc_orientation_classify=False,
                use_doc_unwarping=False,
                use_queues=False,  # the batch runner already overlaps drawing and reading
                engine=self.backend,
                device=self.device,
            )
        except (ImportError, RuntimeError, ValueError, OSError) as exc:
            raise EngineUnavailable(f"the PaddleOCR-VL pipeline could not start: {exc}") from exc

    def _run(self, pages: list[_QueuedPage]) -> list[PageResult]:
        """One batch, on the runner's thread: one ``predict`` call for all its pages."""
        started = time.perf_counter()
        results = list(
            self._pipeline.predict(
                [page.image for page in pages],
                max_new_tokens=self.max_new_tokens,
                max_pixels=self.max_pixels,
            )
        )
        each = (time.perf_counter() - started) / max(1, len(pages))
        return [
            PageResult(
                page_number=page.number,
                width=page.width,
                height=page.height,
                engine=self.name,
                elements=blocks_to_elements(result, page.width, page.height),
                seconds=page.seconds + each,
            )
            for page, result in zip(pages, results, strict=True)
        ]


def render_scale(page: PageInput) -> float:
    """The factor (at most 1) of the layout size the pipeline reads ``page`` at: PDF pages
    at ``TARGET_DPI``, images no longer than ``MAX_SIDE``."""
    if page.pdf_page is None:  # an image (or a lost page, which fails when drawn)
        return min(1.0, MAX_SIDE / max(page.layout_width, page.layout_height))
    return min(1.0, TARGET_DPI / page.dpi)


def is_out_of_memory(exc: BaseException) -> bool:
    """A GPU allocation failure of paddle (a ``MemoryError`` or its message) or of torch."""
    if isinstance(exc, MemoryError) or is_cuda_oom(exc):
        return True
    return any(text in str(exc) for text in _PADDLE_OOM_MESSAGES)


def _recogniser_folder(folder: Path) -> Path:
    """The recogniser's folder in a PaddleOCR-VL snapshot (its top, or ``VL_SUBFOLDER``)."""
    nested = folder / VL_SUBFOLDER
    chosen = nested if (nested / "config.json").exists() else folder
    return require_model(chosen, PADDLEOCR_VL_MODEL, needs=("config.json", "inference.yml"))


def _engine_for(folder: Path) -> str:
    """The paddlex engine that runs the weights in ``folder``."""
    return "transformers" if any(folder.glob("*.safetensors")) else "paddle"


def _import_pipeline() -> Any:
    """paddleocr's ``PaddleOCRVL`` class, or :class:`EngineUnavailable` naming the extra."""
    # paddlex checks the model hosters' reachability on import unless told not to: the
    # weights are local, and a worker may have no way out.
    os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")
    try:
        from paddleocr import PaddleOCRVL
    except ImportError as exc:
        raise EngineUnavailable(
            f"the paddleocr-vl engine needs paddleocr: {PADDLE_EXTRA} ({exc})"
        ) from exc
    return PaddleOCRVL


def _torch_device(setting: str) -> str:
    """paddlex's device for the transformers backend: where torch sees a GPU."""
    return "gpu:0" if pick_device(setting) == "cuda" else "cpu"


def _paddle_device(setting: str) -> str:
    """paddlex's device for ``PAGEDROP_DEVICE``: ``gpu:0`` or ``cpu``; ``auto`` is the GPU
    when paddle (or torch) sees one. ``cuda`` without a GPU is :class:`EngineUnavailable`."""
    from paddlex.utils.device import get_default_device

    if setting == "cpu":
        return "cpu"
    found = str(get_default_device())
    if setting == "cuda" and not found.startswith("gpu"):
        raise EngineUnavailable(
            "PAGEDROP_DEVICE=cuda, but paddle sees no CUDA GPU here (no GPU, no driver, or the "
            "CPU build of paddlepaddle); set PAGEDROP_DEVICE=auto or cpu to run on the CPU"
        )
    return found
