"""The embedded AWS endpoint for local runs: moto's server, in this process, on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import boto3

LOCAL_ACCESS_KEY = "testing"
LOCAL_SECRET_KEY = "testing"
LOCAL_HOST = "127.0.0.1"


def local_boto3_session(region: str = "us-east-1") -> boto3.Session:
    """A boto3 session with dummy static credentials, for clients pointed at the endpoint.

    Static credentials keep boto3 from looking at the environment, the shared config files
    or the instance metadata service, so a developer's real AWS identity is never used.
    """
    return boto3.Session(
        aws_access_key_id=LOCAL_ACCESS_KEY,
        aws_secret_access_key=LOCAL_SECRET_KEY,
        region_name=region,
    )


@dataclass
class LocalEndpoint:
    """A running moto server. Stop it with :meth:`stop` or use it as a context manager."""

    host: str
    port: int
    _server: Any = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def client(self, service: str, session: boto3.Session | None = None) -> Any:
        """A boto3 client for ``service`` against this endpoint (dummy credentials by default)."""
        session = session or local_boto3_session()
        return session.client(service, endpoint_url=self.url)  # type: ignore[call-overload]

    def stop(self) -> None:
        """Stop the server; calling it twice is harmless."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> LocalEndpoint:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_endpoint(port: int = 0, *, quiet: bool = True) -> LocalEndpoint:
    """Start moto's server on 127.0.0.1 at ``port`` (0: a free one) and return once it listens.

    ``quiet`` silences the per-request access log (werkzeug's logger, at WARNING) unless the
    application has set that logger's level itself.
    """
    if quiet and logging.getLogger("werkzeug").level == logging.NOTSET:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Imported here: moto is an optional dependency (the ``local`` extra) and heavy to import.
    from moto.server import ThreadedMotoServer

    if port:
        # ThreadedMotoServer.start() waits forever if its thread cannot bind: fail here instead.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # As the server binds (werkzeug sets it too): a port whose old connections are
            # in TIME_WAIT after a restart is free; one another server listens on is not.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((LOCAL_HOST, port))
    # Port 0 goes straight to bind(): the OS picks a free port with no window for a race.
    server = ThreadedMotoServer(ip_address=LOCAL_HOST, port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    return LocalEndpoint(host=host, port=bound, _server=server)
