"""``pagedrop results`` against the local endpoint: downloads, --only, and refusals."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from handler.aws import Clients
from handler.events.model import ObjectRef
from handler.settings import Settings
from handler.status.store import StatusStore
from tests.conftest import DATA, SAMPLES, drain, upload
from tests.integration.cli_support import aws_args, run_cli, use_local_credentials

pytestmark = pytest.mark.integration

PDF = SAMPLES / "pysf__multicolumn.pdf"


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    use_local_credentials(monkeypatch)


def test_results_downloads_every_output_and_prints_the_summary(
    stack_settings: Settings, clients: Clients, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a converted document in a folder
    key = upload(clients, stack_settings, PDF, "r/paper.pdf")
    drain(stack_settings, clients)
    # When its results are fetched
    out_dir = tmp_path / "out"
    code, out, err = run_cli(
        capsys, "results", *aws_args(stack_settings), key, "--out", str(out_dir)
    )
    # Then every object under its output prefix is in OUT/<path>/, byte for byte
    assert code == 0, err
    folder = out_dir / "r" / "paper.pdf"
    listing = clients.s3.list_objects_v2(
        Bucket=stack_settings.bucket, Prefix="output/r/paper.pdf/"
    )["Contents"]
    stored = {obj["Key"].removeprefix("output/r/paper.pdf/"): obj["Size"] for obj in listing}
    written = {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*")}
    assert {name: size for name, size in written.items() if (folder / name).is_file()} == stored
    assert {"document.md", "elements.json", "manifest.json", "pages/0003.md"} <= set(stored)
    # And the manifest's summary and the files written are printed
    lines = out.splitlines()
    summary = rf"{key}: SUCCEEDED, 3 pages, engines text-layer, [0-9.]+s in the worker"
    assert re.fullmatch(summary, lines[0]), lines[0]
    assert f"wrote {len(stored)} file(s) to {folder}:" in out
    assert "  pages/0002.json" in out


def test_results_only_the_files_asked_for(
    stack_settings: Settings, clients: Clients, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = upload(clients, stack_settings, PDF, "only.pdf")
    drain(stack_settings, clients)
    code, _, err = run_cli(
        capsys,
        "results",
        *aws_args(stack_settings),
        key,
        "--out",
        str(tmp_path),
        "--only",
        "md",
        "--only",
        "manifest",
    )
    assert code == 0, err
    folder = tmp_path / "only.pdf"
    assert sorted(p.name for p in folder.iterdir()) == ["document.md", "manifest.json"]
    assert json.loads((folder / "manifest.json").read_text())["status"] == "SUCCEEDED"


def test_results_refuses_a_document_that_has_not_finished(
    stack_settings: Settings, clients: Clients, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = [*aws_args(stack_settings), "--out", str(tmp_path)]
    # Uploaded, no worker yet: no status
    queued = upload(clients, stack_settings, PDF, "q.pdf")
    code, out, err = run_cli(capsys, "results", *where, queued)
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and "has no status" in err
    # Claimed by a worker, still converting
    head = clients.s3.head_object(Bucket=stack_settings.bucket, Key=queued)
    store = StatusStore(clients.dynamodb, stack_settings.table_name, lease_s=60, retention_days=1)
    ref = ObjectRef(stack_settings.bucket, queued, etag=head["ETag"].strip('"'))
    assert store.claim(ref, "someone", "output/q.pdf/").claim is not None
    code, _, err = run_cli(capsys, "results", *where, queued)
    assert code == 1
    assert "is not finished: it is PROCESSING (0/0 pages)" in err
    # Failed: there are no outputs to fetch
    locked = upload(
        clients, stack_settings, DATA / "hostile" / "pypdf__r6-both-passwords.pdf", "l.pdf"
    )
    drain(stack_settings, clients)
    code, _, err = run_cli(capsys, "results", *where, locked)
    assert code == 1
    assert "FAILED (encrypted: " in err and "so it has no outputs" in err
    assert list(tmp_path.iterdir()) == []
