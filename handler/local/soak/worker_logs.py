"""What the workers' JSON log lines say about the run: outcomes, completions, errors.

The worker logs ``document <reason>`` with ``pk``, ``disposition`` and ``status`` for every
document it deals with (``handler.worker.loop``). A worker killed with SIGKILL may leave a
torn last line; lines that are not JSON objects are counted and skipped.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DOCUMENT_PREFIX = "document "
# Outcomes that are a delivery turned away without converting anything.
SUPPRESSED = ("duplicate", "busy", "stale")
ERROR_LEVELS = frozenset({"ERROR", "CRITICAL"})


@dataclass(slots=True)
class LogSummary:
    outcomes: Counter[str] = field(default_factory=Counter)  # reason head -> count
    completions: Counter[str] = field(default_factory=Counter)  # pk -> "done" lines
    errors: list[str] = field(default_factory=list)  # messages of ERROR lines
    unreadable_lines: int = 0

    @property
    def suppressed(self) -> dict[str, int]:
        return {reason: self.outcomes[reason] for reason in SUPPRESSED}


def read_records(paths: Iterable[Path]) -> Iterator[dict[str, Any] | None]:
    """Every line of every log as a dict; None for a line that is not a JSON object."""
    for path in paths:
        with path.open("rb") as lines:
            for raw in lines:
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw)
                except ValueError:
                    yield None
                    continue
                yield record if isinstance(record, dict) else None


def summarize(paths: Iterable[Path]) -> LogSummary:
    summary = LogSummary()
    for record in read_records(paths):
        if record is None:
            summary.unreadable_lines += 1
            continue
        message = str(record.get("message", ""))
        if str(record.get("level", "")).upper() in ERROR_LEVELS:
            summary.errors.append(message)
        if not message.startswith(DOCUMENT_PREFIX) or "pk" not in record:
            continue
        reason = message.removeprefix(DOCUMENT_PREFIX)
        head = reason.split(":", 1)[0].strip()
        summary.outcomes[head] += 1
        if head == "done":
            summary.completions[str(record["pk"])] += 1
    return summary
