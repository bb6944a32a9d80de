"""``pagedrop``: the command line. Thin: parse arguments, load settings, call the library."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from handler import __version__

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _aws_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint-url", help="AWS endpoint (the local one); default: real AWS")
    parser.add_argument("--region", help="AWS region")
    parser.add_argument("--bucket", help="the bucket (default: $PAGEDROP_BUCKET)")
    parser.add_argument("--table-name", help="the status table (default: $PAGEDROP_TABLE_NAME)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pagedrop",
        description="Turn documents dropped into S3 into markdown and element JSON.",
    )
    parser.add_argument("--version", action="version", version=f"pagedrop {__version__}")
    parser.add_argument("--log-level", default="INFO")
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser(
        "local",
        help="run the pipeline on this machine against an embedded AWS endpoint",
        description="Start an embedded AWS endpoint on 127.0.0.1, create the bucket, queues "
        "and table from template.yaml, and run a worker with the CPU engines. With --process, "
        "convert a folder of documents, copy the outputs to --out, print a summary and exit.",
    )
    local.add_argument("--port", type=int, default=0, help="endpoint port (default: a free one)")
    local.add_argument("--bucket", default="pagedrop-local")
    local.add_argument("--process", type=Path, metavar="FOLDER", help="convert FOLDER and exit")
    local.add_argument("--out", type=Path, default=Path("pagedrop-out"), help="outputs folder")
    local.add_argument("--timeout", type=float, default=1800.0, help="seconds for --process")

    worker = commands.add_parser(
        "worker", help="run a worker on the configured queue (settings from PAGEDROP_*)"
    )
    _aws_options(worker)

    status = commands.add_parser("status", help="show a document's status or list by status")
    _aws_options(status)
    status.add_argument("key", nargs="?", help="the source key (e.g. input/x/a.pdf)")
    status.add_argument(
        "--status",
        choices=["PROCESSING", "SUCCEEDED", "PARTIAL", "FAILED"],
        help="list documents in this status (most recent first)",
    )
    status.add_argument("--limit", type=int, default=50)
    status.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _settings(args: argparse.Namespace) -> Any:
    from handler.settings import Settings

    overrides = {
        name: value
        for name in ("endpoint_url", "region", "bucket", "table_name")
        if (value := getattr(args, name, None))
    }
    return Settings(**overrides)


def _run_local(args: argparse.Namespace) -> int:
    from handler.local.run import all_final, local_environment, process_folder, serve, summary_table

    with local_environment(port=args.port, bucket=args.bucket) as run:
        if args.process is None:
            serve(run)
            return EXIT_OK
        if not args.process.is_dir():
            print(f"pagedrop: {args.process} is not a folder", file=sys.stderr)
            return EXIT_USAGE
        summaries = process_folder(run, args.process, args.out, timeout_s=args.timeout)
        print(summary_table(summaries))
        print(f"\noutputs in {args.out.resolve()}")
        return EXIT_OK if all_final(summaries) else EXIT_FAILURE


def _run_worker(args: argparse.Namespace) -> int:
    from handler.aws import make_clients
    from handler.worker.build import build_worker

    settings = _settings(args)
    missing = [n for n in ("bucket", "queue_url", "table_name") if not getattr(settings, n)]
    if missing:
        names = ", ".join(f"PAGEDROP_{n.upper()}" for n in missing)
        print(f"pagedrop worker: set {names}", file=sys.stderr)
        return EXIT_USAGE
    worker = build_worker(settings, make_clients(settings))
    worker.install_signal_handlers()
    worker.run()
    return EXIT_OK


def _run_status(args: argparse.Namespace) -> int:
    from handler.aws import make_clients
    from handler.status.model import Status
    from handler.worker.build import status_store

    settings = _settings(args)
    store = status_store(settings, make_clients(settings))
    if args.key:
        item = store.get(f"{settings.bucket}/{args.key}")
        if item is None:
            print(f"pagedrop: no status for s3://{settings.bucket}/{args.key}", file=sys.stderr)
            return EXIT_FAILURE
        items = [item.raw]
    elif args.status:
        items = [i.raw for i in store.list_by_status(Status(args.status), limit=args.limit)]
    else:
        print("pagedrop status: give a KEY or --status", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(items, indent=2, default=str))
    else:
        print(_status_table(items))
    return EXIT_OK


def _status_table(items: list[dict[str, Any]]) -> str:
    rows = [("key", "status", "pages", "engines", "updated", "error")]
    for raw in items:
        error = raw.get("error") or {}
        rows.append(
            (
                str(raw.get("key", raw.get("pk", ""))),
                str(raw.get("status", "")),
                f"{raw.get('pages_done', 0)}/{raw.get('pages_total', 0)}",
                ",".join(raw.get("engine") or []) or "-",
                str(raw.get("updated_at", "")),
                f"{error.get('category')}: {error.get('message')}" if error else "",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)), r[5]]).rstrip()
        for r in rows
    )


COMMANDS = {"local": _run_local, "worker": _run_worker, "status": _run_status}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from handler.logs import configure

    configure(args.log_level)
    try:
        return COMMANDS[args.command](args)
    except ValidationError as exc:
        print(f"pagedrop: invalid settings: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
