"""Titles and figures on OCR pages, from line boxes and synthetic ink (no OCR)."""

from __future__ import annotations

import numpy as np

from handler.engines.base import ElementType
from handler.engines.ocr_layout import OcrLine, lines_to_elements
from handler.engines.ocr_rulings import PageInk

BODY = 30.0  # body line box height
PITCH = 36.0
WIDTH, HEIGHT = 1200, 1600
TEXT = "the river runs past the old mill and on into the valley below the hills"


def _line(text: str, x0: float, y0: float, x1: float, h: float = BODY) -> OcrLine:
    return OcrLine(text, 0.95, x0, y0, x1, y0 + h, h)


def _para(y0: float, n: int = 3, first: str = "The") -> list[OcrLine]:
    lines = [_line(f"{first} {TEXT} {i}", 100, y0 + i * PITCH, 1100) for i in range(n - 1)]
    lines.append(_line("and so it ends.", 100, y0 + (n - 1) * PITCH, 400))
    return lines


def _kinds(elements) -> list[tuple[ElementType, int | None]]:
    return [(e.type, e.level) for e in elements]


def _ink(dark: np.ndarray, text_boxes=()) -> PageInk:
    return PageInk(dark, dark, 1.0, 1.0, [], list(text_boxes))


# -- titles ----------------------------------------------------------------------------------------


def test_heading_levels_follow_the_height_over_the_body() -> None:
    lines = [
        _line("Annual Report", 100, 60, 700, h=2.0 * BODY),
        *_para(160),
        _line("Results and Outlook", 100, 320, 700, h=1.5 * BODY),
        *_para(400),
        _line("Regional detail", 100, 560, 450, h=1.22 * BODY),  # a blank line above and below
        *_para(630),
    ]
    elements = lines_to_elements(lines, WIDTH, HEIGHT)
    title, body, level = ElementType.TITLE, ElementType.NARRATIVE_TEXT, None
    assert _kinds(elements) == [(title, 1), (body, level), (title, 2), (body, level),
                                (title, 3), (body, level)]  # fmt: skip
    assert elements[4].text == "Regional detail"


def test_slightly_taller_line_without_blank_gaps_is_body_text() -> None:
    lines = [*_para(100), _line("Regional detail", 100, 100 + 3 * PITCH, 450, h=1.22 * BODY)]
    lines += _para(100 + 4 * PITCH)
    elements = lines_to_elements(lines, WIDTH, HEIGHT)
    assert ElementType.TITLE not in {e.type for e in elements}


def test_a_tall_first_line_of_a_paragraph_stays_in_it() -> None:
    # a large initial capital makes the first box taller; the line runs on below
    first = _line("Once upon a time " + TEXT, 100, 100, 1100, h=1.6 * BODY)
    rest = [_line(f"{TEXT} {i}", 100, 100 + 1.6 * BODY + 4 + i * PITCH, 1100) for i in range(3)]
    (element,) = lines_to_elements([first, *rest], WIDTH, HEIGHT)
    assert element.type is ElementType.NARRATIVE_TEXT
    assert element.text.startswith("Once upon a time") and element.text.endswith(f"{TEXT} 2")


def test_centred_short_line_at_the_top_in_body_height_is_no_title() -> None:
    lines = [_line("Journal of Examples, Vol. 3", 450, 40, 750), *_para(120), *_para(300)]
    elements = lines_to_elements(lines, WIDTH, HEIGHT)
    assert elements[0].text == "Journal of Examples, Vol. 3"
    assert elements[0].type is ElementType.NARRATIVE_TEXT


def test_formula_and_large_numbered_heading() -> None:
    lines = [
        _line("2. Results", 100, 60, 400, h=1.6 * BODY),  # a heading, not a list item
        *_para(140),
        _line("a2 + b2 = c2", 400, 300, 700, h=1.5 * BODY),  # superscripts made it taller
        *_para(380),
    ]
    elements = lines_to_elements(lines, WIDTH, HEIGHT)
    assert _kinds(elements)[0] == (ElementType.TITLE, 2)
    formula = next(e for e in elements if e.text.startswith("a2"))
    assert formula.type is ElementType.NARRATIVE_TEXT


def test_caption_line_starts_its_own_block() -> None:
    lines = [
        _line(f"The {TEXT}", 100, 100, 1100),
        _line("Table 2: Prices by region", 100, 100 + PITCH, 500),
    ]
    elements = lines_to_elements(lines, WIDTH, HEIGHT)
    assert [e.text for e in elements] == [f"The {TEXT}", "Table 2: Prices by region"]


# -- figures ---------------------------------------------------------------------------------------


def test_photo_becomes_an_image_with_its_caption() -> None:
    dark = np.zeros((HEIGHT, WIDTH), dtype=bool)
    dark[300:700, 200:800] = True  # a photo (no text on it)
    lines = [*_para(150, n=2), _line("Figure 1. The mill from the river.", 200, 720, 800)]
    lines += _para(800)
    elements = lines_to_elements(lines, WIDTH, HEIGHT, ink=_ink(dark))
    assert [e.type for e in elements] == [
        ElementType.NARRATIVE_TEXT,
        ElementType.IMAGE,
        ElementType.FIGURE_CAPTION,
        ElementType.NARRATIVE_TEXT,
    ]
    image = elements[1]
    assert image.text == ""
    assert image.bbox[0] <= 200 and image.bbox[2] >= 796 and 292 <= image.bbox[1] <= 300


def test_chart_takes_its_labels() -> None:
    dark = np.zeros((HEIGHT, WIDTH), dtype=bool)
    dark[400:700, 300:400] = True  # bars
    dark[500:700, 500:600] = True
    dark[400:702, 298:300] = True  # axes
    dark[700:702, 298:700] = True
    lines = [
        *_para(150, n=2),
        _line("100", 230, 390, 280),  # axis ticks left of the bars
        _line("50", 240, 540, 280),
        _line("0", 260, 690, 280),
        _line("North", 310, 710, 390),  # labels under them
        _line("South", 510, 710, 590),
        *_para(800),
    ]
    elements = lines_to_elements(lines, WIDTH, HEIGHT, ink=_ink(dark))
    images = [e for e in elements if e.type is ElementType.IMAGE]
    assert len(images) == 1
    assert set(images[0].text.split()) == {"100", "50", "0", "North", "South"}
    assert not any(e.text in {"North", "South", "50"} for e in elements if e is not images[0])


def test_shaded_text_box_and_unread_text_are_no_figures() -> None:
    dark = np.zeros((HEIGHT, WIDTH), dtype=bool)
    dark[280:460, 80:1120] = True  # a tinted box behind a paragraph
    boxed = _para(300, n=4)
    dark[700:1000, 100:1100] = True  # text the recogniser could not read
    unread = [(100.0, 700.0 + 40 * i, 1100.0, 730.0 + 40 * i) for i in range(8)]
    lines = [*_para(100, n=2), *boxed, *_para(1100)]
    elements = lines_to_elements(lines, WIDTH, HEIGHT, ink=_ink(dark, unread))
    assert ElementType.IMAGE not in {e.type for e in elements}
    # a narrow coloured sidebar: short lines, but running text all the same
    dark = np.zeros((HEIGHT, WIDTH), dtype=bool)
    dark[200:800, 850:1150] = True
    words = ["Reports are written", "by the research", "service of the", "assembly. Experts",
             "from around the", "world take part", "in every one", "of them each",
             "year."]  # fmt: skip
    sidebar = [_line(w, 870, 220 + i * PITCH, 870 + 14 * len(w)) for i, w in enumerate(words)]
    elements = lines_to_elements([*_para(100, n=2), *sidebar], WIDTH, HEIGHT, ink=_ink(dark))
    assert ElementType.IMAGE not in {e.type for e in elements}
