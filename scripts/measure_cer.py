#!/usr/bin/env python3
"""Character error rate of the rapidocr engine on scanned pages.

    python scripts/measure_cer.py                      # the development corpus, if present
    python scripts/measure_cer.py PAGE.tif:GT.txt DOC.pdf:GT.txt ...

Each argument is a document (an image or an image-only PDF) and its ground-truth text,
separated by ``:``. Without ``:GT`` the ground truth is looked for next to the document
(``gt/<stem>.txt``, ``gt/<stem>.derived.normalized.txt``, ``<stem>.txt``); a document without
one is still converted and timed. With no arguments, every document under
``../shared/corpus/scanned`` (relative to the repository root) is measured.

Pages are opened exactly as the product opens them (``handler.documents.open``), converted
by ``RapidOcrEngine``, and their element texts joined in reading order. The models are
loaded before the timings start (one untimed page); ``s/page`` is OCR time per page. CER is the
Levenshtein distance between the normalized texts (whitespace runs collapsed) divided by
the ground truth's length (``handler.quality.cer``).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO_ROOT))

from handler.documents.limits import Limits  # noqa: E402
from handler.documents.open import open_document  # noqa: E402
from handler.engines.ocr_layout import page_text  # noqa: E402
from handler.engines.rapidocr_engine import RapidOcrEngine  # noqa: E402
from handler.quality import cer, normalize_text  # noqa: E402

DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "corpus" / "scanned"
DOCUMENT_SUFFIXES = {".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
LIMITS = Limits(max_bytes=512 * 1024 * 1024, max_pages=2000, max_pixels_per_page=200_000_000)


@dataclass
class Row:
    name: str
    pages: int
    ref_chars: int | None
    cer: float | None
    seconds: float


def find_ground_truth(document: Path) -> Path | None:
    for candidate in (
        document.parent / "gt" / f"{document.stem}.txt",
        document.parent / "gt" / f"{document.stem}.derived.normalized.txt",
        document.with_suffix(".txt"),
    ):
        if candidate.is_file():
            return candidate
    return None


def parse_target(arg: str) -> tuple[Path, Path | None]:
    document, sep, gt = arg.partition(":")
    doc_path = Path(document)
    return doc_path, (Path(gt) if sep and gt else find_ground_truth(doc_path))


def default_targets() -> list[tuple[Path, Path | None]]:
    if not DEFAULT_CORPUS.is_dir():
        return []
    return [
        (path, find_ground_truth(path))
        for path in sorted(DEFAULT_CORPUS.iterdir())
        if path.suffix.lower() in DOCUMENT_SUFFIXES
    ]


def measure(engine: RapidOcrEngine, document: Path, gt: Path | None, dpi: int, show: bool) -> Row:
    texts: list[str] = []
    seconds = 0.0
    with open_document(document, LIMITS, dpi=dpi, filename=document.name) as doc:
        for page in doc.pages():
            started = time.perf_counter()
            result = engine.convert(page)
            seconds += time.perf_counter() - started
            texts.append(page_text(result))
    hypothesis = "\n\n".join(texts)
    if show:
        print(f"--- {document.name}\n{hypothesis}\n")
    reference = gt.read_text(encoding="utf-8") if gt is not None else None
    return Row(
        name=document.name,
        pages=len(texts),
        ref_chars=len(normalize_text(reference)) if reference is not None else None,
        cer=cer(hypothesis, reference) if reference is not None else None,
        seconds=seconds,
    )


def warm_up(engine: RapidOcrEngine, document: Path, dpi: int) -> None:
    """Load the models (about a second) outside the timings: convert one page, untimed."""
    with open_document(document, LIMITS, dpi=dpi, filename=document.name) as doc:
        for page in doc.pages([1]):
            engine.convert(page)


def print_table(rows: list[Row]) -> None:
    width = max([len("document"), *(len(r.name) for r in rows)])
    print(f"{'document':<{width}}  pages  gt chars      CER  s/page")
    for r in rows:
        chars = f"{r.ref_chars:>8}" if r.ref_chars is not None else f"{'-':>8}"
        rate = f"{100 * r.cer:>6.2f}%" if r.cer is not None else f"{'-':>7}"
        per_page = r.seconds / max(1, r.pages)
        print(f"{r.name:<{width}}  {r.pages:>5}  {chars}  {rate}  {per_page:>6.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help="DOCUMENT[:GROUND_TRUTH.txt]")
    parser.add_argument("--dpi", type=int, default=200, help="PDF render DPI (product default)")
    parser.add_argument("--no-orientation", action="store_true", help="skip the righting step")
    parser.add_argument("--show-text", action="store_true", help="print the recognised text")
    args = parser.parse_args(argv)

    targets = [parse_target(t) for t in args.targets] if args.targets else default_targets()
    if not targets:
        parser.error(f"no documents given and no corpus at {DEFAULT_CORPUS}")
    missing = [
        str(p) for doc, gt in targets for p in (doc, gt) if p is not None and not p.is_file()
    ]
    if missing:
        parser.error("not found: " + ", ".join(missing))

    engine = RapidOcrEngine(detect_orientation=not args.no_orientation)
    warm_up(engine, targets[0][0], args.dpi)
    rows = [measure(engine, doc, gt, args.dpi, args.show_text) for doc, gt in targets]
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
