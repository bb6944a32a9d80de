"""``pagedrop health`` and ``pagedrop worker --check``: what the container runs to judge itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from handler.health import HealthReporter
from handler.settings import Settings
from tests.integration.cli_support import aws_args, run_cli, use_local_credentials

pytestmark = pytest.mark.integration


def test_health_is_0_for_a_worker_that_just_polled_and_1_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the health file a ready worker writes, named by the setting the container has
    path = tmp_path / "health.json"
    monkeypatch.setenv("PAGEDROP_HEALTH_FILE", str(path))
    reporter = HealthReporter(path, worker="w1")
    reporter.engines_ready(["text-layer", "rapidocr"], gpu_required=False, gpu_found=None)
    reporter.polled()
    # When the health command reads it, then it is healthy
    code, out, _ = run_cli(capsys, "health")
    assert (code, out.split(":")[0]) == (0, "healthy")
    # and once the worker says it is stopping, it is not
    reporter.stopping()
    code, out, _ = run_cli(capsys, "health")
    assert code == 1 and out.startswith("unhealthy: ")
    # and a file nobody wrote is unhealthy with the reason
    code, out, _ = run_cli(capsys, "health", "--file", str(tmp_path / "none.json"))
    assert code == 1 and "No health file" in out


def test_worker_check_exits_0_against_a_working_stack_and_1_without_its_table(
    stack_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_local_credentials(monkeypatch)
    queues = ["--queue-url", stack_settings.queue_url, "--dlq-url", stack_settings.dlq_url]
    code, out, _ = run_cli(capsys, "worker", "--check", *aws_args(stack_settings), *queues)
    assert code == 0, out
    assert "engine rapidocr: ok" in out
    args = aws_args(stack_settings)
    args[args.index("--table-name") + 1] = "no-such-table"
    code, out, _ = run_cli(capsys, "worker", "--check", *args, *queues)
    assert code == 1
    assert "status table no-such-table: FAILED: The table does not exist." in out
