"""The benchmark's measures, each on plain data: text, words, tables, headings, order.

Each score keeps its counts, so overall numbers can be pooled across documents and a
reader can see what a rate is made of. A rate is ``None`` where there is nothing to
measure (no ground truth of that kind).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from bench.ground_truth import GtTable
from bench.markdown_text import Grid, plain_text
from handler.quality import levenshtein, normalize_text

#: Reference blocks shorter than this many words are not placed in the output: a short
#: block ("Table 1", "2004") occurs in many places, so where it is found says nothing.
MIN_ORDER_BLOCK_WORDS = 4
#: Words in an anchor: a run this long occurs once in a document unless the text repeats.
ANCHOR_WORDS = 6


def words(text: str) -> list[str]:
    """Words for counting: NFKC, case-folded; letters, digits and their combining marks."""
    text = unicodedata.normalize("NFKC", text).casefold()
    out: list[str] = []
    current: list[str] = []
    for ch in text:
        if ch.isalnum() or unicodedata.category(ch).startswith("M"):
            current.append(ch)
        elif current:
            out.append("".join(current))
            current = []
    if current:
        out.append("".join(current))
    return out


# -- characters ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextScore:
    errors: int  # edit distance
    ref_chars: int

    @property
    def cer(self) -> float:
        if not self.ref_chars:
            return 0.0 if not self.errors else 1.0
        return self.errors / self.ref_chars


def text_score(output_text: str, reference_text: str) -> TextScore:
    """Character errors of ``output_text`` (plain text) against the ground truth text.

    Both sides are normalised as :func:`handler.quality.cer` does (NFC, whitespace runs
    collapsed), so line breaks against spaces cost nothing.
    """
    hyp, ref = normalize_text(output_text), normalize_text(reference_text)
    return TextScore(levenshtein(hyp, ref), len(ref))


_BROKEN_WORD = re.compile(r"([^\W\d_])-[ \t]*\n\s*([^\W\d_])")


def join_hyphenated(text: str) -> str:
    """Words split by a hyphen and a line break ("ent-\\nfalten") joined into one.

    Only across a line break and before a lower-case letter, so "Garten- und Obstzucht"
    and "Stadt-\\nBevölkerung" stay. Applied to both sides, it gives a secondary CER that
    neither rewards nor punishes repairing end-of-line hyphenation (a ground truth that
    keeps the hyphens counts the repair as errors; one that joins them, keeping them).
    """
    return _BROKEN_WORD.sub(
        lambda m: m.group(1) + m.group(2) if m.group(2).islower() else m.group(0), text
    )


# -- words ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WordScore:
    matched: int  # words of the reference found in the output (multiset intersection)
    ref_words: int
    out_words: int

    @property
    def recall(self) -> float | None:
        return self.matched / self.ref_words if self.ref_words else None

    @property
    def precision(self) -> float | None:
        if not self.ref_words:
            return None
        return self.matched / self.out_words if self.out_words else 0.0


def word_score(output_text: str, reference_text: str) -> WordScore:
    """Share of the reference's words found in the output, and of the output's in the
    reference, counting each word as often as it occurs (emitting text twice does not pay)."""
    out, ref = Counter(words(output_text)), Counter(words(reference_text))
    return WordScore(sum((out & ref).values()), sum(ref.values()), sum(out.values()))


# -- tables --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TableScore:
    gt_cells: int
    at_position: int  # cells found at their row and column (after the best offset)
    anywhere: int  # cells found in any cell of any output table

    @property
    def accuracy(self) -> float | None:
        return self.at_position / self.gt_cells if self.gt_cells else None

    @property
    def found(self) -> float | None:
        return self.anywhere / self.gt_cells if self.gt_cells else None


def cell_key(text: str) -> str:
    """A cell's content for comparison: markdown removed, NFKC, case-folded, spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKC", plain_text(text)).casefold().split())


def table_score(gt_tables: Sequence[GtTable], out_tables: Sequence[Grid]) -> TableScore:
    """Ground-truth cells found in the output's tables, at their position and anywhere.

    Each ground-truth table is compared with every output table under every row/column
    offset that lines up at least one cell (a header laid out differently shifts the
    whole grid), and the best pair counts. ``anywhere`` matches cell contents across all
    output tables, each output cell used once.
    """
    gt = [[(c.row, c.col, cell_key(c.text)) for c in t if cell_key(c.text)] for t in gt_tables]
    grids = [[[cell_key(cell) for cell in row] for row in grid] for grid in out_tables]
    total = sum(len(t) for t in gt)
    at_position = sum(max((_best_offset_hits(t, g) for g in grids), default=0) for t in gt)
    pool = Counter(cell for g in grids for row in g for cell in row if cell)
    wanted = Counter(key for t in gt for _, _, key in t)
    return TableScore(total, at_position, sum((pool & wanted).values()))


def _best_offset_hits(gt: list[tuple[int, int, str]], grid: list[list[str]]) -> int:
    where: dict[str, list[tuple[int, int]]] = {}
    for r, row in enumerate(grid):
        for c, key in enumerate(row):
            if key:
                where.setdefault(key, []).append((r, c))
    offsets = Counter((r - gr, c - gc) for gr, gc, key in gt for r, c in where.get(key, ()))
    best = 0
    for dr, dc in offsets:
        hits = sum(
            1
            for gr, gc, key in gt
            if 0 <= gr + dr < len(grid)
            and 0 <= gc + dc < len(grid[gr + dr])
            and grid[gr + dr][gc + dc] == key
        )
        best = max(best, hits)
    return best


# -- headings ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeadingScore:
    ref_headings: int
    out_headings: int
    matched: int  # reference headings found as headings (same words)
    same_level: int  # of the matched, those at the reference's level

    @property
    def recall(self) -> float | None:
        return self.matched / self.ref_headings if self.ref_headings else None

    @property
    def precision(self) -> float | None:
        if not self.ref_headings:
            return None
        return self.matched / self.out_headings if self.out_headings else 0.0

    ref_levels: int = 0  # distinct heading levels the reference uses

    @property
    def level_agreement(self) -> float | None:
        """None where the reference has a single level: its levels then say nothing."""
        if not self.matched or self.ref_levels < 2:
            return None
        return self.same_level / self.matched


def heading_score(
    out_headings: Sequence[tuple[int, str]], ref_headings: Sequence[tuple[int, str]]
) -> HeadingScore:
    """Reference headings found among the output's headings, by their words.

    Each output heading matches at most one reference heading; among several with the
    same words, the one at the same level is preferred.
    """
    unused: dict[str, list[int]] = {}
    for level, text in out_headings:
        unused.setdefault(" ".join(words(text)), []).append(level)
    matched = same = 0
    for level, text in ref_headings:
        levels = unused.get(" ".join(words(text)))
        if not levels:
            continue
        matched += 1
        if level in levels:
            same += 1
            levels.remove(level)
        else:
            levels.pop(0)
    ref_levels = len({level for level, _ in ref_headings})
    return HeadingScore(len(ref_headings), len(out_headings), matched, same, ref_levels)


# -- reading order -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderScore:
    blocks: int  # reference blocks long enough to place
    found: int  # of those, placed in the output by an anchor that occurs once there
    pairs: int  # consecutive pairs of placed blocks
    in_order: int  # pairs the output has in the reference's order

    @property
    def score(self) -> float | None:
        return self.in_order / self.pairs if self.pairs else None


def order_score(output_text: str, reference_blocks: Sequence[str]) -> OrderScore:
    """Of consecutive reference blocks (lines or paragraphs) both found in the output, the
    share the output has in the same order.

    A block is placed by the first of its word runs (``ANCHOR_WORDS`` long, taken from its
    start onwards, then its end) that occurs exactly once in the output and once in the
    whole reference: an OCR error in one part of a block does not lose it, and text that
    repeats (boilerplate, lorem ipsum) cannot place a block where another one is.
    """
    out = words(output_text)
    ref_blocks = [
        ws for block in reference_blocks if len(ws := words(block)) >= MIN_ORDER_BLOCK_WORDS
    ]
    ref_all = [w for block in reference_blocks for w in [*words(block), "\x00"]]
    out_index: dict[int, dict[tuple[str, ...], list[int]]] = {}
    ref_index: dict[int, dict[tuple[str, ...], list[int]]] = {}
    placed: list[int] = []
    for ws in ref_blocks:
        n = min(ANCHOR_WORDS, len(ws))
        if n not in out_index:
            out_index[n] = _ngram_positions(out, n)
            ref_index[n] = _ngram_positions(ref_all, n)
        starts = [*range(0, len(ws) - n + 1, n), len(ws) - n]
        for start in dict.fromkeys(starts):
            anchor = tuple(ws[start : start + n])
            hits = out_index[n].get(anchor, [])
            if len(hits) == 1 and len(ref_index[n].get(anchor, [])) == 1:
                placed.append(hits[0] - start)
                break
    pairs = list(itertools.pairwise(placed))
    return OrderScore(len(ref_blocks), len(placed), len(pairs), sum(1 for a, b in pairs if a < b))


def _ngram_positions(tokens: list[str], n: int) -> dict[tuple[str, ...], list[int]]:
    positions: dict[tuple[str, ...], list[int]] = {}
    for i in range(len(tokens) - n + 1):
        positions.setdefault(tuple(tokens[i : i + n]), []).append(i)
    return positions


def reference_blocks(reference_md: str | None, text_lines: Sequence[str] | None) -> list[str]:
    """The units whose order is checked: the text ground truth's lines where there is one
    (a human's), else the reference markdown's paragraphs (tables left out)."""
    if text_lines:
        return [line for line in text_lines if line.strip()]
    if not reference_md:
        return []
    blocks: list[str] = []
    for block in reference_md.split("\n\n"):
        lines = [line for line in block.splitlines() if not line.lstrip().startswith("|")]
        text = plain_text("\n".join(lines)).strip()
        if text:
            blocks.append(text)
    return blocks
