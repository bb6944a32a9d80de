"""The local pipeline as a user runs it, for the performance scripts.

- The AWS endpoint (moto's server, the same :func:`handler.local.endpoint.start_endpoint`
  that ``pagedrop local`` uses) runs in a process of its own, so its CPU shows apart from
  the worker's. On AWS that work is done by S3, SQS and DynamoDB, not on the instance.
- The bucket, queues and table come from ``template.yaml`` (:func:`create_local_stack`).
- Workers are real ``python -m handler worker`` processes configured by environment only
  (:class:`handler.local.soak.fleet.WorkerFleet`), each with its own readiness file.

A document's end-to-end time runs from just before its upload to the moment its status
turned final: the worker stamps ``finished_at`` right after the ``manifest.json`` PUT has
returned (``handler/worker/document.py``), so that stamp is when the manifest was present,
to within a few microseconds, with no polling error. The table is polled only to learn
that a document is done.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import handler
from bench import _proc
from handler.aws import Clients, make_clients
from handler.local.endpoint import local_boto3_session
from handler.local.resources import LocalStack, create_local_stack
from handler.local.soak.fleet import WorkerFleet, worker_environment
from handler.storage.keys import output_prefix_for

REPO_ROOT = Path(handler.__file__).resolve().parent.parent
ENDPOINT_START_TIMEOUT_S = 60.0  # importing moto and binding a port: seconds on a busy machine
WORKER_READY_TIMEOUT_S = 180.0  # a worker imports its engines and loads the OCR models first
BATCH_TIMEOUT_S = 1800.0  # a batch of a few hundred pages of OCR on a slow machine
POLL_S = 0.25  # how often the status table is scanned for finished documents
# Worker settings that differ from the defaults: a short long-poll so that workers stop
# quickly at the end (a waiting long poll returns at once when a message arrives anyway, so
# it adds no latency), and no EMF metrics lines in the logs.
BENCH_WORKER_ENV = {"PAGEDROP_RECEIVE_WAIT_S": "1", "PAGEDROP_METRICS_ENABLED": "false"}
_FINAL = frozenset({"SUCCEEDED", "PARTIAL", "FAILED"})

# The child process: start the endpoint, print its port, serve until stdin closes.
_ENDPOINT_SCRIPT = (
    "import sys\n"
    "from handler.local.endpoint import start_endpoint\n"
    "endpoint = start_endpoint(0)\n"
    "print(endpoint.port, flush=True)\n"
    "sys.stdin.read()\n"
    "endpoint.stop()\n"
)


class BenchError(RuntimeError):
    """The local pipeline did not start or did not finish the documents in time."""


@dataclass
class EndpointProcess:
    process: subprocess.Popen[str]
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()  # the child stops its server and exits
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_endpoint_process(log_path: Path) -> EndpointProcess:
    """moto's server in a child process on a free port of 127.0.0.1."""
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", _ENDPOINT_SCRIPT],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    assert process.stdout is not None
    # readline blocks; the child prints its port once it listens, or exits on failure.
    line = process.stdout.readline().strip()
    if not line.isdigit():
        process.kill()
        raise BenchError(f"the endpoint did not start (see {log_path})")
    return EndpointProcess(process, f"http://127.0.0.1:{int(line)}")


@dataclass(frozen=True, slots=True)
class Submitted:
    """One uploaded document."""

    name: str  # the document's label in tables
    key: str
    pk: str  # its status item
    pages: int
    uploaded_at: float  # epoch seconds, just before the upload started


@dataclass(frozen=True, slots=True)
class Finished:
    document: Submitted
    status: str
    finished_at: float  # epoch seconds: the manifest was present
    manifest: dict[str, Any] | None

    @property
    def seconds(self) -> float:
        """Upload to manifest present."""
        return self.finished_at - self.document.uploaded_at

    @property
    def worker_timings(self) -> dict[str, float]:
        return dict((self.manifest or {}).get("timings") or {})


@dataclass
class LocalPipeline:
    """A running endpoint process, a stack of its own and a fleet of worker processes."""

    endpoint: EndpointProcess
    stack: LocalStack
    clients: Clients
    worker_env: dict[str, str]  # every worker's environment: the stack's settings
    log_dir: Path
    fleets: int  # fleets started so far: each one's worker ids are new
    fleet: WorkerFleet | None = None
    _uploads: int = field(default=0, repr=False)

    @property
    def worker_pids(self) -> list[int]:
        return [w.process.pid for w in self.fleet.running] if self.fleet else []

    def start_workers(self, workers: int) -> None:
        """Stop the running workers, if any, and start ``workers`` fresh ready processes."""
        if self.fleet is not None:
            self.fleet.stop()
        self.fleets += 1
        name = f"{self.stack.bucket}-f{self.fleets}"
        self.fleet = WorkerFleet(self.worker_env, self.log_dir, workers, name=name, cwd=REPO_ROOT)
        self.fleet.fill()
        wait_ready(self.fleet)

    def submit(self, documents: Sequence[tuple[str, Path, int]], folder: str) -> list[Submitted]:
        """Upload ``(name, path, pages)`` documents one after another under ``folder``."""
        submitted = []
        for name, path, pages in documents:
            self._uploads += 1
            key = f"{self.stack.input_prefix}{folder}/{self._uploads:05d}-{path.name}"
            body = path.read_bytes()
            started = time.time()
            self.clients.s3.put_object(Bucket=self.stack.bucket, Key=key, Body=body)
            submitted.append(Submitted(name, key, f"{self.stack.bucket}/{key}", pages, started))
        return submitted

    def wait(self, submitted: Sequence[Submitted], timeout_s: float) -> list[Finished]:
        """Wait until every document is final; its manifest is read when it succeeded."""
        pending = {s.pk: s for s in submitted}
        done: dict[str, Finished] = {}
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise BenchError(
                    f"{len(pending)} document(s) not final after {timeout_s:.0f} s "
                    f"(worker logs in {self.log_dir})"
                )
            self._check_workers()
            for pk, item in self._final_items(set(pending)).items():
                document = pending.pop(pk)
                done[pk] = Finished(
                    document,
                    item["status"],
                    _epoch(item.get("finished_at") or item.get("updated_at")),
                    self._manifest(document) if item["status"] != "FAILED" else None,
                )
            if pending:
                time.sleep(POLL_S)
        return [done[s.pk] for s in submitted]

    def run(
        self,
        documents: Sequence[tuple[str, Path, int]],
        folder: str,
        timeout_s: float = BATCH_TIMEOUT_S,
    ) -> list[Finished]:
        return self.wait(self.submit(documents, folder), timeout_s)

    def measure(
        self, documents: Sequence[tuple[str, Path, int]], folder: str
    ) -> tuple[float, list[Finished], dict[str, float]]:
        """One batch: (first upload to last manifest, s; per document; CPU shares).

        The CPU shares cover the window from just before the first upload to when the
        last document was seen final: ``workers`` (all worker processes together),
        ``endpoint``, ``bench`` (this process: uploads and polling) and ``machine``.
        """
        workers = self.worker_pids
        pids = {"endpoint": self.endpoint.pid, "bench": os.getpid()}
        pids.update({f"worker {n}": pid for n, pid in enumerate(workers, 1)})
        start = _proc.snapshot(pids, time.monotonic())
        finished = self.run(documents, folder)
        end = _proc.snapshot(pids, time.monotonic())
        failed = [f.document.name for f in finished if f.status != "SUCCEEDED"]
        if failed:
            raise BenchError(f"not SUCCEEDED: {failed} (logs in {self.log_dir})")
        first = min(f.document.uploaded_at for f in finished)
        seconds = max(f.finished_at for f in finished) - first
        shares = _proc.utilisation(start, end, _proc.cores())
        shares["workers"] = sum(v for k, v in shares.items() if k.startswith("worker "))
        return seconds, finished, shares

    def _final_items(self, wanted: set[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        request: dict[str, Any] = {
            "TableName": self.stack.table_name,
            "ProjectionExpression": "pk, #s, finished_at, updated_at",
            "ExpressionAttributeNames": {"#s": "status"},
        }
        while True:
            page = self.clients.dynamodb.scan(**request)
            for raw in page.get("Items", []):
                pk = raw["pk"]["S"]
                status = raw.get("status", {}).get("S", "")
                if pk in wanted and status in _FINAL:
                    found[pk] = {k: v.get("S") for k, v in raw.items()}
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _manifest(self, document: Submitted) -> dict[str, Any]:
        prefix = output_prefix_for(document.key, self.stack.input_prefix, self.stack.output_prefix)
        body = self.clients.s3.get_object(Bucket=self.stack.bucket, Key=f"{prefix}manifest.json")
        return dict(json.loads(body["Body"].read()))

    def _check_workers(self) -> None:
        started = self.fleet.started if self.fleet else []
        gone = [w for w in started if w.signalled is None and not w.running]
        if gone:
            names = ", ".join(f"{w.worker_id} (exit {w.exit_code}, log {w.log_path})" for w in gone)
            raise BenchError(f"worker(s) exited: {names}")


def _epoch(stamp: str | None) -> float:
    if not stamp:
        return time.time()
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def wait_ready(fleet: WorkerFleet, timeout_s: float = WORKER_READY_TIMEOUT_S) -> None:
    """Wait until every running worker has loaded its engines and polled the queue once."""
    deadline = time.monotonic() + timeout_s
    for worker in fleet.running:
        while True:
            state = _health(worker.health_path)
            if state.get("ready") and state.get("last_poll_at"):
                break
            if not worker.running or state.get("state") == "not_ready":
                raise BenchError(f"{worker.worker_id} did not start: see {worker.log_path}")
            if time.monotonic() > deadline:
                raise BenchError(f"{worker.worker_id} not ready after {timeout_s:.0f} s")
            time.sleep(0.2)


def _health(path: Path | None) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text())) if path else {}
    except (OSError, ValueError):
        return {}


@contextmanager
def local_pipeline(
    workers: int = 1,
    *,
    worker_env: Mapping[str, str] | None = None,
    log_dir: Path | None = None,
) -> Iterator[LocalPipeline]:
    """Start the endpoint process, a fresh stack and ``workers`` ready worker processes
    (none: the caller starts them with :meth:`LocalPipeline.start_workers`)."""
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="pagedrop-bench-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as cleanup:
        endpoint = start_endpoint_process(log_dir / "endpoint.log")
        cleanup.callback(endpoint.stop)
        session = local_boto3_session()
        raw = [
            session.client(name, endpoint_url=endpoint.url)  # type: ignore[call-overload]
            for name in ("s3", "sqs", "dynamodb")
        ]
        name = f"pagedrop-bench-{uuid.uuid4().hex[:8]}"
        stack = create_local_stack(*raw, bucket=name, prefix=name)
        settings = stack.settings(endpoint_url=endpoint.url)
        env = worker_environment(
            {**stack.settings_env(), **BENCH_WORKER_ENV, **dict(worker_env or {})}, stack.region
        )
        pipeline = LocalPipeline(
            endpoint, stack, make_clients(settings, session), env, log_dir, fleets=0
        )
        cleanup.callback(lambda: pipeline.fleet.stop() if pipeline.fleet else None)
        if workers:
            pipeline.start_workers(workers)
        yield pipeline
