"""Text quality measures: character error rate (CER) against a ground truth.

Used by the quality benchmark (``bench/``) and the OCR tests. No dependency beyond numpy.
"""

from __future__ import annotations

import unicodedata

import numpy as np


def normalize_text(text: str) -> str:
    """Unicode NFC; every run of whitespace (line breaks too) collapsed to one space; stripped."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions; each costs 1) between two strings.

    One numpy row per character of the shorter string: O(len(a) * len(b)) work, O(len(b))
    memory, fast enough for whole pages (a 3,000-character page takes milliseconds).
    """
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    bb = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    idx = np.arange(len(b) + 1, dtype=np.int64)
    prev = idx.copy()
    for i, ch in enumerate(a, start=1):
        cost = (bb != ord(ch)).astype(np.int64)
        cur = np.empty_like(prev)
        cur[0] = i
        # deletion (from above) and substitution (diagonal) ...
        cur[1:] = np.minimum(prev[1:] + 1, prev[:-1] + cost)
        # ... then insertion (from the left): cur[j] = min_k<=j (cur[k] + j - k)
        cur = np.minimum.accumulate(cur - idx) + idx
        prev = cur
    return int(prev[-1])


def cer(hypothesis: str, reference: str) -> float:
    """Character error rate: edit distance / reference length, both sides normalized.

    ``normalize_text`` is applied to both strings first. An empty reference gives 0.0 when
    the hypothesis is empty too, else 1.0. The rate can exceed 1.0 (many insertions).
    """
    hyp = normalize_text(hypothesis)
    ref = normalize_text(reference)
    if not ref:
        return 0.0 if not hyp else 1.0
    return levenshtein(hyp, ref) / len(ref)
