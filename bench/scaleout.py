"""Scale-out: 1..N worker processes on one queue, the same batch each time.

    .venv/bin/python -m bench.scaleout [--max N] [--copies C] [--json out.json]

The batch is the corpus's scanned documents, ``--copies`` times over (distinct keys), plus
one copy of its one-page born-digital documents: mostly OCR, as the costly part of a real
workload. For each N the workers are fresh processes, warmed with one small document each
(untimed); then the batch is uploaded and timed from the first upload to the last
``manifest.json`` (``bench._local``). Throughput is pages per second; the speed-up is over
one worker. Each worker's OCR engine uses every core it may (``default_threads``), so N
workers on C cores share them: the table shows how far more processes still help.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench import _proc
from bench._local import local_pipeline
from bench._tables import ratio, run_header, table
from bench.pipeline import DEFAULT_CORPUS, Document, corpus_documents

DEFAULT_COPIES = 3


def scaleout_batch(corpus: Path, copies: int) -> list[Document]:
    """The corpus's scans ``copies`` times, then its one-page born-digital documents."""
    scans = corpus_documents(corpus / "scanned")
    digital = [d for d in corpus_documents(corpus / "born_digital") if d[2] == 1]
    return [
        (f"{name} #{n}", path, pages) for n in range(1, copies + 1) for name, path, pages in scans
    ] + digital


def warm_documents(documents: list[Document], workers: int) -> list[Document]:
    """One small document per worker: each receive takes one message, so each worker most
    likely gets one and pays its first-call costs before the timed batch."""
    smallest = min(documents, key=lambda d: d[1].stat().st_size)
    return [smallest] * workers


def rows_for(results: list[dict[str, Any]]) -> list[list[Any]]:
    base = results[0]["pages_per_s"] if results else None
    return [
        [
            r["workers"],
            r["pages"],
            r["seconds"],
            r["pages_per_s"],
            ratio(r["pages_per_s"], base),
            f"{100 * r['cpu']['workers']:.0f}%",
            f"{100 * r['cpu']['machine']:.0f}%",
        ]
        for r in results
    ]


HEADERS = ["workers", "pages", "seconds", "pages/s", "speed-up", "workers CPU", "machine CPU"]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.monotonic()
    documents = scaleout_batch(args.corpus, args.copies)
    pages = sum(d[2] for d in documents)
    results: list[dict[str, Any]] = []
    with local_pipeline(0, log_dir=args.log_dir) as pipeline:
        for workers in range(1, args.max + 1):
            if args.split_cores:  # each worker's OCR gets its share of the cores
                threads = max(1, (os.cpu_count() or 1) // workers)
                pipeline.worker_env["PAGEDROP_OCR_THREADS"] = str(threads)
            pipeline.start_workers(workers)
            pipeline.run(warm_documents(documents, workers), f"warm-{workers}")
            print(
                f"{workers} worker(s): {len(documents)} documents, {pages} pages", file=sys.stderr
            )
            best: dict[str, Any] | None = None
            for attempt in range(args.repeat):
                seconds, _, cpu = pipeline.measure(documents, f"n{workers}-{attempt + 1}")
                if best is None or seconds < best["seconds"]:
                    best = {
                        "workers": workers,
                        "pages": pages,
                        "seconds": seconds,
                        "pages_per_s": pages / seconds,
                        "cpu": cpu,
                    }
            assert best is not None
            results.append(best)
    record: dict[str, Any] = {
        "run": run_header(time.monotonic() - started, **{k: str(v) for k, v in vars(args).items()}),
        "documents": [{"document": name, "pages": p} for name, _, p in documents],
        "results": results,
    }
    print(table(HEADERS, rows_for(results), markdown=args.markdown))
    print(f"\nmachine: {record['run']['machine']}")
    if args.json:
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scaleout", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument(
        "--max", type=int, default=_proc.cores(), help="most workers (default: cores)"
    )
    parser.add_argument("--copies", type=int, default=DEFAULT_COPIES, help="copies of each scan")
    parser.add_argument("--repeat", type=int, default=1, help="runs per N; the fastest counts")
    parser.add_argument(
        "--split-cores",
        action="store_true",
        help="give each of N workers cores/N OCR threads (PAGEDROP_OCR_THREADS)",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--markdown", action="store_true", help="print a GitHub table")
    parser.add_argument(
        "--log-dir", type=Path, help="worker and endpoint logs (default: a temp dir)"
    )
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
