"""Logging set-up: JSON lines through Powertools' formatter, on the root logger.

Library modules log with ``logging.getLogger(__name__)``; entry points call
:func:`configure` once. While a document is being processed, every line carries the
document's ``pk``, ``version`` and ``correlation_id`` (``<pk>@<version>``), whichever module
logged it: :func:`document_context` binds them for the current thread, and a thread that
works for the document (the heartbeat) re-binds what it captured with :func:`bound`
(context variables do not cross threads by themselves). Document content (text, markdown)
never goes into a log line.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TextIO

SERVICE = "pagedrop"
NOISY_LOGGERS = ("botocore", "boto3", "urllib3", "werkzeug", "RapidOCR")


@dataclass(frozen=True, slots=True)
class DocumentLogContext:
    """What identifies one version of one document in the logs."""

    pk: str  # the status item's partition key, ``<bucket>/<key>``
    version: str  # the status item's version token (VersionId, else ETag)

    @property
    def correlation_id(self) -> str:
        return correlation_id(self.pk, self.version)


def correlation_id(pk: str, version: str) -> str:
    """The id that joins a document's log lines to its status item (``pk`` + version)."""
    return f"{pk}@{version}" if version else pk


_document: ContextVar[DocumentLogContext | None] = ContextVar("pagedrop_document", default=None)


def current_document() -> DocumentLogContext | None:
    """The document this thread is working on, to hand to another thread."""
    return _document.get()


@contextmanager
def document_context(pk: str, version: str) -> Iterator[DocumentLogContext]:
    """Every line logged in this block (this thread) carries the document's ids."""
    context = DocumentLogContext(pk, version)
    with bound(context):
        yield context


@contextmanager
def bound(context: DocumentLogContext | None) -> Iterator[None]:
    """Re-bind a captured context in this thread (None binds nothing)."""
    token = _document.set(context)
    try:
        yield
    finally:
        _document.reset(token)


class _DocumentFields(logging.Filter):
    """Adds the bound document's ids (and the logger's name) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.logger = record.name
        context = _document.get()
        if context is not None:
            # A line that names its document itself (``extra={"pk": ...}``) keeps its own.
            if not hasattr(record, "pk"):
                record.pk = context.pk
            if not hasattr(record, "version"):
                record.version = context.version
            if not hasattr(record, "correlation_id"):
                record.correlation_id = context.correlation_id
        return True


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is logged, not when configured
    (a test that captures stderr, or a daemon whose stderr is replaced, keeps working)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure(
    level: str = "INFO", *, json_lines: bool = True, stream: TextIO | None = None
) -> None:
    """Send every logger's lines to ``stream`` (stderr) as JSON lines at ``level``.

    Metrics go to stdout (:mod:`handler.metrics`), so the two never interleave in one line.
    """
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    if json_lines:
        from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

        handler.setFormatter(LambdaPowertoolsFormatter(service=SERVICE))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # On the handler, not a logger: a logger's filters do not see its children's records.
    handler.addFilter(_DocumentFields())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
