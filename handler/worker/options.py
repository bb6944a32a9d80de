"""Per-document options from S3 object metadata (``x-amz-meta-pagedrop-*``, DESIGN §6)."""

from __future__ import annotations

from dataclasses import dataclass

from handler.engines.registry import AUTO, FACTORIES
from handler.errors import BadInput, ErrorCategory

META_ENGINE = "pagedrop-engine"
META_LANGUAGES = "pagedrop-languages"
META_PAGES = "pagedrop-pages"


@dataclass(frozen=True, slots=True)
class DocumentOptions:
    engine: str = AUTO
    languages: tuple[str, ...] = ()
    pages: str = ""  # "" = every page; else e.g. "1-3,7"

    def page_numbers(self, page_count: int) -> list[int]:
        return parse_pages(self.pages, page_count)


def options_from_metadata(metadata: dict[str, str], default_engine: str) -> DocumentOptions:
    """Read the options a user set on the object; a bad value is bad input."""
    engine = metadata.get(META_ENGINE, "").strip() or default_engine
    if engine != AUTO and engine not in FACTORIES:
        known = ", ".join([AUTO, *sorted(FACTORIES)])
        raise BadInput(
            ErrorCategory.UNSUPPORTED,
            f"The object asks for engine {engine!r}, which this worker does not have "
            f"(it has: {known}).",
        )
    languages = tuple(
        part.strip() for part in metadata.get(META_LANGUAGES, "").split(",") if part.strip()
    )
    return DocumentOptions(engine=engine, languages=languages, pages=metadata.get(META_PAGES, ""))


def parse_pages(spec: str, page_count: int) -> list[int]:
    """``"1-3,7"`` -> [1, 2, 3, 7]; empty -> every page; numbers past the end are dropped."""
    if not spec.strip():
        return list(range(1, page_count + 1))
    chosen: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                low_text, high_text = part.split("-", 1)
                low = int(low_text) if low_text.strip() else 1
                high = int(high_text) if high_text.strip() else page_count
            else:
                low = high = int(part)
        except ValueError:
            raise BadInput(
                ErrorCategory.UNSUPPORTED,
                f"The page selection {spec!r} is not understood; use a form like '1-3,7'.",
            ) from None
        if low < 1 or high < low:
            raise BadInput(
                ErrorCategory.UNSUPPORTED,
                f"The page selection {spec!r} has an empty or negative range {part!r}.",
            )
        chosen.update(range(low, min(high, page_count) + 1))
    if not chosen:
        raise BadInput(
            ErrorCategory.UNSUPPORTED,
            f"The page selection {spec!r} names no page of this {page_count}-page document.",
        )
    return sorted(chosen)
