"""``pagedrop worker --check``: the worker's start-up self-test, one line per check.

Settings complete; the bucket, the work queue, the dead-letter queue and the status table
each reachable; every engine the settings name loads and reads back a sentence from a
page drawn here (through the temporary folder the worker downloads to, and the same
``open_document`` path a real document takes). Each line says ``ok`` or ``FAILED:`` and one
sentence; an engine with a ``describe()`` (the GPU engines: device, GPU and its memory,
dtype, model folder) adds its description to its line. The result is False when anything
failed.
"""

from __future__ import annotations

import difflib
import functools
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from handler.errors import PagedropError

if TYPE_CHECKING:
    from handler.aws import Clients
    from handler.documents.pages import PageInput
    from handler.engines.base import Engine
    from handler.engines.registry import EngineSet
    from handler.settings import Settings

# The check page: one line of Helvetica, large enough for any OCR engine at its DPI.
CHECK_SENTENCE = "Pagedrop reads this check sentence 4096 times."
CHECK_PAGE_POINTS = (520, 100)  # width, height of the page, PDF points
CHECK_FONT_SIZE = 18
# OCR may drop a space or misread a character; an engine that does not work returns nothing
# or garbage, far below this share of matching characters.
MIN_SIMILARITY = 0.9
REQUIRED_SETTINGS = ("bucket", "queue_url", "dlq_url", "table_name")


class CheckFailed(PagedropError):
    """A check's one-sentence failure."""


def self_check(
    settings: Settings, clients: Clients | None = None, *, out: TextIO | None = None
) -> bool:
    """Run every check, print one line each (to stdout), and return whether all passed."""
    out = out or sys.stdout  # looked up now: a caller may have replaced sys.stdout
    results: list[bool] = []

    def report(name: str, check: Callable[[], str | None]) -> None:
        try:
            detail = check()
        except Exception as exc:
            print(f"{name}: FAILED: {_sentence(exc)}", file=out, flush=True)
            results.append(False)
        else:
            print(f"{name}: ok" + (f" ({detail})" if detail else ""), file=out, flush=True)
            results.append(True)

    report("settings", lambda: _check_settings(settings))
    if clients is None:
        from handler.aws import make_clients

        clients = make_clients(settings)
    aws = clients
    if settings.bucket:
        report(f"bucket s3://{settings.bucket}", lambda: _check_bucket(aws, settings.bucket))
    if settings.queue_url:
        report("work queue", lambda: _check_queue(aws, settings.queue_url))
    if settings.dlq_url:
        report("dead-letter queue", lambda: _check_queue(aws, settings.dlq_url))
    if settings.table_name:
        report(f"status table {settings.table_name}", lambda: _check_table(aws, settings))
    _check_engines(settings, report)
    return all(results)


# -- settings and AWS ------------------------------------------------------------------------


def _check_settings(settings: Settings) -> str:
    # The values themselves were validated when the settings were read; here: completeness.
    missing = [name for name in REQUIRED_SETTINGS if not getattr(settings, name)]
    if missing:
        names = ", ".join(f"PAGEDROP_{name.upper()}" for name in missing)
        raise CheckFailed(f"set {names}")
    where = settings.endpoint_url or f"AWS {settings.region}"
    return f"{where}, engine {settings.engine}, OCR engine {settings.ocr_engine}"


def _check_bucket(clients: Clients, bucket: str) -> None:
    clients.s3.head_bucket(Bucket=bucket)


def _check_queue(clients: Clients, url: str) -> str:
    attributes = clients.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["VisibilityTimeout", "RedrivePolicy"]
    )["Attributes"]
    detail = f"visibility timeout {attributes.get('VisibilityTimeout', '?')} s"
    if "RedrivePolicy" in attributes:
        detail += ", with a dead-letter queue"
    return detail


def _check_table(clients: Clients, settings: Settings) -> str:
    table = clients.dynamodb.describe_table(TableName=settings.table_name)["Table"]
    status = table.get("TableStatus", "?")
    if status not in ("ACTIVE", "UPDATING"):
        raise CheckFailed(f"the table is {status}, not ACTIVE")
    return str(status)


# -- engines -----------------------------------------------------------------------------------


def _check_engines(
    settings: Settings, report: Callable[[str, Callable[[], str | None]], None]
) -> None:
    from handler.engines.registry import AUTO, TEXT_ENGINE, EngineSet

    names = [TEXT_ENGINE, settings.ocr_engine]
    if settings.engine not in (AUTO, *names):
        names.append(settings.engine)
    engines = EngineSet(settings)
    with tempfile.TemporaryDirectory(prefix="pagedrop-check-") as tmp:
        try:
            path = _draw_check_page(Path(tmp) / "check.pdf")
        except Exception as exc:
            for name in names:
                report(f"engine {name}", _raise(CheckFailed(f"no check page: {_sentence(exc)}")))
            return
        for name in names:
            report(
                f"engine {name}", functools.partial(_check_engine, engines, name, path, settings)
            )


def _check_engine(engines: EngineSet, name: str, path: Path, settings: Settings) -> str:
    from handler.health import engine_needs_gpu, gpu_present

    engine = engines.get(name)
    description = _description(engine)
    try:
        if engine_needs_gpu(engine) and not gpu_present():
            raise CheckFailed(f"the {name} engine needs a GPU and none was found")
        detail = _read_check_page(engine, path, settings)
    except Exception as exc:
        if description is None:
            raise
        raise CheckFailed(f"{_sentence(exc).removesuffix('.')} [{description}]") from exc
    return f"{detail}; {description}" if description else detail


def _description(engine: object) -> str | None:
    """What a GPU engine says about itself (``describe()``: device, GPU and its memory, dtype,
    model folder), on one line; None for an engine without ``describe``."""
    describe = getattr(engine, "describe", None)
    if not callable(describe):
        return None
    try:
        text = describe()
    except Exception as exc:  # a description must not hide the check's own result
        return f"no description: {type(exc).__name__}: {exc}"
    return " ".join(str(text).split()) or None


def _read_check_page(engine: Engine, path: Path, settings: Settings) -> str:
    from handler.documents.limits import Limits
    from handler.documents.open import open_document

    limits = Limits(
        max_bytes=settings.max_bytes,
        max_pages=settings.max_pages,
        max_pixels_per_page=settings.max_pixels_per_page,
    )
    started = time.perf_counter()
    with open_document(path, limits, dpi=settings.ocr_dpi, filename=path.name) as document:
        page: PageInput = next(document.pages([1]))
        result = engine.convert(page)
    seconds = time.perf_counter() - started
    if result.error:
        raise CheckFailed(f"the page failed: {result.error}")
    text = " ".join(element.text for element in result.elements)
    similarity = _similarity(text, CHECK_SENTENCE)
    if similarity < MIN_SIMILARITY:
        raise CheckFailed(
            f"it read {text[:80]!r} instead of {CHECK_SENTENCE!r} ({similarity:.0%} alike)"
        )
    return f"read the check page in {seconds:.2f} s"


def _draw_check_page(path: Path) -> Path:
    """A one-page PDF with :data:`CHECK_SENTENCE` as real text, drawn in memory."""
    import pymupdf

    width, height = CHECK_PAGE_POINTS
    with pymupdf.open() as pdf:
        page = pdf.new_page(width=width, height=height)
        page.insert_text(
            (24, height / 2 + CHECK_FONT_SIZE / 3), CHECK_SENTENCE, fontsize=CHECK_FONT_SIZE
        )
        path.write_bytes(pdf.tobytes())
    return path


def _similarity(read: str, expected: str) -> float:
    def normal(text: str) -> str:
        return re.sub(r"[^0-9a-z]", "", text.lower())

    return difflib.SequenceMatcher(None, normal(read), normal(expected)).ratio()


def _raise(exc: Exception) -> Callable[[], str | None]:
    def check() -> str | None:
        raise exc

    return check


# -- one sentence per failure ------------------------------------------------------------------

_AWS_SENTENCES = {
    "404": "the bucket does not exist",  # HEAD answers carry no error code, only the status
    "NoSuchBucket": "the bucket does not exist",
    "403": "access is denied (check the credentials and their policy)",
    "AccessDenied": "access is denied (check the credentials and their policy)",
    "AccessDeniedException": "access is denied (check the credentials and their policy)",
    "AWS.SimpleQueueService.NonExistentQueue": "the queue does not exist",
    "QueueDoesNotExist": "the queue does not exist",
    "ResourceNotFoundException": "the table does not exist",
}


def _sentence(exc: BaseException) -> str:
    """One sentence a person can act on, on one line, ending with a full stop."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        text = (
            _AWS_SENTENCES.get(code)
            or f"{code}: {exc.response.get('Error', {}).get('Message', exc)}"
        )
    elif isinstance(exc, EndpointConnectionError):
        text = f"cannot reach {exc.kwargs.get('endpoint_url', 'the endpoint')}"
    elif isinstance(exc, NoCredentialsError):
        text = "no AWS credentials were found"
    elif isinstance(exc, PagedropError):  # ours: already a sentence for a person
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else f"{text}."
