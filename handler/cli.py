"""``pagedrop``: the command line. Thin: parse arguments, load settings, call the library."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from handler import __version__

if TYPE_CHECKING:
    from handler.aws import Clients
    from handler.console.documents import DocumentLookup, SourceVersion
    from handler.settings import Settings
    from handler.status.store import StatusStore

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
STATUSES = ["PROCESSING", "SUCCEEDED", "PARTIAL", "FAILED"]
LONG_RUNNING = frozenset({"local", "worker"})  # Ctrl-C is how these are meant to stop


def _aws_options(parser: argparse.ArgumentParser, *, queues: bool = False) -> None:
    aws = parser.add_argument_group("AWS (each defaults to its PAGEDROP_* variable)")
    aws.add_argument("--endpoint-url", help="AWS endpoint (the local one); default: real AWS")
    aws.add_argument("--region", help="AWS region (default: $PAGEDROP_REGION or us-east-1)")
    aws.add_argument("--profile", help="AWS profile for credentials (default: boto3's chain)")
    aws.add_argument("--bucket", help="the bucket (default: $PAGEDROP_BUCKET)")
    aws.add_argument("--table-name", help="the status table (default: $PAGEDROP_TABLE_NAME)")
    if queues:
        aws.add_argument("--queue-url", help="the work queue (default: $PAGEDROP_QUEUE_URL)")
        aws.add_argument("--dlq-url", help="the dead-letter queue (default: $PAGEDROP_DLQ_URL)")


def _follow_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--interval", type=_positive_float, default=2.0, help="seconds between reads (default 2)"
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        help="give up after this many seconds (exit 1); default: wait as long as it takes",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pagedrop",
        description="Turn documents dropped into S3 into markdown and element JSON.",
    )
    parser.add_argument("--version", action="version", version=f"pagedrop {__version__}")
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        help="default: $PAGEDROP_LOG_LEVEL or INFO (WARNING for `local --process`)",
    )
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
    _aws_options(worker, queues=True)
    worker.add_argument(
        "--check",
        action="store_true",
        help="run the start-up self-test (settings, AWS, engines on a built-in page) and exit: "
        "0 when every check passes, 1 otherwise",
    )
    health = commands.add_parser(
        "health",
        help="is the worker on this machine healthy? (what the container's health check runs)",
        description="Read the worker's health file ($PAGEDROP_HEALTH_FILE) and exit 0 when the "
        "worker is ready and polled the queue recently (or is busy within its document time "
        "limit), 1 otherwise, with the reason.",
    )
    health.add_argument(
        "--file", type=Path, help="the health file (default: $PAGEDROP_HEALTH_FILE)"
    )
    health.add_argument(
        "--max-age",
        type=_positive_float,
        metavar="S",
        help="seconds since the last successful poll (default: the receive wait + 60)",
    )
    _submit_parser(commands)
    _status_parser(commands)
    _results_parser(commands)
    _dlq_parser(commands)
    _models_parser(commands)
    return parser


def _submit_parser(commands: Any) -> None:
    submit = commands.add_parser(
        "submit",
        help="upload files and folders for conversion, with a progress bar",
        description="Upload each FILE (a folder: every file under it, hidden ones skipped) to "
        "s3://BUCKET/<input prefix>[PREFIX]<path>, where <path> is the file's name, or its path "
        "relative to the folder given. The options are checked the way the worker checks them "
        "before anything is uploaded, and stored as the objects' metadata. Prints the keys.",
    )
    _aws_options(submit)
    submit.add_argument("files", nargs="+", type=Path, metavar="FILE", help="files or folders")
    submit.add_argument("--prefix", default="", metavar="SUB/", help="under the input prefix")
    submit.add_argument(
        "--engine",
        help="auto, text-layer, rapidocr, or a GPU engine: paddleocr-vl or vlm (pagedrop-engine)",
    )
    submit.add_argument("--pages", help="only these pages, e.g. 1-3,7 (pagedrop-pages)")
    submit.add_argument(
        "--languages", help="languages, e.g. eng,deu (pagedrop-languages; recorded in elements)"
    )
    submit.add_argument(
        "--follow", action="store_true", help="then follow them as `status --follow` does"
    )
    _follow_options(submit)


def _status_parser(commands: Any) -> None:
    status = commands.add_parser(
        "status",
        help="show documents' status as a table; --follow waits until they finish",
        description="Documents by KEY (several at once), by --status (the by-status index, most "
        "recent first) or by --prefix. A key uploaded but not picked up yet shows as QUEUED. "
        "--follow redraws until every document is SUCCEEDED, PARTIAL or FAILED; it exits 0 "
        "when all SUCCEEDED, 1 if any did not or the --timeout passed.",
    )
    _aws_options(status)
    status.add_argument("keys", nargs="*", metavar="KEY", help="source keys, e.g. input/x/a.pdf")
    status.add_argument(
        "--status", choices=STATUSES, help="list documents in this status (most recent first)"
    )
    status.add_argument(
        "--prefix",
        metavar="P",
        help="documents whose key starts with P (e.g. input/reports/); this scans the whole "
        "table with a begins_with(pk) filter, so it reads every item: fine for an operator, "
        "costly on a big table",
    )
    status.add_argument("--limit", type=_positive, default=50, help="at most this many listed")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument("--follow", action="store_true", help="re-read until all are final")
    _follow_options(status)


def _results_parser(commands: Any) -> None:
    results = commands.add_parser(
        "results",
        help="download a finished document's outputs",
        description="Download everything under the document's output prefix to "
        "OUT/<path>/ (its path under the input prefix), checked against manifest.json, and "
        "print the manifest's summary. A document that has not finished is refused (exit 1).",
    )
    _aws_options(results)
    results.add_argument("key", metavar="KEY", help="the source key, e.g. input/x/a.pdf")
    results.add_argument("--out", type=Path, default=Path("pagedrop-out"), help="folder")
    results.add_argument(
        "--only",
        action="append",
        choices=["md", "json", "manifest"],
        help="only document.md, elements.json or manifest.json (repeatable)",
    )


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
        _aws_options(action, queues=True)
        action.add_argument("--limit", type=_positive, default=100, help="at most this many")
    listing.add_argument("--json", action="store_true", help="print JSON")
    redrive.add_argument(
        "--exhausted",
        action="store_true",
        help="also re-queue each FAILED/exhausted document as an S3 event",
    )
    redrive.add_argument("--dry-run", action="store_true", help="print what it would do")


def _models_parser(commands: Any) -> None:
    models = commands.add_parser(
        "models",
        help="download the GPU engines' weights, list them, check they are in place",
        description="The GPU engines load weights only from $PAGEDROP_MODEL_DIR/<model>/ "
        "(or $PAGEDROP_VLM_MODEL_PATH). `download` fetches them from the Hugging Face Hub "
        "(needs the vlm extra and internet: run it while building the image); `check` is what "
        "a start-up script runs. Without NAME: the models the configured engines load.",
    )
    actions = models.add_subparsers(dest="models_action", required=True)
    download = actions.add_parser(
        "download", help="fetch models into the model folder (replaced only once complete)"
    )
    download.add_argument("names", nargs="*", metavar="NAME", help="models (see `models list`)")
    download.add_argument("--revision", help="branch, tag or commit (default: the model's own)")
    actions.add_parser("list", help="every known model, its repository, and whether it is here")
    check = actions.add_parser(
        "check", help="exit 1, with the command to run, when a model is missing or incomplete"
    )
    check.add_argument("names", nargs="*", metavar="NAME", help="models (see `models list`)")
    for action in (download, actions.choices["list"], check):
        action.add_argument(
            "--model-dir", type=Path, help="the model folder (default: $PAGEDROP_MODEL_DIR)"
        )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


AWS_ARGUMENTS = (
    "endpoint_url",
    "region",
    "profile",
    "bucket",
    "table_name",
    "queue_url",
    "dlq_url",
)
SETTING_ARGUMENTS = (*AWS_ARGUMENTS, "model_dir")  # options that override a PAGEDROP_* setting


def _settings(args: argparse.Namespace) -> Settings:
    from handler.settings import Settings

    overrides = {name: value for name in SETTING_ARGUMENTS if (value := getattr(args, name, None))}
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


def _run_worker(args: argparse.Namespace, settings: Settings) -> int:
    from handler.aws import make_clients
    from handler.errors import EngineUnavailable
    from handler.models.s3sync import sync_models_at_start
    from handler.worker.main import run_worker

    if args.check:
        from handler.worker.selfcheck import self_check

        clients = make_clients(settings)
        try:
            sync_models_at_start(settings, clients.s3)  # as the worker does before its engines
        except EngineUnavailable as exc:
            print(f"models: FAILED: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        return EXIT_OK if self_check(settings, clients) else EXIT_FAILURE
    missing = [n for n in ("bucket", "queue_url", "table_name") if not getattr(settings, n)]
    if missing:
        names = ", ".join(f"PAGEDROP_{n.upper()}" for n in missing)
        print(f"pagedrop worker: set {names}", file=sys.stderr)
        return EXIT_USAGE
    try:
        run_worker(settings, make_clients(settings))
    except EngineUnavailable as exc:
        print(f"pagedrop worker: not ready: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _run_health(args: argparse.Namespace, settings: Settings) -> int:
    from handler.health import check_health, default_max_age_s

    healthy, reason = check_health(
        args.file or settings.health_file, args.max_age or default_max_age_s(settings)
    )
    print(f"{'healthy' if healthy else 'unhealthy'}: {reason}")
    return EXIT_OK if healthy else EXIT_FAILURE


def _require(settings: Settings, *names: str) -> None:
    from handler.console.errors import ConsoleError

    if missing := [n for n in names if not getattr(settings, n)]:
        named = " and ".join(f"PAGEDROP_{n.upper()} (or --{n.replace('_', '-')})" for n in missing)
        raise ConsoleError(f"Set {named}.", EXIT_USAGE)


def _store(settings: Settings) -> tuple[Clients, StatusStore]:
    from handler.aws import make_clients
    from handler.status.store import StatusStore

    clients = make_clients(settings)
    store = StatusStore(
        clients.dynamodb,
        settings.table_name,
        lease_s=settings.lease_s,
        retention_days=settings.retention_days,
    )
    return clients, store


def _lookup(settings: Settings) -> DocumentLookup:
    from handler.console.documents import DocumentLookup

    clients, store = _store(settings)
    return DocumentLookup(store, clients.dynamodb, clients.s3, settings.table_name, settings.bucket)


def _follow(
    lookup: DocumentLookup,
    keys: list[str],
    args: argparse.Namespace,
    versions: dict[str, SourceVersion] | None = None,
) -> int:
    from handler.console.follow import follow_and_report

    return follow_and_report(
        lambda: lookup.views(keys, versions),
        interval_s=args.interval,
        timeout_s=args.timeout,
        out=sys.stdout,
        err=sys.stderr,
        as_json=getattr(args, "json", False),
        prog=f"pagedrop {args.command}",
    )


def _run_submit(args: argparse.Namespace, settings: Settings) -> int:
    from handler.aws import make_clients
    from handler.console.submit import document_metadata, plan_uploads, submit

    _require(settings, "bucket")
    metadata = document_metadata(
        settings, engine=args.engine, pages=args.pages, languages=args.languages
    )
    uploads = plan_uploads(args.files, settings, args.prefix)
    versions = submit(
        make_clients(settings).s3, settings, uploads, metadata, out=sys.stdout, err=sys.stderr
    )
    if not args.follow:
        return EXIT_OK
    print()
    return _follow(_lookup(settings), list(versions), args, versions)


def _run_status(args: argparse.Namespace, settings: Settings) -> int:
    from handler.console.documents import NOT_FOUND, status_table
    from handler.console.errors import ConsoleError
    from handler.status.model import Status

    _require(settings, "bucket", "table_name")
    if [bool(args.keys), bool(args.status), args.prefix is not None].count(True) != 1:
        raise ConsoleError("Give KEYs, --status S or --prefix P (one of them).", EXIT_USAGE)
    if args.follow and args.status:
        raise ConsoleError("--follow follows KEYs or a --prefix, not a --status.", EXIT_USAGE)
    lookup = _lookup(settings)
    if args.status:
        views = lookup.by_status(Status(args.status), limit=args.limit)
    elif args.prefix is not None:
        views = lookup.by_prefix(args.prefix, limit=args.limit)
    if args.follow:
        # A --prefix is resolved once: the documents it matched now are the ones followed.
        return _follow(lookup, args.keys or [view.key for view in views], args)
    if args.keys:
        views = lookup.views(args.keys)
    if args.json:
        print(json.dumps([view.as_json() for view in views], indent=2))
    else:
        print(status_table(views) if views else "no documents")
    missing = [view for view in views if view.status == NOT_FOUND]
    for view in missing:
        print(
            f"pagedrop status: no status for s3://{settings.bucket}/{view.key}, and no such "
            "object.",
            file=sys.stderr,
        )
    return EXIT_FAILURE if missing else EXIT_OK


def _run_results(args: argparse.Namespace, settings: Settings) -> int:
    from handler.console.results import download_results, results_report

    _require(settings, "bucket", "table_name")
    clients, store = _store(settings)
    results = download_results(
        clients.s3, store, settings, args.key, args.out, set(args.only or [])
    )
    print(results_report(results))
    return EXIT_OK


def _run_dlq(args: argparse.Namespace, settings: Settings) -> int:
    from handler.aws import make_clients
    from handler.console.dead_letters import show_dead_letters, show_redrive
    from handler.dead_letters import DeadLetters
    from handler.worker.build import status_store

    needed = ["dlq_url", "table_name"] + (["queue_url"] if args.dlq_action == "redrive" else [])
    _require(settings, *needed)
    clients = make_clients(settings)
    letters = DeadLetters(
        clients.sqs,
        status_store(settings, clients),
        queue_url=settings.queue_url,
        dlq_url=settings.dlq_url,
        region=settings.region,
    )
    if args.dlq_action == "list":
        return show_dead_letters(letters, args.limit, as_json=args.json, out=sys.stdout)
    report = letters.redrive(limit=args.limit, exhausted=args.exhausted, dry_run=args.dry_run)
    show_redrive(report, exhausted=args.exhausted, out=sys.stdout, err=sys.stderr)
    return EXIT_FAILURE if report.failures else EXIT_OK


def _run_models(args: argparse.Namespace, settings: Settings) -> int:
    from handler.console.models import check_models, download_models, list_models

    if args.models_action == "download":
        return download_models(args.names, settings, revision=args.revision, out=sys.stdout)
    if args.models_action == "list":
        return list_models(settings, out=sys.stdout)
    return check_models(args.names, settings, out=sys.stdout)


def _problems(exc: ValidationError) -> str:
    """``PAGEDROP_OCR_DPI: Input should be a valid integer; ...``."""
    problems = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        field = "_".join(map(str, error["loc"]))
        problems.append(f"PAGEDROP_{field.upper()}: {message}" if field else message)
    return "; ".join(problems)


COMMANDS = {
    "worker": _run_worker,
    "health": _run_health,
    "submit": _run_submit,
    "status": _run_status,
    "results": _run_results,
    "dlq": _run_dlq,
    "models": _run_models,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from handler.logs import configure

    # A batch run for a person (`local --process`) prints its table, not the worker's lines.
    batch = args.command == "local" and args.process is not None
    configure(args.log_level or ("WARNING" if batch else "INFO"))
    settings = None
    try:
        if args.command == "local":
            return _run_local(args)
        settings = _settings(args)
        if args.log_level is None and settings.log_level != "INFO":
            configure(settings.log_level)
        return COMMANDS[args.command](args, settings)
    except ValidationError as exc:
        print(f"pagedrop {args.command}: invalid settings: {_problems(exc)}.", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK if args.command in LONG_RUNNING else EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`pagedrop status ... | head`): nobody is left to tell. Point
        # stdout at /dev/null so that the flush at exit does not complain either.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except Exception as exc:
        from handler.console.errors import ConsoleError, Target, describe

        sentence = describe(exc, Target.of(settings) if settings else Target())
        if sentence is None:
            raise  # not an AWS or file problem: a bug, and its traceback is what helps
        print(f"pagedrop {args.command}: {sentence}", file=sys.stderr)
        return exc.exit_code if isinstance(exc, ConsoleError) else EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
