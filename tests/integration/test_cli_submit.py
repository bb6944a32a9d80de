"""``pagedrop submit`` against the local endpoint: keys, metadata, refusals, --follow."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from handler.aws import Clients
from handler.settings import Settings
from tests.conftest import DATA, SAMPLES
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


def _input_keys(clients: Clients, settings: Settings) -> list[str]:
    listing = clients.s3.list_objects_v2(Bucket=settings.bucket, Prefix=settings.input_prefix)
    return sorted(obj["Key"] for obj in listing.get("Contents", []))


def test_submit_uploads_files_and_folders_with_the_options_as_metadata(
    stack_settings: Settings,
    clients: Clients,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a folder with a subfolder and a hidden file, and a file given on its own
    folder = tmp_path / "batch"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(PDF, folder / "sub" / "paper.pdf")
    shutil.copy(SAMPLES / "tess__phototest.tif", folder / "scan.tif")
    (folder / ".DS_Store").write_bytes(b"junk")
    single = shutil.copy(SAMPLES / "mixed.pdf", tmp_path / "mixed.pdf")
    # When they are submitted under a prefix with per-document options
    code, out, err = run_cli(
        capsys,
        "submit",
        *aws_args(stack_settings),
        str(folder),
        str(single),
        "--prefix",
        "q3",
        "--engine",
        "rapidocr",
        "--pages",
        "1-2",
        "--languages",
        "eng, deu",
    )
    # Then each file's key is the input prefix, the prefix, and its path relative to the folder
    expected = [f"input/q3/{name}" for name in ("scan.tif", "sub/paper.pdf", "mixed.pdf")]
    assert code == 0, err
    assert out.splitlines() == expected
    assert _input_keys(clients, stack_settings) == sorted(expected)
    # And the options are the metadata the worker reads, with a content type for people
    head = clients.s3.head_object(Bucket=stack_settings.bucket, Key="input/q3/sub/paper.pdf")
    assert head["Metadata"] == {
        "pagedrop-engine": "rapidocr",
        "pagedrop-pages": "1-2",
        "pagedrop-languages": "eng,deu",
    }
    assert head["ContentType"] == "application/pdf"
    # And the progress went to stderr, one line per file (stderr is not a terminal here)
    progress = err.splitlines()
    assert len(progress) == 3 and progress[-1].startswith("uploaded")
    assert "3/3 files" in progress[-1] and "input/q3/mixed.pdf" in progress[-1]


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--pages", "3-1", "empty or negative range '3-1'"),
        ("--pages", "one", "'one' is not understood"),
        ("--engine", "tesseract", "--engine asks for 'tesseract'"),
    ],
)
def test_a_bad_option_is_one_error_and_nothing_is_uploaded(
    stack_settings: Settings,
    clients: Clients,
    capsys: pytest.CaptureFixture[str],
    option: str,
    value: str,
    says: str,
) -> None:
    code, out, err = run_cli(capsys, "submit", *aws_args(stack_settings), str(PDF), option, value)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and says in err and "Traceback" not in err
    assert _input_keys(clients, stack_settings) == []


def test_two_files_for_one_key_are_refused_before_uploading(
    stack_settings: Settings, clients: Clients, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = shutil.copy(PDF, tmp_path / "a" / "x.pdf")
    second = shutil.copy(PDF, tmp_path / "b" / "x.pdf")
    code, _, err = run_cli(capsys, "submit", *aws_args(stack_settings), str(first), str(second))
    assert code == 2
    assert "would both be uploaded as input/x.pdf" in err
    assert _input_keys(clients, stack_settings) == []


def test_a_large_file_goes_up_in_parts_and_the_progress_counts_every_byte(
    stack_settings: Settings, clients: Clients, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a file over boto3's multipart threshold (8 MiB)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * 1024 * 1024))
    # When it is submitted
    code, out, err = run_cli(capsys, "submit", *aws_args(stack_settings), str(big))
    assert out == "input/big.bin\n"
    # Then it went up as a multipart upload (its ETag counts the parts) and all bytes counted
    assert code == 0, err
    head = clients.s3.head_object(Bucket=stack_settings.bucket, Key="input/big.bin")
    assert head["ContentLength"] == 9 * 1024 * 1024
    assert head["ETag"].strip('"').endswith("-2")
    assert "9.0 MiB/9.0 MiB, 1/1 files" in err


def test_submit_follow_waits_for_the_worker_and_exits_by_the_outcome(
    stack_settings: Settings, clients: Clients, capsys: pytest.CaptureFixture[str]
) -> None:
    where = aws_args(stack_settings)
    follow = ["--follow", "--interval", "0.2", "--timeout", "60"]
    with running_worker(stack_settings, clients):
        # A document that converts: exit 0, its final row printed
        code, out, err = run_cli(capsys, "submit", *where, str(PDF), *follow)
        assert code == 0, err
        assert out.startswith("input/pysf__multicolumn.pdf\n")
        assert table_rows(out)["input/pysf__multicolumn.pdf"][1:4] == [
            "SUCCEEDED",
            "3/3",
            "text-layer",
        ]
        assert "1 document: 1 SUCCEEDED\n" in out
        # One that fails (encrypted) among them: exit 1
        code, out, _ = run_cli(capsys, "submit", *where, str(PDF), str(ENCRYPTED), *follow)
        assert code == 1
        failed = table_rows(out)["input/pypdf__r6-both-passwords.pdf"]
        assert failed[1] == "FAILED" and failed[-1].startswith("encrypted: ")
        assert "2 documents: 1 FAILED, 1 SUCCEEDED\n" in out
