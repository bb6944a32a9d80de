"""The soak test's worker processes: ``python -m handler worker``, each logging to its own file.

The fleet keeps ``size`` workers running: a worker that is killed or stopped is replaced at
once by a new process with a new worker id, and a worker that exits on its own is noticed
(and replaced) so the run can report it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

STOP_TIMEOUT_S = 30.0  # a SIGTERMed worker exits within its shutdown grace plus a few calls
# Variables of the calling environment a worker must not see: its settings come from the
# soak's stack only, and its AWS identity is the endpoint's dummy one.
_DROPPED_PREFIXES = ("PAGEDROP_", "AWS_")


def worker_environment(settings_env: Mapping[str, str], region: str) -> dict[str, str]:
    """The calling environment without PAGEDROP_* and AWS_*, plus ``settings_env`` and
    dummy credentials for the local endpoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_PREFIXES)}
    env.update(settings_env)
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": region,
        }
    )
    return env


@dataclass(slots=True)
class WorkerProcess:
    """One worker process and what was done to it."""

    worker_id: str
    log_path: Path
    process: subprocess.Popen[bytes]
    _log: IO[bytes] = field(repr=False)
    signalled: signal.Signals | None = None  # what the soak sent it, if anything
    health_path: Path | None = None  # its own readiness file (PAGEDROP_HEALTH_FILE)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    @property
    def exit_code(self) -> int | None:
        return self.process.poll()


class WorkerFleet:
    """Keeps ``size`` worker processes running on the soak's stack."""

    def __init__(
        self, env: Mapping[str, str], log_dir: Path, size: int, *, name: str, cwd: Path
    ) -> None:
        self._env = dict(env)
        self._log_dir = log_dir
        self._size = size
        self._name = name
        self._cwd = cwd
        self.started: list[WorkerProcess] = []  # every process, in start order
        self.unexpected_exits: list[WorkerProcess] = []

    @property
    def running(self) -> list[WorkerProcess]:
        return [w for w in self.started if w.running and w.signalled is None]

    def by_id(self) -> dict[str, WorkerProcess]:
        return {w.worker_id: w for w in self.started}

    def fill(self) -> None:
        """Start workers until ``size`` are running; note any that exited on their own."""
        for worker in self.started:
            exited = worker.signalled is None and not worker.running
            if exited and worker not in self.unexpected_exits:
                self.unexpected_exits.append(worker)
        while len(self.running) < self._size:
            self._start()

    def disrupt(self, worker: WorkerProcess, sig: signal.Signals) -> None:
        """Send ``sig`` to one worker and start its replacement at once."""
        worker.signalled = sig
        worker.process.send_signal(sig)
        if sig is signal.SIGKILL:
            worker.process.wait()
        self.fill()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM every running worker, wait for them, SIGKILL any still there after that."""
        live = [w for w in self.started if w.running]
        for worker in live:
            if worker.signalled is None:
                worker.signalled = signal.SIGTERM
                worker.process.send_signal(signal.SIGTERM)
        for worker in live:
            try:
                worker.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
        for worker in self.started:
            worker._log.close()

    def _start(self) -> None:
        worker_id = f"{self._name}-w{len(self.started) + 1:02d}"
        log_path = self._log_dir / f"{worker_id}.log"
        # A file per worker: workers sharing one would overwrite each other's readiness.
        health_path = self._log_dir / f"{worker_id}.health.json"
        log = log_path.open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "handler", "worker"],
            env={
                **self._env,
                "PAGEDROP_WORKER_ID": worker_id,
                "PAGEDROP_HEALTH_FILE": str(health_path),
            },
            cwd=self._cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.started.append(
            WorkerProcess(worker_id, log_path, process, log, health_path=health_path)
        )
