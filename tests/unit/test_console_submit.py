"""Planning a submit (keys, refusals, options) and the upload progress bar, without AWS."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from handler.console.errors import ConsoleError
from handler.console.progress import UploadProgress
from handler.console.submit import document_metadata, normalize_prefix, plan_uploads
from handler.settings import Settings

SETTINGS = Settings(bucket="docs", input_prefix="in/", output_prefix="out/")


def _tree(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"%PDF-" + name.encode())


def test_keys_keep_the_folder_structure_under_the_prefix(tmp_path: Path) -> None:
    _tree(tmp_path / "batch", "b.pdf", "sub/a.pdf", ".hidden", ".git/config", "sub/.x/y.pdf")
    _tree(tmp_path, "lone.png")
    uploads = plan_uploads([tmp_path / "batch", tmp_path / "lone.png"], SETTINGS, "q3")
    assert [u.key for u in uploads] == ["in/q3/b.pdf", "in/q3/sub/a.pdf", "in/q3/lone.png"]
    assert [u.size for u in uploads] == [10, 14, 13]


def test_a_prefix_is_a_relative_folder(tmp_path: Path) -> None:
    assert normalize_prefix("") == ""
    assert normalize_prefix("a/b") == "a/b/"
    assert normalize_prefix("a/b/") == "a/b/"
    for bad in ("/abs", "../up", "a/./b", "a//b"):
        with pytest.raises(ConsoleError, match="must be a relative path"):
            normalize_prefix(bad)


def test_requests_that_cannot_work_are_refused_whole(tmp_path: Path) -> None:
    _tree(tmp_path, "a/x.pdf", "b/x.pdf")
    with pytest.raises(ConsoleError, match=r"would both be uploaded as in/x\.pdf") as caught:
        plan_uploads([tmp_path / "a" / "x.pdf", tmp_path / "b" / "x.pdf"], SETTINGS)
    assert caught.value.exit_code == 2
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConsoleError, match="No files to submit"):
        plan_uploads([tmp_path / "empty"], SETTINGS)
    with pytest.raises(ConsoleError, match="too long"):
        plan_uploads([tmp_path / "a" / "x.pdf"], SETTINGS, "d" * 1100)


def test_options_become_the_metadata_the_worker_reads() -> None:
    metadata = document_metadata(
        SETTINGS, engine="text-layer", pages=" 1-3,7 ", languages="eng, deu"
    )
    assert metadata == {
        "pagedrop-engine": "text-layer",
        "pagedrop-pages": "1-3,7",
        "pagedrop-languages": "eng,deu",
    }
    assert document_metadata(SETTINGS) == {}
    # An open range and pages past a document's end are the worker's to judge
    assert document_metadata(SETTINGS, pages="5-")["pagedrop-pages"] == "5-"


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"pages": "3-1"}, "empty or negative range '3-1'"),
        ({"pages": "0"}, "empty or negative range '0'"),
        ({"pages": "a-b"}, "is not understood"),
        ({"pages": "99999"}, "names no page of any document within the page limit (2000"),
        ({"engine": "ocrmypdf"}, "--engine asks for 'ocrmypdf', which pagedrop does not have"),
        ({"languages": "français"}, "ISO 639-3"),
    ],
)
def test_options_the_worker_would_refuse_are_refused_first(
    options: dict[str, str], says: str
) -> None:
    with pytest.raises(ConsoleError, match=re.escape(says)) as caught:
        document_metadata(SETTINGS, **options)
    assert caught.value.exit_code == 2


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_is_one_line_rewritten() -> None:
    ticks = iter(float(t) for t in range(100))
    stream = _Tty()
    progress = UploadProgress(2048, 2, stream, tty=True, clock=lambda: next(ticks))
    progress.start_file("in/a.pdf")
    progress.sent(1024)
    progress.file_done("in/a.pdf", 1024)
    progress.close()
    drawn = stream.getvalue()
    assert drawn.count("\r") == 4 and drawn.endswith("\n") and drawn.count("\n") == 1
    last = drawn.rstrip("\n").rsplit("\r", 1)[-1]
    assert " 50% [############............] 1.0 KiB/2.0 KiB, 1/2 files" in last


def test_progress_elsewhere_is_one_line_per_file() -> None:
    stream = io.StringIO()
    progress = UploadProgress(3 * 1024 * 1024, 2, stream, tty=False)
    for key, size in (("in/a.pdf", 1024 * 1024), ("in/b.pdf", 2 * 1024 * 1024)):
        progress.start_file(key)
        progress.sent(size)
        progress.file_done(key, size)
    progress.close()
    assert stream.getvalue().splitlines() == [
        "uploaded 1.0 MiB/3.0 MiB, 1/2 files  in/a.pdf (1.0 MiB)",
        "uploaded 3.0 MiB/3.0 MiB, 2/2 files  in/b.pdf (2.0 MiB)",
    ]
