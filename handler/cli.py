"""``pagedrop``: the command line. Thin: parse arguments, load settings, call the library."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from handler import __version__

if TYPE_CHECKING:
    from handler.dead_letters import DeadLetters

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
    _dlq_parser(commands)
    return parser


def _dlq_parser(commands: Any) -> None:
    dlq = commands.add_parser(
        "dlq",
        help="list the dead letters, or send them back to the work queue after a fix",
        description="Dead letters: messages in the dead-letter queue (poison bodies, or "
        "messages the DLQ function has not consumed) and documents FAILED/exhausted.",
    )
    actions = dlq.add_subparsers(dest="dlq_action", required=True)
    listing = actions.add_parser(
        "list",
        help="the messages in the DLQ (left there) and the FAILED/exhausted documents",
    )
    redrive = actions.add_parser(
        "redrive",
        help="send the DLQ's messages back to the work queue (and re-queue exhausted documents)",
    )
    for action in (listing, redrive):
        _aws_options(action)
        action.add_argument("--queue-url", help="the work queue (default: $PAGEDROP_QUEUE_URL)")
        action.add_argument("--dlq-url", help="the dead-letter queue (default: $PAGEDROP_DLQ_URL)")
        action.add_argument("--limit", type=_positive, default=100, help="at most this many")
    listing.add_argument("--json", action="store_true", help="print JSON")
    redrive.add_argument(
        "--exhausted",
        action="store_true",
        help="also re-queue each FAILED/exhausted document as an S3 event",
    )
    redrive.add_argument("--dry-run", action="store_true", help="print what it would do")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _settings(args: argparse.Namespace) -> Any:
    from handler.settings import Settings

    overrides = {
        name: value
        for name in ("endpoint_url", "region", "bucket", "table_name", "queue_url", "dlq_url")
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


def _run_dlq(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from handler.aws import make_clients
    from handler.dead_letters import DeadLetters
    from handler.worker.build import status_store

    settings = _settings(args)
    needed = ["dlq_url", "table_name"] + (["queue_url"] if args.dlq_action == "redrive" else [])
    missing = [n for n in needed if not getattr(settings, n)]
    if missing:
        names = " and ".join(f"PAGEDROP_{n.upper()} (or --{n.replace('_', '-')})" for n in missing)
        print(f"pagedrop dlq {args.dlq_action}: set {names}.", file=sys.stderr)
        return EXIT_USAGE
    clients = make_clients(settings)
    letters = DeadLetters(
        clients.sqs,
        status_store(settings, clients),
        queue_url=settings.queue_url,
        dlq_url=settings.dlq_url,
        region=settings.region,
    )
    try:
        if args.dlq_action == "list":
            return _dlq_list(letters, args)
        return _dlq_redrive(letters, args)
    except (BotoCoreError, ClientError) as exc:
        print(f"pagedrop dlq {args.dlq_action}: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def _dlq_list(letters: DeadLetters, args: argparse.Namespace) -> int:
    from dataclasses import asdict

    messages, documents = letters.peek(args.limit), letters.exhausted(args.limit)
    if args.json:
        listed = {
            "messages": [{**asdict(m), "keys": list(m.keys)} for m in messages],
            "exhausted": [asdict(d) for d in documents],
        }
        for message in listed["messages"]:
            message.pop("refs")
        print(json.dumps(listed, indent=2))
        return EXIT_OK
    print(f"messages in the dead-letter queue: {len(messages)}")
    if messages:
        rows = [("message", "receives", "keys", "reason")]
        rows += [
            (m.message_id, str(m.receive_count), ",".join(m.keys) or "-", m.reason or "")
            for m in messages
        ]
        print(_table(rows))
    print(f"\ndocuments FAILED/exhausted: {len(documents)}")
    if documents:
        rows = [("key", "version", "failed at", "error")]
        rows += [(d.key, d.version or "-", d.failed_at, d.message) for d in documents]
        print(_table(rows))
    return EXIT_OK


def _dlq_redrive(letters: DeadLetters, args: argparse.Namespace) -> int:
    report = letters.redrive(limit=args.limit, exhausted=args.exhausted, dry_run=args.dry_run)
    move, requeue = ("would move", "would re-queue") if report.dry_run else ("moved", "re-queued")
    print(f"{move} {len(report.moved)} message(s) from the dead-letter queue to the work queue")
    for m in report.moved:
        print(f"  {m.message_id}  {','.join(m.keys) or '(poison: ' + str(m.reason) + ')'}")
    if args.exhausted:
        print(f"{requeue} {len(report.requeued)} FAILED/exhausted document(s)")
        for d in report.requeued:
            print(f"  {d.key}  (version {d.version or '-'})")
        for d in report.skipped:
            print(f"  {d.key}  skipped: a moved message names the same version")
    for failure in report.failures:
        print(f"pagedrop dlq redrive: {failure}", file=sys.stderr)
    return EXIT_FAILURE if report.failures else EXIT_OK


def _table(rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the last column is left as it is."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)), r[-1]]).rstrip()
        for r in rows
    )


COMMANDS = {"local": _run_local, "worker": _run_worker, "status": _run_status, "dlq": _run_dlq}


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
