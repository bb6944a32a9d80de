"""The one engine interface (DESIGN §6) and the data an engine returns.

An engine turns one :class:`~handler.documents.pages.PageInput` into a :class:`PageResult`:
typed elements in reading order, with boxes in the page's pixel space. Engines know nothing
about S3, SQS or DynamoDB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from concurrent.futures import Future

    from handler.documents.pages import PageInput


class ElementType(StrEnum):
    """Element types of DESIGN §3 (the ``unstructured`` names)."""

    TITLE = "Title"
    NARRATIVE_TEXT = "NarrativeText"
    LIST_ITEM = "ListItem"
    TABLE = "Table"
    FORMULA = "Formula"
    IMAGE = "Image"
    FIGURE_CAPTION = "FigureCaption"
    HEADER = "Header"
    FOOTER = "Footer"
    PAGE_NUMBER = "PageNumber"
    UNCATEGORIZED_TEXT = "UncategorizedText"


BBox = tuple[float, float, float, float]  # x0, y0, x1, y1 in page pixels, origin top-left


@dataclass(slots=True)
class Element:
    """One typed piece of a page, as an engine found it."""

    type: ElementType
    text: str
    bbox: BBox
    level: int | None = None  # heading level (1 = top) for titles
    text_as_html: str | None = None  # tables
    prob: float | None = None  # detection / recognition confidence, 0..1


@dataclass(slots=True)
class PageResult:
    """Everything one engine produced for one page."""

    page_number: int  # 1-based
    width: int  # layout size in pixels: the coordinate system of every bbox
    height: int
    engine: str
    elements: list[Element] = field(default_factory=list)
    languages: tuple[str, ...] = ()
    seconds: float = 0.0
    error: str | None = None  # set when the page failed; elements are then empty


class Engine(Protocol):
    """What every engine provides."""

    name: str

    def convert(self, page: PageInput) -> PageResult:
        """Convert one page; raise ``BadInput`` for a bad page, ``TransientError`` for faults."""
        ...


@runtime_checkable
class BatchingEngine(Protocol):
    """An engine that converts pages in batches (the GPU engines).

    ``submit`` is called from the thread that owns the document (PDF pages are not
    thread-safe): it draws what the engine needs from the page there, queues the page for
    the next batch and returns at once. The future is resolved with the page's result, or
    with the error ``convert`` would have raised. The caller keeps up to ``max_in_flight``
    pages submitted, so that the next batch is drawn and preprocessed on the CPU while the
    current one runs on the GPU. ``release_memory`` frees cached device memory between
    documents.
    """

    name: str
    max_in_flight: int

    def convert(self, page: PageInput) -> PageResult: ...

    def submit(self, page: PageInput) -> Future[PageResult]: ...

    def release_memory(self) -> None: ...
