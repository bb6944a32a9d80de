"""Character error rate: normalization, edit distance, the rate."""

from __future__ import annotations

import random

import pytest

from handler.quality import cer, levenshtein, normalize_text


def _plain_levenshtein(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        prev, row[0] = row[:], i
        for j, cb in enumerate(b, start=1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
    return row[-1]


def test_normalize_collapses_whitespace_and_strips() -> None:
    assert normalize_text("  a \t b\n\n c  \n") == "a b c"
    assert normalize_text("") == ""
    assert normalize_text("\u00a0x\u2003y ") == "x y"  # unicode spaces too


def test_normalize_composes_unicode() -> None:
    assert normalize_text("u\u0308ber") == "\u00fcber"


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("", "", 0),
        ("", "abc", 3),
        ("abc", "", 3),
        ("abc", "abc", 0),
        ("kitten", "sitting", 3),
        ("flaw", "lawn", 2),
        ("über", "uber", 1),
        ("ab", "ba", 2),
    ],
)
def test_levenshtein_known_values(a: str, b: str, distance: int) -> None:
    assert levenshtein(a, b) == distance
    assert levenshtein(b, a) == distance


def test_levenshtein_matches_plain_dynamic_programming() -> None:
    rng = random.Random(7)
    for _ in range(300):
        a = "".join(rng.choice("abcä ") for _ in range(rng.randint(0, 15)))
        b = "".join(rng.choice("abcä ") for _ in range(rng.randint(0, 15)))
        assert levenshtein(a, b) == _plain_levenshtein(a, b), (a, b)


def test_cer_rates() -> None:
    assert cer("hello world", "hello world") == 0.0
    assert cer("hellO world", "hello world") == pytest.approx(1 / 11)
    assert cer("hello", "hello world") == pytest.approx(6 / 11)
    assert cer("xx hello world", "hello world") == pytest.approx(3 / 11)


def test_cer_ignores_layout_whitespace() -> None:
    assert cer("The quick\nbrown  fox.\n", "The quick brown fox.") == 0.0
    assert cer("Thequick brown fox.", "The quick brown fox.") == pytest.approx(1 / 20)


def test_cer_empty_reference() -> None:
    assert cer("", "  \n") == 0.0
    assert cer("text", "") == 1.0
