"""The worker's health file, its judgement, and the optional HTTP endpoint."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from handler.health import (
    BUSY_GRACE_S,
    HealthReporter,
    HealthServer,
    check_health,
    default_max_age_s,
)
from handler.settings import Settings

MAX_AGE_S = 80.0


def _ready(path: Path | None, clock: float | None = None) -> HealthReporter:
    """A reporter whose engines are loaded, with its clock at ``clock`` (default: now)."""
    reporter = HealthReporter(
        path, worker="w1", clock=(lambda: clock) if clock is not None else time.time
    )
    reporter.engines_ready(["rapidocr", "text-layer"], gpu_required=False, gpu_found=None)
    return reporter


def test_a_ready_worker_that_just_polled_is_healthy(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    _ready(path).polled()
    healthy, reason = check_health(path, MAX_AGE_S)
    assert healthy, reason
    state = json.loads(path.read_text())
    assert state["engines"] == ["rapidocr", "text-layer"]
    assert state["gpu_required"] is False


def test_a_stale_poll_is_unhealthy(tmp_path: Path) -> None:
    # Given a worker whose last successful poll was 10 minutes ago
    path = tmp_path / "health.json"
    _ready(path, clock=time.time() - 600).polled()
    # Then it is unhealthy, and the reason says how old the poll is
    healthy, reason = check_health(path, MAX_AGE_S)
    assert not healthy
    assert "last successful poll" in reason and "600 s ago" in reason


def test_no_poll_yet_is_unhealthy(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    _ready(path)
    assert check_health(path, MAX_AGE_S) == (False, "No successful poll of the queue yet.")


def test_an_engine_that_did_not_load_is_unhealthy_with_its_reason(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    reporter = HealthReporter(path)
    reporter.not_ready("The vlm engine needs a GPU and none was found.")
    reporter.polled()
    healthy, reason = check_health(path, MAX_AGE_S)
    assert not healthy
    assert "needs a GPU" in reason


def test_a_missing_or_broken_file_is_unhealthy(tmp_path: Path) -> None:
    healthy, reason = check_health(tmp_path / "nowhere.json", MAX_AGE_S)
    assert not healthy and "No health file" in reason
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    healthy, reason = check_health(broken, MAX_AGE_S)
    assert not healthy and "cannot be read" in reason


def test_busy_is_healthy_until_the_document_deadline_has_passed(tmp_path: Path) -> None:
    # Given a worker that took up a document with a 60-second limit long ago (no poll since)
    path = tmp_path / "health.json"
    reporter = _ready(path, clock=time.time() - 3600)
    reporter.polled()
    reporter.busy(60)
    # Then it is unhealthy: it is far past the limit and its grace
    healthy, reason = check_health(path, MAX_AGE_S)
    assert not healthy and "past its time limit" in reason
    # While a worker that took one up just now is healthy, though it has not polled since
    now = [time.time() - 2 * MAX_AGE_S]
    fresh = HealthReporter(path, clock=lambda: now[0])
    fresh.engines_ready(["text-layer"], gpu_required=False, gpu_found=None)
    fresh.polled()
    now[0] = time.time()
    fresh.busy(60)
    assert check_health(path, MAX_AGE_S)[0]
    assert json.loads(path.read_text())["busy_until"] > time.time() + BUSY_GRACE_S


def test_a_stopping_worker_stays_unhealthy_whatever_it_still_does(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    reporter = _ready(path)
    reporter.stopping()
    reporter.polled()  # its last long poll comes back
    reporter.busy(60)
    reporter.idle()
    healthy, reason = check_health(path, MAX_AGE_S)
    assert not healthy and "stopping" in reason


def test_a_file_left_by_a_dead_process_is_unhealthy(tmp_path: Path) -> None:
    # Given a health file that a process which has since ended wrote
    path = tmp_path / "health.json"
    _ready(path).polled()
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    state = json.loads(path.read_text())
    state["pid"] = int(ended.stdout)
    path.write_text(json.dumps(state))
    # Then it is unhealthy
    healthy, reason = check_health(path, MAX_AGE_S)
    assert not healthy and "is gone" in reason


def test_the_default_max_age_outlasts_a_long_poll() -> None:
    settings = Settings(receive_wait_s=20)
    assert default_max_age_s(settings) > 20 + 30  # a long poll plus a failed receive's timeout


def test_the_http_endpoint_answers_200_or_503(tmp_path: Path) -> None:
    # Given a ready worker's endpoint on a free port
    reporter = _ready(None)
    server = HealthServer(reporter, "127.0.0.1", 0, MAX_AGE_S).start()
    url = f"http://127.0.0.1:{server.port}"
    try:
        # When it has polled: 200 with the state
        reporter.polled()
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            assert response.status == 200
            body = json.loads(response.read())
        assert body["healthy"] is True and body["engines"] == ["rapidocr", "text-layer"]
        # When it is stopping: 503 with the reason
        reporter.stopping()
        with pytest.raises(urllib.error.HTTPError) as unhealthy:
            urllib.request.urlopen(f"{url}/health", timeout=5)
        assert unhealthy.value.code == 503
        assert "stopping" in json.loads(unhealthy.value.read())["detail"]
        # Any other path: 404
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{url}/other", timeout=5)
        assert missing.value.code == 404
    finally:
        server.stop()
