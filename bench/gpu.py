#!/usr/bin/env python3
"""GPU throughput of the vision-language OCR models, by batch size, with and without overlap.

    python -m bench.gpu                                  # on a CUDA machine: both models
    python -m bench.gpu --models paddleocr-vl --batch-sizes 1,4,16 --new-tokens 512
    python -m bench.gpu --json gpu.json --markdown
    python -m bench.gpu --tiny --device cpu              # smoke run: tiny configs, seconds

Needs torch and transformers (``pip install 'pagedrop[vlm]'``), no weights: each model is
the real architecture (bench/_gpu_models.py: PaddleOCR-VL-0.9B and Nanonets-OCR-s's
Qwen2.5-VL-3B, from their config.json) with random weights, in bfloat16. Pages are the test
corpus's (tests/data/born_digital and scanned, interleaved), rendered at the size the vlm
profile's pixel limits allow, as the vlm engine renders them. Every page generates exactly
``--new-tokens`` tokens (``min_new_tokens = max_new_tokens``), so the numbers do not depend
on what the random model says.

For each batch size the same pages (at least ``--pages``, at least ``--min-batches``
batches) are converted twice: without overlap (render and preprocess a batch, then generate,
in turn) and with it (the next batch is rendered and preprocessed in a CPU thread while the
GPU generates the current one, as the worker does). Printed per run: pages/s, new tokens/s,
CPU seconds per batch (render + preprocess) and GPU seconds per batch (generate), peak GPU
memory (torch's allocator) and mean GPU utilisation (pynvml if importable, else sampling
``nvidia-smi``, else n/a). One untimed batch warms each batch size up first.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO_ROOT))

from bench._gpu_models import (  # noqa: E402
    MODELS,
    BenchModel,
    batch_inputs,
    build_model,
    image_processor,
    model_config,
    prompt_tokens,
)
from bench._tables import table  # noqa: E402
from bench.runner import machine  # noqa: E402

if TYPE_CHECKING:
    from PIL import Image

    from handler.documents.pages import PageInput

DEFAULT_CORPUS = REPO_ROOT / "tests" / "data"
CORPUS_FOLDERS = ("born_digital", "scanned")
PAGE_SUFFIXES = frozenset({".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff"})
GIB = 1024**3
SAMPLE_INTERVAL_S = 0.1  # GPU utilisation sampling period
# --tiny: a smoke run on the CPU in seconds (option defaults, and small page images)
TINY_DEFAULTS = {"batch_sizes": "1,2", "new_tokens": 4, "pages": 2, "min_batches": 2}
TINY_PIXELS = (28 * 28 * 4, 28 * 28 * 64)  # min, max: 4 to 64 merged patches
FULL_DEFAULTS = {"batch_sizes": "1,2,4,8,16", "new_tokens": 256, "pages": 16, "min_batches": 3}
EXIT_USAGE = 2


@dataclass(slots=True)
class Run:
    """One model at one batch size, with or without overlap."""

    model: str
    batch: int
    overlap: bool
    pages: int = 0
    seconds: float = 0.0
    new_tokens: int = 0
    prep_s: list[float] | None = None  # per batch: render + preprocess, CPU
    gen_s: list[float] | None = None  # per batch: generate, GPU
    peak_gib: float | None = None
    gpu_util: float | None = None
    error: str | None = None

    @property
    def pages_per_s(self) -> float | None:
        return self.pages / self.seconds if self.seconds and not self.error else None

    @property
    def tokens_per_s(self) -> float | None:
        return self.new_tokens / self.seconds if self.seconds and not self.error else None

    def row(self) -> list[Any]:
        return [
            self.model,
            self.batch,
            "yes" if self.overlap else "no",
            self.pages,
            self.pages_per_s,
            self.tokens_per_s,
            statistics.mean(self.prep_s) if self.prep_s else None,
            statistics.mean(self.gen_s) if self.gen_s else None,
            self.peak_gib,
            "n/a" if self.gpu_util is None else f"{self.gpu_util:.0f}",
            self.error or "",
        ]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "pages_per_s": self.pages_per_s, "tokens_per_s": self.tokens_per_s}


HEADERS = [
    "model",
    "batch",
    "overlap",
    "pages",
    "pages/s",
    "new tok/s",
    "CPU s/batch",
    "GPU s/batch",
    "peak GiB",
    "GPU util %",
    "error",
]


# -- pages -------------------------------------------------------------------------------------


@contextlib.contextmanager
def corpus_pages(corpus: Path, *, dpi: int, limit: int) -> Iterator[list[PageInput]]:
    """Up to ``limit`` pages of the corpus's documents, born-digital and scanned documents
    taken in turn, kept open while the caller uses them."""
    from bench.systems import BENCH_LIMITS
    from handler.documents.open import open_document

    paths = [
        sorted(p for p in (corpus / folder).iterdir() if p.suffix.lower() in PAGE_SUFFIXES)
        for folder in CORPUS_FOLDERS
        if (corpus / folder).is_dir()
    ]
    ordered = [p for group in itertools.zip_longest(*paths) for p in group if p is not None]
    if not ordered:
        raise SystemExit(f"bench.gpu: no documents under {corpus}/{{{','.join(CORPUS_FOLDERS)}}}")
    with contextlib.ExitStack() as stack:
        documents = [
            stack.enter_context(open_document(p, BENCH_LIMITS, dpi=dpi, filename=p.name))
            for p in ordered
        ]
        per_document = [iter(d.pages()) for d in documents]
        pages: list[PageInput] = []
        while per_document and len(pages) < limit:
            for page_iter in list(per_document):
                page = next(page_iter, None)
                if page is None:
                    per_document.remove(page_iter)
                elif len(pages) < limit:
                    pages.append(page)
        yield pages


def render(page: PageInput, max_pixels: int) -> Image.Image:
    """The page drawn at most ``max_pixels`` large (as the vlm engine draws it)."""
    from PIL import Image as PILImage

    factor = min(1.0, math.sqrt(max_pixels / (page.layout_width * page.layout_height)))
    return PILImage.fromarray(page.render_scaled(factor))


# -- GPU utilisation ---------------------------------------------------------------------------


class GpuSampler:
    """Mean GPU utilisation over a window, sampled in a thread: through pynvml when it is
    importable, else from ``nvidia-smi``, else not at all (``source`` says which)."""

    def __init__(self, gpu: str) -> None:
        self.gpu = gpu  # an index or a UUID, as nvidia-smi --id takes it
        self._samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen[str] | None = None
        self._nvml: Any = None
        self.source = "n/a"
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = (
                pynvml.nvmlDeviceGetHandleByIndex(int(gpu))
                if gpu.isdigit()
                else pynvml.nvmlDeviceGetHandleByUUID(gpu)
            )
            self._pynvml = pynvml
            self.source = "pynvml"
        except Exception:
            if shutil.which("nvidia-smi"):
                self.source = "nvidia-smi"

    def start(self) -> None:
        self._samples, self._stop = [], threading.Event()
        if self.source == "pynvml":
            self._thread = threading.Thread(target=self._poll, daemon=True)
        elif self.source == "nvidia-smi":
            self._process = subprocess.Popen(
                [
                    "nvidia-smi",
                    "--query-gpu=utilization.gpu",
                    "--format=csv,noheader,nounits",
                    f"--id={self.gpu}",
                    f"--loop-ms={int(SAMPLE_INTERVAL_S * 1000)}",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            self._thread = threading.Thread(target=self._read, daemon=True)
        if self._thread is not None:
            self._thread.start()

    def stop(self) -> float | None:
        self._stop.set()
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=5)
            self._process = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        return statistics.mean(self._samples) if self._samples else None

    def _poll(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            try:
                rates = self._pynvml.nvmlDeviceGetUtilizationRates(self._nvml)
            except Exception:  # e.g. a MIG slice: NVML has no utilisation for it
                return
            self._samples.append(float(rates.gpu))

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            with contextlib.suppress(ValueError):
                self._samples.append(float(line.strip()))


# -- one run -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Setup:
    """What every run of one model shares."""

    spec: BenchModel
    config: dict[str, Any]
    model: Any
    processor: Any
    prompt: str
    min_pixels: int
    max_pixels: int
    device: str
    dtype: Any
    new_tokens: int

    def prepare(self, pages: Sequence[PageInput]) -> tuple[dict[str, Any], float]:
        """A batch's inputs on the CPU (render + preprocess), and the seconds it took."""
        started = time.perf_counter()
        images = [render(page, self.max_pixels) for page in pages]
        inputs = batch_inputs(
            self.spec,
            self.config,
            images,
            prompt=self.prompt,
            min_pixels=self.min_pixels,
            max_pixels=self.max_pixels,
            processor=self.processor,
        )
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        if self.device == "cuda":
            inputs = {name: tensor.pin_memory() for name, tensor in inputs.items()}
        return inputs, time.perf_counter() - started

    def generate(self, inputs: dict[str, Any]) -> tuple[int, float]:
        """New tokens generated for the batch, and the seconds it took."""
        import torch

        started = time.perf_counter()
        on_device = {k: v.to(self.device, non_blocking=True) for k, v in inputs.items()}
        with torch.inference_mode():
            output = self.model.generate(
                **on_device,
                max_new_tokens=self.new_tokens,
                min_new_tokens=self.new_tokens,
                do_sample=False,
                pad_token_id=self.config["pad_token_id"],
                eos_token_id=self.config["eos_token_id"],
            )
        new = output.shape[1] - on_device["input_ids"].shape[1]  # copying the shape syncs
        if self.device == "cuda":
            torch.cuda.synchronize()
        if new != self.new_tokens:
            raise RuntimeError(f"generated {new} tokens per page, not {self.new_tokens}")
        return new * output.shape[0], time.perf_counter() - started


def measure(setup: Setup, pages: Sequence[PageInput], run: Run, sampler: GpuSampler | None) -> Run:
    """Convert ``pages`` in batches of ``run.batch``: one batch after another, or with the
    next batch prepared in a thread while the current one generates."""
    import torch

    batches = [list(pages[i : i + run.batch]) for i in range(0, len(pages), run.batch)]
    run.prep_s, run.gen_s = [], []
    if setup.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if sampler is not None:
        sampler.start()
    started = time.perf_counter()
    try:
        if run.overlap:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare") as pool:
                pending = pool.submit(setup.prepare, batches[0])
                for index in range(len(batches)):
                    inputs, prep = pending.result()
                    if index + 1 < len(batches):
                        pending = pool.submit(setup.prepare, batches[index + 1])
                    _count(run, setup.generate(inputs), prep, len(batches[index]))
        else:
            for batch in batches:
                inputs, prep = setup.prepare(batch)
                _count(run, setup.generate(inputs), prep, len(batch))
        run.seconds = time.perf_counter() - started
    except torch.cuda.OutOfMemoryError:
        run.error = "CUDA out of memory"
    finally:
        util = sampler.stop() if sampler is not None else None
    run.gpu_util = util
    if setup.device == "cuda":
        run.peak_gib = torch.cuda.max_memory_allocated() / GIB
    return run


def _count(run: Run, generated: tuple[int, float], prep_s: float, pages: int) -> None:
    tokens, gen_s = generated
    run.new_tokens += tokens
    run.pages += pages
    assert run.prep_s is not None and run.gen_s is not None
    run.prep_s.append(prep_s)
    run.gen_s.append(gen_s)


# -- the benchmark -----------------------------------------------------------------------------


def benchmark_model(
    name: str, args: argparse.Namespace, pages: Sequence[PageInput], sampler: GpuSampler | None
) -> tuple[dict[str, Any], list[Run]]:
    """Every batch size of one model; its description and its runs."""
    import torch

    from handler.engines.vlm.profiles import profile

    spec = MODELS[name]
    vlm = profile(name)
    min_pixels, max_pixels = TINY_PIXELS if args.tiny else (vlm.min_pixels, vlm.max_pixels)
    config = model_config(spec, tiny=args.tiny)
    dtype = getattr(torch, args.dtype)
    started = time.perf_counter()
    model = build_model(config, device=args.device, dtype=dtype)
    built_s = time.perf_counter() - started
    setup = Setup(
        spec=spec,
        config=config,
        model=model,
        processor=image_processor(spec, min_pixels=min_pixels, max_pixels=max_pixels),
        prompt=vlm.prompt,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        device=args.device,
        dtype=dtype,
        new_tokens=args.new_tokens,
    )
    about = {
        "model": name,
        "source": ("tiny, shaped like " if args.tiny else "") + spec.source,
        "parameters": sum(p.numel() for p in model.parameters()),
        "built_s": round(built_s, 2),
        "weights_gib": _allocated_gib(args.device),
        "pixels": [min_pixels, max_pixels],
        "prompt_tokens": prompt_tokens(spec, vlm.prompt),
        "image_processor": "transformers PIL" if setup.processor else "bench patchify",
    }
    runs: list[Run] = []
    failed = False
    for batch in args.batch_sizes:
        if failed:  # a larger batch than one that ran out of memory
            runs.append(Run(name, batch, False, error="skipped after out of memory"))
            continue
        count = max(args.pages, args.min_batches * batch)
        work = list(itertools.islice(itertools.cycle(pages), count))
        try:
            for _ in range(args.warmup):
                setup.generate(setup.prepare(work[:batch])[0])
        except torch.cuda.OutOfMemoryError:
            runs.append(Run(name, batch, False, error="CUDA out of memory"))
            failed = True
            continue
        for overlap in args.overlap:
            run = measure(setup, work, Run(name, batch, overlap), sampler)
            runs.append(run)
            _progress(run)
            if run.error is not None:
                failed = True
                gc.collect()
                torch.cuda.empty_cache()  # what the failed batch held, before the next run
    del setup, model
    gc.collect()
    if args.device == "cuda":
        torch.cuda.empty_cache()
    return about, runs


def _physical_gpu(index: int) -> str:
    """The GPU torch's ``index`` is, as NVML and nvidia-smi count (or its UUID): torch counts
    only the CUDA_VISIBLE_DEVICES, in their order."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")]
    visible = [v for v in visible if v]
    return visible[index] if index < len(visible) else str(index)


def _allocated_gib(device: str) -> float | None:
    import torch

    return torch.cuda.memory_allocated() / GIB if device == "cuda" else None


def _progress(run: Run) -> None:
    rate = run.pages_per_s
    shown = f"{rate:.2f} pages/s" if rate is not None else run.error
    print(
        f"  {run.model} batch {run.batch} overlap {'on' if run.overlap else 'off'}: {shown}",
        file=sys.stderr,
        flush=True,
    )


def environment(device: str, sampler: GpuSampler | None) -> dict[str, Any]:
    import torch
    import transformers

    out: dict[str, Any] = {
        "machine": machine(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": device,
        "gpu_utilisation_from": sampler.source if sampler else "n/a",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        out["gpu"] = f"{props.name}, {props.total_memory / GIB:.1f} GiB"
        out["cuda"] = torch.version.cuda
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gpu", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated")
    parser.add_argument("--batch-sizes", help="comma-separated (default 1,2,4,8,16)")
    parser.add_argument("--new-tokens", type=int, help="tokens generated per page (256)")
    parser.add_argument("--pages", type=int, help="pages per run, at least (16)")
    parser.add_argument("--min-batches", type=int, help="batches per run, at least (3)")
    parser.add_argument(
        "--overlap", choices=["both", "on", "off"], default="both", help="runs to make"
    )
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--dtype", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--dpi", type=int, default=200, help="page layout resolution")
    parser.add_argument("--warmup", type=int, default=1, help="untimed batches per batch size")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--tiny", action="store_true", help="tiny configs: a smoke run")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args(argv)
    defaults = TINY_DEFAULTS if args.tiny else FULL_DEFAULTS
    args.batch_sizes = _ints(args.batch_sizes or str(defaults["batch_sizes"]))
    args.new_tokens = args.new_tokens or defaults["new_tokens"]
    args.pages = args.pages or defaults["pages"]
    args.min_batches = args.min_batches or defaults["min_batches"]
    args.dtype = args.dtype or ("bfloat16" if args.device == "cuda" else "float32")
    args.overlap = {"both": [False, True], "on": [True], "off": [False]}[args.overlap]
    args.models = [name.strip() for name in args.models.split(",") if name.strip()]
    if unknown := [name for name in args.models if name not in MODELS]:
        parser.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    return args


def _ints(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise SystemExit(f"bench.gpu: batch sizes must be positive numbers, not {text!r}")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import torch
        import transformers
    except ImportError:
        print(
            "bench.gpu: needs torch and transformers: pip install 'pagedrop[vlm]'", file=sys.stderr
        )
        return EXIT_USAGE
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "bench.gpu: no CUDA device here: run it on a GPU machine, or `--tiny --device cpu` "
            "for a smoke run",
            file=sys.stderr,
        )
        return EXIT_USAGE
    transformers.logging.set_verbosity_error()  # the random models' config notes
    sampler = (
        GpuSampler(_physical_gpu(torch.cuda.current_device())) if args.device == "cuda" else None
    )
    started = time.perf_counter()
    described, runs = [], []
    needed = max(args.pages, args.min_batches * max(args.batch_sizes))
    with corpus_pages(args.corpus, dpi=args.dpi, limit=needed) as pages:
        for name in args.models:
            about, model_runs = benchmark_model(name, args, pages, sampler)
            described.append(about)
            runs.extend(model_runs)
    env = environment(args.device, sampler)
    report(env, described, runs, args)
    if args.json:
        record = {
            "run": {**env, "seconds": round(time.perf_counter() - started, 1)},
            "options": {
                "batch_sizes": args.batch_sizes,
                "new_tokens": args.new_tokens,
                "pages": args.pages,
                "min_batches": args.min_batches,
                "dtype": args.dtype,
                "dpi": args.dpi,
                "tiny": args.tiny,
            },
            "models": described,
            "runs": [run.to_json() for run in runs],
        }
        args.json.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return 0


def report(
    env: dict[str, Any], described: Sequence[dict[str, Any]], runs: Sequence[Run], args: Any
) -> None:
    print(f"machine: {env['machine']}")
    print(
        f"device: {env['device']}{' (' + env['gpu'] + ')' if 'gpu' in env else ''}, "
        f"{args.dtype}, torch {env['torch']}, transformers {env['transformers']}, "
        f"GPU utilisation from {env['gpu_utilisation_from']}"
    )
    print(f"{args.new_tokens} new tokens per page; pages rendered at {args.dpi} DPI layout")
    for about in described:
        weights = about["weights_gib"]
        print(
            f"{about['model']}: {about['source']}, {_millions(about['parameters'])} parameters"
            + (f", {weights:.1f} GiB of weights" if weights is not None else "")
            + f", built in {about['built_s']} s; pixels {about['pixels'][0]}-{about['pixels'][1]}"
            f", ~{about['prompt_tokens']} prompt tokens, {about['image_processor']}"
        )
    print()
    print(table(HEADERS, [run.row() for run in runs], markdown=args.markdown))


def _millions(count: int) -> str:
    return f"{count / 1e9:.2f}B" if count >= 100e6 else f"{count / 1e6:.2f}M"


if __name__ == "__main__":
    sys.exit(main())
