"""The soak test: small documents through worker processes that are killed along the way.

:func:`run_soak` starts the embedded endpoint (or uses the caller's), creates a stack of
its own from template.yaml, starts ``workers`` processes of ``python -m handler worker``
with short queue and lease timings, uploads the documents from several threads, and while
they are converted SIGKILLs (and SIGTERMs) workers at random moments, preferring one that
holds a document, and starts a replacement each time. When every document is final (or the
timeout passes) it checks the end state (:mod:`handler.local.soak.checks`) and returns a
:class:`SoakReport`; :func:`format_summary` prints it.
"""

from __future__ import annotations

import random
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import handler
from handler.aws import Clients, make_clients
from handler.local.endpoint import LocalEndpoint, local_boto3_session, start_endpoint
from handler.local.resources import LocalStack, create_local_stack
from handler.local.soak.checks import (
    Check,
    ExpectedDocument,
    audit_outputs,
    check_statuses,
    output_checks,
    queue_counts,
    scan_table,
    wait_queues_empty,
)
from handler.local.soak.corpus import DocumentKind, SoakDocument, make_corpus
from handler.local.soak.disrupt import DisruptionPlan, Disruptions, lease_holders
from handler.local.soak.fleet import WorkerFleet, worker_environment
from handler.local.soak.report import SoakConfig, SoakReport
from handler.local.soak.worker_logs import LogSummary, summarize
from handler.status.model import FINAL_STATUSES
from handler.storage.keys import output_prefix_for

# Short timings so that a killed worker's document comes back within seconds, not minutes.
SOAK_TIMINGS = {
    "PAGEDROP_VISIBILITY_TIMEOUT_S": "10",
    "PAGEDROP_LEASE_S": "10",
    "PAGEDROP_HEARTBEAT_INTERVAL_S": "2",
    "PAGEDROP_RECEIVE_WAIT_S": "1",
    "PAGEDROP_RETRY_DELAY_S": "1",
}
POLL_S = 1.0  # how often the table is scanned while documents are converted
PROGRESS_EVERY_S = 10.0
_FINAL = frozenset(s.value for s in FINAL_STATUSES)
_REPO_ROOT = Path(handler.__file__).resolve().parent.parent  # `python -m handler` runs here

Progress = Callable[[str], None]


def run_soak(
    config: SoakConfig,
    *,
    endpoint: LocalEndpoint | None = None,
    progress: Progress | None = None,
) -> SoakReport:
    """Run the soak test; the endpoint is started here unless one is given."""
    started = time.monotonic()
    rng = random.Random(config.seed)
    corpus = make_corpus(config.documents, rng, scan_share=config.scan_share)
    log_dir = config.log_dir or Path(tempfile.mkdtemp(prefix="pagedrop-soak-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _: None)
    with ExitStack() as cleanup:
        endpoint = endpoint or cleanup.enter_context(start_endpoint())
        name = f"pagedrop-soak-{uuid.uuid4().hex[:8]}"  # moto's state is shared: unique names
        session = local_boto3_session()
        raw = [endpoint.client(service, session) for service in ("s3", "sqs", "dynamodb")]
        stack = create_local_stack(*raw, bucket=name, prefix=name)
        settings = stack.settings(endpoint_url=endpoint.url)
        clients = make_clients(settings, session)
        settings_env = {**stack.settings_env(), **SOAK_TIMINGS, **dict(config.worker_env)}
        env = worker_environment(settings_env, stack.region)
        fleet = WorkerFleet(env, log_dir, config.workers, name=name, cwd=_REPO_ROOT)
        cleanup.callback(fleet.stop)
        # No dead-letter function runs: the DLQ must stay empty, and what lands there stays.
        fleet.fill()
        expected = _expected(stack, corpus)
        say(f"{name}: {len(corpus)} documents, {config.workers} workers, logs in {log_dir}")
        upload_started = time.monotonic()
        _upload(clients.s3, stack.bucket, stack.input_prefix, corpus, config.upload_threads)
        items, disruptions = _drive(config, rng, fleet, clients, stack, expected, say)
        processing_s = time.monotonic() - upload_started
        final = sum(1 for pk in expected if items.get(pk, {}).get("status") in _FINAL)
        checks = [
            Check(
                "every document final within the timeout",
                final == len(expected),
                f"{final}/{len(expected)} in {processing_s:.1f} s",
            )
        ]
        say(f"{final}/{len(expected)} final; waiting for the queues to settle")
        queues = {"work queue": stack.queue_url, "dead-letter queue": stack.dlq_url}
        checks += wait_queues_empty(clients.sqs, queues, config.settle_s)
        fleet.stop()
        items = scan_table(clients.dynamodb, stack.table_name)
        checks += check_statuses(expected, items)
        say("auditing the outputs")
        audit = audit_outputs(clients.s3, stack.bucket, stack.output_prefix, expected, items)
        checks += output_checks(audit, items)
        logs = summarize(worker.log_path for worker in fleet.started)
        checks += _log_checks(logs) + _fleet_checks(fleet)
    attempts = [int(items.get(pk, {}).get("attempt", 1)) for pk in expected]
    return SoakReport(
        config=config,
        documents=len(corpus),
        pages=sum(doc.pages for doc in corpus),
        scans=sum(1 for doc in corpus if doc.kind is DocumentKind.SCAN),
        processes_started=len(fleet.started),
        disruptions=disruptions,
        retried_documents=sum(1 for a in attempts if a > 1),
        extra_attempts=sum(a - 1 for a in attempts if a > 1),
        suppressed=logs.suppressed,
        outcomes=dict(logs.outcomes.most_common()),
        resumed_pages=audit.resumed_pages,
        processing_s=processing_s,
        wall_s=time.monotonic() - started,
        log_dir=log_dir,
        checks=checks,
    )


def _expected(stack: LocalStack, corpus: list[SoakDocument]) -> dict[str, ExpectedDocument]:
    """What each uploaded document should end as, by its status item's ``pk``."""
    expected = {}
    for doc in corpus:
        key = stack.input_prefix + doc.relative
        prefix = output_prefix_for(key, stack.input_prefix, stack.output_prefix)
        expected[f"{stack.bucket}/{key}"] = ExpectedDocument(key, prefix, doc.pages)
    return expected


def _upload(
    s3: Any, bucket: str, input_prefix: str, corpus: list[SoakDocument], threads: int
) -> None:
    def put(doc: SoakDocument) -> None:
        s3.put_object(Bucket=bucket, Key=input_prefix + doc.relative, Body=doc.data)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(put, corpus))


def _drive(
    config: SoakConfig,
    rng: random.Random,
    fleet: WorkerFleet,
    clients: Clients,
    stack: LocalStack,
    expected: Mapping[str, ExpectedDocument],
    say: Progress,
) -> tuple[dict[str, dict[str, Any]], Disruptions]:
    """Disrupt workers at random moments until every document is final or time runs out.

    A document whose message reached the dead-letter queue cannot finish (no dead-letter
    function runs here), so the wait also ends when final documents and dead letters
    together account for every document.
    """
    start = time.monotonic()
    plan = DisruptionPlan(
        config.kills, config.stops, rng, every_s=config.disrupt_every_s, start=start
    )
    last_said = start
    while True:
        items = scan_table(clients.dynamodb, stack.table_name)
        final = sum(1 for pk in expected if items.get(pk, {}).get("status") in _FINAL)
        dead = sum(queue_counts(clients.sqs, stack.dlq_url).values())
        now = time.monotonic()
        if final + dead >= len(expected) or now - start >= config.timeout_s:
            return items, plan.done
        fleet.fill()
        if plan.due(now, final / len(expected)):
            _disrupt(plan, rng, fleet, clients, stack, say)
        if now - last_said >= PROGRESS_EVERY_S:
            last_said = now
            say(
                f"[{now - start:5.0f} s] {final}/{len(expected)} final, {dead} dead letters; "
                f"kills {plan.done.kills}/{config.kills}, stops {plan.done.stops}/{config.stops}"
            )
        time.sleep(POLL_S)


def _disrupt(
    plan: DisruptionPlan,
    rng: random.Random,
    fleet: WorkerFleet,
    clients: Clients,
    stack: LocalStack,
    say: Progress,
) -> None:
    # A fresh scan: who holds a document now, not up to a poll ago (documents take ~0.3 s).
    items = scan_table(clients.dynamodb, stack.table_name)
    holders = lease_holders(items, fleet.running, time.time())
    mid_document = plan.choose(time.monotonic(), holders)
    if mid_document is None:
        return
    victim = rng.choice(holders if mid_document else fleet.running)
    sig = plan.take(time.monotonic(), mid_document)
    fleet.disrupt(victim, sig)
    say(f"{sig.name} {victim.worker_id} ({'mid-document' if mid_document else 'any worker'})")


def _log_checks(logs: LogSummary) -> list[Check]:
    twice = sorted(pk for pk, n in logs.completions.items() if n > 1)
    return [
        Check(
            "no document completed twice (worker logs)",
            not twice,
            f"{sum(logs.completions.values())} completions logged for "
            f"{len(logs.completions)} documents" + (f"; twice: {twice[:3]}" if twice else ""),
        ),
        Check(
            "no ERROR line in the worker logs",
            not logs.errors,
            f"{len(logs.errors)} error line(s)" + (f": {logs.errors[:3]}" if logs.errors else ""),
        ),
    ]


def _fleet_checks(fleet: WorkerFleet) -> list[Check]:
    stopped = [w for w in fleet.started if w.signalled is signal.SIGTERM]
    unclean = [f"{w.worker_id} exit {w.exit_code}" for w in stopped if w.exit_code != 0]
    return [
        Check(
            "every SIGTERMed worker exited 0",
            not unclean,
            f"{len(stopped) - len(unclean)}/{len(stopped)}" + (f": {unclean}" if unclean else ""),
        ),
        Check(
            "no worker exited unasked",
            not fleet.unexpected_exits,
            f"{len(fleet.unexpected_exits)} exited"
            + "".join(f"; {w.worker_id} exit {w.exit_code}" for w in fleet.unexpected_exits),
        ),
    ]
