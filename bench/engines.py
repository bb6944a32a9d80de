#!/usr/bin/env python3
"""Engine-only throughput: pages per second of pagedrop's engines and of the baselines.

    python bench/engines.py                        # corpus + generated 200/50-page PDFs
    python bench/engines.py --skip-generated --only ocr_test --systems pagedrop,rapidocr
    python bench/engines.py --repeat 3 --json engines.json --markdown

No AWS: each document is read from disk. ``pagedrop`` is the worker's path without AWS
(bench/systems.py): open the document, route each page, convert every page, assemble the
document's markdown and elements; its time is split into the engines' own ``convert`` calls
(the "engine" columns, the denominator of the end-to-end overhead ratio) and the rest
(opening, routing, per-page elements and markdown, assembling). The baselines run on the
documents they are a baseline for: ``pymupdf4llm`` on born-digital ones, plain ``rapidocr``
on 200-DPI renders of scanned ones. Models load before anything is timed.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO_ROOT))

from bench.generated import (  # noqa: E402
    BORN_DIGITAL,
    DEFAULT_SEED,
    KINDS,
    SCANNED,
    benchmark_documents,
)
from bench.runner import DOCUMENT_SUFFIXES, machine, versions  # noqa: E402
from bench.systems import BENCH_LIMITS, SYSTEMS, PagedropSystem, System, run_timed  # noqa: E402
from handler.engines.registry import TEXT_ENGINE, EngineSet  # noqa: E402

if TYPE_CHECKING:
    from handler.documents.pages import PageInput
    from handler.engines.base import Engine, PageResult
    from handler.settings import Settings

DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "corpus"
PAGEDROP = "pagedrop"
#: The system each kind of document is compared with (issue 7's baselines).
BASELINE_FOR = {BORN_DIGITAL: "pymupdf4llm", SCANNED: "rapidocr"}
#: Issue 7 target: the text layer converts born-digital pages at least this many times as
#: fast (pages/s) as pymupdf4llm on the same documents.
TARGET_TEXT_LAYER_SPEEDUP = 2.0
CORPUS_SET = "corpus"
GENERATED_SET = "generated"


@dataclass(frozen=True, slots=True)
class BenchDocument:
    path: Path
    set_name: str  # "corpus" or "generated"
    kind: str  # BORN_DIGITAL or SCANNED
    pages: int


@dataclass(slots=True)
class Timing:
    """One system's (fastest) run on one document."""

    seconds: float
    pages: int
    engines: list[str] = field(default_factory=list)
    engine_seconds: dict[str, float] = field(default_factory=dict)  # pagedrop only
    engine_calls: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def engines_called(self) -> list[str]:
        """Every engine that ran, also one whose output was dropped (OCR that read less than
        the text layer, then the text layer): all of them cost time."""
        return sorted(self.engine_calls) if self.engine_calls else self.engines

    @property
    def engine_total(self) -> float | None:
        return sum(self.engine_seconds.values()) if self.engine_seconds else None

    def to_json(self) -> dict[str, Any]:
        engine = self.engine_total
        return {
            "seconds": round(self.seconds, 4),
            "pages": self.pages,
            "s_per_page": _round(_per(self.seconds, self.pages)),
            "pages_per_s": _round(_per(self.pages, self.seconds)),
            "engines": self.engines,
            "engines_called": self.engines_called,
            "engine_seconds": {k: round(v, 4) for k, v in self.engine_seconds.items()},
            "engine_calls": self.engine_calls,
            "engine_s_total": _round(engine),
            "engine_s_per_page": _round(_per(engine, self.pages)),
            "other_s": _round(None if engine is None else self.seconds - engine),
            "error": self.error,
        }


@dataclass(slots=True)
class DocumentTiming:
    document: BenchDocument
    systems: dict[str, Timing] = field(default_factory=dict)


# -- timing the engines --------------------------------------------------------------------


class EngineClock(EngineSet):
    """An EngineSet whose engines add up the time of their ``convert`` calls."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._clock_lock = threading.Lock()

    def get(self, name: str) -> Engine:
        return _TimedEngine(super().get(name), self)

    def reset(self) -> None:
        with self._clock_lock:
            self.seconds.clear()
            self.calls.clear()

    def add(self, engine: str, seconds: float) -> None:
        with self._clock_lock:
            self.seconds[engine] += seconds
            self.calls[engine] += 1


class _TimedEngine:
    """The engine as it is, with its ``convert`` timed (everything else passes through)."""

    def __init__(self, engine: Engine, clock: EngineClock) -> None:
        self._engine = engine
        self._clock = clock
        self.name = engine.name

    def convert(self, page: PageInput) -> PageResult:
        started = time.perf_counter()
        try:
            return self._engine.convert(page)
        finally:
            self._clock.add(self.name, time.perf_counter() - started)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._engine, attribute)


def build_systems(names: Sequence[str]) -> tuple[dict[str, System], EngineClock | None]:
    """The named systems; pagedrop's engines report to the returned clock."""
    from handler.settings import Settings

    systems: dict[str, System] = {}
    clock: EngineClock | None = None
    for name in names:
        if name == PAGEDROP:
            settings = Settings()
            clock = EngineClock(settings)
            systems[name] = PagedropSystem(settings, clock)
        else:
            systems[name] = SYSTEMS[name]()
    return systems, clock


def runs_on(system: str, document: BenchDocument) -> bool:
    return system == PAGEDROP or BASELINE_FOR.get(document.kind) == system


def measure(
    documents: Sequence[BenchDocument],
    systems: dict[str, System],
    clock: EngineClock | None = None,
    repeat: int = 1,
    on_document: Callable[[DocumentTiming], None] | None = None,
) -> list[DocumentTiming]:
    """Every system on the documents it runs on, keeping each one's fastest of ``repeat`` runs.

    Systems take turns document by document, so a burst of load from elsewhere on the
    machine falls on all of them alike. Models load first (untimed).
    """
    for name, system in systems.items():
        system.warm_up(_smallest_per_kind([d for d in documents if runs_on(name, d)]))
    results: list[DocumentTiming] = []
    for document in documents:
        result = DocumentTiming(document)
        for name, system in systems.items():
            if runs_on(name, document):
                runs = [_run_once(system, clock, document) for _ in range(max(1, repeat))]
                result.systems[name] = min(runs, key=lambda t: t.seconds)
        results.append(result)
        if on_document is not None:
            on_document(result)
    return results


def _run_once(system: System, clock: EngineClock | None, document: BenchDocument) -> Timing:
    timed = clock if system.name == PAGEDROP else None
    if timed is not None:
        timed.reset()
    output = run_timed(system, document.path)
    timing = Timing(output.seconds, output.pages or document.pages, output.engines)
    timing.error = output.error
    if timed is not None:
        timing.engine_seconds = dict(timed.seconds)
        timing.engine_calls = dict(timed.calls)
    return timing


def _smallest_per_kind(documents: Sequence[BenchDocument]) -> list[Path]:
    smallest: dict[str, BenchDocument] = {}
    for d in documents:
        if d.kind not in smallest or d.path.stat().st_size < smallest[d.kind].path.stat().st_size:
            smallest[d.kind] = d
    return [d.path for d in smallest.values()]


# -- documents -----------------------------------------------------------------------------


def corpus_documents(corpus: Path) -> list[BenchDocument]:
    """The corpus's born-digital and scanned documents (``hostile/`` is not about speed)."""
    found = []
    for kind in KINDS:
        folder = corpus / kind
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.is_file() and path.suffix.lower() in DOCUMENT_SUFFIXES:
                    found.append(BenchDocument(path, CORPUS_SET, kind, page_count(path)))
    return found


def generated_documents(
    corpus: Path | None, born_digital_pages: int, scanned_pages: int, cache_dir: Path | None
) -> list[BenchDocument]:
    made = benchmark_documents(corpus, born_digital_pages, scanned_pages, DEFAULT_SEED, cache_dir)
    return [BenchDocument(g.path, GENERATED_SET, g.kind, g.pages) for g in made]


def page_count(path: Path) -> int:
    from handler.documents.open import open_document

    with open_document(path, BENCH_LIMITS, dpi=200, filename=path.name) as doc:
        return doc.page_count


# -- table ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Group:
    """Sums over several documents: every system's pages and seconds on the same documents."""

    label: str
    kind: str
    documents: int = 0
    pages: int = 0
    engines: set[str] = field(default_factory=set)
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    engine_seconds: float = 0.0
    has_engine_split: bool = False

    def to_json(self) -> dict[str, Any]:
        baseline = BASELINE_FOR.get(self.kind)
        pd, bl = self.seconds.get(PAGEDROP), self.seconds.get(baseline or "")
        engine = self.engine_seconds if self.has_engine_split else None
        return {
            "group": self.label,
            "kind": self.kind,
            "documents": self.documents,
            "pages": self.pages,
            "engines_called": sorted(self.engines),
            "systems": {
                name: {
                    "seconds": round(seconds, 4),
                    "s_per_page": _round(_per(seconds, self.pages)),
                    "pages_per_s": _round(_per(self.pages, seconds)),
                }
                for name, seconds in self.seconds.items()
            },
            "pagedrop_engine_s": _round(engine),
            "pagedrop_engine_s_per_page": _round(_per(engine, self.pages)),
            "baseline": baseline if bl is not None else None,
            "speedup_over_baseline": _round(bl / pd if pd and bl is not None else None),
        }


HEADERS = (
    "document",
    "kind",
    "pages",
    "engines",
    "pagedrop s/page",
    "pages/s",
    "engine s/page",
    "engine %",
    "baseline",
    "s/page",
    "pages/s",
    "speed-up",
)


def document_row(result: DocumentTiming) -> list[str]:
    doc = result.document
    group = Group(doc.path.name, doc.kind)
    _add(group, result)
    return _row(group, doc.kind, _errors(result))


def totals(results: Sequence[DocumentTiming]) -> list[Group]:
    """Sums per set (corpus, generated) and kind of document, then per kind where a kind
    spans both sets."""
    per_set: dict[tuple[str, str], Group] = {}
    per_kind: dict[str, Group] = {}
    for result in results:
        set_name, kind = result.document.set_name, result.document.kind
        _add(per_set.setdefault((set_name, kind), Group(f"total {set_name} {kind}", kind)), result)
        _add(per_kind.setdefault(kind, Group(f"total {kind}", kind)), result)
    spans = [k for k, g in per_kind.items() if sum(kind == k for _, kind in per_set) > 1]
    return [*per_set.values(), *(per_kind[k] for k in spans)]


def group_rows(results: Sequence[DocumentTiming]) -> list[list[str]]:
    return [_row(g, "", "") for g in totals(results)]


def _add(group: Group, result: DocumentTiming) -> None:
    group.documents += 1
    group.pages += result.document.pages
    for name, timing in result.systems.items():
        group.seconds[name] += timing.seconds
        if name == PAGEDROP:
            group.engines.update(timing.engines_called)
            if timing.engine_total is not None:
                group.engine_seconds += timing.engine_total
                group.has_engine_split = True


def _row(group: Group, kind: str, note: str) -> list[str]:
    pd = group.seconds.get(PAGEDROP)
    baseline = BASELINE_FOR.get(group.kind, "")
    bl = group.seconds.get(baseline)
    engine = group.engine_seconds if group.has_engine_split else None
    cells = [
        group.label,
        kind,
        str(group.pages),
        ",".join(sorted(group.engines)) or "-",
        _fmt(_per(pd, group.pages), 3),
        _fmt(_per(group.pages, pd), 1),
        _fmt(_per(engine, group.pages), 3),
        _fmt(None if engine is None or not pd else 100 * engine / pd, 0),
        baseline if bl is not None else "-",
        _fmt(_per(bl, group.pages), 3),
        _fmt(_per(group.pages, bl), 1),
        _fmt(None if pd is None or bl is None or not pd else bl / pd, 2, "x"),
    ]
    return [*cells, note] if note else cells


def _errors(result: DocumentTiming) -> str:
    failed = [f"{n}: {t.error[:60]}" for n, t in result.systems.items() if t.error]
    return ("error " + "; ".join(failed)) if failed else ""


def text_layer_target(results: Sequence[DocumentTiming]) -> dict[str, Any]:
    """Issue 7's target: pagedrop's pages/s over pymupdf4llm's on born-digital documents.

    Only documents whose every page pagedrop read from the text layer count (a page sent to
    OCR measures the OCR engine, not the text layer); the others are listed as left out.
    """
    baseline = BASELINE_FOR[BORN_DIGITAL]
    counted: list[DocumentTiming] = []
    left_out: list[DocumentTiming] = []
    for r in results:
        pd, bl = r.systems.get(PAGEDROP), r.systems.get(baseline)
        if r.document.kind != BORN_DIGITAL or pd is None or bl is None:
            continue
        text_only = pd.engines_called == [TEXT_ENGINE] and not pd.error and not bl.error
        (counted if text_only else left_out).append(r)
    pages = sum(r.document.pages for r in counted)
    pd_s = sum(r.systems[PAGEDROP].seconds for r in counted)
    engine_s = sum(r.systems[PAGEDROP].engine_total or 0.0 for r in counted)
    bl_s = sum(r.systems[baseline].seconds for r in counted)
    speedup = bl_s / pd_s if counted and pd_s > 0 else None
    return {
        "target": f"text-layer >= {TARGET_TEXT_LAYER_SPEEDUP:g}x the pages/s of {baseline}",
        "documents": [str(r.document.path.name) for r in counted],
        "left_out": [str(r.document.path.name) for r in left_out],
        "pages": pages,
        "pagedrop_s": round(pd_s, 4),
        "engine_s": round(engine_s, 4),
        f"{baseline}_s": round(bl_s, 4),
        "speedup": _round(speedup),
        "engine_only_speedup": _round(bl_s / engine_s if counted and engine_s > 0 else None),
        "met": None if speedup is None else speedup >= TARGET_TEXT_LAYER_SPEEDUP,
    }


def target_line(target: dict[str, Any]) -> str:
    if target["speedup"] is None:
        return f"target {target['target']}: not measured (no born-digital document with both)"
    verdict = "met" if target["met"] else "NOT met"
    line = (
        f"target {target['target']}: {target['speedup']:.2f}x on {len(target['documents'])} "
        f"born-digital documents, {target['pages']} pages ({verdict}; the engine calls alone "
        f"{target['engine_only_speedup']:.2f}x)"
    )
    if target["left_out"]:
        line += f"; left out (pages sent to OCR or failed): {', '.join(target['left_out'])}"
    return line + "; quality: bench/quality.py"


def render_table(rows: Sequence[Sequence[str]], markdown: bool = False) -> str:
    headers = list(HEADERS)
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        for row in rows:
            cells = [*row[: len(headers)]]
            cells[0] = f"**{cells[0]}**" if cells[0].startswith("total") else f"`{cells[0]}`"
            note = f" {row[len(headers)]}" if len(row) > len(headers) else ""
            lines.append("| " + " | ".join(cells) + " |" + note)
        return "\n".join(lines)
    width = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    left = 4  # names left-aligned, numbers right-aligned

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, width, strict=False))
        ]
        return ("  ".join(parts) + ("  " + "  ".join(cells[len(width) :]))).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in width]), *(line(r) for r in rows)])


def _per(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _fmt(value: float | None, digits: int, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


# -- command line --------------------------------------------------------------------------


def to_json(
    results: Sequence[DocumentTiming], args: argparse.Namespace, seconds: float
) -> dict[str, Any]:
    return {
        "run": {
            "benchmark": "engines",
            "seconds": round(seconds, 1),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine(),
            "versions": versions(),
            "systems": args.system_names,
            "repeat": args.repeat,
            "definitions": {
                "seconds": "pagedrop: open + route + convert every page + assemble (the "
                "worker's path without AWS); baselines: their whole call",
                "engine_s_total": "pagedrop only: the sum of the engines' convert calls",
                "other_s": "seconds - engine_s_total: opening, routing, elements, assembling",
                "repeat": "each system's fastest of this many runs per document",
            },
        },
        "documents": [
            {
                "document": str(r.document.path),
                "set": r.document.set_name,
                "kind": r.document.kind,
                "pages": r.document.pages,
                "systems": {name: t.to_json() for name, t in r.systems.items()},
            }
            for r in results
        ],
        "totals": [g.to_json() for g in totals(results)],
        "targets": [text_layer_target(results)],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="corpus root")
    parser.add_argument(
        "--systems", default=",".join(SYSTEMS), help=f"comma-separated, of {', '.join(SYSTEMS)}"
    )
    parser.add_argument("--only", help="only documents whose file name contains this")
    parser.add_argument(
        "--repeat", type=int, default=1, help="time each document this many times, keep the fastest"
    )
    parser.add_argument("--skip-generated", action="store_true", help="only the corpus")
    parser.add_argument("--born-digital-pages", type=int, default=200, help="generated PDF")
    parser.add_argument("--scanned-pages", type=int, default=50, help="generated scanned PDF")
    parser.add_argument("--cache-dir", type=Path, help="where generated PDFs are kept")
    parser.add_argument("--json", type=Path, help="write every number to this file")
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    args = parser.parse_args(argv)
    args.system_names = [n.strip() for n in args.systems.split(",") if n.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    unknown = [n for n in args.system_names if n not in SYSTEMS]
    if unknown:
        print(f"unknown systems: {', '.join(unknown)}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    documents = corpus_documents(args.corpus) if args.corpus.is_dir() else []
    if not args.skip_generated:
        corpus = args.corpus if args.corpus.is_dir() else None
        documents += generated_documents(
            corpus, args.born_digital_pages, args.scanned_pages, args.cache_dir
        )
    documents = [d for d in documents if not args.only or args.only in d.path.name]
    if not documents:
        print(f"no documents (corpus: {args.corpus})", file=sys.stderr)
        return 2
    try:
        systems, clock = build_systems(args.system_names)
    except RuntimeError as exc:  # a baseline's package is not installed
        print(exc, file=sys.stderr)
        return 2
    aside = sys.stderr if args.markdown else sys.stdout  # a markdown table is for pasting

    def progress(result: DocumentTiming) -> None:
        print(f"  {result.document.path.name}: done", file=sys.stderr, flush=True)

    results = measure(documents, systems, clock, max(1, args.repeat), progress)
    seconds = time.perf_counter() - started
    rows = [document_row(r) for r in results] + group_rows(results)
    print(render_table(rows, args.markdown))
    record = to_json(results, args, seconds)
    print(target_line(record["targets"][0]), file=aside)
    print(
        f"{len(documents)} documents, {len(systems)} systems, repeat {args.repeat}, "
        f"{seconds:.0f} s in all; {machine()}",
        file=aside,
    )
    if args.json is not None:
        args.json.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
