"""Where a GPU engine runs: the device, the number format, the GPU's memory.

Shared by the GPU engines (``vlm``, ``paddleocr-vl``). torch is imported inside the
functions that need it, so a CPU worker never loads it; a function that only inspects an
exception or frees memory does nothing when torch was never loaded.
"""

from __future__ import annotations

import gc
import sys
from typing import Any, Literal

from handler.errors import EngineUnavailable

Device = Literal["cuda", "cpu"]

VLM_EXTRA = "pip install 'pagedrop[vlm]'"
GIB = 1024**3

_DTYPE_NAMES = ("bfloat16", "float16", "float32")
# Messages of CUDA allocation failures that are not raised as torch.OutOfMemoryError
# (older torch, cuBLAS/cuDNN workspaces).
_OOM_MESSAGES = ("CUDA out of memory", "CUBLAS_STATUS_ALLOC_FAILED", "CUDNN_STATUS_ALLOC_FAILED")


def import_torch() -> Any:
    """The torch module, or :class:`EngineUnavailable` naming the extra that installs it."""
    try:
        import torch
    except ImportError as exc:
        raise EngineUnavailable(f"the GPU engines need torch: {VLM_EXTRA} ({exc})") from exc
    return torch


def pick_device(setting: str) -> Device:
    """The device for ``setting`` (``auto``, ``cuda`` or ``cpu``).

    ``auto`` is CUDA when torch sees a GPU, else the CPU. ``cuda`` on a machine where torch
    sees no GPU is :class:`EngineUnavailable` at once (at start-up), never a hang later.
    """
    if setting == "cpu":
        return "cpu"
    if setting not in ("auto", "cuda"):
        raise EngineUnavailable(f"unknown device {setting!r}: use auto, cuda or cpu")
    torch = import_torch()
    if torch.cuda.is_available():
        return "cuda"
    if setting == "cuda":
        raise EngineUnavailable(
            "PAGEDROP_DEVICE=cuda, but torch sees no CUDA GPU here (no GPU, no driver, "
            f"CUDA_VISIBLE_DEVICES empty, or a CPU build of torch {torch.__version__}); "
            "set PAGEDROP_DEVICE=auto or cpu to run on the CPU"
        )
    return "cpu"


def pick_dtype(setting: str, device: Device, profile_default: str) -> Any:
    """The number format the model runs in (a ``torch.dtype``).

    ``auto``: on CUDA the profile's format (bfloat16 for every profile), or float16 where the
    GPU has no native bfloat16 (before Ampere); float32 on the CPU (half precision is slow
    there). An explicit setting is used as given, except bfloat16 on a GPU without it.
    """
    torch = import_torch()
    if setting == "auto":
        if device == "cpu":
            return torch.float32
        wanted = profile_default if profile_default in _DTYPE_NAMES else "bfloat16"
        if wanted == "bfloat16" and not _native_bf16(torch):
            return torch.float16
        return getattr(torch, wanted)
    if setting not in _DTYPE_NAMES:
        raise EngineUnavailable(f"unknown dtype {setting!r}: use auto, {', '.join(_DTYPE_NAMES)}")
    if setting == "bfloat16" and device == "cuda" and not _native_bf16(torch):
        raise EngineUnavailable(
            "PAGEDROP_VLM_DTYPE=bfloat16, but this GPU has no native bfloat16; use auto or float16"
        )
    return getattr(torch, setting)


def _native_bf16(torch: Any) -> bool:
    # including_emulation=False: an emulated bfloat16 (pre-Ampere GPUs) is slower than float16
    return bool(torch.cuda.is_bf16_supported(including_emulation=False))


def gpu_summary() -> str | None:
    """``"NVIDIA L4, 22.0 GiB, 21.6 GiB free"`` for the current GPU; None without CUDA."""
    try:
        torch = import_torch()
    except EngineUnavailable:
        return None
    if not torch.cuda.is_available():
        return None
    index = torch.cuda.current_device()
    free, total = torch.cuda.mem_get_info(index)
    name = torch.cuda.get_device_name(index)
    return f"{name}, {total / GIB:.1f} GiB, {free / GIB:.1f} GiB free"


def is_cuda_oom(exc: BaseException) -> bool:
    """Whether ``exc`` is a GPU allocation failure (worth retrying with a smaller batch)."""
    torch = sys.modules.get("torch")
    oom_type = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and any(text in str(exc) for text in _OOM_MESSAGES)


def release_cuda_memory() -> None:
    """Free what Python and torch's caching allocator hold (between documents, after OOM)."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
