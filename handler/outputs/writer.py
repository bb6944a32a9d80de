"""Writing a document's outputs under its output prefix (DESIGN §2).

Per-page files are written as pages complete and double as the resume checkpoint: a page
counts as done when its ``pages/NNNN.json`` exists with the source version in its metadata
(the JSON is written after the markdown). Pages may be written from several threads at once
(handler/worker/checkpoints.py). ``manifest.json`` is written last.

The final outputs (``document.md``, ``elements.json``, ``manifest.json``) are written with
:meth:`ObjectStore.put_fenced`: only by the holder of the lease, and never over a write made
after its fence passed. Page files are written after the caller's fence (the conditional
progress write) only.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from handler.outputs.document import assemble_document
from handler.outputs.page import PageOutput
from handler.storage.keys import page_key
from handler.storage.objects import ObjectStore, StoredObject

MARKDOWN_TYPE = "text/markdown; charset=utf-8"
JSON_TYPE = "application/json"
META_VERSION = "pagedrop-source-version"
META_ENGINE = "pagedrop-engine"
META_SECONDS = "pagedrop-seconds"


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2).encode("utf-8")


class OutputWriter:
    """The outputs of one source version."""

    def __init__(
        self,
        objects: ObjectStore,
        prefix: str,
        version: str,
        fence: Callable[[], None] = lambda: None,
    ) -> None:
        self._objects = objects
        self.prefix = prefix
        self._version = version
        # Raises when this worker no longer holds the document (handler.errors.LeaseLost).
        self._fence = fence
        self.written: dict[str, StoredObject] = {}
        self._lock = threading.Lock()  # ``written`` is filled from several threads

    def load_checkpoints(self) -> dict[int, PageOutput]:
        """Pages of this source version that an earlier attempt finished."""
        done: dict[int, PageOutput] = {}
        for key in self._objects.list_keys(f"{self.prefix}pages/"):
            if not key.endswith(".json"):
                continue
            page = self._read_checkpoint(key)
            if page is not None:
                done[page.page_number] = page
        return done

    def _read_checkpoint(self, json_key: str) -> PageOutput | None:
        found = self._objects.get(json_key)
        if found is None:
            return None
        data, metadata = found
        if metadata.get(META_VERSION) != self._version:
            return None  # an older version's page: convert again
        try:
            number = int(json_key.rsplit("/", 1)[-1].removesuffix(".json"))
            elements = json.loads(data)
        except ValueError:
            return None
        md_key = json_key.removesuffix(".json") + ".md"
        markdown = self._objects.get(md_key)
        if markdown is None:
            return None
        self.written[json_key] = StoredObject.of(json_key, data)
        self.written[md_key] = StoredObject.of(md_key, markdown[0])
        return PageOutput(
            page_number=number,
            markdown=markdown[0].decode("utf-8"),
            elements=elements,
            engine=metadata.get(META_ENGINE, ""),
            seconds=float(metadata.get(META_SECONDS, 0) or 0),
            resumed=True,
        )

    def write_page(self, page: PageOutput) -> None:
        """Write a page's markdown, then its elements (the checkpoint marker)."""
        md_key = page_key(self.prefix, page.page_number, "md")
        json_key = page_key(self.prefix, page.page_number, "json")
        self._put(md_key, page.markdown.encode("utf-8"), MARKDOWN_TYPE)
        metadata = {META_ENGINE: page.engine, META_SECONDS: f"{page.seconds:.3f}"}
        if page.error is None:
            # A failed page is written for the reader but is no checkpoint: retry it.
            metadata[META_VERSION] = self._version
        self._put(json_key, dumps(page.elements), JSON_TYPE, metadata)

    def write_document(self, pages: list[PageOutput], keep: Iterable[int]) -> None:
        """``document.md`` and ``elements.json`` from all pages, in page order, and the page
        files of pages not in ``keep`` deleted: the three at once, all before the manifest
        (each write still fenced: ETag read, fence, conditional put)."""
        document = assemble_document(pages)
        steps: list[Callable[[], object]] = [
            partial(
                self._put_fenced,
                f"{self.prefix}document.md",
                document.markdown.encode("utf-8"),
                MARKDOWN_TYPE,
            ),
            partial(
                self._put_fenced, f"{self.prefix}elements.json", dumps(document.elements), JSON_TYPE
            ),
            partial(self.remove_stale_pages, keep),
        ]
        with ThreadPoolExecutor(len(steps), thread_name_prefix="pagedrop-final") as pool:
            futures = [pool.submit(step) for step in steps]
        for future in futures:
            future.result()  # the first failure, as one write after the other would raise it

    def remove_stale_pages(self, keep: Iterable[int]) -> None:
        """Delete page files of pages not in this conversion (a longer older version's, or
        pages outside a page selection), and leave them out of the manifest."""
        wanted = set(keep)
        stale = [
            key
            for key in self._objects.list_keys(f"{self.prefix}pages/")
            if _page_number(key) not in wanted
        ]
        if stale:
            self._fence()
            self._objects.delete_keys(stale)
        with self._lock:
            for key in stale:
                self.written.pop(key, None)

    def write_manifest(self, manifest: dict[str, Any]) -> StoredObject:
        """The completion signal: written last, listing every output with size and sha256."""
        with self._lock:
            outputs = sorted(self.written.values(), key=lambda o: o.key)
        manifest = {
            **manifest,
            "outputs": [{"key": o.key, "bytes": o.size, "sha256": o.sha256} for o in outputs],
        }
        return self._put_fenced(f"{self.prefix}manifest.json", dumps(manifest), JSON_TYPE)

    def _put_fenced(self, key: str, data: bytes, content_type: str) -> StoredObject:
        stored = self._objects.put_fenced(key, data, content_type, self._fence)
        with self._lock:
            self.written[key] = stored
        return stored

    def _put(
        self, key: str, data: bytes, content_type: str, metadata: dict[str, str] | None = None
    ) -> StoredObject:
        stored = self._objects.put(key, data, content_type, metadata)
        with self._lock:
            self.written[key] = stored
        return stored


def _page_number(key: str) -> int | None:
    stem = key.rsplit("/", 1)[-1].split(".", 1)[0]
    return int(stem) if stem.isdigit() else None
