#!/usr/bin/env python3
"""Character error rate of pagedrop's OCR path on scans: the quality benchmark, pagedrop only.

    python scripts/measure_cer.py                      # the corpus's scans
    python scripts/measure_cer.py PAGE.tif:GT.txt DOC.pdf ...

The same as ``bench/quality.py --scanned-only --systems pagedrop [ARGS]`` (any of its
options pass through, e.g. ``--json``); see docs/quality.md for the columns. A document's
ground truth is ``DOC:GT.txt`` or, by the corpus convention, ``gt/<stem>.txt`` beside it.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO_ROOT))

from bench.quality import main as bench_main  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    return bench_main(["--scanned-only", "--systems", "pagedrop", *args])


if __name__ == "__main__":
    sys.exit(main())
