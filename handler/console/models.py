"""``pagedrop models download|list|check``: the engines' weights in the model folder."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from handler.console.errors import ConsoleError
from handler.console.tables import format_bytes, format_duration, render_table
from handler.errors import EngineUnavailable, PagedropError
from handler.models.download import (
    ModelSource,
    Snapshot,
    check_model,
    configured_models,
    download_model,
    folder_size,
    hub_snapshot,
    installed_folder,
    known_models,
    model_source,
)
from handler.settings import Settings

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def download_models(
    names: Sequence[str],
    settings: Settings,
    *,
    revision: str | None,
    out: TextIO,
    snapshot: Snapshot | None = None,
) -> int:
    """Fetch each of ``names`` (default: the configured engines' models) into the model
    folder, printing what came and its size."""
    names = _names_or_configured(names, settings, "download")
    if revision and len(names) > 1:
        raise ConsoleError("--revision takes one model name.", EXIT_USAGE)
    sources = [_source(name) for name in names]
    try:
        snapshot = snapshot or hub_snapshot()
    except PagedropError as exc:
        raise ConsoleError(_sentence(exc)) from None
    for name, source in zip(names, sources, strict=True):
        where = f"{source.repo_id}@{revision or source.revision}"
        if source.subfolder:
            where += f" ({source.subfolder}/)"
        out.write(f"{name}: fetching {where} into {settings.model_dir / name}\n")
        out.flush()
        started = time.monotonic()
        try:
            folder = download_model(name, settings.model_dir, revision=revision, snapshot=snapshot)
        except PagedropError as exc:
            raise ConsoleError(_sentence(exc)) from None
        files, size = folder_size(folder)
        seconds = format_duration(time.monotonic() - started)
        out.write(f"{name}: {files} files, {format_bytes(size)} in {folder} ({seconds})\n")
    return EXIT_OK


def list_models(settings: Settings, *, out: TextIO) -> int:
    """Every known model: its repository, the engines that use it, and whether it is here."""
    configured = set(configured_models(settings))
    rows = [("model", "repository", "used by", "present", "size", "folder")]
    for name, source in sorted(known_models().items()):
        folder = installed_folder(name, settings)
        present, size = _presence(name, folder)
        marker = " *" if name in configured else ""
        rows.append((name + marker, source.repo_id, source.used_by, present, size, str(folder)))
    out.write(render_table(rows) + "\n")
    if configured:
        out.write("\n* used by the configured engines\n")
    return EXIT_OK


def check_models(names: Sequence[str], settings: Settings, *, out: TextIO) -> int:
    """One line per model (default: the configured engines'): ``ok`` with its folder and
    size, or ``MISSING`` with the command that fetches it. 1 when any is missing."""
    if not names and not configured_models(settings):
        out.write(
            f"no model to check: the configured engines (PAGEDROP_ENGINE={settings.engine}, "
            f"PAGEDROP_OCR_ENGINE={settings.ocr_engine}) load none\n"
        )
        return EXIT_OK
    names = _names_or_configured(names, settings, "check")
    missing = 0
    for name in names:
        _source(name)
        folder = installed_folder(name, settings)
        try:
            check_model(name, folder)
        except EngineUnavailable as exc:
            missing += 1
            out.write(f"{name}: MISSING: {_sentence(exc)}\n")
            continue
        files, size = folder_size(folder)
        out.write(f"{name}: ok ({folder}, {files} files, {format_bytes(size)})\n")
    return EXIT_FAILURE if missing else EXIT_OK


def _names_or_configured(names: Sequence[str], settings: Settings, verb: str) -> list[str]:
    chosen = list(dict.fromkeys(names)) or configured_models(settings)
    if not chosen:
        known = ", ".join(sorted(known_models()))
        raise ConsoleError(
            f"Name the model to {verb} (known: {known}): the configured engines "
            f"(PAGEDROP_ENGINE={settings.engine}, PAGEDROP_OCR_ENGINE={settings.ocr_engine}) "
            "load none.",
            EXIT_USAGE,
        )
    return chosen


def _source(name: str) -> ModelSource:
    try:
        return model_source(name)
    except PagedropError as exc:
        raise ConsoleError(str(exc), EXIT_USAGE) from None


def _presence(name: str, folder: Path) -> tuple[str, str]:
    if not folder.exists():
        return "no", "-"
    _, size = folder_size(folder)
    try:
        check_model(name, folder)
    except EngineUnavailable:
        return "incomplete", format_bytes(size)
    return "yes", format_bytes(size)


def _sentence(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else f"{text}."
