"""Running ``pagedrop`` commands in the test process against a test's stack."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from handler.aws import Clients
from handler.cli import main
from handler.settings import Settings
from tests.conftest import LOCAL_AWS_ENV


def aws_args(settings: Settings) -> list[str]:
    """The AWS options that point a command at the stack of ``settings``."""
    return [
        "--endpoint-url",
        str(settings.endpoint_url),
        "--bucket",
        settings.bucket,
        "--table-name",
        settings.table_name,
    ]


def use_local_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dummy credentials a person exports for the local endpoint."""
    for name, value in LOCAL_AWS_ENV.items():
        monkeypatch.setenv(name, value)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``pagedrop ARGV``: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main(["--log-level", "WARNING", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@contextmanager
def running_worker(settings: Settings, clients: Clients) -> Iterator[None]:
    """A real worker on the stack's queue, in a thread, for as long as the block runs."""
    from handler.worker.build import build_worker

    worker = build_worker(settings, clients)
    thread = threading.Thread(target=worker.run, name="test-worker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        worker.stop()
        thread.join(timeout=30)


def table_rows(out: str) -> dict[str, list[str]]:
    """The rows of the status table(s) in ``out`` by key, the last one of each key winning
    (``--follow`` prints a row again when it changes). Cells are split on two spaces."""
    rows: dict[str, list[str]] = {}
    for line in out.splitlines():
        cells = [cell.strip() for cell in re.split(r"\s{2,}", line.strip())]
        if len(cells) >= 5 and cells[1] in STATUS_WORDS:
            rows[cells[0]] = cells
    return rows


STATUS_WORDS = frozenset({"PROCESSING", "SUCCEEDED", "PARTIAL", "FAILED", "QUEUED", "NOT FOUND"})
