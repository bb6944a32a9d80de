"""The throughput benchmark's generated documents (bench/generated.py) and its timing and
table code (bench/engines.py) on a tiny run: no OCR models are loaded."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from bench import generated
from bench.engines import (
    BenchDocument,
    DocumentTiming,
    EngineClock,
    Timing,
    document_row,
    group_rows,
    measure,
    render_table,
    runs_on,
    target_line,
    text_layer_target,
    totals,
)
from bench.generated import (
    BORN_DIGITAL,
    SCANNED,
    born_digital_pdf,
    pdf_with_pages,
    scanned_pdf,
)
from bench.systems import BENCH_LIMITS, PagedropSystem, SystemOutput
from handler.documents.open import open_document
from handler.engines.routing import needs_ocr
from handler.settings import Settings

DATA = Path(__file__).parent.parent / "data"

# -- generated documents -------------------------------------------------------------------


def _routes(path: Path) -> list[bool]:
    """Per page: whether pagedrop sends it to OCR."""
    with open_document(path, BENCH_LIMITS, dpi=72, filename=path.name) as doc:
        return [needs_ocr(page) for page in doc.pages()]


def test_born_digital_pdf_has_report_pages_with_a_text_layer(tmp_path: Path) -> None:
    path = born_digital_pdf(12, cache_dir=tmp_path)

    with pymupdf.open(path) as doc:
        assert doc.page_count == 12
        texts = [page.get_text() for page in doc]
        sizes = {
            round(span["size"])
            for page in doc
            for block in page.get_text("dict")["blocks"]
            for line in block.get("lines", [])
            for span in line["spans"]
        }
        # a two-column page has text starting right of the middle of the page
        two_column = [
            any(b[0] > page.rect.width / 2 for b in page.get_text("blocks")) for page in doc
        ]
        ruled = [len(page.get_drawings()) > 1 for page in doc]  # table borders (+ header rule)
    assert all(f"Page {i} of 12" in text for i, text in enumerate(texts, 1))
    assert all("Annual Operations Review" in text for text in texts)  # running header
    assert {8, 9, 10, 11, 13, 18} <= sizes  # header, table, body, h3, h2, h1
    assert any(two_column) and not all(two_column)
    assert any(ruled)
    assert _routes(path) == [False] * 12


def test_generated_documents_are_deterministic_and_cached(tmp_path: Path) -> None:
    first = born_digital_pdf(3, seed=1, cache_dir=tmp_path / "a")
    again = born_digital_pdf(3, seed=1, cache_dir=tmp_path / "b")
    other = born_digital_pdf(3, seed=2, cache_dir=tmp_path / "a")

    assert first.read_bytes() == again.read_bytes()
    assert first.read_bytes() != other.read_bytes()
    assert born_digital_pdf(3, seed=1, cache_dir=tmp_path / "a") == first  # from the cache


@pytest.fixture
def low_dpi_scans(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scans at 100 DPI: the same pages, drawn in a fraction of the time."""
    monkeypatch.setattr(generated, "SCAN_DPI", 100)


@pytest.mark.usefixtures("low_dpi_scans")
def test_scanned_pdf_is_image_only_pages_drawn_from_its_sources(tmp_path: Path) -> None:
    sources = [DATA / "scanned" / "tess__phototest.tif", DATA / "born_digital" / "pysf__habibi.pdf"]

    path = scanned_pdf(3, sources, cache_dir=tmp_path)

    with pymupdf.open(path) as doc:
        assert doc.page_count == 3
        for page in doc:
            assert page.get_text().strip() == ""
            images = page.get_images()
            assert len(images) == 1 and images[0][5] in ("DeviceGray", "ICCBased")
            placed = page.get_image_rects(images[0][0])[0]
            assert placed.x0 == placed.y0 == 0 and abs(placed.br - page.rect.br) < 0.01  # fills it
        widths = sorted(round(page.rect.width) for page in doc)
    assert len(set(widths)) == 2  # both sources are in (3 pages: one is repeated)
    assert _routes(path) == [True] * 3


@pytest.mark.usefixtures("low_dpi_scans")
def test_pdf_with_pages_builds_either_kind(tmp_path: Path) -> None:
    with pymupdf.open(pdf_with_pages(2, BORN_DIGITAL, cache_dir=tmp_path)) as doc:
        assert doc.page_count == 2
    scanned = pdf_with_pages(1, SCANNED, cache_dir=tmp_path)
    assert _routes(scanned) == [True]
    with pytest.raises(ValueError):
        pdf_with_pages(0, cache_dir=tmp_path)
    with pytest.raises(ValueError):
        pdf_with_pages(2, "handwritten", cache_dir=tmp_path)


# -- timing and table ----------------------------------------------------------------------


class _NoWarmUp(PagedropSystem):
    def warm_up(self, documents: list[Path]) -> None:  # the OCR models are not needed here
        pass


class _FixedBaseline:
    """A baseline that reports a fixed time per page without converting anything."""

    def __init__(self, name: str, s_per_page: float) -> None:
        self.name = name
        self._s_per_page = s_per_page
        self.runs: list[Path] = []

    def warm_up(self, documents: list[Path]) -> None:
        pass

    def run(self, document: Path) -> SystemOutput:
        self.runs.append(document)
        with pymupdf.open(document) as doc:
            pages = doc.page_count
        return SystemOutput("", pages, pages * self._s_per_page)


def test_a_tiny_run_splits_engine_time_and_compares_with_the_baseline(tmp_path: Path) -> None:
    path = born_digital_pdf(1, cache_dir=tmp_path)
    born = BenchDocument(path, "generated", BORN_DIGITAL, 1)
    scan = BenchDocument(DATA / "scanned" / "tess__phototest.tif", "corpus", SCANNED, 1)
    settings = Settings()
    clock = EngineClock(settings)
    baseline = _FixedBaseline("pymupdf4llm", s_per_page=30.0)
    ocr = _FixedBaseline("rapidocr", s_per_page=1.0)
    systems = {"pagedrop": _NoWarmUp(settings, clock), "pymupdf4llm": baseline, "rapidocr": ocr}

    results = measure([born], systems, clock, repeat=2)

    timing = results[0].systems["pagedrop"]
    assert timing.engine_calls == {"text-layer": 1}
    assert 0 < (timing.engine_total or 0) <= timing.seconds
    assert baseline.runs == [path, path] and ocr.runs == []  # fastest of 2; scans only
    assert runs_on("rapidocr", scan) and not runs_on("pymupdf4llm", scan)
    target = text_layer_target(results)
    assert target["met"] is True and target["pages"] == 1
    assert target["speedup"] == pytest.approx(30.0 / timing.seconds, rel=1e-3)
    assert "met;" in target_line(target)
    table = render_table([document_row(r) for r in results] + group_rows(results))
    assert path.name in table and "total generated born_digital" in table
    assert "30.000" in table  # the baseline's s/page


def _timing(seconds: float, pages: int, calls: dict[str, int]) -> Timing:
    share = seconds / max(1, sum(calls.values()))
    return Timing(
        seconds,
        pages,
        ["text-layer"],
        engine_seconds={name: share * n for name, n in calls.items()},
        engine_calls=calls,
    )


def test_totals_and_the_target_leave_out_pages_that_went_to_ocr() -> None:
    def doc(name: str, set_name: str, pages: int) -> BenchDocument:
        return BenchDocument(Path(name), set_name, BORN_DIGITAL, pages)

    fast = DocumentTiming(doc("a.pdf", "corpus", 10))
    fast.systems = {
        "pagedrop": _timing(1.0, 10, {"text-layer": 10}),
        "pymupdf4llm": Timing(4.0, 10),
    }
    ocr_tried = DocumentTiming(doc("b.pdf", "generated", 1))
    ocr_tried.systems = {
        "pagedrop": _timing(3.0, 1, {"rapidocr": 1, "text-layer": 1}),
        "pymupdf4llm": Timing(0.5, 1),
    }

    target = text_layer_target([fast, ocr_tried])
    groups = {g.label: g.to_json() for g in totals([fast, ocr_tried])}

    assert target["documents"] == ["a.pdf"] and target["left_out"] == ["b.pdf"]
    assert target["speedup"] == pytest.approx(4.0) and target["met"] is True
    assert set(groups) == {
        "total corpus born_digital",
        "total generated born_digital",
        "total born_digital",
    }
    everything = groups["total born_digital"]
    assert everything["pages"] == 11
    assert everything["systems"]["pagedrop"]["pages_per_s"] == pytest.approx(11 / 4.0)
    assert everything["speedup_over_baseline"] == pytest.approx(4.5 / 4.0)
    assert everything["engines_called"] == ["rapidocr", "text-layer"]


def test_the_target_is_not_met_below_two_times() -> None:
    slow = DocumentTiming(BenchDocument(Path("a.pdf"), "corpus", BORN_DIGITAL, 2))
    slow.systems = {
        "pagedrop": _timing(1.0, 2, {"text-layer": 2}),
        "pymupdf4llm": Timing(1.5, 2),
    }

    target = text_layer_target([slow])

    assert target["met"] is False and "NOT met" in target_line(target)
