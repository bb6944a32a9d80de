"""``pagedrop models download``: a model's weights from the Hugging Face Hub into the model folder.

The one code path that downloads weights (DESIGN §6): run while the worker image is built, or
by anyone with internet. Engines at run time only read ``PAGEDROP_MODEL_DIR/<name>/``.

A download goes to ``<model_dir>/.<name>.partial/`` first; only once the files are there and
:func:`~handler.models.local.require_model` accepts them is the folder renamed into place, so
an engine never sees half a model. A failed download leaves the partial folder behind, and
running the command again resumes it (the hub skips the files already complete there).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from handler.errors import EngineUnavailable, PagedropError
from handler.models.local import (
    PADDLEOCR_VL_LAYOUT,
    PADDLEOCR_VL_MODEL,
    model_folder,
    require_model,
)

if TYPE_CHECKING:
    from handler.settings import Settings

#: ``huggingface_hub.snapshot_download``'s shape: keyword arguments in, the local folder out.
Snapshot = Callable[..., Any]

VLM_EXTRA = "pip install 'pagedrop[vlm]'"
HUB_CACHE = ".cache"  # the metadata folder snapshot_download(local_dir=...) keeps inside it


@dataclass(frozen=True, slots=True)
class ModelSource:
    """Where one model's weights come from and what a complete folder of it holds."""

    name: str  # the folder under PAGEDROP_MODEL_DIR, and the name the commands take
    repo_id: str  # Hugging Face repository
    revision: str  # branch, tag or commit
    subfolder: str  # folder inside the repository holding the model ("" = all of it)
    needs: tuple[str, ...]  # files require_model checks (plus one weights file)
    used_by: str  # which engine reads it, for `pagedrop models list`


class DownloadFailed(PagedropError):
    """The hub did not deliver the model; the message says why in one sentence."""


class UnknownModel(PagedropError):
    """A model name no engine knows."""


def known_models() -> dict[str, ModelSource]:
    """Every model a command can fetch: the vlm engine's profiles, and the folder of the
    paddleocr-vl engine (PaddlePaddle/PaddleOCR-VL: the VL model at the top and its
    PP-DocLayoutV2 layout model in a sub-folder). That repository is also the vlm engine's
    ``paddleocr-vl`` profile, so both engines share the one folder."""
    from handler.engines.vlm.profiles import PROFILES

    models = {
        name: ModelSource(
            name=name,
            repo_id=profile.repo_id,
            revision=profile.revision,
            subfolder=profile.subfolder,
            needs=("config.json",),
            used_by=f"vlm (PAGEDROP_VLM_MODEL={name})",
        )
        for name, profile in PROFILES.items()
    }
    shared = models.get(PADDLEOCR_VL_MODEL)
    models[PADDLEOCR_VL_MODEL] = ModelSource(
        name=PADDLEOCR_VL_MODEL,
        repo_id="PaddlePaddle/PaddleOCR-VL",
        revision=shared.revision if shared else "main",
        subfolder="",
        needs=(
            "config.json",
            "inference.yml",  # paddlex reads the VL model's folder through it
            f"{PADDLEOCR_VL_LAYOUT}/inference.yml",
            f"{PADDLEOCR_VL_LAYOUT}/inference.pdiparams",
        ),
        used_by="paddleocr-vl" + (f", {shared.used_by}" if shared else ""),
    )
    return models


def model_source(name: str) -> ModelSource:
    """The source of model ``name``; :class:`UnknownModel` names the known ones."""
    models = known_models()
    if name not in models:
        known = ", ".join(sorted(models))
        raise UnknownModel(f"There is no model called {name!r}; known: {known}.")
    return models[name]


def configured_models(settings: Settings) -> list[str]:
    """The models the configured engines load (none for the CPU engines)."""
    engines = {settings.engine, settings.ocr_engine}
    names = []
    if "paddleocr-vl" in engines:
        names.append(PADDLEOCR_VL_MODEL)
    if "vlm" in engines and settings.vlm_model not in names:
        names.append(settings.vlm_model)
    return names


def installed_folder(name: str, settings: Settings) -> Path:
    """Where the engines look for model ``name``: PAGEDROP_VLM_MODEL_PATH for the vlm model
    when it is set, else ``PAGEDROP_MODEL_DIR/<name>``."""
    if settings.vlm_model_path is not None and name == settings.vlm_model:
        return settings.vlm_model_path
    return model_folder(settings.model_dir, name)


def check_model(name: str, folder: Path) -> Path:
    """``folder`` if it holds a complete ``name``, else ``EngineUnavailable`` naming the
    command to run."""
    return require_model(folder, name, needs=model_source(name).needs)


def download_model(
    name: str,
    model_dir: Path,
    *,
    revision: str | None = None,
    snapshot: Snapshot | None = None,
) -> Path:
    """Fetch model ``name`` into ``model_dir/<name>/`` (replacing what was there only once
    the new copy is complete) and return that folder.

    ``snapshot`` defaults to ``huggingface_hub.snapshot_download``; tests pass a fake.
    Raises :class:`UnknownModel`, :class:`DownloadFailed`, or ``EngineUnavailable`` when
    huggingface_hub is not installed or the repository lacks what the engine needs.
    """
    source = model_source(name)
    snapshot = snapshot or hub_snapshot()
    model_dir.mkdir(parents=True, exist_ok=True)
    partial = model_dir / f".{name}.partial"
    wanted = revision or source.revision
    try:
        snapshot(
            repo_id=source.repo_id,
            revision=wanted,
            local_dir=str(partial),
            allow_patterns=[f"{source.subfolder}/*"] if source.subfolder else None,
        )
    except Exception as exc:
        raise DownloadFailed(_failure_sentence(source, wanted, exc, partial)) from exc
    fetched = partial / source.subfolder if source.subfolder else partial
    shutil.rmtree(fetched / HUB_CACHE, ignore_errors=True)
    try:
        require_model(fetched, name, needs=source.needs)
    except EngineUnavailable as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise EngineUnavailable(
            f"{source.repo_id}@{wanted} does not hold a complete {name} model: {exc}"
        ) from None
    target = model_folder(model_dir, name)
    _replace(fetched, target)
    shutil.rmtree(partial, ignore_errors=True)  # what was left beside a subfolder
    return target


def folder_size(folder: Path) -> tuple[int, int]:
    """(files, bytes) under ``folder``; (0, 0) when it does not exist."""
    files = [path for path in folder.rglob("*") if path.is_file()] if folder.is_dir() else []
    return len(files), sum(path.stat().st_size for path in files)


def hub_snapshot() -> Snapshot:
    """``huggingface_hub.snapshot_download``, or ``EngineUnavailable`` naming the extra."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise EngineUnavailable(f"Downloading models needs huggingface_hub: {VLM_EXTRA}.") from None
    return snapshot_download  # type: ignore[no-any-return]


def _replace(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``; an existing ``target`` is moved aside first and removed
    after, so the folder is never half old, half new."""
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


# The hub's exceptions by class name, so that this module never imports huggingface_hub
# just to tell them apart (their module paths moved between releases).
_NOT_FOUND = frozenset({"RepositoryNotFoundError", "EntryNotFoundError"})
_NO_ACCESS = frozenset({"GatedRepoError"})
_OFFLINE = frozenset(
    {"LocalEntryNotFoundError", "ConnectionError", "ConnectError", "Timeout", "TimeoutException"}
)


def _failure_sentence(source: ModelSource, revision: str, exc: Exception, partial: Path) -> str:
    names = {cls.__name__ for cls in type(exc).__mro__}
    where = f"{source.repo_id}@{revision}"
    if names & _NO_ACCESS:
        reason = "the repository is gated: accept its terms on huggingface.co and set HF_TOKEN"
    elif names & _OFFLINE:  # before "not found": the hub's offline error is a kind of it
        cause = exc.__cause__ or exc.__context__
        reason = f"the Hugging Face Hub could not be reached ({_short(cause or exc)})"
    elif "RevisionNotFoundError" in names:
        reason = f"there is no revision {revision!r}"
    elif names & _NOT_FOUND:
        reason = "the repository does not exist (or is private: set HF_TOKEN)"
    elif isinstance(exc, OSError | TimeoutError):
        reason = f"the Hugging Face Hub could not be reached ({_short(exc)})"
    else:
        reason = _short(exc)
    resume = " Run the command again to resume." if partial.exists() else ""
    return f"Could not download {source.name} from {where}: {reason}.{resume}"


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200].rstrip(".")
