"""Open a downloaded document: detect its type from the bytes, check the limits before any
heavy work, and hand out its pages lazily (DESIGN §1 steps 5-6, §5).

    with open_document(path, limits, dpi=200, filename="report.pdf") as doc:
        for page in doc.pages():
            pixels = page.render()  # only now is anything drawn or decoded

Checked at open, in this order: file size (``max_bytes``), zero bytes, type (magic
numbers), password, page count (``max_pages``), pixels of every page (``max_pixels_per_page``:
PDF pages at ``dpi``, images at their own size, read from headers without decoding).
Each failure is a :class:`~handler.errors.BadInput` with its category.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Protocol

from handler.documents.detect import DocumentType, detect_file
from handler.documents.images import open_image
from handler.documents.limits import Limits
from handler.documents.messages import check_size
from handler.documents.pages import PageInput
from handler.documents.pdf import open_pdf


class _PageSource(Protocol):
    @property
    def page_count(self) -> int: ...

    def page(self, number: int) -> PageInput: ...

    def close(self) -> None: ...


class Document:
    """An open document. Use it as a context manager, or call :meth:`close`."""

    def __init__(self, doc_type: DocumentType, source: _PageSource) -> None:
        self.type = doc_type
        self._source = source
        self._closed = False

    @property
    def page_count(self) -> int:
        return self._source.page_count

    @property
    def closed(self) -> bool:
        return self._closed

    def pages(self, numbers: Iterable[int] | None = None) -> Iterator[PageInput]:
        """The pages with the given 1-based ``numbers`` (all pages when None), in that order.

        Nothing is rendered here: each ``PageInput.render()`` draws its page when called.
        A number outside ``1..page_count`` raises ``ValueError`` at once (the caller chooses
        pages; it must clip a user's page list first). The PDF page objects belong to this
        document: render them before it is closed.
        """
        if self._closed:
            raise RuntimeError("The document is closed.")
        wanted = list(range(1, self.page_count + 1)) if numbers is None else list(numbers)
        for number in wanted:
            if not 1 <= number <= self.page_count:
                raise ValueError(
                    f"Page {number} does not exist; the document has {self.page_count} pages."
                )
        return self._iter_pages(wanted)

    def _iter_pages(self, numbers: list[int]) -> Iterator[PageInput]:
        for number in numbers:
            if self._closed:
                raise RuntimeError("The document is closed.")
            yield self._source.page(number)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._source.close()

    def __enter__(self) -> Document:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_document(path: Path, limits: Limits, *, dpi: int, filename: str) -> Document:
    """Open ``path`` (a local file) as a document, enforcing ``limits`` first.

    ``dpi`` sets the pixel space of PDF pages; ``filename`` is the name recorded in the
    pages' metadata (the S3 key's last part, not the temporary file's name).
    """
    if dpi <= 0:
        raise ValueError(f"dpi must be positive, not {dpi}")
    path = Path(path)
    size = os.path.getsize(path)
    check_size(size, limits.max_bytes)
    doc_type = detect_file(path)
    source: _PageSource
    if doc_type.is_pdf:
        source = open_pdf(path, limits, dpi=dpi, filename=filename, mime=doc_type.mime)
    else:
        source = open_image(path, doc_type, limits, filename=filename)
    return Document(doc_type, source)
