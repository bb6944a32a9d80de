"""Scale-in protection: idempotent calls, failures that never raise, IMDSv2 and its absence."""

from __future__ import annotations

import http.server
import logging
import socket
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from handler.settings import Settings
from handler.worker import protection
from handler.worker.protection import ScaleInProtection, from_settings, instance_id_from_imds

INSTANCE = "i-0123456789abcdef0"


class FakeAutoScaling:
    def __init__(self, fail_times: int = 0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail_times = fail_times

    def set_instance_protection(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.fail_times:
            self.fail_times -= 1
            raise ConnectionError("throttled (simulated)")
        return {}


def test_protect_and_unprotect_call_only_on_a_change() -> None:
    autoscaling = FakeAutoScaling()
    guard = ScaleInProtection(autoscaling, "fleet", INSTANCE)
    assert guard.protect() and guard.protect()
    assert guard.unprotect() and guard.unprotect()
    assert [c["ProtectedFromScaleIn"] for c in autoscaling.calls] == [True, False]
    assert autoscaling.calls[0] == {
        "InstanceIds": [INSTANCE],
        "AutoScalingGroupName": "fleet",
        "ProtectedFromScaleIn": True,
    }


def test_a_failure_is_a_warning_and_the_next_call_tries_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    autoscaling = FakeAutoScaling(fail_times=1)
    guard = ScaleInProtection(autoscaling, "fleet", INSTANCE)
    with caplog.at_level(logging.WARNING, logger="handler.worker.protection"):
        assert guard.protect() is False
    assert guard.protected is None
    assert "could not protect instance i-0123456789abcdef0 in fleet" in caplog.text
    assert guard.protect() is True and guard.protected is True
    assert len(autoscaling.calls) == 2


class _Imds(http.server.BaseHTTPRequestHandler):
    """IMDSv2 as EC2 serves it: a token from PUT, required by the GET."""

    instance_id = INSTANCE

    def do_PUT(self) -> None:
        if self.path != "/latest/api/token" or not self.headers.get(
            "X-aws-ec2-metadata-token-ttl-seconds"
        ):
            self.send_error(400)
            return
        self._answer(b"TOKEN-1")

    def do_GET(self) -> None:
        if self.headers.get("X-aws-ec2-metadata-token") != "TOKEN-1":
            self.send_error(401)
            return
        if self.path != "/latest/meta-data/instance-id":
            self.send_error(404)
            return
        self._answer(self.instance_id.encode())

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def imds() -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Imds)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _url(server: http.server.HTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_the_instance_id_comes_from_imdsv2(imds: http.server.HTTPServer) -> None:
    assert instance_id_from_imds(1.0, _url(imds)) == INSTANCE


def test_an_answer_that_is_no_instance_id_is_none(
    imds: http.server.HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_Imds, "instance_id", "<html>captive portal</html>")
    assert instance_id_from_imds(1.0, _url(imds)) is None


def test_nothing_listening_is_none_at_once() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    assert instance_id_from_imds(1.0, f"http://127.0.0.1:{port}") is None
    assert time.monotonic() - started < 1.0


def test_a_silent_address_is_none_within_the_timeout() -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        started = time.monotonic()
        assert instance_id_from_imds(0.2, f"http://127.0.0.1:{silent.getsockname()[1]}") is None
        assert time.monotonic() - started < 1.0


def _settings(asg_name: str) -> Any:
    return SimpleNamespace(asg_name=asg_name, profile=None, region="us-east-1", endpoint_url=None)


def test_without_an_asg_name_there_is_no_protection() -> None:
    assert from_settings(_settings(""), None) is None


def test_no_asg_name_means_no_protection() -> None:
    assert from_settings(Settings(asg_name=""), None) is None


def test_an_asg_name_off_ec2_is_a_warning_and_no_protection(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(protection, "instance_id_from_imds", lambda: None)
    with caplog.at_level(logging.WARNING, logger="handler.worker.protection"):
        assert from_settings(_settings("fleet"), None) is None
    assert "without scale-in protection" in caplog.text


def test_the_clients_autoscaling_client_is_used() -> None:
    autoscaling = FakeAutoScaling()
    clients = SimpleNamespace(autoscaling=autoscaling)
    guard = from_settings(_settings("fleet"), clients, instance_id=INSTANCE)  # type: ignore[arg-type]
    assert guard is not None and guard.protect()
    assert autoscaling.calls[0]["AutoScalingGroupName"] == "fleet"
