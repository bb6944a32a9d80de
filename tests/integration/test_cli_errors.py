"""Every ``pagedrop`` command turns AWS and file trouble into one sentence, never a traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from handler.aws import Clients
from handler.settings import Settings
from tests.conftest import SAMPLES
from tests.integration.cli_support import aws_args, run_cli, use_local_credentials

pytestmark = pytest.mark.integration

PDF = str(SAMPLES / "pysf__multicolumn.pdf")
KEY = "input/some.pdf"
# Each command with what it needs besides the AWS options (dlq also needs its queue).
COMMANDS = {
    "submit": ["submit", PDF],
    "status": ["status", KEY],
    "status --prefix": ["status", "--prefix", "input/"],
    "results": ["results", KEY],
}


def _one_sentence(err: str, prefix: str) -> str:
    """The single line on stderr, checked to be a sentence and not a traceback."""
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    line = err.strip()
    assert line.startswith(prefix) and line[-1] in ".?", line
    return line


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    use_local_credentials(monkeypatch)


@pytest.mark.parametrize("command", [*COMMANDS, "dlq list"])
def test_an_endpoint_nobody_listens_on(
    command: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    argv = COMMANDS.get(command) or ["dlq", "list", "--dlq-url", f"{url}/123456789012/dlq"]
    code, _, err = run_cli(capsys, *argv, "--endpoint-url", url, "--bucket", "b")
    assert code == 1
    line = _one_sentence(err, f"pagedrop {argv[0]}: ")
    assert f"Cannot reach the AWS endpoint {url}: is it running" in line


def test_a_missing_bucket(
    stack_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    where = [*aws_args(stack_settings), "--bucket", "no-such-bucket"]
    for argv in COMMANDS.values():
        code, _, err = run_cli(capsys, *argv, *where)
        line = _one_sentence(err, f"pagedrop {argv[0]}: ")
        assert code == 1, line
        assert "The bucket 'no-such-bucket' does not exist at http://" in line


def test_a_missing_table(stack_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    where = [*aws_args(stack_settings), "--table-name", "no-such-table"]
    for argv in (COMMANDS["status"], COMMANDS["status --prefix"], COMMANDS["results"]):
        code, _, err = run_cli(capsys, *argv, *where)
        line = _one_sentence(err, f"pagedrop {argv[0]}: ")
        assert code == 1
        assert "The status table 'no-such-table' does not exist" in line
        assert "--table-name" in line


def test_a_missing_queue(stack_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    missing = stack_settings.dlq_url.rsplit("/", 1)[0] + "/no-such-queue"
    code, _, err = run_cli(capsys, "dlq", "list", *aws_args(stack_settings), "--dlq-url", missing)
    line = _one_sentence(err, "pagedrop dlq: ")
    assert code == 1
    assert f"The queue {missing} does not exist" in line


def test_no_credentials(
    stack_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given no credentials anywhere boto3 looks (and no instance metadata to ask)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for argv in COMMANDS.values():
        code, _, err = run_cli(capsys, *argv, *aws_args(stack_settings))
        line = _one_sentence(err, f"pagedrop {argv[0]}: ")
        assert code == 1
        assert line.endswith(
            "No usable AWS credentials: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY or use --profile (against a local endpoint "
            "any values do, e.g. testing)."
        )


def test_profile_names_the_credentials(
    stack_settings: Settings,
    clients: Clients,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given credentials only in a named profile of an AWS config file
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    config = tmp_path / "config"
    config.write_text(
        "[profile local]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    where = aws_args(stack_settings)
    # When a command names it, it works; an unknown profile is one sentence
    code, out, err = run_cli(capsys, "submit", PDF, *where, "--profile", "local")
    assert (code, out) == (0, "input/pysf__multicolumn.pdf\n"), err
    code, _, err = run_cli(capsys, "status", KEY, *where, "--profile", "nobody")
    line = _one_sentence(err, "pagedrop status: ")
    assert code == 1
    assert "The AWS profile 'nobody' is not in the AWS config files" in line


def test_files_that_cannot_be_read_are_refused_before_uploading(
    stack_settings: Settings, clients: Clients, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.pdf").write_bytes(Path(PDF).read_bytes())
    (folder / "dangling.pdf").symlink_to(tmp_path / "gone.pdf")
    where = aws_args(stack_settings)
    code, _, err = run_cli(capsys, "submit", str(folder), *where)
    line = _one_sentence(err, "pagedrop submit: ")
    assert code == 2
    assert f"Cannot read {folder / 'dangling.pdf'}: No such file or directory." in line
    code, _, err = run_cli(capsys, "submit", str(tmp_path / "absent.pdf"), *where)
    assert code == 2
    assert f"{tmp_path / 'absent.pdf'} does not exist." in _one_sentence(err, "pagedrop submit: ")
    listing = clients.s3.list_objects_v2(Bucket=stack_settings.bucket)
    assert listing.get("KeyCount", 0) == 0


def test_a_key_that_is_not_there(
    stack_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "results", KEY, *aws_args(stack_settings))
    line = _one_sentence(err, "pagedrop results: ")
    assert code == 1
    assert f"s3://{stack_settings.bucket}/{KEY} has no status" in line
    code, _, err = run_cli(capsys, "status", KEY, *aws_args(stack_settings))
    assert code == 1
    assert "no status for" in _one_sentence(err, "pagedrop status: ")
