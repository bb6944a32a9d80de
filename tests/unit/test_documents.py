"""Opening documents: type from the bytes, limits before heavy work, hostile files, images."""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pymupdf
import pytest
from PIL import Image

from handler.documents.detect import HEAD_BYTES, detect_file, detect_type
from handler.documents.limits import Limits
from handler.documents.open import Document, open_document
from handler.documents.pages import PageInput
from handler.errors import BadInput, ErrorCategory

DATA = Path(__file__).parent.parent / "data"
HOSTILE = DATA / "hostile"
LIMITS = Limits(max_bytes=50_000_000, max_pages=100, max_pixels_per_page=40_000_000)


def _open(path: Path, limits: Limits = LIMITS, dpi: int = 100) -> Document:
    return open_document(path, limits, dpi=dpi, filename=path.name)


def _bad_input(path: Path, limits: Limits = LIMITS, dpi: int = 100) -> BadInput:
    with pytest.raises(BadInput) as caught:
        _open(path, limits, dpi).close()
    return caught.value


def _pdf_page(page: PageInput) -> Any:
    assert page.pdf_page is not None
    return page.pdf_page


def _page_text(doc: Document) -> str:
    return "".join(_pdf_page(page).get_text() for page in doc.pages())


# -- detect_type ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "kind", "mime"),
    [
        (b"%PDF-1.7\n%\xe2\xe3", "pdf", "application/pdf"),
        (b"junk" * 200 + b"%PDF-1.4\n", "pdf", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "png", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "jpeg", "image/jpeg"),
        (b"II*\x00\x08\x00\x00\x00", "tiff", "image/tiff"),
        (b"MM\x00*\x00\x00\x00\x08", "tiff", "image/tiff"),
        (b"BM" + b"\x00" * 12 + struct.pack("<I", 40) + b"\x00" * 8, "bmp", "image/bmp"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "webp", "image/webp"),
    ],
)
def test_detect_type_reads_magic_numbers(head: bytes, kind: str, mime: str) -> None:
    # given the first bytes of a file / when detected / then its kind and MIME type
    detected = detect_type(head)
    assert (detected.kind, detected.mime) == (kind, mime)
    assert detected.is_pdf == (kind == "pdf")


def test_detect_type_of_zero_bytes_is_corrupt_with_a_plain_message() -> None:
    with pytest.raises(BadInput) as caught:
        detect_type(b"")
    assert caught.value.category is ErrorCategory.CORRUPT
    assert caught.value.message == "The file is empty (0 bytes)."


@pytest.mark.parametrize(
    "head",
    [
        b"oops\n",
        b"BM is not a bitmap, just text that starts with BM",
        b"RIFF\x24\x00\x00\x00WAVEfmt ",
        b"x" * 1100 + b"%PDF-1.4",  # header too far in
        b"PK\x03\x04 a zip file",
    ],
)
def test_detect_type_rejects_other_bytes_as_unsupported(head: bytes) -> None:
    with pytest.raises(BadInput) as caught:
        detect_type(head)
    assert caught.value.category is ErrorCategory.UNSUPPORTED
    assert "not a PDF or a supported image" in caught.value.message


def test_detect_file_reads_only_the_head(tmp_path: Path) -> None:
    path = tmp_path / "named.png"
    path.write_bytes(b"%PDF-1.4\n" + b"0" * (HEAD_BYTES * 4))
    assert detect_file(path).kind == "pdf"


# -- hostile corpus files ---------------------------------------------------------------------

HOSTILE_FAILURES = {
    "plumber__empty.pdf": ErrorCategory.CORRUPT,
    "qpdf__bad1.pdf": ErrorCategory.UNSUPPORTED,
    "pypdf__r6-both-passwords.pdf": ErrorCategory.ENCRYPTED,
}
# Readable files: the text that must be on their one page.
HOSTILE_READABLE = {
    "wrongext__minimal-document.png": "Lorem ipsum",
    "qpdf__pages-loop.pdf": "Potato",
    "pdfjs__xref_command_missing.pdf": "Reduced test-case",
    "safedocs__Dual-startxref.pdf": "Second startxref",
    "safedocs__PDF-NoPageContents.pdf": "",
}


def test_every_hostile_file_has_an_expected_outcome() -> None:
    on_disk = {p.name for p in HOSTILE.iterdir()}
    assert on_disk == set(HOSTILE_FAILURES) | set(HOSTILE_READABLE)


@pytest.mark.parametrize(("name", "category"), sorted(HOSTILE_FAILURES.items()))
def test_hostile_file_fails_with_its_category(name: str, category: ErrorCategory) -> None:
    error = _bad_input(HOSTILE / name)
    assert error.category is category
    assert error.message.endswith(".")


def test_empty_file_message() -> None:
    assert _bad_input(HOSTILE / "plumber__empty.pdf").message == "The file is empty (0 bytes)."


def test_encrypted_pdf_message_names_the_password() -> None:
    error = _bad_input(HOSTILE / "pypdf__r6-both-passwords.pdf")
    assert error.message == (
        "The PDF is password-protected; pagedrop cannot open it without the password."
    )


@pytest.mark.parametrize(("name", "text"), sorted(HOSTILE_READABLE.items()))
def test_readable_hostile_file_opens_as_pdf_and_renders(name: str, text: str) -> None:
    with _open(HOSTILE / name) as doc:
        assert doc.type.kind == "pdf"
        assert doc.page_count == 1
        page_text = _page_text(doc)
        (page,) = list(doc.pages())
        pixels = page.render()
    assert text in page_text
    if not text:
        assert page_text.strip() == ""
    assert pixels.shape == (page.layout_height, page.layout_width, 3)
    assert pixels.dtype == np.uint8


def test_dual_startxref_reads_the_second_revision() -> None:
    with _open(HOSTILE / "safedocs__Dual-startxref.pdf") as doc:
        text = _page_text(doc)
    assert "Second startxref" in text
    assert "First startxref" not in text


def test_page_without_contents_renders_white() -> None:
    with _open(HOSTILE / "safedocs__PDF-NoPageContents.pdf") as doc:
        pixels = next(doc.pages()).render()
    assert pixels.min() == 255


def test_pdf_named_png_records_pdf_mime_type() -> None:
    with _open(HOSTILE / "wrongext__minimal-document.png") as doc:
        page = next(doc.pages())
    assert page.filetype == "application/pdf"
    assert page.filename == "wrongext__minimal-document.png"


# -- PDFs: limits, pages, rendering -----------------------------------------------------------


def _write_pdf(path: Path, pages: int = 1, size: tuple[float, float] = (612, 792)) -> Path:
    doc = pymupdf.open()
    for n in range(pages):
        page = doc.new_page(width=size[0], height=size[1])
        page.insert_text((72, 72), f"Page {n + 1} text", fontsize=12)
    doc.save(path)
    doc.close()
    return path


def test_pdf_with_too_many_pages_is_too_large(tmp_path: Path) -> None:
    path = _write_pdf(tmp_path / "many.pdf", pages=5)
    limits = Limits(max_bytes=10_000_000, max_pages=3, max_pixels_per_page=40_000_000)
    error = _bad_input(path, limits)
    assert error.category is ErrorCategory.TOO_LARGE
    assert error.message == "The document has 5 pages; the limit is 3 pages."


def test_pdf_page_too_large_at_the_dpi_gets_a_lower_resolution_of_its_own(
    tmp_path: Path,
) -> None:
    # Given a poster page, 8333 x 8333 pixels at 300 DPI, over a 40-megapixel limit
    path = _write_pdf(tmp_path / "poster.pdf", size=(2000, 2000))  # 27.8 inches square
    # When it is opened at 300 DPI
    with _open(path, LIMITS, dpi=300) as doc:
        page = next(doc.pages())
    # Then it is kept, at the highest resolution that fits the limit
    assert page.dpi == 227
    assert page.layout_width * page.layout_height <= LIMITS.max_pixels_per_page
    assert page.scale == pytest.approx(227 / 72)


def test_pdf_page_that_fits_only_below_the_minimum_resolution_is_too_large(
    tmp_path: Path,
) -> None:
    path = _write_pdf(tmp_path / "huge.pdf", size=(14400, 14400))  # 200 inches square
    limits = Limits(max_bytes=10_000_000, max_pages=3, max_pixels_per_page=1_000_000)
    error = _bad_input(path, limits, dpi=200)
    assert error.category is ErrorCategory.TOO_LARGE
    assert "Page 1 is 40000 x 40000 pixels at 200 DPI" in error.message


def test_file_over_max_bytes_is_too_large_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"\x00" * 2048)  # not even a document: the size is checked first
    limits = Limits(max_bytes=1024, max_pages=10, max_pixels_per_page=1_000_000)
    error = _bad_input(path, limits)
    assert error.category is ErrorCategory.TOO_LARGE
    assert error.message == "The file is 2.0 KB; the limit is 1.0 KB."


def test_pdf_with_zero_pages_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "zero.pdf"
    path.write_bytes(
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )
    error = _bad_input(path)
    assert error.category is ErrorCategory.CORRUPT


def test_pdf_header_with_garbage_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pdf"
    path.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 8)
    assert _bad_input(path).category is ErrorCategory.CORRUPT


def test_pdf_after_junk_bytes_opens(tmp_path: Path) -> None:
    source = _write_pdf(tmp_path / "clean.pdf")
    path = tmp_path / "junk-prefixed.pdf"
    path.write_bytes(b"MIME junk before the header\r\n" * 10 + source.read_bytes())
    with _open(path) as doc:
        assert "Page 1 text" in _page_text(doc)


def test_pdf_pages_are_lazy_and_sized_at_the_dpi(tmp_path: Path) -> None:
    path = _write_pdf(tmp_path / "three.pdf", pages=3, size=(612, 792))
    with _open(path, dpi=150) as doc:
        pages = list(doc.pages([3, 1]))
        assert [p.number for p in pages] == [3, 1]
        page = pages[0]
        assert (page.layout_width, page.layout_height) == (1275, 1650)
        assert page.scale == pytest.approx(150 / 72)
        assert page.dpi == 150
        assert page.filetype == "application/pdf"
        assert page.filename == "three.pdf"
        assert "Page 3 text" in _pdf_page(page).get_text()
        pixels = page.render()
    assert pixels.shape == (1650, 1275, 3)
    assert pixels.flags.writeable
    assert pixels.min() < 100  # the text is drawn
    assert pixels[-10:, -10:].min() == 255  # the margin is white


def test_pages_rejects_numbers_outside_the_document(tmp_path: Path) -> None:
    path = _write_pdf(tmp_path / "two.pdf", pages=2)
    with _open(path) as doc, pytest.raises(ValueError, match="Page 3 does not exist"):
        doc.pages([1, 3])


def test_closed_document_refuses_pages_and_renders(tmp_path: Path) -> None:
    path = _write_pdf(tmp_path / "one.pdf")
    doc = _open(path)
    page = next(doc.pages())
    doc.close()
    assert doc.closed
    with pytest.raises(RuntimeError):
        doc.pages()
    with pytest.raises(RuntimeError):
        page.render()


def test_rotated_pdf_page_is_sized_and_rendered_as_displayed() -> None:
    with _open(DATA / "scanned" / "docling__ocr_test_rotated_90.pdf", dpi=72) as doc:
        page = next(doc.pages())
        pixels = page.render()
    assert page.layout_width > page.layout_height  # landscape as displayed
    assert pixels.shape == (page.layout_height, page.layout_width, 3)


# -- images -----------------------------------------------------------------------------------


def _save(image: Image.Image, path: Path, fmt: str, **params: object) -> Path:
    image.save(path, format=fmt, **params)
    return path


def test_png_with_transparency_renders_on_white(tmp_path: Path) -> None:
    image = Image.new("RGBA", (60, 40), (0, 0, 0, 0))  # transparent black
    image.paste((0, 0, 0, 255), (10, 10, 20, 20))  # one opaque black square
    path = _save(image, tmp_path / "scan.bin", "PNG", dpi=(150, 150))
    with _open(path) as doc:
        assert (doc.type.kind, doc.page_count) == ("png", 1)
        page = next(doc.pages())
        pixels = page.render()
    assert (page.layout_width, page.layout_height, page.dpi, page.scale) == (60, 40, 150, 1.0)
    assert page.pdf_page is None
    assert page.filetype == "image/png"
    assert pixels.shape == (40, 60, 3)
    assert pixels[0, 0].tolist() == [255, 255, 255]
    assert pixels[15, 15].tolist() == [0, 0, 0]


def test_jpeg_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = Image.new("RGB", (80, 40), (255, 0, 0))
    image.paste((0, 0, 255), (40, 0, 80, 40))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    path = _save(image, tmp_path / "photo.jpg", "JPEG", exif=exif.tobytes(), quality=95)
    with _open(path) as doc:
        page = next(doc.pages())
        pixels = page.render().astype(int)
    assert (page.layout_width, page.layout_height) == (40, 80)
    assert pixels.shape == (80, 40, 3)
    top, bottom = pixels[5:30].mean(axis=(0, 1)), pixels[50:75].mean(axis=(0, 1))
    assert top[0] > 200 > top[2]  # red on top
    assert bottom[2] > 200 > bottom[0]  # blue below
    assert page.dpi == 300  # no resolution in the file


def test_three_page_tiff_in_several_modes(tmp_path: Path) -> None:
    first = Image.new("RGB", (30, 20), (0, 128, 255))
    second = Image.new("1", (40, 30), 1)
    third = Image.new("I;16", (25, 15), 65535)
    third.putpixel((0, 0), 0)
    path = tmp_path / "fax.tif"
    first.save(path, format="TIFF", save_all=True, append_images=[second, third], dpi=(200, 200))
    with _open(path) as doc:
        assert (doc.type.kind, doc.page_count) == ("tiff", 3)
        pages = list(doc.pages())
        rendered = [p.render() for p in pages]
    assert [(p.layout_width, p.layout_height) for p in pages] == [(30, 20), (40, 30), (25, 15)]
    assert [r.shape for r in rendered] == [(20, 30, 3), (30, 40, 3), (15, 25, 3)]
    assert pages[0].dpi == 200
    assert rendered[0][0, 0].tolist() == [0, 128, 255]
    assert rendered[1].min() == 255  # a white bitonal page
    assert rendered[2][1, 1].tolist() == [255, 255, 255]  # 16-bit white scaled to 8 bits
    assert rendered[2][0, 0].tolist() == [0, 0, 0]


def test_bmp_palette_image(tmp_path: Path) -> None:
    image = Image.new("P", (16, 8), 0)
    image.putpalette([255, 255, 255, 200, 0, 0] + [0] * 762)
    image.paste(1, (0, 0, 8, 8))
    path = _save(image, tmp_path / "pic.bmp", "BMP")
    with _open(path) as doc:
        assert doc.type.mime == "image/bmp"
        pixels = next(doc.pages()).render()
    assert pixels[0, 0].tolist() == [200, 0, 0]
    assert pixels[0, 15].tolist() == [255, 255, 255]


def test_webp_image(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (32, 24), (10, 200, 10)), tmp_path / "a.webp", "WEBP")
    with _open(path) as doc:
        assert doc.type.kind == "webp"
        page = next(doc.pages())
        pixels = page.render()
    assert pixels.shape == (24, 32, 3)
    assert pixels[12, 16, 1] > 150


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path: Path) -> None:
    path = _save(Image.new("CMYK", (20, 10), (0, 0, 0, 0)), tmp_path / "print.jpg", "JPEG")
    with _open(path) as doc:
        pixels = next(doc.pages()).render()
    assert pixels.shape == (10, 20, 3)
    assert pixels.min() > 240  # no ink is white


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def test_decompression_bomb_png_is_too_large_quickly(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_declaring(100_000, 100_000))
    started = time.perf_counter()
    error = _bad_input(path)
    assert time.perf_counter() - started < 1.0
    assert error.category is ErrorCategory.TOO_LARGE


def test_image_over_the_pixel_limit_is_too_large(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    path.write_bytes(_png_declaring(5000, 3000))  # under Pillow's own limit, over ours
    limits = Limits(max_bytes=10_000_000, max_pages=10, max_pixels_per_page=10_000_000)
    error = _bad_input(path, limits)
    assert error.category is ErrorCategory.TOO_LARGE
    assert error.message == (
        "Page 1 is 5000 x 3000 pixels (15.0 megapixels); the limit is 10.0 megapixels per page."
    )


def test_tiff_with_too_many_pages_is_too_large(tmp_path: Path) -> None:
    frames = [Image.new("L", (8, 8), 255) for _ in range(4)]
    path = tmp_path / "pages.tiff"
    frames[0].save(path, format="TIFF", save_all=True, append_images=frames[1:])
    limits = Limits(max_bytes=10_000_000, max_pages=3, max_pixels_per_page=1_000_000)
    error = _bad_input(path, limits)
    assert error.category is ErrorCategory.TOO_LARGE
    assert "4 pages" in error.message


def test_png_with_a_broken_header_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 10)
    error = _bad_input(path)
    assert error.category is ErrorCategory.CORRUPT
    assert error.message == "The PNG image is damaged and cannot be read."


def test_truncated_jpeg_fails_to_render_as_corrupt(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    noise = np.random.default_rng(1).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, format="JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with _open(path) as doc:  # the header is fine: it opens
        page = next(doc.pages())
        with pytest.raises(BadInput) as caught:
            page.render()
    assert caught.value.category is ErrorCategory.CORRUPT
    assert "Page 1" in caught.value.message


# -- rendering at the size OCR reads ------------------------------------------------------------


def _write_scan_pdf(path: Path, image_dpi: int, rotate: int = 0) -> Path:
    """A letter page showing one grey 'scan' at ``image_dpi``, covering the whole page."""
    width, height = round(8.5 * image_dpi), round(11 * image_dpi)
    grey = np.full((height, width), 255, dtype=np.uint8)
    grey[height // 4 : height // 4 + image_dpi // 10, width // 8 : width // 2] = 0  # a "line"
    buffer = io.BytesIO()
    Image.fromarray(grey).save(buffer, format="PNG")
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_image(page.rect, stream=buffer.getvalue())
    page.set_rotation(rotate)
    doc.save(path)
    doc.close()
    return path


def test_pdf_page_renders_straight_at_a_smaller_size(tmp_path: Path) -> None:
    path = _write_pdf(tmp_path / "one.pdf")
    with _open(path, dpi=200) as doc:
        page = next(doc.pages())
        full = page.render()
        half = page.render_scaled(0.5)
        same = page.render_scaled(1.0)
    assert full.shape == (2200, 1700, 3)
    assert half.shape == (1100, 850, 3)  # the page at 100 DPI, boxes still in 200-DPI pixels
    assert np.array_equal(same, full)
    assert half.min() < 100  # the text is drawn
    # the same picture as the full render shrunk: the text in the same place
    dark_full = np.argwhere(full.min(axis=2) < 128).mean(axis=0) / 2
    dark_half = np.argwhere(half.min(axis=2) < 128).mean(axis=0)
    assert np.allclose(dark_full, dark_half, atol=2)


def test_image_page_is_resized_for_a_smaller_size(tmp_path: Path) -> None:
    image = Image.new("L", (400, 300), 255)
    image.paste(0, (100, 100, 300, 200))
    path = _save(image, tmp_path / "scan.png", "PNG", dpi=(300, 300))
    with _open(path) as doc:
        page = next(doc.pages())
        small = page.render_scaled(0.25)
    assert small.shape == (75, 100, 3)
    assert small[25:50, 25:75].max() == 0 and small[:20].min() == 255
    with pytest.raises(ValueError, match="scale factor"):
        page.render_scaled(1.5)
    with pytest.raises(ValueError, match="scale factor"):
        page.render_scaled(0)


@pytest.mark.parametrize("rotate", [0, 90])
def test_scan_in_a_pdf_reports_its_resolution(tmp_path: Path, rotate: int) -> None:
    path = _write_scan_pdf(tmp_path / "scan.pdf", image_dpi=150, rotate=rotate)
    with _open(path, dpi=200) as doc:
        page = next(doc.pages())
        assert page.source_dpi() == pytest.approx(150, abs=0.5)
    assert page.source_dpi() is None  # closed: unknown (drawing it fails on its own)


def test_text_page_and_small_picture_have_no_scan_resolution(tmp_path: Path) -> None:
    path = _write_pdf(tmp_path / "text.pdf")
    doc = pymupdf.open(path)
    picture = io.BytesIO()
    Image.new("L", (300, 300), 128).save(picture, format="PNG")
    doc[0].insert_image(pymupdf.Rect(72, 100, 272, 300), stream=picture.getvalue())  # a photo
    doc.save(tmp_path / "photo.pdf")
    doc.close()
    for name in ("text.pdf", "photo.pdf"):
        with _open(tmp_path / name) as opened:
            assert next(opened.pages()).source_dpi() is None
    with pymupdf.open(_write_scan_pdf(tmp_path / "scan.pdf", image_dpi=72)) as doc:
        doc[0].insert_text((72, 72), "Small print over a coarse background picture", fontsize=6)
        doc.save(tmp_path / "texted.pdf")
    with _open(tmp_path / "texted.pdf") as opened:
        assert next(opened.pages()).source_dpi() is None  # the text is finer than the picture
    image = _save(Image.new("L", (40, 30), 255), tmp_path / "plain.png", "PNG")
    with _open(image) as opened:
        assert next(opened.pages()).source_dpi() is None  # an image file is its own pixels
