"""Plain-text tables and the human forms of sizes and durations."""

from __future__ import annotations

from collections.abc import Sequence

KIB = 1024
SECONDS_PER_MINUTE = 60
SECONDS_PER_HOUR = 3600


def render_table(rows: Sequence[Sequence[str]], *, widths: Sequence[int] | None = None) -> str:
    """Columns padded to their widest cell (or ``widths``); the last column is left as it is,
    so a long error message does not widen the table."""
    if not rows:
        return ""
    if widths is None:
        widths = column_widths(rows)
    return "\n".join(
        "  ".join(
            [*(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)), row[-1]]
        ).rstrip()
        for row in rows
    )


def column_widths(rows: Sequence[Sequence[str]]) -> list[int]:
    """The width of each column but the last."""
    return [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]


def format_bytes(size: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    if size < KIB:
        return f"{size:.0f} B"
    value = size / KIB
    for unit in ("KiB", "MiB"):
        if value < KIB:
            return f"{value:.1f} {unit}"
        value /= KIB
    return f"{value:.1f} GiB"


def format_duration(seconds: float | None) -> str:
    """``4.2`` -> ``4.2s``, ``75`` -> ``1m15s``, ``3725`` -> ``1h02m``; None -> ``-``."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < SECONDS_PER_MINUTE:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < SECONDS_PER_HOUR:
        return f"{whole // SECONDS_PER_MINUTE}m{whole % SECONDS_PER_MINUTE:02d}s"
    return f"{whole // SECONDS_PER_HOUR}h{whole % SECONDS_PER_HOUR // SECONDS_PER_MINUTE:02d}m"
