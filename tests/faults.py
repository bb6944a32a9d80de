"""Injected AWS faults, on the real boto3 clients the worker uses.

botocore emits ``before-send.<service>.<Operation>`` before every HTTP attempt; a hook that
returns an :class:`~botocore.awsrequest.AWSResponse` takes the place of the network call, so
botocore's retry handler, its error parser and the caller see the canned error exactly as if
the service had sent it. ``after-call.s3.GetObject`` lets a test swap a download's body for
one whose connection drops part way; :class:`CuttingProxy` drops a real socket instead.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, cast
from urllib.parse import urlsplit

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.httpsession import URLLib3Session
from botocore.response import StreamingBody
from urllib3.exceptions import ProtocolError

ALWAYS = -1  # ``times``: every attempt fails until the fault is cleared


@dataclass(frozen=True, slots=True)
class Fault:
    """An error response, shaped as the service sends it."""

    status: int
    code: str
    message: str = "injected fault"

    def response(self, request: AWSPreparedRequest, protocol: str) -> AWSResponse:
        headers = {"x-amzn-RequestId": "injected", "x-amz-request-id": "injected"}
        if protocol == "json":  # DynamoDB, SQS
            body = json.dumps({"__type": f"com.amazonaws#{self.code}", "message": self.message})
            headers["Content-Type"] = "application/x-amz-json-1.0"
        elif request.method == "HEAD":
            body = ""  # S3 answers a HEAD without a body; botocore names the error by status
        else:  # S3's rest-xml
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>'
                f"{self.code}</Code><Message>{self.message}</Message>"
                "<RequestId>injected</RequestId></Error>"
            )
            headers["Content-Type"] = "application/xml"
        return _response(request, self.status, headers, body.encode())


@dataclass(frozen=True, slots=True)
class Answer:
    """A successful JSON answer in place of the service's own (e.g. a batch call whose
    entries failed one by one: SQS says 200 and lists them under ``Failed``)."""

    body: dict[str, Any]

    def response(self, request: AWSPreparedRequest, protocol: str) -> AWSResponse:
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "injected"}
        return _response(request, 200, headers, json.dumps(self.body).encode())


# What the services send when they throttle or fail (codes as documented by AWS).
SLOW_DOWN = Fault(503, "SlowDown", "Please reduce your request rate.")
S3_INTERNAL_ERROR = Fault(500, "InternalError", "We encountered an internal error.")
THROUGHPUT_EXCEEDED = Fault(
    400,
    "ProvisionedThroughputExceededException",
    "The level of configured provisioned throughput for the table was exceeded.",
)
DYNAMODB_THROTTLING = Fault(400, "ThrottlingException", "Rate of requests exceeds the limit.")
DYNAMODB_INTERNAL_ERROR = Fault(500, "InternalServerError", "Internal server error")
SQS_THROTTLED = Fault(400, "RequestThrottled", "The request was denied due to throttling.")
SQS_INTERNAL_ERROR = Fault(500, "InternalError", "We encountered an internal error.")


def _response(
    request: AWSPreparedRequest, status: int, headers: dict[str, str], body: bytes
) -> AWSResponse:
    return AWSResponse(request.url, status, HTTPHeaders.from_dict(headers), _Body(body))


class _Body:
    """The ``raw`` an AWSResponse reads its content from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


@dataclass(frozen=True, slots=True)
class Attempt:
    """One HTTP attempt as botocore was about to send it."""

    at: float  # time.monotonic()
    url: str
    headers: dict[str, str]
    faulted: bool


@dataclass(slots=True)
class _Plan:
    fault: Fault | Answer
    remaining: int  # or ALWAYS
    when: Callable[[AWSPreparedRequest], bool] | None
    applied: bool


class FaultInjector:
    """Fails chosen operations of chosen clients and records every attempt of them.

    Operations are named ``"<service>.<Operation>"`` when read back, e.g. ``"s3.GetObject"``.
    Use it as a context manager (or call :meth:`remove`) so the hooks come off the clients.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plans: dict[str, _Plan] = {}
        self._attempts: dict[str, list[Attempt]] = defaultdict(list)
        self._hooks: list[tuple[Any, str, Callable[..., Any]]] = []
        self._watched: set[tuple[int, str]] = set()
        self._drops_left = 0
        self._drop_after = 0
        self.drops = 0  # bodies cut so far
        self._session: URLLib3Session | None = None

    # -- setting faults ----------------------------------------------------------------

    def watch(self, client: Any, *operations: str) -> None:
        """Record every attempt of ``operations`` without failing them."""
        service = client.meta.service_model.service_id.hyphenize()
        protocol = client.meta.service_model.protocol
        for operation in operations:
            if (id(client), operation) in self._watched:
                continue
            self._watched.add((id(client), operation))
            name = f"{service}.{operation}"
            hook = self._before_send_hook(name, protocol)
            client.meta.events.register(f"before-send.{name}", hook)
            self._hooks.append((client, f"before-send.{name}", hook))

    def fail(
        self,
        client: Any,
        operation: str,
        fault: Fault | Answer,
        *,
        times: int = 1,
        when: Callable[[AWSPreparedRequest], bool] | None = None,
        applied: bool = False,
    ) -> None:
        """Answer the next ``times`` attempts of ``operation`` (matching ``when``) with
        ``fault``. ``applied``: the request does reach the endpoint first, only its answer is
        replaced (a write that happened although the caller was told it failed)."""
        self.watch(client, operation)
        service = client.meta.service_model.service_id.hyphenize()
        with self._lock:
            self._plans[f"{service}.{operation}"] = _Plan(fault, times, when, applied)

    def clear(self, name: str | None = None) -> None:
        """Stop failing ``name`` (or everything); attempts are still recorded."""
        with self._lock:
            if name is None:
                self._plans.clear()
                self._drops_left = 0
            else:
                self._plans.pop(name, None)

    def drop_downloads(self, s3: Any, *, after_bytes: int, times: int = 1) -> None:
        """Make the body of the next ``times`` GetObject calls break after ``after_bytes``,
        the way urllib3 reports a connection that drops mid-body."""
        self.watch(s3, "GetObject")
        with self._lock:
            self._drops_left, self._drop_after = times, after_bytes
        if not any(event == "after-call.s3.GetObject" for _, event, _ in self._hooks):
            s3.meta.events.register("after-call.s3.GetObject", self._after_get_object)
            self._hooks.append((s3, "after-call.s3.GetObject", self._after_get_object))

    # -- reading back ------------------------------------------------------------------

    def attempts(self, name: str) -> int:
        with self._lock:
            return len(self._attempts[name])

    def faulted(self, name: str) -> int:
        with self._lock:
            return sum(1 for a in self._attempts[name] if a.faulted)

    def history(self, name: str) -> list[Attempt]:
        with self._lock:
            return list(self._attempts[name])

    # -- lifetime ----------------------------------------------------------------------

    def remove(self) -> None:
        """Take every hook off its client."""
        for client, event, hook in self._hooks:
            client.meta.events.unregister(event, hook)
        self._hooks.clear()
        self._watched.clear()
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> FaultInjector:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    # -- the hooks ---------------------------------------------------------------------

    def _before_send_hook(self, name: str, protocol: str) -> Callable[..., AWSResponse | None]:
        def before_send(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
            with self._lock:
                plan = self._plans.get(name)
                hit = (
                    plan is not None
                    and plan.remaining != 0
                    and (plan.when is None or plan.when(request))
                )
                if plan is not None and hit and plan.remaining > 0:
                    plan.remaining -= 1
                headers = {k: _text(v) for k, v in request.headers.items()}
                self._attempts[name].append(Attempt(time.monotonic(), request.url, headers, hit))
            if not hit or plan is None:
                return None
            if plan.applied:
                self._send_for_real(request)
            return plan.fault.response(request, protocol)

        return before_send

    def _send_for_real(self, request: AWSPreparedRequest) -> None:
        with self._lock:
            if self._session is None:
                self._session = URLLib3Session()
            session = self._session
        response = session.send(request)
        _ = response.content  # read it all, then throw it away

    def _after_get_object(self, parsed: dict[str, Any], **_: Any) -> None:
        with self._lock:
            if self._drops_left == 0 or "Body" not in parsed:
                return
            if self._drops_left > 0:
                self._drops_left -= 1
            self.drops += 1
            after = self._drop_after
        stream = cast(Any, _DroppingStream(parsed["Body"], after))  # file-like enough
        parsed["Body"] = StreamingBody(stream, int(parsed.get("ContentLength", 0)))


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


class _DroppingStream:
    """A response stream that delivers ``after`` bytes, then fails as a broken connection."""

    def __init__(self, inner: StreamingBody, after: int) -> None:
        self._inner = inner
        self._left = after

    def read(self, amt: int | None = None) -> bytes:
        if self._left <= 0:
            self._inner.close()
            # What urllib3 raises when the peer closes the connection mid-body.
            raise ProtocolError("Connection broken: injected drop", ConnectionResetError())
        want = self._left if amt is None else min(amt, self._left)
        data: bytes = self._inner.read(want)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._inner.close()


class CuttingProxy:
    """A TCP proxy in front of the endpoint that closes connections part way through a
    response: the first ``cuts`` connections (or every one, with ``ALWAYS``) are closed once
    ``cut_after`` bytes of the endpoint's answer have passed. Point a client at :attr:`url`.
    """

    def __init__(self, upstream_url: str, *, cut_after: int, cuts: int = 1) -> None:
        parts = urlsplit(upstream_url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._cut_after = cut_after
        self._cuts_left = cuts
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.connections = 0
        self.cut = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._accept, name="cutting-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                _close(sock)

    def __enter__(self) -> CuttingProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(self._upstream)
            with self._lock:
                self.connections += 1
                cut = self._cuts_left != 0
                if self._cuts_left > 0:
                    self._cuts_left -= 1
                self._sockets += [client, upstream]
            limit = self._cut_after if cut else None
            for source, sink, budget in ((client, upstream, None), (upstream, client, limit)):
                threading.Thread(
                    target=self._pump, args=(source, sink, budget), daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, budget: int | None) -> None:
        try:
            while data := source.recv(65536):
                if budget is not None and len(data) >= budget:
                    sink.sendall(data[:budget])
                    with self._lock:
                        self.cut += 1
                    break
                if budget is not None:
                    budget -= len(data)
                sink.sendall(data)
        except OSError:
            pass
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
