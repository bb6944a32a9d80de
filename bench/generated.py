"""Generated benchmark documents: a long born-digital PDF and an image-only "scanned" PDF.

Both are deterministic for a given seed and cached by name (kind, pages, seed, generator
version and, for scans, the source files), so every benchmark of a run reads the same bytes.

- :func:`born_digital_pdf`: report-like pages laid out by PyMuPDF's ``Story`` (HTML and
  CSS): chapters with headings, paragraphs, bulleted and numbered lists, a table now and
  then, some two-column pages, a running header and footer and page numbers.
- :func:`scanned_pdf`: pages of real documents drawn to grayscale pixels (PDF pages at the
  scan resolution, images at their own), with a little sensor noise and a slight skew,
  saved as JPEG and placed one per page with no text layer.
- :func:`pdf_with_pages`: either kind with exactly ``n`` pages (the memory benchmark's
  10-page and 200-page documents).
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

#: Bump when the generators change what they draw, so stale cached files are not reused.
GENERATOR_VERSION = 1
DEFAULT_SEED = 7
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "pagedrop-bench-generated"
BORN_DIGITAL = "born_digital"
SCANNED = "scanned"
KINDS = (BORN_DIGITAL, SCANNED)

# Page geometry in PDF points (US letter): margins leave room for the running header/footer.
PAGE_W, PAGE_H = 612.0, 792.0
MARGIN_X, MARGIN_TOP, MARGIN_BOTTOM = 72.0, 80.0, 76.0
GUTTER = 18.0  # between the two columns of a two-column page
TWO_COLUMN_SHARE = 0.3  # of pages: report appendices and papers mix both layouts
TABLE_SHARE = 0.12  # of content blocks: "a table now and then"
LIST_SHARE = 0.15
SUBHEADING_SHARE = 0.08

# Scans: office scanners default to 300 DPI; the noise and skew are those of a clean
# flatbed scan (grey levels 0-255; degrees), enough that pixels are not synthetic-perfect.
SCAN_DPI = 300
SCAN_NOISE_SIGMA = 4.0
SCAN_MAX_SKEW_DEG = 1.0
SCAN_JPEG_QUALITY = 75

CSS = """
body { font-family: serif; font-size: 10.5pt; line-height: 1.25; }
h1 { font-family: sans-serif; font-size: 18pt; margin-bottom: 8pt; }
h2 { font-family: sans-serif; font-size: 13pt; margin-top: 10pt; }
h3 { font-family: sans-serif; font-size: 11pt; font-style: italic; }
p { text-align: justify; margin-bottom: 5pt; }
table { border-collapse: collapse; margin: 6pt 0; }
th, td { border: 0.5pt solid black; padding: 2pt 4pt; font-size: 9pt; }
th { font-weight: bold; }
"""

_WORD_TEXT = """
the of and to in a is that for it as was with be by on not he this are or his from at which
but have an they you were her she there been one all we their has would when if so no will
more can out other about many then them these some time very into could state after first
also made new any most people system over such work year where between through must water
under both public report process data service market value policy cost support level change
program group result design market region budget quality project measure control energy
review plan growth record staff training audit network storage access security customer
operation analysis increase period total annual capital revenue share board member council
committee agency standard safety board maintenance inspection procedure equipment aircraft
"""
_TOPIC_TEXT = """
Overview Background Method Results Discussion Governance Operations Finance Outlook Risk
Infrastructure Maintenance Compliance Procurement Staffing Evaluation Security Training
"""
_WORDS = tuple(_WORD_TEXT.split())
_TOPICS = tuple(_TOPIC_TEXT.split())
_TITLE = "Annual Operations Review"


@dataclass(frozen=True, slots=True)
class GeneratedDocument:
    path: Path
    kind: str  # BORN_DIGITAL or SCANNED
    pages: int


def pdf_with_pages(
    n: int, kind: str = BORN_DIGITAL, seed: int = DEFAULT_SEED, cache_dir: Path | None = None
) -> Path:
    """A generated PDF of exactly ``n`` pages (a scan of the born-digital one for SCANNED)."""
    if kind == BORN_DIGITAL:
        return born_digital_pdf(n, seed, cache_dir)
    if kind == SCANNED:
        return scanned_pdf(n, None, seed, cache_dir)
    raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")


def benchmark_documents(
    corpus: Path | None,
    born_digital_pages: int = 200,
    scanned_pages: int = 50,
    seed: int = DEFAULT_SEED,
    cache_dir: Path | None = None,
) -> list[GeneratedDocument]:
    """The throughput benchmarks' two generated documents (issue 7): a long born-digital
    PDF, and a scanned one drawn from the corpus's pages where the corpus is there (else
    from the born-digital one). Every benchmark that calls this reads the same files."""
    sources = corpus_scan_sources(corpus) if corpus is not None else []
    return [
        GeneratedDocument(
            born_digital_pdf(born_digital_pages, seed, cache_dir), BORN_DIGITAL, born_digital_pages
        ),
        GeneratedDocument(
            scanned_pdf(scanned_pages, sources or None, seed, cache_dir), SCANNED, scanned_pages
        ),
    ]


def corpus_scan_sources(corpus: Path) -> list[Path]:
    """Real pages to scan: the corpus's scans and born-digital documents (not ``hostile/``)."""
    suffixes = {".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff"}
    return [
        path
        for folder in KINDS
        if (corpus / folder).is_dir()
        for path in sorted((corpus / folder).iterdir())
        if path.is_file() and path.suffix.lower() in suffixes
    ]


# -- born-digital --------------------------------------------------------------------------


def born_digital_pdf(pages: int, seed: int = DEFAULT_SEED, cache_dir: Path | None = None) -> Path:
    """A report-like born-digital PDF of exactly ``pages`` pages (cached)."""
    _check_pages(pages)
    path = _cache_path(cache_dir, f"born_digital-{pages}p-seed{seed}")
    if not path.exists():
        _write_atomically(path, _born_digital_bytes(pages, seed))
    return path


def _born_digital_bytes(pages: int, seed: int) -> bytes:
    import pymupdf

    rng = random.Random(seed)
    buffer = io.BytesIO()
    writer = pymupdf.DocumentWriter(buffer)
    chapters: list[str] = []  # the chapter title of each page, for the running header
    chapter = 0
    while len(chapters) < pages:
        chapter += 1
        title = f"{chapter}. {rng.choice(_TOPICS)} and {rng.choice(_TOPICS).lower()}"
        story = pymupdf.Story(html=_chapter_html(rng, title), user_css=CSS)
        more = True
        while more and len(chapters) < pages:  # a chapter starts on a new page
            device = writer.begin_page(pymupdf.Rect(0, 0, PAGE_W, PAGE_H))
            for column in _columns(rng.random() < TWO_COLUMN_SHARE):
                more, _ = story.place(column)
                story.draw(device)
                if not more:
                    break
            writer.end_page()
            chapters.append(title)
    writer.close()
    with pymupdf.open("pdf", buffer.getvalue()) as doc:
        for index, page in enumerate(doc):
            _running_header_footer(page, chapters[index], index + 1, pages)
        return doc.tobytes(garbage=3, deflate=True, no_new_id=True)


def _columns(two: bool) -> list[Any]:
    import pymupdf

    top, bottom = MARGIN_TOP, PAGE_H - MARGIN_BOTTOM
    if not two:
        return [pymupdf.Rect(MARGIN_X, top, PAGE_W - MARGIN_X, bottom)]
    width = (PAGE_W - 2 * MARGIN_X - GUTTER) / 2
    left = pymupdf.Rect(MARGIN_X, top, MARGIN_X + width, bottom)
    shift = width + GUTTER
    return [left, pymupdf.Rect(left.x0 + shift, top, left.x1 + shift, bottom)]


def _running_header_footer(page: Any, chapter: str, number: int, total: int) -> None:
    grey = (0.35, 0.35, 0.35)
    page.insert_text((MARGIN_X, 48), _TITLE, fontsize=8, fontname="helv", color=grey)
    right = PAGE_W - MARGIN_X - _text_width(chapter, 8)
    page.insert_text((right, 48), chapter, fontsize=8, fontname="helv", color=grey)
    page.draw_line((MARGIN_X, 54), (PAGE_W - MARGIN_X, 54), color=grey, width=0.4)
    footer = f"Page {number} of {total}"
    x = (PAGE_W - _text_width(footer, 8)) / 2
    page.insert_text((x, PAGE_H - 40), footer, fontsize=8, fontname="helv", color=grey)


def _text_width(text: str, size: float) -> float:
    import pymupdf

    return float(pymupdf.get_text_length(text, fontname="helv", fontsize=size))


def _chapter_html(rng: random.Random, title: str) -> str:
    parts = [f"<h1>{title}</h1>", _paragraph(rng)]
    for section in range(1, rng.randint(3, 7) + 1):
        parts.append(f"<h2>{title.split('.')[0]}.{section} {_phrase(rng, 2, 5)}</h2>")
        for _ in range(rng.randint(2, 6)):
            roll = rng.random()
            if roll < TABLE_SHARE:
                parts.append(_table(rng))
            elif roll < TABLE_SHARE + LIST_SHARE:
                parts.append(_list(rng))
            elif roll < TABLE_SHARE + LIST_SHARE + SUBHEADING_SHARE:
                parts.append(f"<h3>{_phrase(rng, 2, 4)}</h3>")
            parts.append(_paragraph(rng))
    return "\n".join(parts)


def _phrase(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(low, high))).capitalize()


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 24))]
    if rng.random() < 0.3:  # reports carry figures: amounts, shares, years
        words.insert(
            rng.randrange(len(words)),
            rng.choice(
                [
                    str(rng.randint(2, 950)),
                    f"{rng.uniform(0, 100):.1f}%",
                    str(rng.randint(1990, 2030)),
                ]
            ),
        )
    if len(words) > 12 and rng.random() < 0.4:
        words[rng.randrange(3, len(words) - 3)] += ","
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random) -> str:
    return "<p>" + " ".join(_sentence(rng) for _ in range(rng.randint(3, 7))) + "</p>"


def _list(rng: random.Random) -> str:
    tag = "ol" if rng.random() < 0.4 else "ul"
    items = "".join(f"<li>{_phrase(rng, 4, 14)}.</li>" for _ in range(rng.randint(3, 6)))
    return f"<{tag}>{items}</{tag}>"


def _table(rng: random.Random) -> str:
    columns = rng.randint(3, 5)
    header = "".join(f"<th>{_phrase(rng, 1, 2)}</th>" for _ in range(columns))
    rows = []
    for _ in range(rng.randint(3, 8)):
        cells = [_phrase(rng, 1, 3)] + [f"{rng.uniform(0, 5000):,.0f}" for _ in range(columns - 1)]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{header}</tr>{''.join(rows)}</table>"


# -- scanned -------------------------------------------------------------------------------


def scanned_pdf(
    pages: int,
    sources: Sequence[Path] | None = None,
    seed: int = DEFAULT_SEED,
    cache_dir: Path | None = None,
) -> Path:
    """An image-only PDF of exactly ``pages`` scanned-looking pages (cached).

    ``sources`` are documents (PDFs or images) whose pages are drawn, in a seeded shuffle,
    repeated as needed; None scans the generated born-digital PDF of the same length.
    """
    _check_pages(pages)
    if sources is None:
        sources = [born_digital_pdf(pages, seed, cache_dir)]
    if not sources:
        raise ValueError("no source documents to scan")
    path = _cache_path(cache_dir, f"scanned-{pages}p-seed{seed}-{_sources_key(sources)}")
    if not path.exists():
        _write_atomically(path, _scanned_bytes(pages, sources, seed))
    return path


def _scanned_bytes(pages: int, sources: Sequence[Path], seed: int) -> bytes:
    import pymupdf

    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    available = list(_source_pages(sources))
    order: list[tuple[Path, int]] = []
    while len(order) < pages:  # every source page once before any repeats
        batch = available[:]
        rng.shuffle(batch)
        order.extend(batch)
    with pymupdf.open() as out:
        for path, index in order[:pages]:
            gray, dpi = _gray_pixels(path, index)
            scan = _scan_look(gray, rng.uniform(-SCAN_MAX_SKEW_DEG, SCAN_MAX_SKEW_DEG), noise)
            jpeg = io.BytesIO()
            scan.save(jpeg, format="JPEG", quality=SCAN_JPEG_QUALITY, dpi=(dpi, dpi))
            width, height = scan.size[0] * 72 / dpi, scan.size[1] * 72 / dpi
            page = out.new_page(width=width, height=height)
            page.insert_image(page.rect, stream=jpeg.getvalue())
        return out.tobytes(garbage=3, deflate=True, no_new_id=True)


def _source_pages(sources: Sequence[Path]) -> Iterator[tuple[Path, int]]:
    import pymupdf

    for path in sources:
        with pymupdf.open(path) as doc:
            count = doc.page_count
        yield from ((path, i) for i in range(count))


def _gray_pixels(path: Path, index: int) -> tuple[np.ndarray, int]:
    """One source page as grayscale pixels and their DPI: a PDF page drawn at SCAN_DPI, an
    image at its own pixels (drawing a small image larger would only blur it)."""
    import pymupdf

    with pymupdf.open(path) as doc:
        if doc.is_pdf:
            pixmap = doc[index].get_pixmap(dpi=SCAN_DPI, colorspace=pymupdf.csGRAY, alpha=False)
            return np.frombuffer(pixmap.samples, np.uint8).reshape(pixmap.h, pixmap.w), SCAN_DPI
    with Image.open(path) as image:
        image.seek(index)
        dpi = image.info.get("dpi", (SCAN_DPI, SCAN_DPI))[0]
        gray = np.asarray(image.convert("L"))
    return gray, round(float(dpi)) or SCAN_DPI


def _scan_look(gray: np.ndarray, skew_deg: float, noise: np.random.Generator) -> Image.Image:
    noisy = gray.astype(np.float32) + noise.normal(0.0, SCAN_NOISE_SIGMA, gray.shape)
    image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), mode="L")
    return image.rotate(skew_deg, resample=Image.Resampling.BICUBIC, fillcolor=255)


def _sources_key(sources: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in sources:
        digest.update(f"{path.name}:{path.stat().st_size};".encode())
    return digest.hexdigest()[:10]


# -- cache ---------------------------------------------------------------------------------


def _check_pages(pages: int) -> None:
    if pages < 1:
        raise ValueError(f"a document needs at least one page, not {pages}")


def _cache_path(cache_dir: Path | None, stem: str) -> Path:
    folder = cache_dir or DEFAULT_CACHE
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{stem}-v{GENERATOR_VERSION}.pdf"


def _write_atomically(path: Path, data: bytes) -> None:
    """Write beside the target and rename: benchmarks running at once never read half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; other benchmark users read it too
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
