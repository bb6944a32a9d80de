"""End to end through the local pipeline against engine-only, on the same documents.

    .venv/bin/python -m bench.pipeline [--corpus ../shared/corpus] [--json out.json]

Each batch (born-digital, scanned) is converted twice in one run: engine-only, in this
process (``bench.systems``'s pagedrop system: open, route, convert every page, assemble:
the worker's path without AWS), and end to end, uploaded to the local stack and converted
by a real ``python -m handler worker`` process until every ``manifest.json`` is present
(``bench._local``). The overhead ratio is the batch's end-to-end time over the sum of its
engine-only times. Also measured: the fixed cost of a one-page document, the CPU use of
the worker, the endpoint and the machine during each batch, and peak memory (``VmHWM``)
of a fresh worker for a 10-page and a 200-page born-digital PDF.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import _proc
from bench._local import Finished, LocalPipeline, local_pipeline
from bench._tables import ratio, run_header, table, target_line
from bench.engines import PAGEDROP, EngineClock, build_systems
from bench.runner import count_pages, folder_targets
from bench.systems import System, run_timed

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
# The targets for end-to-end over engine-only time: a scan's page costs seconds of
# OCR, so the pipeline must hide in it; a born-digital page costs milliseconds, so a
# couple of round trips per page are allowed.
TARGET_RATIO = {"born-digital": 2.0, "scanned": 1.15}
TARGET_CPU_BUSY = 0.85  # share of all cores the worker keeps busy during a scanned batch
TARGET_MEMORY_RATIO = 1.5  # peak memory, 200-page PDF over 10-page PDF
MEMORY_PAGES = (10, 200)
GENERATED_PAGES = {"born-digital": 200, "scanned": 50}
FIXED_COST_RUNS = 7  # one-page documents, one at a time; the median is reported

Document = tuple[str, Path, int]  # (name, path, pages)


@dataclass
class BatchResult:
    name: str
    documents: list[Document]
    engine_s: dict[str, float] = field(default_factory=dict)  # best engine-only per document
    convert_s: dict[str, float] = field(default_factory=dict)  # its engines' convert calls
    finished: list[Finished] = field(default_factory=list)  # the fastest end-to-end run
    end_to_end_s: float | None = None
    cpu: dict[str, float] = field(default_factory=dict)
    peak_mib: float | None = None

    @property
    def pages(self) -> int:
        return sum(pages for _, _, pages in self.documents)

    @property
    def engine_total_s(self) -> float:
        return sum(self.engine_s.values())

    @property
    def convert_total_s(self) -> float:
        return sum(self.convert_s.values())

    @property
    def ratio(self) -> float | None:
        """End to end over the engines' own convert calls: the target's ratio."""
        return ratio(self.end_to_end_s, self.convert_total_s)

    @property
    def ratio_whole_path(self) -> float | None:
        """End to end over the whole engine-only path (open, route, convert, assemble)."""
        return ratio(self.end_to_end_s, self.engine_total_s)


def corpus_documents(folder: Path) -> list[Document]:
    docs = []
    for target in folder_targets(folder):
        docs.append((target.path.name, target.path, count_pages(target)))
    return docs


def batches(corpus: Path, *, generated: bool) -> dict[str, list[Document]]:
    """The born-digital and scanned batches: the corpus folders, plus the generated PDFs
    that ``bench/engines.py`` measures too (``bench.generated.benchmark_documents``)."""
    out = {
        "born-digital": corpus_documents(corpus / "born_digital"),
        "scanned": corpus_documents(corpus / "scanned"),
    }
    if generated:
        from bench.generated import BORN_DIGITAL, benchmark_documents

        for made in benchmark_documents(corpus if corpus.is_dir() else None):
            name = "born-digital" if made.kind == BORN_DIGITAL else "scanned"
            out[name].append((made.path.name, made.path, made.pages))
    return out


def engine_only(
    system: System, clock: EngineClock, documents: Sequence[Document]
) -> dict[str, tuple[float, float]]:
    """(whole path, engines' convert calls) seconds per document, in this process."""
    seconds = {}
    for name, path, _ in documents:
        clock.reset()
        output = run_timed(system, path)
        if output.error and not output.markdown:
            raise RuntimeError(f"engine-only failed on {name}: {output.error}")
        seconds[name] = (output.seconds, sum(clock.seconds.values()))
    return seconds


def run_batch(
    pipeline: LocalPipeline,
    system: System,
    clock: EngineClock,
    name: str,
    documents: list[Document],
    repeat: int,
) -> BatchResult:
    """Engine-only then end to end, ``repeat`` times; the fastest of each is kept."""
    result = BatchResult(name, documents)
    for attempt in range(repeat):
        for doc, (seconds, convert) in engine_only(system, clock, documents).items():
            if seconds < result.engine_s.get(doc, float("inf")):
                result.engine_s[doc], result.convert_s[doc] = seconds, convert
        seconds, finished, cpu = pipeline.measure(documents, f"{name}-{attempt + 1}")
        if result.end_to_end_s is None or seconds < result.end_to_end_s:
            result.end_to_end_s, result.finished, result.cpu = seconds, finished, cpu
    result.peak_mib = _proc.peak_rss_mib(pipeline.worker_pids[0])
    return result


def fixed_cost(
    pipeline: LocalPipeline, system: System, document: Document, runs: int
) -> dict[str, Any]:
    """A one-page document end to end, one at a time: medians of ``runs``."""
    e2e, engine, worker = [], [], []
    for run in range(runs):
        engine.append(run_timed(system, document[1]).seconds)
        (finished,) = pipeline.run([document], f"fixed-{run + 1}")
        e2e.append(finished.seconds)
        worker.append(finished.worker_timings.get("total_s", 0.0))
    return {
        "document": document[0],
        "runs": runs,
        "end_to_end_s": statistics.median(e2e),
        "engine_only_s": statistics.median(engine),
        "worker_total_s": statistics.median(worker),
        "fixed_s": statistics.median(e2e) - statistics.median(engine),
        "all_end_to_end_s": [round(s, 4) for s in e2e],
    }


def peak_memory(pipeline: LocalPipeline, documents: Sequence[Document]) -> dict[str, float | None]:
    """Peak resident memory (MiB) of a fresh worker converting each document alone."""
    peaks: dict[str, float | None] = {}
    for index, document in enumerate(documents):
        pipeline.start_workers(1)
        pipeline.run([document], f"memory-{index + 1}")
        peaks[document[0]] = _proc.peak_rss_mib(pipeline.worker_pids[0])
    return peaks


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.monotonic()
    say = (lambda m: print(m, file=sys.stderr, flush=True)) if not args.quiet else (lambda m: None)
    wanted = batches(args.corpus, generated=not args.skip_generated)
    wanted = {k: v for k, v in wanted.items() if k in args.batches}
    say("loading the engines in this process (engine-only)")
    systems, clock = build_systems([PAGEDROP])
    system = systems[PAGEDROP]
    assert clock is not None
    warm = [min(docs, key=lambda d: d[1].stat().st_size) for docs in wanted.values()]
    system.warm_up([path for _, path, _ in warm])
    results: list[BatchResult] = []
    record: dict[str, Any] = {}
    with local_pipeline(0, log_dir=args.log_dir) as pipeline:
        say(f"endpoint pid {pipeline.endpoint.pid}, logs in {pipeline.log_dir}")
        for name, documents in wanted.items():
            pipeline.start_workers(1)  # a fresh worker per batch: its peak memory is the batch's
            pipeline.run(warm, f"warm-{name}")  # first calls, untimed
            say(f"{name}: {len(documents)} documents, {sum(d[2] for d in documents)} pages")
            results.append(run_batch(pipeline, system, clock, name, documents, args.repeat))
        if not args.skip_fixed:
            from bench.generated import born_digital_pdf

            one = born_digital_pdf(1)
            say(f"fixed cost: {args.fixed_runs} one-page documents, one at a time")
            pipeline.start_workers(1)
            pipeline.run([(one.name, one, 1)], "warm-fixed")
            record["fixed_cost"] = fixed_cost(pipeline, system, (one.name, one, 1), args.fixed_runs)
        if not args.skip_memory:
            from bench.generated import born_digital_pdf

            say("peak memory: a fresh worker per document")
            docs = [(f"{n} pages", born_digital_pdf(n), n) for n in MEMORY_PAGES]
            record["memory_mib"] = peak_memory(pipeline, docs)
    record = {
        "run": run_header(time.monotonic() - started, **_options(args)),
        "batches": [_batch_json(r) for r in results],
        **record,
    }
    record["targets"] = targets(record)
    print(report(record, markdown=args.markdown))
    if args.json:
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0


def targets(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets that this script measures, with the measured values."""
    out = []
    for batch in record["batches"]:
        if batch["name"] in TARGET_RATIO:
            out.append(
                _target(
                    f"overhead ratio, {batch['name']}",
                    batch["ratio"],
                    TARGET_RATIO[batch["name"]],
                    True,
                )
            )
        if batch["name"] == "scanned":
            out.append(
                _target(
                    "worker CPU busy, scanned batch",
                    batch["cpu"].get("workers"),
                    TARGET_CPU_BUSY,
                    False,
                )
            )
    memory = record.get("memory_mib") or {}
    small, large = (memory.get(f"{n} pages") for n in MEMORY_PAGES)
    out.append(
        _target(
            f"peak memory {MEMORY_PAGES[1]} pages / {MEMORY_PAGES[0]} pages",
            ratio(large, small),
            TARGET_MEMORY_RATIO,
            True,
        )
    )
    return out


def _target(name: str, value: float | None, target: float, at_most: bool) -> dict[str, Any]:
    return {
        "name": name,
        "value": value,
        "target": target,
        "at_most": at_most,
        "line": target_line(name, value, target, at_most=at_most),
    }


def report(record: dict[str, Any], *, markdown: bool = False) -> str:
    """The tables: batches, documents, fixed cost and memory, then the targets."""
    batch_rows = [
        [
            b["name"],
            b["documents"].__len__(),
            b["pages"],
            b["engine_convert_s"],
            b["engine_only_s"],
            b["end_to_end_s"],
            b["ratio"],
            b["ratio_whole_path"],
            b["pages_per_s_end_to_end"],
            _pct(b["cpu"].get("workers")),
            _pct(b["cpu"].get("endpoint")),
            _pct(b["cpu"].get("machine")),
            b["peak_mib"],
        ]
        for b in record["batches"]
    ]
    parts = [
        table(
            [
                "batch",
                "docs",
                "pages",
                "convert s",
                "engine path s",
                "e2e s",
                "ratio",
                "ratio/path",
                "e2e pages/s",
                "worker CPU",
                "endpoint CPU",
                "machine CPU",
                "peak MiB",
            ],
            batch_rows,
            markdown=markdown,
        )
    ]
    doc_rows = [
        [
            d["document"],
            b["name"],
            d["pages"],
            d["engine_convert_s"],
            d["engine_only_s"],
            d["worker_total_s"],
            d["worker_convert_s"],
            ratio(d["worker_total_s"], d["engine_only_s"]),
        ]
        for b in record["batches"]
        for d in b["documents"]
    ]
    parts.append(
        table(
            [
                "document",
                "batch",
                "pages",
                "convert s",
                "engine path s",
                "worker total s",
                "worker convert s",
                "worker/path",
            ],
            doc_rows,
            markdown=markdown,
        )
    )
    fixed = record.get("fixed_cost")
    if fixed:
        parts.append(
            table(
                ["one-page document", "runs", "e2e s", "engine s", "worker total s", "fixed s"],
                [
                    [
                        fixed["document"],
                        fixed["runs"],
                        fixed["end_to_end_s"],
                        fixed["engine_only_s"],
                        fixed["worker_total_s"],
                        fixed["fixed_s"],
                    ]
                ],
                markdown=markdown,
            )
        )
    memory = record.get("memory_mib")
    if memory:
        parts.append(
            table(
                ["fresh worker, one document", "peak MiB"], list(memory.items()), markdown=markdown
            )
        )
    parts.append("\n".join(t["line"] for t in record["targets"]))
    parts.append(f"machine: {record['run']['machine']}")
    return "\n\n".join(parts)


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.0f}%"


def _batch_json(result: BatchResult) -> dict[str, Any]:
    by_name = {f.document.name: f for f in result.finished}
    documents = []
    for name, _, pages in result.documents:
        timings = by_name[name].worker_timings if name in by_name else {}
        documents.append(
            {
                "document": name,
                "pages": pages,
                "engine_only_s": result.engine_s.get(name),
                "engine_convert_s": result.convert_s.get(name),
                "worker_total_s": timings.get("total_s"),
                "worker_convert_s": timings.get("convert_s"),
                "worker_download_s": timings.get("download_s"),
                "latency_s": by_name[name].seconds if name in by_name else None,
            }
        )
    e2e = result.end_to_end_s
    return {
        "name": result.name,
        "pages": result.pages,
        "engine_only_s": result.engine_total_s,
        "engine_convert_s": result.convert_total_s,
        "end_to_end_s": e2e,
        "ratio": result.ratio,
        "ratio_whole_path": result.ratio_whole_path,
        "pages_per_s_engine_only": ratio(result.pages, result.engine_total_s),
        "pages_per_s_end_to_end": ratio(result.pages, e2e),
        "cpu": result.cpu,
        "peak_mib": result.peak_mib,
        "documents": documents,
    }


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--markdown", action="store_true", help="print GitHub tables")
    parser.add_argument("--repeat", type=int, default=1, help="runs per batch; the fastest counts")
    parser.add_argument(
        "--batches",
        type=lambda s: s.split(","),
        default=list(TARGET_RATIO),
        help="comma-separated: born-digital,scanned",
    )
    parser.add_argument("--skip-generated", action="store_true", help="corpus documents only")
    parser.add_argument("--skip-fixed", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--fixed-runs", type=int, default=FIXED_COST_RUNS)
    parser.add_argument(
        "--log-dir", type=Path, help="worker and endpoint logs (default: a temp dir)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
