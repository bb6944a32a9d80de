"""One page's outputs: what an engine's page becomes, and what its checkpoint holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class PageOutput:
    """One converted (or failed) page, as written or read back from its checkpoint."""

    page_number: int
    markdown: str
    elements: list[dict[str, Any]]
    engine: str
    seconds: float = 0.0
    error: str | None = None
    resumed: bool = False
