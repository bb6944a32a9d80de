"""`pagedrop worker --check`: a GPU engine's description (device, GPU, dtype, model folder)
on its check line, passed or failed."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

import pytest

from handler.documents.pages import PageInput
from handler.engines import registry
from handler.engines.base import Element, ElementType, PageResult
from handler.settings import Settings
from handler.worker.selfcheck import CHECK_SENTENCE, self_check

DESCRIPTION = "cuda: NVIDIA L4, 22.0 GiB (21.5 free), bfloat16, /models/paddleocr-vl, batch 8"


class DescribedEngine:
    name = "vlm"

    def __init__(self, reads: str) -> None:
        self.reads = reads

    def describe(self) -> str:
        return DESCRIPTION

    def convert(self, page: PageInput) -> PageResult:
        box = (0.0, 0.0, float(page.layout_width), float(page.layout_height))
        element = Element(ElementType.NARRATIVE_TEXT, self.reads, box)
        return PageResult(page.number, page.layout_width, page.layout_height, "vlm", [element])


def _engine_line(monkeypatch: pytest.MonkeyPatch, engine: Any) -> str:
    monkeypatch.setitem(registry.FACTORIES, "vlm", lambda settings: engine)
    out = io.StringIO()
    # No bucket, queues or table: only the settings line and the engines' lines.
    self_check(Settings(bucket="", ocr_engine="vlm"), SimpleNamespace(), out=out)
    (line,) = [line for line in out.getvalue().splitlines() if line.startswith("engine vlm:")]
    return line


def test_a_passing_engine_line_carries_its_description(monkeypatch: pytest.MonkeyPatch) -> None:
    line = _engine_line(monkeypatch, DescribedEngine(CHECK_SENTENCE))

    assert line.startswith("engine vlm: ok (read the check page in ")
    assert line.endswith(f" s; {DESCRIPTION})")


def test_a_failing_engine_line_carries_its_description_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    line = _engine_line(monkeypatch, DescribedEngine("#### garbage"))

    assert line.startswith("engine vlm: FAILED: It read '#### garbage' instead of ")
    assert line.endswith(f"[{DESCRIPTION}].")


def test_an_engine_without_describe_keeps_its_plain_line(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = DescribedEngine(CHECK_SENTENCE)
    engine.describe = None  # type: ignore[assignment,method-assign]

    line = _engine_line(monkeypatch, engine)

    assert line.startswith("engine vlm: ok (read the check page in ") and line.endswith(" s)")
