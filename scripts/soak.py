#!/usr/bin/env python3
"""Soak test: many small documents through worker processes that get killed along the way.

    python scripts/soak.py                                   # 500 documents, 2 workers
    python scripts/soak.py --documents 50 --kills 2 --kill-every 5 --json soak.json

Starts the embedded AWS endpoint in this process, creates a stack of its own from
template.yaml, runs ``--workers`` processes of ``pagedrop worker`` (visibility timeout and
lease 10 s, heartbeat 2 s), uploads the documents, SIGKILLs (``--kills``) and SIGTERMs
(``--stops``) workers at random moments about ``--kill-every`` seconds apart, replacing each
at once, then checks that every document SUCCEEDED exactly once, that the table and the
output prefix agree, and that the work queue and the dead-letter queue are empty. Prints a
summary; exits 1 if a check failed. The logic is ``handler.local.soak``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO_ROOT))

from handler.local.soak import SoakConfig, format_summary, run_soak  # noqa: E402

DEFAULTS = SoakConfig()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=DEFAULTS.documents)
    parser.add_argument("--workers", type=int, default=DEFAULTS.workers)
    parser.add_argument(
        "--kills", type=int, default=DEFAULTS.kills, help="SIGKILLs, at most (default %(default)s)"
    )
    parser.add_argument(
        "--stops", type=int, default=DEFAULTS.stops, help="SIGTERMs, at most (default %(default)s)"
    )
    parser.add_argument(
        "--kill-every",
        type=float,
        default=DEFAULTS.disrupt_every_s,
        metavar="SECONDS",
        help="mean seconds between two disruptions (default: spread over the run's progress)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    parser.add_argument(
        "--scan-share",
        type=float,
        default=DEFAULTS.scan_share,
        help="share of documents that are image scans, converted by OCR (default %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULTS.timeout_s,
        metavar="SECONDS",
        help="for every document to reach a final status (default %(default)s)",
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a PAGEDROP_* setting for the workers (repeatable), e.g. PAGEDROP_RECEIVE_BATCH=1",
    )
    parser.add_argument("--log-dir", type=Path, help="worker logs (default: a temporary folder)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the report as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def _name_value(pair: str) -> tuple[str, str]:
    name, sep, value = pair.partition("=")
    if not sep or not name.startswith("PAGEDROP_"):
        raise SystemExit(f"soak: --worker-env takes PAGEDROP_NAME=VALUE, not {pair!r}")
    return name, value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = SoakConfig(
        documents=args.documents,
        workers=args.workers,
        kills=args.kills,
        stops=args.stops,
        disrupt_every_s=args.kill_every,
        seed=args.seed,
        scan_share=args.scan_share,
        timeout_s=args.timeout,
        log_dir=args.log_dir,
        worker_env=tuple(_name_value(pair) for pair in args.worker_env),
    )

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    report = run_soak(config, progress=None if args.quiet else progress)
    print(format_summary(report))
    if args.json:
        args.json.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
