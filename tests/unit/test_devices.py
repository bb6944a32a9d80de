"""Devices for the GPU engines: picking CUDA or the CPU, the dtype, OOM, freeing memory.

The CUDA cases run everywhere: torch's CUDA queries are replaced, so a machine without a GPU
checks what the engine does on one (and the reverse).
"""

from __future__ import annotations

import sys
import time
from types import ModuleType

import pytest

from handler.engines import devices
from handler.errors import EngineUnavailable


@pytest.fixture
def torch() -> ModuleType:
    return pytest.importorskip("torch")


@pytest.fixture
def no_gpu(torch: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def a_gpu(torch: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


def test_cpu_is_the_cpu_without_asking_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch would fail
    assert devices.pick_device("cpu") == "cpu"


@pytest.mark.usefixtures("no_gpu")
def test_auto_without_a_gpu_is_the_cpu():
    assert devices.pick_device("auto") == "cpu"


@pytest.mark.usefixtures("a_gpu")
def test_auto_with_a_gpu_is_cuda():
    assert devices.pick_device("auto") == "cuda"
    assert devices.pick_device("cuda") == "cuda"


@pytest.mark.usefixtures("no_gpu")
def test_cuda_without_a_gpu_fails_at_once():
    started = time.monotonic()
    with pytest.raises(EngineUnavailable, match=r"PAGEDROP_DEVICE=cuda.*no CUDA GPU"):
        devices.pick_device("cuda")
    assert time.monotonic() - started < 1


def test_an_unknown_device_is_refused():
    with pytest.raises(EngineUnavailable, match="unknown device"):
        devices.pick_device("tpu")


def test_without_torch_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(EngineUnavailable, match=r"pip install 'pagedrop\[vlm\]'"):
        devices.pick_device("auto")
    assert devices.gpu_summary() is None


def test_auto_dtype_is_float32_on_the_cpu(torch):
    assert devices.pick_dtype("auto", "cpu", "bfloat16") is torch.float32


def test_auto_dtype_on_cuda_is_the_profiles_or_float16_without_bfloat16(torch, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert devices.pick_dtype("auto", "cuda", "bfloat16") is torch.bfloat16
    assert devices.pick_dtype("auto", "cuda", "float16") is torch.float16
    # a GPU before Ampere: bfloat16 only emulated
    monkeypatch.setattr(
        torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation
    )
    assert devices.pick_dtype("auto", "cuda", "bfloat16") is torch.float16
    with pytest.raises(EngineUnavailable, match="no native bfloat16"):
        devices.pick_dtype("bfloat16", "cuda", "bfloat16")


def test_an_explicit_dtype_is_used(torch):
    assert devices.pick_dtype("float16", "cpu", "bfloat16") is torch.float16
    assert devices.pick_dtype("bfloat16", "cpu", "bfloat16") is torch.bfloat16
    with pytest.raises(EngineUnavailable, match="unknown dtype"):
        devices.pick_dtype("int8", "cpu", "bfloat16")


def test_out_of_memory_is_recognised(torch):
    assert devices.is_cuda_oom(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate"))
    assert devices.is_cuda_oom(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert devices.is_cuda_oom(RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED"))
    assert not devices.is_cuda_oom(RuntimeError("shape mismatch"))
    assert not devices.is_cuda_oom(MemoryError())  # host memory: not a batch-size problem


@pytest.mark.usefixtures("no_gpu")
def test_no_gpu_summary_without_cuda():
    assert devices.gpu_summary() is None


@pytest.mark.usefixtures("a_gpu")
def test_gpu_summary_names_the_gpu_and_its_memory(torch, monkeypatch):
    gib = 1024**3
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: "NVIDIA L4")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda index: (int(20.5 * gib), 22 * gib))
    assert devices.gpu_summary() == "NVIDIA L4, 22.0 GiB, 20.5 GiB free"


def test_release_empties_the_cache_only_with_cuda(torch, monkeypatch):
    emptied = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(1))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    devices.release_cuda_memory()
    assert emptied == []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    devices.release_cuda_memory()
    assert emptied == [1]
