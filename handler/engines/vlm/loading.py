"""Loading a vision-language model and its processor from a local folder, at start-up.

Only local folders are read (``local_files_only``; no remote code): a folder that is missing
or incomplete, a missing extra, or a checkpoint transformers cannot load is an
:class:`~handler.errors.EngineUnavailable` with what to do, raised before the worker takes
any message.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handler.engines.devices import VLM_EXTRA, import_torch
from handler.errors import EngineUnavailable
from handler.models.local import require_model

log = logging.getLogger(__name__)


@dataclass(slots=True)
class LoadedVlm:
    """A model ready to generate, with the processor that prepares its inputs."""

    model: Any  # transformers AutoModelForImageTextToText, on ``device``, in eval mode
    processor: Any  # transformers AutoProcessor; its tokenizer pads on the left
    folder: Path
    device: str
    dtype: Any  # torch.dtype
    seconds: float  # how long loading took


def load_vlm(folder: Path, name: str, *, device: str, dtype: Any) -> LoadedVlm:
    """Model ``name`` from ``folder`` onto ``device`` in ``dtype``."""
    require_model(folder, name)
    torch = import_torch()
    transformers = _import_transformers()
    started = time.perf_counter()
    try:
        processor = transformers.AutoProcessor.from_pretrained(folder, local_files_only=True)
        model = transformers.AutoModelForImageTextToText.from_pretrained(
            folder, local_files_only=True, dtype=dtype
        )
        model.to(device)
    except torch.OutOfMemoryError as exc:
        raise EngineUnavailable(
            f"{name} does not fit in this GPU's memory in {dtype}: {exc}"
        ) from exc
    except Exception as exc:  # whatever transformers raises for a checkpoint it cannot load
        hint = ""
        if "torchvision" in str(exc).lower():  # Qwen2.5-VL's video processor, for one
            hint = " (this model's processor needs torchvision: install the build for your torch)"
        raise EngineUnavailable(
            f"{name} could not be loaded from {folder} with transformers "
            f"{transformers.__version__}: {type(exc).__name__}: {exc}{hint}"
        ) from exc
    model.eval()
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is not None:
        tokenizer.padding_side = "left"  # generation continues every row from its last token
    seconds = time.perf_counter() - started
    log.info("loaded %s from %s on %s (%s) in %.1f s", name, folder, device, dtype, seconds)
    return LoadedVlm(model, processor, folder, device, dtype, seconds)


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:
        raise EngineUnavailable(f"the vlm engine needs transformers: {VLM_EXTRA} ({exc})") from exc
    return transformers
