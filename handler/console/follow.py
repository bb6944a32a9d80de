"""``--follow``: show documents again and again until every one is final.

On a terminal the table is redrawn in place; anywhere else (a pipe, a CI log) the table is
printed once and then only the rows that changed, so a log reads as a history.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TextIO

from handler.console.documents import (
    HEADER,
    NOT_FOUND,
    DocumentView,
    status_table,
    summary_line,
)
from handler.console.errors import EXIT_FAILURE, EXIT_OK
from handler.console.tables import column_widths, render_table
from handler.status.model import Status

DEFAULT_INTERVAL_S = 2.0  # a status read per document every 2 s: live enough, cheap enough
_UP_AND_CLEAR = "\x1b[{n}F\x1b[J"  # cursor up n lines to column 1, clear to the end of screen


class Display(Protocol):
    def show(self, views: Sequence[DocumentView], now: datetime) -> None: ...


@dataclass(frozen=True, slots=True)
class FollowOutcome:
    views: list[DocumentView]
    timed_out: bool

    @property
    def all_succeeded(self) -> bool:
        return not self.timed_out and all(v.status == Status.SUCCEEDED for v in self.views)

    @property
    def unfinished(self) -> list[DocumentView]:
        return [view for view in self.views if not view.final]


def follow(
    fetch: Callable[[], list[DocumentView]],
    display: Display,
    *,
    interval_s: float = DEFAULT_INTERVAL_S,
    timeout_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> FollowOutcome:
    """Fetch and show until every document is final, or ``timeout_s`` passed."""
    deadline = None if timeout_s is None else clock() + timeout_s
    while True:
        views = fetch()
        display.show(views, datetime.now(UTC))
        if all(view.final for view in views):
            return FollowOutcome(views, timed_out=False)
        if deadline is not None and clock() >= deadline:
            return FollowOutcome(views, timed_out=True)
        wait = interval_s if deadline is None else min(interval_s, max(0.0, deadline - clock()))
        sleep(wait)


class LiveDisplay:
    """Redraws the table in place (a terminal)."""

    def __init__(self, stream: TextIO, columns: int | None = None) -> None:
        self._stream = stream
        self._columns = columns
        self._drawn = 0

    def show(self, views: Sequence[DocumentView], now: datetime) -> None:
        # Lines are cut to the terminal's width: a wrapped line would throw the count of
        # lines to move up off, and each redraw would leave a copy behind.
        width = (self._columns or shutil.get_terminal_size().columns) - 1
        lines = [*status_table(views, now).splitlines(), summary_line(views)]
        lines = [line[:width] for line in lines]
        if self._drawn:
            self._stream.write(_UP_AND_CLEAR.format(n=self._drawn))
        self._stream.write("\n".join(lines) + "\n")
        self._stream.flush()
        self._drawn = len(lines)


class ChangeDisplay:
    """Prints the table once, then each row again when its status, pages or error change."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._seen: dict[str, tuple[str, ...]] = {}
        self._widths: list[int] | None = None

    def show(self, views: Sequence[DocumentView], now: datetime) -> None:
        changed = [v for v in views if self._seen.get(v.key) != v.change_token()]
        for view in changed:
            self._seen[view.key] = view.change_token()
        if self._widths is None:
            rows = [HEADER, *(view.row(now) for view in views)]
            self._widths = column_widths(rows)
            self._stream.write(render_table(rows) + "\n")
        elif changed:
            rows = [view.row(now) for view in changed]
            # Columns only widen, so that rows printed later line up with those before.
            self._widths = [
                max(a, b) for a, b in zip(self._widths, column_widths(rows), strict=True)
            ]
            self._stream.write(render_table(rows, widths=self._widths) + "\n")
        self._stream.flush()


class QuietDisplay:
    """Shows nothing while following (``--json`` prints the end state only)."""

    def show(self, views: Sequence[DocumentView], now: datetime) -> None:
        return None


def follow_and_report(
    fetch: Callable[[], list[DocumentView]],
    *,
    interval_s: float,
    timeout_s: float | None,
    out: TextIO,
    err: TextIO,
    as_json: bool = False,
    prog: str = "pagedrop status",
) -> int:
    """Follow, then say how it ended: exit 0 when every document SUCCEEDED, else 1."""
    live = out.isatty() and not as_json
    display: Display = (
        QuietDisplay() if as_json else LiveDisplay(out) if live else ChangeDisplay(out)
    )
    outcome = follow(fetch, display, interval_s=interval_s, timeout_s=timeout_s)
    if as_json:
        out.write(json.dumps([view.as_json() for view in outcome.views], indent=2) + "\n")
    elif not live:
        out.write(summary_line(outcome.views) + "\n")  # the live table carries it already
    for view in outcome.views:
        if view.status == NOT_FOUND:
            err.write(f"{prog}: {view.key} has no status and is not in the bucket.\n")
    if outcome.timed_out:
        waiting = len(outcome.unfinished)
        err.write(
            f"{prog}: gave up after {timeout_s:g} s with {waiting} document"
            f"{'' if waiting == 1 else 's'} not finished.\n"
        )
    return EXIT_OK if outcome.all_succeeded else EXIT_FAILURE
