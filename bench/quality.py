#!/usr/bin/env python3
"""Quality benchmark: pagedrop against pymupdf4llm and plain rapidocr, on documents with
ground truth (docs/quality.md says what each column means).

    python bench/quality.py                          # the corpus at ../shared/corpus
    python bench/quality.py --scanned-only --systems pagedrop
    python bench/quality.py FOLDER ... DOC.pdf DOC.tif:TRUTH.txt --json out.json

A FOLDER holds documents with their ground truth in ``FOLDER/gt/`` (the corpus convention);
``DOC:TRUTH.txt`` names a document's text ground truth directly.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO_ROOT))

from bench.report import markdown_table, text_table  # noqa: E402
from bench.runner import (  # noqa: E402
    CORPUS_SETS,
    Target,
    corpus_targets,
    folder_targets,
    path_target,
    run_benchmark,
    table_rows,
    to_json,
)
from bench.systems import SYSTEMS, SystemOutput  # noqa: E402

DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "corpus"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("paths", nargs="*", help="FOLDER, DOCUMENT or DOCUMENT:TRUTH.txt")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="corpus root")
    parser.add_argument("--scanned-only", action="store_true", help="only the corpus's scans")
    parser.add_argument(
        "--systems", default=",".join(SYSTEMS), help=f"comma-separated, of {', '.join(SYSTEMS)}"
    )
    parser.add_argument("--only", help="only documents whose name contains this")
    parser.add_argument(
        "--repeat", type=int, default=1, help="time each document this many times, keep the fastest"
    )
    parser.add_argument("--json", type=Path, help="write every number to this file")
    parser.add_argument(
        "--markdown", action="store_true", help="print the table as markdown (docs/quality.md)"
    )
    parser.add_argument("--save-outputs", type=Path, help="write each system's markdown here")
    return parser.parse_args(argv)


def targets_from(args: argparse.Namespace) -> list[Target]:
    if not args.paths:
        sets = ("scanned",) if args.scanned_only else CORPUS_SETS
        return corpus_targets(args.corpus, sets)
    targets: list[Target] = []
    for arg in args.paths:
        document, sep, truth = arg.partition(":")
        path = Path(document)
        if path.is_dir():
            targets.extend(folder_targets(path))
        else:
            targets.append(path_target(path, path.parent.name, Path(truth) if sep else None))
    return targets


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n.strip() for n in args.systems.split(",") if n.strip()]
    unknown = [n for n in names if n not in SYSTEMS]
    if unknown:
        print(f"unknown systems: {', '.join(unknown)}", file=sys.stderr)
        return 2
    named = [part for arg in args.paths for part in arg.split(":", 1) if part]
    missing = [p for p in named if not Path(p).exists()]
    if missing:
        print(f"not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    targets = [t for t in targets_from(args) if not args.only or args.only in t.path.name]
    if not targets:
        print(f"no documents (corpus: {args.corpus})", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        systems = [SYSTEMS[n]() for n in names]
    except RuntimeError as exc:  # a baseline's package is not installed
        print(exc, file=sys.stderr)
        return 2

    def save(target: Target, system: str, output: SystemOutput) -> None:
        if args.save_outputs is not None:
            folder = args.save_outputs / system
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{target.path.name}.md").write_text(output.markdown, encoding="utf-8")

    results = run_benchmark(targets, systems, on_output=save, repeat=max(1, args.repeat))
    rows = table_rows(results, names)
    seconds = time.perf_counter() - started
    print(markdown_table(rows) if args.markdown else text_table(rows))
    # A markdown table is for pasting: the lines around it go to stderr then.
    aside = sys.stderr if args.markdown else sys.stdout
    for target in targets:
        for note in target.truth.notes:
            print(f"note: {target.path.name}: {note}", file=aside)
    print(f"{len(targets)} documents, {len(names)} systems, {seconds:.0f} s in all", file=aside)
    if args.json is not None:
        record = to_json(results, rows, names, seconds)
        args.json.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
