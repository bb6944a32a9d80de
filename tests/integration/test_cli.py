"""The ``pagedrop`` command: the README's main command and the status command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from handler.aws import Clients
from handler.cli import main
from handler.settings import Settings
from tests.conftest import DATA, LOCAL_AWS_ENV, SAMPLES, drain, upload

pytestmark = pytest.mark.integration


def test_local_process_converts_a_folder_and_writes_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a folder with a born-digital PDF and an encrypted one, in a subfolder
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(SAMPLES / "pysf__multicolumn.pdf", folder / "sub" / "paper.pdf")
    shutil.copy(DATA / "hostile" / "pypdf__r6-both-passwords.pdf", folder / "locked.pdf")
    out = tmp_path / "out"
    # When the local pipeline processes it
    code = main(["--log-level", "WARNING", "local", "--process", str(folder), "--out", str(out)])
    # Then both reached a final state, the table says which, and outputs are on disk
    printed = capsys.readouterr().out
    assert code == 0
    assert "input/sub/paper.pdf" in printed and "SUCCEEDED" in printed
    assert "encrypted: The PDF is password-protected" in printed
    for name in ("document.md", "elements.json", "manifest.json", "pages/0001.md"):
        assert (out / "sub" / "paper.pdf" / name).is_file(), name
    manifest = json.loads((out / "sub" / "paper.pdf" / "manifest.json").read_text())
    assert manifest["status"] == "SUCCEEDED"
    assert not (out / "locked.pdf").exists()


def test_status_shows_one_document_and_lists_by_status(
    stack_settings: Settings,
    clients: Clients,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = upload(clients, stack_settings, SAMPLES / "pysf__multicolumn.pdf", "st/a.pdf")
    drain(stack_settings, clients)
    for name, value in {
        **LOCAL_AWS_ENV,
        "AWS_DEFAULT_REGION": stack_settings.region,
    }.items():
        monkeypatch.setenv(name, value)
    where = [
        "--endpoint-url",
        str(stack_settings.endpoint_url),
        "--bucket",
        stack_settings.bucket,
        "--table-name",
        stack_settings.table_name,
    ]
    assert main(["status", *where, key]) == 0
    assert "SUCCEEDED  3/3" in capsys.readouterr().out
    assert main(["status", *where, "--status", "SUCCEEDED", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [item["key"] for item in listed] == [key]
    assert main(["status", *where, "input/never-uploaded.pdf"]) == 1
    assert "no status for" in capsys.readouterr().err


def test_aws_cli_upload_is_converted(stack_settings: Settings, clients: Clients) -> None:
    # Given a file copied in with the AWS CLI, as the README shows
    env = {
        **os.environ,
        **LOCAL_AWS_ENV,
        "AWS_DEFAULT_REGION": stack_settings.region,
    }
    target = f"s3://{stack_settings.bucket}/{stack_settings.input_prefix}x/some.pdf"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "awscli",
            "--endpoint-url",
            str(stack_settings.endpoint_url),
            "s3",
            "cp",
            str(SAMPLES / "pysf__multicolumn.pdf"),
            target,
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    # When the worker runs
    drain(stack_settings, clients)
    # Then the outputs are under output/x/some.pdf/
    listing = clients.s3.list_objects_v2(
        Bucket=stack_settings.bucket, Prefix=f"{stack_settings.output_prefix}x/some.pdf/"
    )
    names = {o["Key"].rsplit("/", 1)[-1] for o in listing["Contents"]}
    assert {"document.md", "elements.json", "manifest.json"} <= names
