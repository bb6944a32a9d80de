"""Figure and table captions: the text right below or above an image or a table that starts
like a caption ("Figure 3", "Fig. 2:", "Table 1.", "Abbildung 4", "Tableau 2", "图 1").

Shared by the engines: boxes only need to be in one y-down coordinate system (points or
pixels). Both position and wording must agree, so a paragraph that merely mentions
"Figure 3" is never taken:

- the text element is the nearest one below (or above) the figure, its top within
  ``CAPTION_GAP_SHARE`` of the page height of the figure's bottom (or its bottom as close
  to the figure's top), and it overlaps the figure horizontally by at least
  ``MIN_OVERLAP_SHARE`` of the narrower of the two;
- its text starts with a caption word as printed (capitalised or in capitals, never
  lowercase), a label (``3``, ``2.1``, ``2-2``, ``A.1``, ``IV``) and then the end of the
  text, punctuation, or a word that does not start in lowercase ("Figure 3 shows ..." is
  a sentence, not a caption).

Images look below first, tables above first (where each is usually captioned).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from handler.engines.base import BBox, Element, ElementType

CAPTION_GAP_SHARE = 0.04  # of the page height: about 32 pt on a letter page
MIN_OVERLAP_SHARE = 0.5  # of the narrower width
EDGE_TOLERANCE_SHARE = 0.005  # of the page height a caption may overlap its figure by

# Caption words of a few languages, as printed in running text; "Fig." and "Tab." need
# their period.
CAPTION_WORDS = (
    "Figure", "Fig.", "Table", "Tab.", "Chart", "Graph", "Diagram", "Exhibit", "Plate",
    "Scheme", "Listing", "Illustration", "Photo", "Map",
    "Abbildung", "Abb.", "Tabelle", "Grafik", "Darstellung",  # German
    "Tableau", "Graphique", "Schéma",  # French
    "Figura", "Tabla", "Gráfico", "Cuadro", "Tabella", "Grafico", "Tabela",  # es/it/pt
    "Afbeelding", "Tabel", "Figuur",  # Dutch
    "Rysunek", "Rys.",  # Polish
    "Рисунок", "Рис.", "Таблица",  # Russian
    "Figur", "Tabell", "Kuva", "Taulukko",  # Nordic
)  # fmt: skip
CJK_CAPTION_WORDS = ("图", "圖", "表", "図", "그림", "표")

_LABEL = r"(?:[A-Z]\.?\s?)?\d+(?:[.\-\u2013]\d+)*[a-z]?|[IVXLC]{1,6}"
_AFTER_LABEL = r"(?:$|\s*[.:|\u2014\u2013-]|\s+(?=[^\s\da-z]))"
_WORDS = "|".join(re.escape(variant) for word in CAPTION_WORDS for variant in (word, word.upper()))
_CAPTION_RE = re.compile(rf"^(?:{_WORDS})\s*(?:{_LABEL}){_AFTER_LABEL}")
_CJK_CAPTION_RE = re.compile(rf"^(?:{'|'.join(CJK_CAPTION_WORDS)})\s*\d+")

TEXT_TYPES = frozenset(
    {ElementType.NARRATIVE_TEXT, ElementType.TITLE, ElementType.UNCATEGORIZED_TEXT}
)
FIGURE_TYPES = frozenset({ElementType.IMAGE, ElementType.TABLE})


def starts_like_caption(text: str) -> bool:
    """``text`` opens with a caption word and a label (see the module docstring)."""
    text = text.lstrip()
    return bool(_CAPTION_RE.match(text) or _CJK_CAPTION_RE.match(text))


def mark_captions(elements: list[Element], page_height: float) -> None:
    """Turn the text element captioning each image or table into ``FigureCaption``."""
    for figure in elements:
        if figure.type not in FIGURE_TYPES:
            continue
        sides = ("below", "above") if figure.type is ElementType.IMAGE else ("above", "below")
        for side in sides:
            caption = _nearest_text(figure, elements, side, page_height)
            if caption is not None and starts_like_caption(caption.text):
                caption.type = ElementType.FIGURE_CAPTION
                caption.level = None
                break


def _nearest_text(
    figure: Element, elements: Sequence[Element], side: str, page_height: float
) -> Element | None:
    """The text element nearest to ``figure`` on ``side`` within the caption gap, if that
    nearest one is text (an image or another caption in between stops the search)."""
    tolerance = EDGE_TOLERANCE_SHARE * page_height
    max_gap = CAPTION_GAP_SHARE * page_height
    best: tuple[float, Element] | None = None
    for element in elements:
        box = element.bbox
        if element is figure or not _overlaps_across(figure.bbox, box):
            continue
        gap = box[1] - figure.bbox[3] if side == "below" else figure.bbox[1] - box[3]
        if not -tolerance <= gap <= max_gap:
            continue
        if best is None or gap < best[0]:
            best = (gap, element)
    if best is None or best[1].type not in TEXT_TYPES:
        return None
    return best[1]


def _overlaps_across(a: BBox, b: BBox) -> bool:
    overlap = min(a[2], b[2]) - max(a[0], b[0])
    narrower = min(a[2] - a[0], b[2] - b[0])
    return narrower > 0 and overlap >= MIN_OVERLAP_SHARE * narrower
