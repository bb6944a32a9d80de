"""The ``vlm`` engine: a transformers vision-language OCR model, pages batched on the GPU.

The model is one of :data:`~handler.engines.vlm.profiles.PROFILES` (``PAGEDROP_VLM_MODEL``),
read from ``PAGEDROP_MODEL_DIR/<profile>/`` or ``PAGEDROP_VLM_MODEL_PATH``; the settings
override the profile's prompt, pixel limits, new-token budget and dtype. Everything is
loaded when the engine is built, so a missing folder, extra or GPU is an
:class:`~handler.errors.EngineUnavailable` at start-up.

A page's way through (:class:`~handler.engines.base.BatchingEngine`):

1. ``submit``, in the document's thread: the page is drawn at most ``max_pixels`` large and
   prepared by the processor on its own (:func:`~handler.engines.vlm.generate.prepare_page`),
   then queued in a :class:`~handler.engines.batching.BatchRunner`.
2. The runner's thread pads a batch of prepared pages on the left and generates (greedy);
   a CUDA out-of-memory error halves the batch and retries it.
3. Each page's answer becomes elements (:func:`~handler.engines.vlm.parse.parse_output`) in
   the page's layout pixels, and its future is resolved with the ``PageResult``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

from handler.engines.base import PageResult
from handler.engines.batching import BatchRunner, BatchStats
from handler.engines.devices import (
    gpu_summary,
    is_cuda_oom,
    pick_device,
    pick_dtype,
    release_cuda_memory,
)
from handler.engines.vlm import generate as gen
from handler.engines.vlm.loading import load_vlm
from handler.engines.vlm.profiles import VlmProfile, profile
from handler.errors import EngineUnavailable
from handler.models.local import model_folder, require_model

if TYPE_CHECKING:
    from handler.documents.pages import PageInput
    from handler.settings import Settings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _QueuedPage:
    number: int
    width: int  # layout size: the coordinate system of the page's elements
    height: int
    prepared: gen.PreparedPage
    seconds: float  # spent drawing and preparing it


class VlmEngine:
    """Batched OCR with a transformers vision-language model (module docstring)."""

    name = "vlm"

    def __init__(self, settings: Settings) -> None:
        try:
            self.profile: VlmProfile = profile(settings.vlm_model)
        except KeyError as exc:
            raise EngineUnavailable(f"PAGEDROP_VLM_MODEL: {exc.args[0]}") from None
        chosen = self.profile
        self.folder = settings.vlm_model_path or model_folder(settings.model_dir, chosen.name)
        self.prompt = settings.vlm_prompt or chosen.prompt
        self.max_new_tokens = settings.vlm_max_new_tokens or chosen.max_new_tokens
        self.min_pixels = settings.vlm_min_pixels or chosen.min_pixels
        self.max_pixels = settings.vlm_max_pixels or chosen.max_pixels
        require_model(self.folder, chosen.name)  # before torch is imported: the cheap check
        self.device = pick_device(settings.device)
        self.needs_gpu = self.device == "cuda"  # the self-check's hook (handler.health)
        self.dtype = pick_dtype(settings.vlm_dtype, self.device, chosen.dtype)
        loaded = load_vlm(self.folder, chosen.name, device=self.device, dtype=self.dtype)
        self._model = loaded.model
        self._processor = loaded.processor
        self._text = gen.chat_text(self._processor, self.prompt)
        self._image_kwargs = gen.pixel_kwargs(self._processor, self.min_pixels, self.max_pixels)
        self._pad_token_id = gen.pad_token_id(self._processor, self._model)
        # the processor's tokenizer keeps padding state: one call at a time
        self._processor_lock = threading.Lock()
        self._runner: BatchRunner[_QueuedPage, gen.Generation] = BatchRunner(
            self._generate,
            batch_size=settings.gpu_batch_size,
            wait_s=settings.gpu_batch_wait_ms / 1000,
            name=self.name,
            is_oom=is_cuda_oom,
            on_oom=release_cuda_memory,
        )

    # -- the BatchingEngine interface ------------------------------------------------------

    @property
    def max_in_flight(self) -> int:
        """Pages the worker keeps submitted: the batch running and the next one being drawn."""
        return 2 * self._runner.batch_size

    @property
    def batch_size(self) -> int:
        return self._runner.batch_size

    def submit(self, page: PageInput) -> Future[PageResult]:
        """Draw and prepare ``page`` here, queue it for a batch; ``BadInput`` if it cannot
        be drawn. The future gets the page's result or the batch's error."""
        started = time.perf_counter()
        image = page.render_scaled(self.render_scale(page))
        with self._processor_lock:
            prepared = gen.prepare_page(self._processor, image, self._text, self._image_kwargs)
        queued = _QueuedPage(
            page.number,
            page.layout_width,
            page.layout_height,
            prepared,
            time.perf_counter() - started,
        )
        result: Future[PageResult] = Future()
        result.set_running_or_notify_cancel()  # the page is queued: it cannot be cancelled
        generated = self._runner.submit(queued)
        generated.add_done_callback(lambda done: self._settle(queued, done, result))
        return result

    def convert(self, page: PageInput) -> PageResult:
        return self.submit(page).result()

    def batch_stats(self) -> BatchStats:
        """Batches, pages, GPU seconds and out-of-memory splits since the last call."""
        return self._runner.take_stats()

    def release_memory(self) -> None:
        """Free cached GPU memory (between documents)."""
        release_cuda_memory()

    def close(self) -> None:
        """Finish the queued pages and stop the batch thread."""
        self._runner.close()

    def describe(self) -> str:
        """One line for the worker's self-check."""
        gpu = gpu_summary() or "no GPU"
        dtype = str(self.dtype).removeprefix("torch.")
        return (
            f"{self.profile.name} on {self.device} ({gpu}), {dtype}, model {self.folder}, "
            f"batch size {self.batch_size}"
        )

    # -- the parts -------------------------------------------------------------------------

    def render_scale(self, page: PageInput) -> float:
        """The factor (at most 1) that draws the page no larger than ``max_pixels``."""
        pixels = page.layout_width * page.layout_height
        if not self.max_pixels or pixels <= self.max_pixels:
            return 1.0
        return math.sqrt(self.max_pixels / pixels)

    def _generate(self, pages: list[_QueuedPage]) -> list[gen.Generation]:
        """One batch, on the runner's thread."""
        prepared = [page.prepared for page in pages]
        batch = gen.collate(prepared, self._pad_token_id)
        if batch is None:
            with self._processor_lock:
                batch = gen.prepare_batch(self._processor, prepared, self._image_kwargs)
        return gen.generate(
            self._model,
            self._processor,
            batch,
            max_new_tokens=self.max_new_tokens,
            pad_token_id=self._pad_token_id,
        )

    def _settle(
        self, page: _QueuedPage, generated: Future[gen.Generation], result: Future[PageResult]
    ) -> None:
        try:
            result.set_result(self._page_result(page, generated.result()))
        except Exception as exc:
            result.set_exception(exc)

    def _page_result(self, page: _QueuedPage, generation: gen.Generation) -> PageResult:
        from handler.engines.vlm.parse import parse_output

        if generation.truncated:
            log.warning(
                "page %d: the answer reached the %d new-token limit (PAGEDROP_VLM_MAX_NEW_TOKENS);"
                " its end may be missing",
                page.number,
                self.max_new_tokens,
            )
        elements = parse_output(generation.text, self.profile.output, page.width, page.height)
        return PageResult(
            page_number=page.number,
            width=page.width,
            height=page.height,
            engine=self.name,
            elements=elements,
            seconds=page.seconds + generation.seconds,
        )
