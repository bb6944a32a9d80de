"""The worker's readiness: a small JSON file (and optionally GET /health) that the Docker
health check reads through ``pagedrop health``.

The worker writes the file atomically at start (engines loaded or not, GPU present when an
engine needs one), on every successful poll, when it takes up a document and when it stops.
A reader judges it with :func:`evaluate`: healthy means ready, and either polling (the last
successful poll within ``max_age_s``) or busy with a document that is still within its time
limit. A page stuck in an engine is therefore noticed at the document's deadline plus
:data:`BUSY_GRACE_S`, not before: one page may legitimately take minutes on a slow engine.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from handler.settings import Settings

log = logging.getLogger(__name__)

# A poll ends within receive_wait_s; one failed receive can add a read timeout (30 s,
# handler/aws.py) and a backoff before the next success. Seconds.
POLL_MARGIN_S = 60
# Past a document's deadline (checked between pages): the last page, the outputs, the
# final write. Seconds.
BUSY_GRACE_S = 120
# Device nodes and driver folder present when an NVIDIA GPU is usable here (in a container
# only with ``--gpus``); checked without importing any GPU library.
NVIDIA_DEVICE = Path("/dev/nvidia0")
NVIDIA_DRIVER_GPUS = Path("/proc/driver/nvidia/gpus")

STARTING, IDLE, BUSY, STOPPING, STOPPED, NOT_READY = (
    "starting",
    "idle",
    "busy",
    "stopping",
    "stopped",
    "not_ready",
)
_FINAL_STATES = frozenset({STOPPING, STOPPED, NOT_READY})
_WORK_STATES = frozenset({IDLE, BUSY})


def default_max_age_s(settings: Settings) -> float:
    """How old the last successful poll may be: one long poll plus a margin."""
    return settings.receive_wait_s + POLL_MARGIN_S


def gpu_present() -> bool:
    """Whether an NVIDIA GPU is visible to this process."""
    if NVIDIA_DEVICE.exists():
        return True
    try:
        return any(NVIDIA_DRIVER_GPUS.iterdir())
    except OSError:
        return False


def engine_needs_gpu(engine: object) -> bool:
    """The hook a GPU engine sets (``needs_gpu = True``); CPU engines need not say anything."""
    return bool(getattr(engine, "needs_gpu", False))


class HealthReporter:
    """Holds the worker's readiness and writes it to ``path`` (None: keep it in memory)."""

    def __init__(
        self, path: Path | None, *, worker: str = "", clock: Callable[[], float] = time.time
    ) -> None:
        self._path = path
        self._clock = clock
        # Re-entrant: a signal handler may report while the main thread is mid-update.
        self._lock = threading.RLock()
        self._state: dict[str, Any] = {
            "state": STARTING,
            "ready": False,
            "reason": "starting",
            "worker": worker,
            "pid": os.getpid(),
            "engines": [],
            "gpu_required": False,
            "gpu_present": None,
            "last_poll_at": None,
            "busy_until": None,
            "started_at": clock(),
            "updated_at": None,
        }

    @property
    def path(self) -> Path | None:
        return self._path

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._state)

    def check(self, max_age_s: float) -> tuple[bool, str]:
        """The same judgement as :func:`check_health`, on the state in memory."""
        return evaluate(self.snapshot(), self._clock(), max_age_s)

    # -- transitions (each writes the file) -----------------------------------------------

    def engines_ready(
        self, engines: Iterable[str], *, gpu_required: bool, gpu_found: bool | None
    ) -> None:
        self._update(
            state=IDLE,
            ready=True,
            reason="engines loaded",
            engines=sorted(engines),
            gpu_required=gpu_required,
            gpu_present=gpu_found,
        )

    def not_ready(self, reason: str) -> None:
        self._update(state=NOT_READY, ready=False, reason=reason)

    def polled(self) -> None:
        """A receive succeeded (with or without messages)."""
        self._update(last_poll_at=self._clock())

    def busy(self, seconds: float) -> None:
        """A document is taken up; it must be done within ``seconds``."""
        self._update(state=BUSY, busy_until=self._clock() + seconds + BUSY_GRACE_S)

    def idle(self) -> None:
        self._update(state=IDLE, busy_until=None)

    def stopping(self) -> None:
        self._update(state=STOPPING, ready=False, reason="stopping")

    def stopped(self) -> None:
        self._update(state=STOPPED, ready=False, reason="stopped")

    def _update(self, **changes: Any) -> None:
        with self._lock:
            # A worker that is stopping (or never got ready) stays so, whatever it still does.
            if self._state["state"] in _FINAL_STATES and changes.get("state") in _WORK_STATES:
                del changes["state"]
            self._state.update(changes, updated_at=self._clock())
            state = dict(self._state)
        if self._path is not None:
            _write_atomically(self._path, state)


def _write_atomically(path: Path, state: Mapping[str, Any]) -> None:
    """Write then rename: a reader sees the old file or the new one, never half of one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(state, sort_keys=True))
        os.replace(temporary, path)
    except OSError as exc:  # the file then goes stale and the check says so
        log.warning("could not write the health file %s: %s", path, exc)


# -- judging ---------------------------------------------------------------------------------


def evaluate(state: Mapping[str, Any], now: float, max_age_s: float) -> tuple[bool, str]:
    """(healthy, one sentence why) for a health state as the worker wrote it."""
    if not state.get("ready"):
        return False, f"The worker is not ready: {state.get('reason') or 'no reason given'}."
    pid = state.get("pid")
    if isinstance(pid, int) and not _process_exists(pid):
        return False, f"The worker process {pid} is gone."
    if state.get("state") == BUSY:
        until = float(state.get("busy_until") or 0)
        if now <= until:
            return True, "Busy with a document, within its time limit."
        return False, f"Busy with one document for {now - until:.0f} s past its time limit."
    last_poll = state.get("last_poll_at")
    if last_poll is None:
        return False, "No successful poll of the queue yet."
    age = now - float(last_poll)
    if age > max_age_s:
        return False, (
            f"The last successful poll of the queue was {age:.0f} s ago "
            f"(more than {max_age_s:g} s)."
        )
    return True, f"Polling; the last successful poll was {age:.0f} s ago."


def check_health(path: Path, max_age_s: float) -> tuple[bool, str]:
    """Judge the health file at ``path`` (what ``pagedrop health`` and Docker's check run)."""
    try:
        state = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return False, f"No health file at {path}: the worker has not started (or writes elsewhere)."
    except (OSError, ValueError) as exc:
        return False, f"The health file {path} cannot be read: {exc}."
    if not isinstance(state, dict):
        return False, f"The health file {path} does not hold a health state."
    return evaluate(state, time.time(), max_age_s)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


# -- the optional HTTP endpoint ------------------------------------------------------------


class HealthServer:
    """GET /health on ``host:port`` in a daemon thread: 200 or 503, the state as JSON."""

    def __init__(self, reporter: HealthReporter, host: str, port: int, max_age_s: float) -> None:
        def answer() -> tuple[int, bytes]:
            healthy, reason = reporter.check(max_age_s)
            body = {**reporter.snapshot(), "healthy": healthy, "detail": reason}
            return (200 if healthy else 503), json.dumps(body, sort_keys=True).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/health":
                    self.send_error(404)
                    return
                status, body = answer()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("health endpoint: " + format, *args)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever, which must run
            self._server.shutdown()
        self._server.server_close()
