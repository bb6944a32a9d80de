"""Document limits, checked before any heavy work."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int
    max_pages: int
    max_pixels_per_page: int
