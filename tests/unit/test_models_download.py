"""`pagedrop models download|list|check` with a fake hub: what lands where, and when."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import handler.console.models as console_models
from handler.cli import main
from handler.engines.vlm import profiles
from handler.errors import EngineUnavailable
from handler.models.download import (
    DownloadFailed,
    UnknownModel,
    configured_models,
    download_model,
    known_models,
)
from handler.models.local import PADDLEOCR_VL_LAYOUT, PADDLEOCR_VL_MODEL
from handler.settings import Settings

VLM_FILES = {"config.json": b"{}", "model.safetensors": b"weights", "tokenizer.json": b"{}"}
PADDLEOCR_VL_FILES = {
    **VLM_FILES,
    "inference.yml": b"Global: {}",
    f"{PADDLEOCR_VL_LAYOUT}/config.json": b"{}",
    f"{PADDLEOCR_VL_LAYOUT}/inference.yml": b"Global: {}",
    f"{PADDLEOCR_VL_LAYOUT}/inference.pdiparams": b"layout weights",
}


class FakeHub:
    """``snapshot_download``'s shape: writes ``files`` (and the hub's own metadata folder)
    under ``local_dir``, honouring ``allow_patterns`` of the form ``sub/*``; records calls."""

    def __init__(self, files: dict[str, bytes], fail: Exception | None = None) -> None:
        self.files = files
        self.fail = fail
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> str:
        self.calls.append(kwargs)
        local = Path(kwargs["local_dir"])
        patterns = kwargs.get("allow_patterns") or ["*"]
        for name, data in self.files.items():
            if any(p == "*" or name.startswith(p.removesuffix("*")) for p in patterns):
                path = local / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        (local / ".cache" / "huggingface").mkdir(parents=True, exist_ok=True)
        if self.fail is not None:
            raise self.fail
        return str(local)


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file()
    }


# -- download_model --------------------------------------------------------------------------


def test_a_download_lands_complete_in_its_folder_and_leaves_nothing_beside_it(
    tmp_path: Path,
) -> None:
    hub = FakeHub(PADDLEOCR_VL_FILES)

    folder = download_model(PADDLEOCR_VL_MODEL, tmp_path, snapshot=hub)

    assert folder == tmp_path / PADDLEOCR_VL_MODEL
    assert _tree(folder) == PADDLEOCR_VL_FILES  # the hub's .cache folder is gone
    assert [p.name for p in tmp_path.iterdir()] == [PADDLEOCR_VL_MODEL]
    (call,) = hub.calls
    assert call["repo_id"] == "PaddlePaddle/PaddleOCR-VL"
    assert call["revision"] == "main" and call["allow_patterns"] is None


def test_the_paddleocr_vl_engine_and_the_vlm_profile_share_one_folder() -> None:
    source = known_models()[PADDLEOCR_VL_MODEL]

    assert source.repo_id == profiles.PROFILES[PADDLEOCR_VL_MODEL].repo_id
    assert "paddleocr-vl" in source.used_by and "vlm" in source.used_by
    assert f"{PADDLEOCR_VL_LAYOUT}/inference.pdiparams" in source.needs


def test_a_snapshot_without_the_layout_model_is_refused_and_the_old_folder_kept(
    tmp_path: Path,
) -> None:
    # Given a complete folder from an earlier download
    download_model(PADDLEOCR_VL_MODEL, tmp_path, snapshot=FakeHub(PADDLEOCR_VL_FILES))
    # When a new snapshot lacks the layout model
    with pytest.raises(EngineUnavailable, match=PADDLEOCR_VL_LAYOUT):
        download_model(PADDLEOCR_VL_MODEL, tmp_path, snapshot=FakeHub(VLM_FILES))
    # Then the earlier folder is untouched and no partial download is left
    assert _tree(tmp_path / PADDLEOCR_VL_MODEL) == PADDLEOCR_VL_FILES
    assert [p.name for p in tmp_path.iterdir()] == [PADDLEOCR_VL_MODEL]


def test_a_new_download_replaces_the_old_folder_whole(tmp_path: Path) -> None:
    download_model("nanonets-ocr-s", tmp_path, snapshot=FakeHub({**VLM_FILES, "old.txt": b"x"}))

    hub = FakeHub(VLM_FILES)
    download_model("nanonets-ocr-s", tmp_path, revision="v2", snapshot=hub)

    assert _tree(tmp_path / "nanonets-ocr-s") == VLM_FILES
    assert hub.calls[0]["revision"] == "v2"


def test_a_failed_download_says_why_keeps_the_old_folder_and_can_resume(tmp_path: Path) -> None:
    download_model("nanonets-ocr-s", tmp_path, snapshot=FakeHub(VLM_FILES))
    offline = FakeHub({"config.json": b"{}"}, fail=ConnectionError("Network is unreachable"))

    with pytest.raises(DownloadFailed) as caught:
        download_model("nanonets-ocr-s", tmp_path, snapshot=offline)

    message = str(caught.value)
    assert message.startswith("Could not download nanonets-ocr-s from nanonets/Nanonets-OCR-s@main")
    assert "could not be reached (Network is unreachable)" in message
    assert message.endswith("Run the command again to resume.")
    assert _tree(tmp_path / "nanonets-ocr-s") == VLM_FILES
    assert (tmp_path / ".nanonets-ocr-s.partial" / "config.json").exists()


def test_no_network_is_told_apart_from_a_missing_repository(tmp_path: Path) -> None:
    # The hub's classes, matched by name: its offline error is a kind of "entry not found"
    class EntryNotFoundError(FileNotFoundError):
        pass

    class LocalEntryNotFoundError(EntryNotFoundError):
        pass

    try:
        raise LocalEntryNotFoundError("cannot find the snapshot") from ConnectionError(
            "[Errno -2] Name or service not known"
        )
    except LocalEntryNotFoundError as exc:
        offline = exc

    with pytest.raises(DownloadFailed, match=r"could not be reached .*Name or service not known"):
        download_model("nanonets-ocr-s", tmp_path, snapshot=FakeHub({}, fail=offline))


def test_a_missing_repository_is_named_as_such(tmp_path: Path) -> None:
    class RepositoryNotFoundError(Exception):  # the hub's class, matched by name
        pass

    with pytest.raises(DownloadFailed, match="the repository does not exist"):
        download_model(
            "nanonets-ocr-s", tmp_path, snapshot=FakeHub({}, fail=RepositoryNotFoundError("404"))
        )


def test_a_profile_in_a_subfolder_fetches_only_that_subfolder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = dataclasses.replace(profiles.PROFILES["nanonets-ocr-s"], name="sub", subfolder="hf")
    monkeypatch.setitem(profiles.PROFILES, "sub", sub)
    hub = FakeHub({"README.md": b"r", **{f"hf/{k}": v for k, v in VLM_FILES.items()}})

    folder = download_model("sub", tmp_path, snapshot=hub)

    assert hub.calls[0]["allow_patterns"] == ["hf/*"]
    assert _tree(folder) == VLM_FILES
    assert [p.name for p in tmp_path.iterdir()] == ["sub"]


def test_an_unknown_model_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UnknownModel, match=r"known: .*nanonets-ocr-s.*paddleocr-vl"):
        download_model("nope", tmp_path, snapshot=FakeHub(VLM_FILES))


@pytest.mark.parametrize(
    ("engine", "ocr_engine", "vlm_model", "expected"),
    [
        ("auto", "rapidocr", "paddleocr-vl", []),
        ("auto", "paddleocr-vl", "nanonets-ocr-s", ["paddleocr-vl"]),
        ("auto", "vlm", "nanonets-ocr-s", ["nanonets-ocr-s"]),
        ("paddleocr-vl", "vlm", "paddleocr-vl", ["paddleocr-vl"]),
    ],
)
def test_the_configured_models_follow_the_engines(
    engine: str, ocr_engine: str, vlm_model: str, expected: list[str]
) -> None:
    settings = Settings(engine=engine, ocr_engine=ocr_engine, vlm_model=vlm_model)

    assert configured_models(settings) == expected


# -- the commands ----------------------------------------------------------------------------


@pytest.fixture
def run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Callable[..., tuple[int, str, str]]:
    """``pagedrop ARGS`` with the model folder in tmp_path; (exit code, stdout, stderr)."""
    monkeypatch.setenv("PAGEDROP_MODEL_DIR", str(tmp_path / "models"))
    for name in ("PAGEDROP_ENGINE", "PAGEDROP_OCR_ENGINE", "PAGEDROP_VLM_MODEL_PATH"):
        monkeypatch.delenv(name, raising=False)

    def call(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


def test_check_fails_with_the_command_then_passes_after_a_download(
    run: Callable[..., tuple[int, str, str]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("PAGEDROP_OCR_ENGINE", "paddleocr-vl")
    monkeypatch.setattr(console_models, "hub_snapshot", lambda: FakeHub(PADDLEOCR_VL_FILES))

    code, out, _ = run("models", "check")
    assert code == 1
    assert out.startswith("paddleocr-vl: MISSING: ")
    assert "run `pagedrop models download paddleocr-vl`" in out

    code, out, _ = run("models", "download")  # no NAME: the configured engine's model
    assert code == 0
    folder = tmp_path / "models" / PADDLEOCR_VL_MODEL
    assert f"paddleocr-vl: fetching PaddlePaddle/PaddleOCR-VL@main into {folder}" in out
    size = sum(map(len, PADDLEOCR_VL_FILES.values()))
    assert f"paddleocr-vl: {len(PADDLEOCR_VL_FILES)} files, {size} B in {folder}" in out

    code, out, _ = run("models", "check")
    assert (code, out.split(" (")[0]) == (0, "paddleocr-vl: ok")


def test_list_marks_what_is_present_and_what_is_configured(
    run: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PAGEDROP_OCR_ENGINE", "vlm")
    monkeypatch.setenv("PAGEDROP_VLM_MODEL", "nanonets-ocr-s")
    download_model("nanonets-ocr-s", tmp_path / "models", snapshot=FakeHub(VLM_FILES))
    (tmp_path / "models" / PADDLEOCR_VL_MODEL).mkdir()  # an empty folder: incomplete

    code, out, _ = run("models", "list")

    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert code == 0
    assert "nanonets-ocr-s *" in rows["nanonets-ocr-s"] and " yes " in rows["nanonets-ocr-s"]
    assert " incomplete " in rows[PADDLEOCR_VL_MODEL]
    assert " no " in rows["deepseek-ocr"] or "deepseek-ocr" not in profiles.PROFILES


def test_download_without_a_name_or_a_gpu_engine_asks_for_one(
    run: Callable[..., tuple[int, str, str]],
) -> None:
    code, _, err = run("models", "download")

    assert code == 2
    assert err.startswith("pagedrop models: Name the model to download (known: ")


def test_download_without_huggingface_hub_names_the_extra(
    run: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails

    code, out, err = run("models", "download", "paddleocr-vl")

    assert (code, out) == (1, "")
    assert err == (
        "pagedrop models: Downloading models needs huggingface_hub: pip install 'pagedrop[vlm]'.\n"
    )


def test_check_with_no_gpu_engine_configured_has_nothing_to_check(
    run: Callable[..., tuple[int, str, str]],
) -> None:
    code, out, _ = run("models", "check")

    assert code == 0 and out.startswith("no model to check")


def test_an_explicit_model_dir_option_wins(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    download_model("nanonets-ocr-s", tmp_path / "elsewhere", snapshot=FakeHub(VLM_FILES))

    code, out, _ = run(
        "models", "check", "nanonets-ocr-s", "--model-dir", str(tmp_path / "elsewhere")
    )

    assert code == 0 and str(tmp_path / "elsewhere" / "nanonets-ocr-s") in out
