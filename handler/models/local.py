"""Finding an engine's weights on local disk, and failing at start-up when they are missing.

Engines load only from local folders: ``PAGEDROP_MODEL_DIR/<model name>/`` (or an explicit
path a setting names). Nothing downloads at run time; a missing folder is an
:class:`~handler.errors.EngineUnavailable` that names the command which fetches it.
"""

from __future__ import annotations

from pathlib import Path

from handler.errors import EngineUnavailable

#: The folder of the paddleocr-vl engine and of the vlm engine's ``paddleocr-vl`` profile: a
#: snapshot of PaddlePaddle/PaddleOCR-VL, the VL model (transformers format, with an
#: ``inference.yml`` for paddlex) at its top and the layout model in a sub-folder.
PADDLEOCR_VL_MODEL = "paddleocr-vl"
PADDLEOCR_VL_LAYOUT = "PP-DocLayoutV2"  # sub-folder: layout_detection_model_dir


def model_folder(model_dir: Path, name: str) -> Path:
    """The folder model ``name`` is kept in under ``model_dir``."""
    return model_dir / name


def download_command(name: str) -> str:
    """The command that puts model ``name``'s weights where the engine looks."""
    return f"pagedrop models download {name}"


def require_model(folder: Path, name: str, *, needs: tuple[str, ...] = ("config.json",)) -> Path:
    """``folder`` if it holds model ``name`` (each of ``needs`` and at least one weights
    file), else :class:`EngineUnavailable` with the command to run."""
    if not folder.is_dir():
        raise EngineUnavailable(
            f"the {name} weights are not in {folder}: run `{download_command(name)}` "
            "(or set PAGEDROP_MODEL_DIR to the folder that holds them)"
        )
    missing = [item for item in needs if not (folder / item).exists()]
    if missing:
        raise EngineUnavailable(
            f"{folder} is not a complete {name} model (no {', '.join(missing)}): run "
            f"`{download_command(name)}`"
        )
    if not any(_is_weights(path) for path in folder.rglob("*")):
        raise EngineUnavailable(
            f"{folder} holds no weights for {name} (*.safetensors, *.bin, *.pdiparams): run "
            f"`{download_command(name)}`"
        )
    return folder


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pdiparams", ".pt", ".pth")


def _is_weights(path: Path) -> bool:
    return path.is_file() and path.suffix in WEIGHT_SUFFIXES and path.stat().st_size > 0
