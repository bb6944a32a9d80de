"""Plain-text and markdown tables, ratios and target verdicts for the performance scripts."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from bench.runner import machine, versions

Cell = str | int | float | None


def cell(value: Cell, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Cell]], *, markdown: bool = False) -> str:
    """A fixed-width table (first column left-aligned, the rest right) or a GitHub one."""
    body = [[cell(v) for v in row] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [list(headers), *body]) for i in range(len(headers))]

    def fixed(cells: Sequence[str]) -> str:
        parts = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([fixed(headers), fixed(["-" * w for w in widths]), *map(fixed, body)])


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or None when either is missing or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def verdict(value: float | None, target: float, *, at_most: bool) -> str:
    """``met``/``not met`` against a target (``at_most``: value <= target; else >=)."""
    if value is None:
        return "not measured"
    met = value <= target if at_most else value >= target
    return "met" if met else "not met"


def target_line(name: str, value: float | None, target: float, *, at_most: bool) -> str:
    sign = "<=" if at_most else ">="
    shown = cell(value)
    return f"{name}: {shown} (target {sign} {target:g}): {verdict(value, target, at_most=at_most)}"


def run_header(seconds: float, **options: Any) -> dict[str, Any]:
    """The ``run`` section of a script's JSON: when, where, with what."""
    return {
        "seconds": round(seconds, 1),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "versions": {**versions(), **_more_versions()},
        "options": options,
    }


def _more_versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for package in ("moto", "boto3"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "-"
    return out
