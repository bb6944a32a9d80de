#!/usr/bin/env python3
"""OCR accuracy and speed against the resolution pages are read at (the rapidocr engine).

    python bench/resolution.py                       # the grid, then the engine's own rule
    python bench/resolution.py --dpis 200 --sides 2000 --only phototest   # a quick check
    python bench/resolution.py --json out.json --markdown

Documents: the corpus's scans with a text ground truth; born-digital pages drawn as scans
(an image-only PDF per page at each of ``--scan-dpis``), whose ground truth is the page's own
text layer; and generated half pages of 6, 7 and 8 point print drawn the same way (at the
first scan resolution), the print a floor on the resolution has to keep legible. Pages in a
script the OCR models do not read (too few Latin letters) are left out.

A setting is a target resolution for PDF pages (DPI-equivalent) and a cap on the longest
side (``RapidOcrEngine.target_dpi`` / ``max_side``) with no floor, so each cap shows as it
is; the rows ``chosen`` are the engine's own rule (with its floor, ``min_dpi``), with and
without its cap at the resolution of a scan placed in a PDF. Image files are read at their
own pixels under the longest-side cap (the target does not apply to them). A page that two
settings draw at the same size is read once: its time is the first reading's. CER is over
all characters of a set (edit distance over the ground truth's length, both normalised as
``handler.quality.cer`` does); word recall ignores reading order, which a text layer and
OCR may disagree on.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO_ROOT))

from bench.ground_truth import find_ground_truth  # noqa: E402
from bench.quality_metrics import text_score, word_score  # noqa: E402
from bench.runner import DOCUMENT_SUFFIXES, machine, versions  # noqa: E402
from bench.systems import BENCH_LIMITS  # noqa: E402

DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "corpus"
DEFAULT_DPIS = (150, 200, 250, 300)
DEFAULT_SIDES = (1600, 2000, 2500)
#: Born-digital pages are drawn as scans at these resolutions: a common office-scanner one,
#: and a coarse one (a fax), where the engine's cap at a scan's own resolution shows.
DEFAULT_SCAN_DPIS = (300, 100)
#: Pages are opened at this layout resolution: above every target, so that no setting is
#: capped by the layout size (the engine never draws a page larger than its layout).
LAYOUT_DPI = 300
#: A text layer is a usable ground truth for these models when this share of its letters
#: are Latin (the bundled models read Latin script and Chinese; not Korean or Arabic).
MIN_LATIN_SHARE = 0.9
#: ... and it has at least this many letters and digits (a near-empty page says nothing).
MIN_TRUTH_CHARS = 200
#: Generated pages of small print, one per size (points), drawn as scans like the others.
SMALL_PRINT_POINTS = (6, 7, 8)
_SMALL_PRINT_BOX = (56, 56, 539, 421)  # points: the top half of an A4 page, with margins
# Words and numbers in no particular order, so that the recogniser cannot guess from context.
_VOCABULARY = (  # noqa: SIM905 (a list of 54 words is easier to read as text)
    "account after annual before between board capital change committee company costs "
    "during early export figure financial first general growth income interest market "
    "member national office order paper period policy price public rate report result "
    "river second service share since station street system table total trade under "
    "value water weight which within worker yield zone"
).split()


@dataclass(frozen=True, slots=True)
class Setting:
    label: str
    target_dpi: int
    max_side: int
    min_dpi: int = 0  # the grid measures the cap as it is; the chosen rule has its floor
    cap_at_source: bool = True


@dataclass(slots=True)
class Doc:
    path: Path
    set_name: str
    truth: str
    label: str


@dataclass(slots=True)
class Reading:
    text: str
    seconds: float
    pixels: int


@dataclass(slots=True)
class Totals:
    errors: int = 0
    ref_chars: int = 0
    words_found: int = 0
    ref_words: int = 0
    pages: int = 0
    seconds: float = 0.0
    pixels: int = 0
    per_document: dict[str, dict[str, float]] = field(default_factory=dict)

    def values(self) -> dict[str, float | None]:
        return {
            "cer": self.errors / self.ref_chars if self.ref_chars else None,
            "word_recall": self.words_found / self.ref_words if self.ref_words else None,
            "s_per_page": self.seconds / self.pages if self.pages else None,
            "megapixels_per_page": self.pixels / self.pages / 1e6 if self.pages else None,
            "pages": self.pages,
        }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="corpus root")
    parser.add_argument("--dpis", default=_csv(DEFAULT_DPIS), help="target DPIs to try")
    parser.add_argument("--sides", default=_csv(DEFAULT_SIDES), help="longest-side caps to try")
    parser.add_argument(
        "--scan-dpis", default=_csv(DEFAULT_SCAN_DPIS), help="born-digital pages drawn as scans"
    )
    parser.add_argument(
        "--born-digital-pages",
        type=int,
        default=2,
        help="at most this many pages of each born-digital document",
    )
    parser.add_argument("--only", help="only documents whose name contains this")
    parser.add_argument("--json", type=Path, help="write every number to this file")
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    return parser.parse_args(argv)


def _csv(values: tuple[int, ...]) -> str:
    return ",".join(str(v) for v in values)


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


# -- documents -------------------------------------------------------------------------------


def scanned_docs(corpus: Path) -> list[Doc]:
    """The corpus's scans that have a text ground truth."""
    folder = corpus / "scanned"
    docs = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.is_file() and path.suffix.lower() in DOCUMENT_SUFFIXES:
            truth = find_ground_truth(path).text
            if truth:
                docs.append(Doc(path, "scans", truth, path.name))
    return docs


def born_digital_as_scans(
    corpus: Path, scan_dpis: list[int], per_document: int, workdir: Path
) -> list[Doc]:
    """Born-digital pages drawn at each scan resolution into image-only one-page PDFs; the
    ground truth is the page's text layer."""
    import pymupdf

    folder = corpus / "born_digital"
    docs = []
    for path in sorted(folder.glob("*.pdf")) if folder.is_dir() else []:
        with pymupdf.open(path) as source:
            taken = 0
            for page in source:
                if taken >= per_document:
                    break
                truth = page.get_text()
                if not _readable_truth(truth):
                    continue
                taken += 1
                for dpi in scan_dpis:
                    out = workdir / f"{path.stem}-p{page.number + 1}-{dpi}dpi.pdf"
                    _write_scan(page, dpi, out)
                    docs.append(Doc(out, f"drawn {dpi} dpi", truth, out.name))
    return docs


def small_print_pages(scan_dpis: list[int], workdir: Path) -> list[Doc]:
    """Half a page of Helvetica at each of ``SMALL_PRINT_POINTS``, drawn as scans; ground
    truth the page's text layer."""
    import random

    import pymupdf

    docs = []
    for points in SMALL_PRINT_POINTS:
        rng = random.Random(points)
        words = [
            rng.choice(_VOCABULARY) if rng.random() < 0.8 else f"{rng.randint(1, 9999) / 100:.2f}"
            for _ in range(4000)
        ]
        count = _words_that_fit(words, points)
        with pymupdf.open() as doc:
            page = doc.new_page(width=595, height=842)  # A4, the top half printed
            page.insert_textbox(_SMALL_PRINT_BOX, " ".join(words[:count]), fontsize=points)
            truth = page.get_text()
            for dpi in scan_dpis:
                out = workdir / f"small-print-{points}pt-{dpi}dpi.pdf"
                _write_scan(page, dpi, out)
                docs.append(Doc(out, f"small print {dpi} dpi", truth, out.name))
    return docs


def _words_that_fit(words: list[str], points: int) -> int:
    """How many of ``words`` fill ``_SMALL_PRINT_BOX`` (insert_textbox writes nothing and
    returns less than 0 when the text does not fit)."""
    import pymupdf

    low, high = 1, len(words)
    while low < high:
        middle = (low + high + 1) // 2
        with pymupdf.open() as scratch:
            page = scratch.new_page(width=595, height=842)
            fits = page.insert_textbox(_SMALL_PRINT_BOX, " ".join(words[:middle]), fontsize=points)
        low, high = (middle, high) if fits >= 0 else (low, middle - 1)
    return low


def _readable_truth(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha()]
    if sum(ch.isalnum() for ch in text) < MIN_TRUTH_CHARS or not letters:
        return False
    latin = sum(ch < "\u0250" for ch in letters)  # Basic Latin to Latin Extended-B
    return latin / len(letters) >= MIN_LATIN_SHARE


def _write_scan(page: Any, dpi: int, out: Path) -> None:
    """One grey image of the page at ``dpi``, placed over a page of the same size."""
    import pymupdf

    pix = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY, alpha=False)
    with pymupdf.open() as doc:
        target = doc.new_page(width=page.rect.width, height=page.rect.height)
        target.insert_image(target.rect, stream=pix.tobytes("png"))
        doc.save(out, deflate=True)


# -- reading ---------------------------------------------------------------------------------


def settings_grid(dpis: list[int], sides: list[int]) -> list[Setting]:
    from handler.engines.rapidocr_engine import (
        DEFAULT_MAX_SIDE,
        DEFAULT_MIN_DPI,
        DEFAULT_TARGET_DPI,
    )

    grid = [Setting(f"{dpi} dpi, {side} px", dpi, side) for dpi in dpis for side in sides]
    chosen = f"{DEFAULT_TARGET_DPI} dpi, {DEFAULT_MAX_SIDE} px, >= {DEFAULT_MIN_DPI} dpi"
    grid.append(Setting(f"chosen: {chosen}", DEFAULT_TARGET_DPI, DEFAULT_MAX_SIDE, DEFAULT_MIN_DPI))
    grid.append(
        Setting(
            "chosen, no source cap", DEFAULT_TARGET_DPI, DEFAULT_MAX_SIDE, DEFAULT_MIN_DPI, False
        )
    )
    return grid


class Reader:
    """One engine for every setting (its models load once); each page size read once."""

    def __init__(self) -> None:
        from handler.engines.rapidocr_engine import RapidOcrEngine

        self.engine = RapidOcrEngine()
        self._cache: dict[tuple[str, int, tuple[int, ...]], Reading] = {}

    def read(self, doc: Doc, setting: Setting) -> list[Reading]:
        from handler.documents.open import open_document
        from handler.engines.ocr_layout import page_text

        engine = self.engine
        engine.target_dpi, engine.max_side = setting.target_dpi, setting.max_side
        engine.min_dpi, engine.cap_at_source = setting.min_dpi, setting.cap_at_source
        readings = []
        with open_document(doc.path, BENCH_LIMITS, dpi=LAYOUT_DPI, filename=doc.path.name) as d:
            for page in d.pages():
                factor = engine.ocr_scale(page)
                size = (round(page.layout_width * factor), round(page.layout_height * factor))
                key = (str(doc.path), page.number, size)
                if key not in self._cache:
                    started = time.perf_counter()
                    result = engine.convert(page)
                    seconds = time.perf_counter() - started
                    self._cache[key] = Reading(page_text(result), seconds, size[0] * size[1])
                readings.append(self._cache[key])
        return readings


def run(docs: list[Doc], grid: list[Setting]) -> dict[Setting, dict[str, Totals]]:
    reader = Reader()
    reader.read(docs[0], grid[0])  # load the models, untimed
    reader._cache.clear()
    sets = list(dict.fromkeys(d.set_name for d in docs))
    results: dict[Setting, dict[str, Totals]] = {s: {n: Totals() for n in sets} for s in grid}
    # settings take turns document by document, so a burst of load elsewhere falls on all
    for number, doc in enumerate(docs, start=1):
        print(f"[{number}/{len(docs)}] {doc.label}", file=sys.stderr, flush=True)
        for setting in grid:
            readings = reader.read(doc, setting)
            text = "\n\n".join(r.text for r in readings)
            chars, found = text_score(text, doc.truth), word_score(text, doc.truth)
            totals = results[setting][doc.set_name]
            totals.errors += chars.errors
            totals.ref_chars += chars.ref_chars
            totals.words_found += found.matched
            totals.ref_words += found.ref_words
            totals.pages += len(readings)
            totals.seconds += sum(r.seconds for r in readings)
            totals.pixels += sum(r.pixels for r in readings)
            totals.per_document[doc.label] = {
                "cer": chars.cer,
                "word_recall": found.recall if found.recall is not None else 0.0,
                "seconds": sum(r.seconds for r in readings),
                "pixels": sum(r.pixels for r in readings),
            }
    return results


# -- report ----------------------------------------------------------------------------------


def table(results: dict[Setting, dict[str, Totals]], markdown: bool) -> str:
    """One row per setting and set: CER, word recall, seconds and megapixels per page."""
    headers = ["setting", "set", "pages", "CER", "word R", "s/page", "MP/page"]
    rows = []
    for setting, by_set in results.items():
        for name, totals in by_set.items():
            v = totals.values()
            rows.append(
                [
                    setting.label,
                    name,
                    str(v["pages"]),
                    _pct(v["cer"], 2),
                    _pct(v["word_recall"], 1),
                    _num(v["s_per_page"]),
                    _num(v["megapixels_per_page"]),
                ]
            )
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    return "\n".join(_fixed(r, widths) for r in [headers, *rows])


def _fixed(cells: list[str], widths: list[int]) -> str:
    left = 2  # the setting and the set left-aligned, numbers right-aligned
    return "  ".join(
        c.ljust(w) if i < left else c.rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    ).rstrip()


def _pct(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def to_json(
    results: dict[Setting, dict[str, Totals]], docs: list[Doc], seconds: float
) -> dict[str, Any]:
    return {
        "run": {
            "seconds": round(seconds, 1),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine(),
            "versions": versions(),
            "layout_dpi": LAYOUT_DPI,
        },
        "documents": [{"document": d.label, "set": d.set_name} for d in docs],
        "settings": [
            {
                "setting": s.label,
                "target_dpi": s.target_dpi,
                "max_side": s.max_side,
                "min_dpi": s.min_dpi,
                "cap_at_source": s.cap_at_source,
                "sets": {
                    name: {**t.values(), "documents": t.per_document} for name, t in by_set.items()
                },
            }
            for s, by_set in results.items()
        ],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pagedrop-resolution-") as tmp:
        scan_dpis = _ints(args.scan_dpis)
        docs = scanned_docs(args.corpus) + born_digital_as_scans(
            args.corpus, scan_dpis, args.born_digital_pages, Path(tmp)
        )
        docs += small_print_pages(scan_dpis[:1], Path(tmp))  # print that reads at the source
        docs = [d for d in docs if not args.only or args.only in d.label]
        if not docs:
            print(f"no documents (corpus: {args.corpus})", file=sys.stderr)
            return 2
        grid = settings_grid(_ints(args.dpis), _ints(args.sides))
        results = run(docs, grid)
    seconds = time.perf_counter() - started
    print(table(results, args.markdown))
    aside = sys.stderr if args.markdown else sys.stdout
    print(f"{len(docs)} documents, {len(grid)} settings, {seconds:.0f} s; {machine()}", file=aside)
    if args.json is not None:
        record = to_json(results, docs, seconds)
        args.json.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
