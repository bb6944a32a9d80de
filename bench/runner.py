"""Finding the documents, running every system on each, scoring, and the JSON record."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.ground_truth import GroundTruth, find_ground_truth
from bench.report import Row
from bench.scoring import DocumentScores, overall, score_document
from bench.systems import BENCH_LIMITS, System, SystemOutput, run_timed

DOCUMENT_SUFFIXES = frozenset({".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"})
#: The corpus folders that hold documents with ground truth (``hostile/`` has none).
CORPUS_SETS = ("born_digital", "scanned")


@dataclass(slots=True)
class Target:
    path: Path
    set_name: str
    truth: GroundTruth
    pages: int = 0


@dataclass(slots=True)
class DocumentResult:
    target: Target
    scores: dict[str, DocumentScores] = field(default_factory=dict)


def corpus_targets(corpus: Path, sets: Sequence[str] = CORPUS_SETS) -> list[Target]:
    """The documents of the corpus's sets (each a folder of documents beside a ``gt/``)."""
    return [t for name in sets if (corpus / name).is_dir() for t in folder_targets(corpus / name)]


def folder_targets(folder: Path, set_name: str | None = None) -> list[Target]:
    return [
        path_target(path, set_name or folder.name)
        for path in sorted(folder.iterdir())
        if path.is_file() and path.suffix.lower() in DOCUMENT_SUFFIXES
    ]


def path_target(path: Path, set_name: str, text_truth: Path | None = None) -> Target:
    """One document; ``text_truth`` names its text ground truth where it is not in ``gt/``."""
    truth = find_ground_truth(path)
    if text_truth is not None:
        truth.text = text_truth.read_text(encoding="utf-8")
        truth.text_lines = truth.text.splitlines()
        truth.sources.insert(0, text_truth.name)
    return Target(path, set_name, truth)


def count_pages(target: Target) -> int:
    from handler.documents.open import open_document

    with open_document(target.path, BENCH_LIMITS, dpi=200, filename=target.path.name) as doc:
        return doc.page_count


def warm_up_documents(targets: Sequence[Target]) -> list[Path]:
    """The smallest file of each set: enough to load every model a system uses."""
    smallest: dict[str, Path] = {}
    for t in targets:
        best = smallest.get(t.set_name)
        if best is None or t.path.stat().st_size < best.stat().st_size:
            smallest[t.set_name] = t.path
    return list(smallest.values())


def run_benchmark(
    targets: Sequence[Target],
    systems: Sequence[System],
    on_output: Callable[[Target, str, SystemOutput], None] | None = None,
    repeat: int = 1,
) -> list[DocumentResult]:
    """Every system on every document (models loaded first, untimed), each output scored.

    Systems take turns document by document, so a burst of load from elsewhere on the
    machine falls on all of them alike; with ``repeat`` > 1 each document's time is the
    fastest of that many runs (its first output is the one scored).
    """
    for target in targets:
        target.pages = count_pages(target)
    warm = warm_up_documents(targets)
    for system in systems:
        system.warm_up(warm)
    results = [DocumentResult(t) for t in targets]
    for result in results:
        for system in systems:
            output = run_timed(system, result.target.path)
            for _ in range(repeat - 1):
                output.seconds = min(output.seconds, run_timed(system, result.target.path).seconds)
            if output.error and not output.pages:
                output.pages = result.target.pages  # a failed run still covers its pages
            if on_output is not None:
                on_output(result.target, system.name, output)
            result.scores[system.name] = score_document(output, result.target.truth)
    return results


def table_rows(results: Sequence[DocumentResult], systems: Sequence[str]) -> list[Row]:
    """Per document and system, then overall per set and for everything."""
    rows: list[Row] = []
    for result in results:
        for name in systems:
            doc = result.scores[name]
            note = f"error: {doc.error[:60]}" if doc.error else ""
            rows.append(Row(result.target.path.name, name, doc.pages, doc.rates(), note))
    groups = sorted({r.target.set_name for r in results})
    for group in [*groups, "all"] if len(groups) > 1 else groups:
        members = [r for r in results if group in ("all", r.target.set_name)]
        for name in systems:
            scores = [r.scores[name] for r in members]
            pages = sum(s.pages for s in scores)
            rows.append(Row(f"overall {group}", name, pages, overall(scores)))
    return rows


def to_json(
    results: Sequence[DocumentResult], rows: Sequence[Row], systems: Sequence[str], seconds: float
) -> dict[str, Any]:
    return {
        "run": {
            "seconds": round(seconds, 1),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine(),
            "versions": versions(),
            "systems": list(systems),
        },
        "documents": [
            {
                "document": str(r.target.path),
                "set": r.target.set_name,
                "pages": r.target.pages,
                "ground_truth": r.target.truth.sources,
                "notes": r.target.truth.notes,
                "systems": {name: s.to_json() for name, s in r.scores.items()},
            }
            for r in results
        ],
        "overall": [
            {"group": row.label.removeprefix("overall "), "system": row.system, **row.values}
            for row in rows
            if row.label.startswith("overall ")
        ],
    }


def machine() -> str:
    import os

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu}, {cores} cores, Python {platform.python_version()}, {platform.system()}"


def versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for package in ("pagedrop", "pymupdf", "pymupdf4llm", "rapidocr", "onnxruntime"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "-"
    return out
