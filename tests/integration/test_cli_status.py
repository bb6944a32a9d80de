"""``pagedrop status`` against the local endpoint: the table, its forms, and --follow."""

from __future__ import annotations

import json
import time

import pytest

from handler.aws import Clients
from handler.settings import Settings
from tests.conftest import DATA, SAMPLES, drain, upload
from tests.integration.cli_support import (
    aws_args,
    run_cli,
    running_worker,
    table_rows,
    use_local_credentials,
)

pytestmark = pytest.mark.integration

PDF = SAMPLES / "pysf__multicolumn.pdf"
ENCRYPTED = DATA / "hostile" / "pypdf__r6-both-passwords.pdf"


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    use_local_credentials(monkeypatch)


def test_status_shows_several_keys_with_a_queued_one(
    stack_settings: Settings, clients: Clients, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given one converted document, one failed, and one uploaded that no worker has seen
    done = upload(clients, stack_settings, PDF, "t/done.pdf")
    locked = upload(clients, stack_settings, ENCRYPTED, "t/locked.pdf")
    drain(stack_settings, clients)
    waiting = upload(clients, stack_settings, PDF, "t/waiting.pdf")
    # When their status is asked for together
    code, out, err = run_cli(capsys, "status", *aws_args(stack_settings), done, locked, waiting)
    # Then one row each, in the order asked, the new upload QUEUED rather than an error
    assert code == 0, err
    rows = table_rows(out)
    assert list(rows) == [done, locked, waiting]
    assert out.splitlines()[0].split() == ["key", "status", "pages", "engines", "duration", "error"]
    assert rows[done][1:4] == ["SUCCEEDED", "3/3", "text-layer"]
    assert rows[done][4].endswith("s")  # a duration: started -> finished
    assert rows[locked][1] == "FAILED" and rows[locked][-1].startswith("encrypted: ")
    assert rows[waiting][1:] == ["QUEUED", "-", "-", "-", "waiting for a worker"]
    assert err == ""


def test_status_of_a_key_never_uploaded_is_an_error(
    stack_settings: Settings, clients: Clients, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "status", *aws_args(stack_settings), "input/never.pdf")
    assert code == 1
    assert table_rows(out)["input/never.pdf"][1] == "NOT FOUND"
    assert err.count("\n") == 1 and "no status for" in err


def test_status_lists_by_prefix_and_by_status(
    stack_settings: Settings, clients: Clients, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given documents under two folders, one of them failed
    keys = [
        upload(clients, stack_settings, PDF, "p/a.pdf"),
        upload(clients, stack_settings, ENCRYPTED, "p/b.pdf"),
        upload(clients, stack_settings, PDF, "other/c.pdf"),
    ]
    drain(stack_settings, clients)
    where = aws_args(stack_settings)
    # --prefix: only the keys that start with it, by key
    code, out, _ = run_cli(capsys, "status", *where, "--prefix", "input/p/")
    assert code == 0
    assert list(table_rows(out)) == keys[:2]
    # --status: the by-status index; --json keeps the stored item, numbers as numbers
    code, out, _ = run_cli(capsys, "status", *where, "--status", "FAILED", "--json")
    assert code == 0
    listed = json.loads(out)
    assert [item["key"] for item in listed] == [keys[1]]
    assert listed[0]["error"]["category"] == "encrypted"
    assert isinstance(listed[0]["attempt"], int)
    # Two forms at once is a usage error
    code, _, err = run_cli(capsys, "status", *where, keys[0], "--prefix", "input/")
    assert code == 2 and "one of them" in err


def test_follow_ends_when_all_are_final_with_the_exit_code_of_the_outcome(
    stack_settings: Settings, clients: Clients, capsys: pytest.CaptureFixture[str]
) -> None:
    where = [*aws_args(stack_settings), "--follow", "--interval", "0.2", "--timeout", "60"]
    good = upload(clients, stack_settings, PDF, "f/good.pdf")
    # Given the documents are queued before any worker runs
    with running_worker(stack_settings, clients):
        # When one document that converts is followed: exit 0
        code, out, err = run_cli(capsys, "status", *where, good)
        assert code == 0, err
        assert table_rows(out)[good][1] == "SUCCEEDED"
        assert "1 document: 1 SUCCEEDED\n" in out
        # When a failing one is among those followed: exit 1
        bad = upload(clients, stack_settings, ENCRYPTED, "f/bad.pdf")
        code, out, _ = run_cli(capsys, "status", *where, good, bad)
        assert code == 1
        assert table_rows(out)[bad][1] == "FAILED"


def test_follow_shows_progress_rows_as_they_change(
    stack_settings: Settings, clients: Clients, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a queued document, followed before the worker starts
    key = upload(clients, stack_settings, PDF, "live/a.pdf")
    where = [*aws_args(stack_settings), "--follow", "--interval", "0.1", "--timeout", "60"]
    with running_worker(stack_settings, clients):
        code, out, _ = run_cli(capsys, "status", *where, key)
    # Then the first table shows it QUEUED or further along, and a later row shows SUCCEEDED
    assert code == 0
    lines = [line for line in out.splitlines() if line.startswith(key)]
    assert lines[-1].split()[1] == "SUCCEEDED"
    assert len(lines) == len(set(lines))  # a row is printed again only when it changed


def test_follow_gives_up_at_the_timeout(
    stack_settings: Settings, clients: Clients, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a document no worker will pick up
    key = upload(clients, stack_settings, PDF, "stuck.pdf")
    started = time.monotonic()
    code, out, err = run_cli(
        capsys,
        "status",
        *aws_args(stack_settings),
        key,
        "--follow",
        "--interval",
        "0.1",
        "--timeout",
        "0.5",
    )
    assert code == 1
    assert time.monotonic() - started < 5
    assert table_rows(out)[key][1] == "QUEUED"
    assert "gave up after 0.5 s with 1 document not finished" in err


def test_follow_of_an_unknown_key_ends_at_once(
    stack_settings: Settings, clients: Clients, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(
        capsys, "status", *aws_args(stack_settings), "input/typo.pdf", "--follow", "--timeout", "30"
    )
    assert code == 1
    assert "input/typo.pdf has no status and is not in the bucket" in err
