"""The status table, its rows, and --follow's loop and displays, without AWS."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from handler.console.documents import (
    NOT_FOUND,
    QUEUED,
    DocumentView,
    SourceVersion,
    status_table,
    summary_line,
)
from handler.console.follow import ChangeDisplay, LiveDisplay, follow, follow_and_report
from handler.console.tables import format_bytes, format_duration, render_table
from handler.status.model import StatusItem

NOW = datetime(2026, 11, 5, 12, 0, 30, tzinfo=UTC)


def _item(status: str, **raw: Any) -> StatusItem:
    return StatusItem(
        {
            "pk": "docs/in/a.pdf",
            "key": "in/a.pdf",
            "status": status,
            "pages_done": Decimal(1),
            "pages_total": Decimal(4),
            "engine": ["text-layer"],
            "started_at": "2026-11-05T12:00:00.000000Z",
            **raw,
        }
    )


def _view(status: str, **raw: Any) -> DocumentView:
    return DocumentView("in/a.pdf", status, _item(status, **raw))


def test_rows_say_status_pages_engines_duration_and_error() -> None:
    running = _view("PROCESSING")
    assert running.row(NOW) == ("in/a.pdf", "PROCESSING", "1/4", "text-layer", "30.0s", "")
    failed = _view(
        "FAILED",
        finished_at="2026-11-05T12:01:15.000000Z",
        error={"category": "corrupt", "message": "The PDF is damaged."},
    )
    assert failed.row(NOW)[4:] == ("1m15s", "corrupt: The PDF is damaged.")
    assert failed.final and not running.final
    queued = DocumentView("in/b.pdf", QUEUED)
    assert queued.row(NOW) == ("in/b.pdf", "QUEUED", "-", "-", "-", "waiting for a worker")
    assert not queued.final
    assert DocumentView("in/c.pdf", NOT_FOUND).final  # nothing will ever come of it
    assert queued.as_json() == {"key": "in/b.pdf", "status": "QUEUED"}
    assert failed.as_json()["pages_total"] == 4 and isinstance(failed.as_json()["pages_total"], int)


def test_a_new_upload_is_not_described_by_an_older_versions_item() -> None:
    item = _item("SUCCEEDED", version_id="v1", etag="e1")
    assert SourceVersion("v1", "e1").described_by(item)
    assert not SourceVersion("v2", "e1").described_by(item)
    # Without version ids (an unversioned bucket, or an event that had none): the ETag decides
    unversioned = _item("SUCCEEDED", version_id="", etag="e1")
    assert SourceVersion("v2", "e1").described_by(unversioned)
    assert not SourceVersion(None, "e2").described_by(unversioned)


def test_the_table_and_its_summary() -> None:
    views = [_view("SUCCEEDED", finished_at="2026-11-05T12:00:04.2Z"), DocumentView("x", QUEUED)]
    assert status_table(views, NOW).splitlines() == [
        "key       status     pages  engines     duration  error",
        "in/a.pdf  SUCCEEDED  1/4    text-layer  4.2s",
        "x         QUEUED     -      -           -         waiting for a worker",
    ]
    assert summary_line(views) == "2 documents: 1 QUEUED, 1 SUCCEEDED"
    assert summary_line(views[:1]) == "1 document: 1 SUCCEEDED"


def test_sizes_and_durations_read_as_people_write_them() -> None:
    assert [format_bytes(n) for n in (0, 1023, 1536, 5 * 1024**2, 3 * 1024**3)] == [
        "0 B",
        "1023 B",
        "1.5 KiB",
        "5.0 MiB",
        "3.0 GiB",
    ]
    assert [format_duration(s) for s in (None, -1, 4.24, 75, 3725)] == [
        "-",
        "0.0s",
        "4.2s",
        "1m15s",
        "1h02m",
    ]
    assert render_table([("a", "bb", "last"), ("ccc", "d", "")]) == "a    bb  last\nccc  d"


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _sequence(*statuses: str) -> Iterator[list[DocumentView]]:
    for status in statuses:
        yield [_view(status)]


def test_follow_stops_when_all_are_final() -> None:
    clock, shown = _Clock(), []
    reads = _sequence("PROCESSING", "PROCESSING", "SUCCEEDED", "SUCCEEDED")

    class Record:
        def show(self, views: Sequence[DocumentView], now: datetime) -> None:
            shown.append(views[0].status)

    outcome = follow(lambda: next(reads), Record(), interval_s=2, clock=clock, sleep=clock.sleep)
    assert shown == ["PROCESSING", "PROCESSING", "SUCCEEDED"]
    assert outcome.all_succeeded and not outcome.timed_out and clock.now == 4


def test_follow_gives_up_at_the_timeout_without_oversleeping() -> None:
    clock = _Clock()
    outcome = follow(
        lambda: [_view("PROCESSING")],
        ChangeDisplay(io.StringIO()),
        interval_s=2,
        timeout_s=5,
        clock=clock,
        sleep=clock.sleep,
    )
    assert outcome.timed_out and not outcome.all_succeeded
    assert clock.now == 5
    assert [v.key for v in outcome.unfinished] == ["in/a.pdf"]


def test_changes_only_are_printed_where_there_is_no_terminal() -> None:
    stream = io.StringIO()
    display = ChangeDisplay(stream)
    display.show([_view("PROCESSING")], NOW)
    display.show([_view("PROCESSING")], NOW)  # same status and pages: nothing printed
    display.show([_view("PROCESSING", pages_done=Decimal(3))], NOW)
    display.show([_view("SUCCEEDED", pages_done=Decimal(4))], NOW)
    lines = stream.getvalue().splitlines()
    assert [line.split()[1:3] for line in lines[1:]] == [
        ["PROCESSING", "1/4"],
        ["PROCESSING", "3/4"],
        ["SUCCEEDED", "4/4"],
    ]
    assert lines[0].startswith("key")


def test_a_terminal_gets_the_table_redrawn_in_place() -> None:
    stream = io.StringIO()
    display = LiveDisplay(stream, columns=40)
    display.show([_view("PROCESSING")], NOW)
    display.show([_view("SUCCEEDED")], NOW)
    first, second = stream.getvalue().split("\x1b[3F\x1b[J")  # up 3 lines: header, row, summary
    assert first.splitlines()[2] == "1 document: 1 PROCESSING"
    assert all(len(line) <= 39 for line in second.splitlines())  # cut, so nothing wraps
    assert "SUCCEEDED" in second


def test_the_exit_code_says_whether_all_succeeded() -> None:
    def report(status: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = follow_and_report(
            lambda: [_view(status)], interval_s=0.01, timeout_s=0.05, out=out, err=err
        )
        return code, out.getvalue(), err.getvalue()

    assert report("SUCCEEDED")[0] == 0
    assert report("PARTIAL")[0] == 1
    assert report("FAILED")[0] == 1
    code, out, err = report("PROCESSING")
    assert code == 1
    assert err == "pagedrop status: gave up after 0.05 s with 1 document not finished.\n"
    assert out.splitlines()[-1] == "1 document: 1 PROCESSING"
