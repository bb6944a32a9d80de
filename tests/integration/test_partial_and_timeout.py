"""Page failures (PARTIAL / FAILED) and the per-document timeout, through the real worker."""

from __future__ import annotations

import json

import pytest

from handler.aws import Clients
from handler.documents.pages import PageInput
from handler.engines import registry
from handler.engines.base import Element, ElementType, PageResult
from handler.errors import BadInput, ErrorCategory
from handler.settings import Settings
from handler.worker.build import status_store
from tests.conftest import SAMPLES, drain, mid_page

pytestmark = pytest.mark.integration


class FailingPagesEngine:
    """Converts every page but those in ``failing`` (which it reports as damaged)."""

    name = "failing-pages"

    def __init__(self, failing: set[int]) -> None:
        self.failing = failing

    def convert(self, page: PageInput) -> PageResult:
        if page.number in self.failing:
            raise BadInput(ErrorCategory.CORRUPT, f"page {page.number} is damaged")
        text = Element(ElementType.NARRATIVE_TEXT, f"text of page {page.number}", mid_page(page))
        return PageResult(page.number, page.layout_width, page.layout_height, self.name, [text])


def _upload_with_engine(clients: Clients, settings: Settings, key: str) -> str:
    full = settings.input_prefix + key
    clients.s3.upload_file(
        str(SAMPLES / "pysf__multicolumn.pdf"),
        settings.bucket,
        full,
        ExtraArgs={"Metadata": {"pagedrop-engine": "failing-pages"}},
    )
    return full


@pytest.mark.parametrize(
    ("failing", "status"), [({2}, "PARTIAL"), ({1, 2}, "FAILED"), ({1, 2, 3}, "FAILED")]
)
def test_failed_pages_make_the_document_partial_or_failed(
    stack_settings: Settings,
    clients: Clients,
    monkeypatch: pytest.MonkeyPatch,
    failing: set[int],
    status: str,
) -> None:
    # Given an engine that fails some pages of a 3-page document (limit: half may fail)
    monkeypatch.setitem(registry.FACTORIES, "failing-pages", lambda s: FailingPagesEngine(failing))
    key = _upload_with_engine(clients, stack_settings, "partial/doc.pdf")
    # When it is converted
    drain(stack_settings, clients)
    # Then the status says how it went, and a PARTIAL document marks its failed page
    item = status_store(stack_settings, clients).get(f"{stack_settings.bucket}/{key}")
    assert item is not None and item.raw["status"] == status
    prefix = f"{stack_settings.output_prefix}partial/doc.pdf/"
    if status == "PARTIAL":
        manifest = json.loads(
            clients.s3.get_object(Bucket=stack_settings.bucket, Key=prefix + "manifest.json")[
                "Body"
            ].read()
        )
        assert [p["status"] for p in manifest["pages"]] == ["ok", "failed", "ok"]
        assert manifest["pages"][1]["error"] == "page 2 is damaged"
        document = clients.s3.get_object(Bucket=stack_settings.bucket, Key=prefix + "document.md")
        markdown = document["Body"].read().decode()
        assert "page 2 could not be converted (page 2 is damaged)" in markdown
        assert "text of page 3" in markdown
    else:
        assert item.raw["error"]["category"] == "corrupt"
        assert "could not be converted" in item.raw["error"]["message"]
        listing = clients.s3.list_objects_v2(
            Bucket=stack_settings.bucket, Prefix=prefix + "manifest.json"
        )
        assert listing.get("KeyCount", 0) == 0


def test_a_document_past_its_time_limit_fails_as_timeout(
    stack_settings: Settings, clients: Clients
) -> None:
    # Given a worker whose per-document limit is shorter than any conversion
    settings = stack_settings.model_copy(update={"document_timeout_s": 0.001})
    key = settings.input_prefix + "slow.pdf"
    clients.s3.upload_file(str(SAMPLES / "pysf__multicolumn.pdf"), settings.bucket, key)
    # When it is converted
    drain(settings, clients)
    # Then it is FAILED/timeout with a sentence that names the limit
    item = status_store(settings, clients).get(f"{settings.bucket}/{key}")
    assert item is not None and item.raw["status"] == "FAILED"
    assert item.raw["error"]["category"] == "timeout"
    assert "0.001 seconds" in item.raw["error"]["message"]
