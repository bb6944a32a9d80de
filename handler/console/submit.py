"""``pagedrop submit``: files and folders into the input prefix, with per-document options.

Everything that can be wrong with the request (a file that cannot be read, two files for
one key, a key too long, an option the worker would refuse) is found before the first byte
is sent, so a bad request uploads nothing.
"""

from __future__ import annotations

import mimetypes
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from handler.console.documents import SourceVersion
from handler.console.errors import EXIT_USAGE, ConsoleError
from handler.console.progress import UploadProgress
from handler.errors import BadInput
from handler.settings import Settings
from handler.storage.keys import KeyOutsidePrefix, check_output_key_length, output_prefix_for
from handler.worker.options import (
    META_ENGINE,
    META_LANGUAGES,
    META_PAGES,
    options_from_metadata,
    parse_pages,
)


@dataclass(frozen=True, slots=True)
class Upload:
    path: Path
    key: str
    size: int


def plan_uploads(paths: Sequence[Path], settings: Settings, prefix: str = "") -> list[Upload]:
    """One upload per file; a folder's files (walked, hidden ones skipped) keep their path
    relative to the folder. Raises :class:`ConsoleError` before anything is sent."""
    base = settings.input_prefix + normalize_prefix(prefix)
    uploads: list[Upload] = []
    by_key: dict[str, Path] = {}
    for given in paths:
        for path, relative in _files(given):
            key = base + relative
            if key in by_key:
                raise ConsoleError(
                    f"{by_key[key]} and {path} would both be uploaded as {key}.", EXIT_USAGE
                )
            _check_key(key, settings)
            by_key[key] = path
            uploads.append(Upload(path, key, _readable_size(path)))
    if not uploads:
        raise ConsoleError(f"No files to submit in {', '.join(map(str, paths))}.", EXIT_USAGE)
    return uploads


def normalize_prefix(prefix: str) -> str:
    """``reports/q3`` -> ``reports/q3/``; refuses ``..``, ``.`` and a leading ``/``."""
    if not prefix:
        return ""
    parts = prefix.strip("/").split("/")
    if prefix.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ConsoleError(
            f"--prefix {prefix!r} must be a relative path like 'reports/q3/' "
            "(no leading '/', no '.' or '..').",
            EXIT_USAGE,
        )
    return "/".join(parts) + "/"


def document_metadata(
    settings: Settings,
    *,
    engine: str | None = None,
    pages: str | None = None,
    languages: str | None = None,
) -> dict[str, str]:
    """The object metadata for the options given, checked with the worker's own parsing."""
    metadata: dict[str, str] = {}
    if engine:
        metadata[META_ENGINE] = engine.strip()
    if pages:
        metadata[META_PAGES] = pages.strip()
    if languages:
        if not languages.isascii():
            raise ConsoleError(
                f"--languages {languages!r}: use ISO 639-3 codes like 'eng,deu' (ASCII; S3 "
                "metadata cannot carry other characters).",
                EXIT_USAGE,
            )
        metadata[META_LANGUAGES] = ",".join(
            part.strip() for part in languages.split(",") if part.strip()
        )
    try:
        options_from_metadata(metadata, settings.engine)
        # The page count is not known before the worker opens the document: any count up to
        # the limit is possible, so only selections no document could satisfy are refused.
        parse_pages(metadata.get(META_PAGES, ""), settings.max_pages)
    except BadInput as exc:
        raise ConsoleError(_before_upload(exc.message, settings), EXIT_USAGE) from None
    return metadata


def _before_upload(message: str, settings: Settings) -> str:
    """The worker's sentence, said of the command line: the worker speaks of an object it
    read and a document it opened; here there is an option and only the page limit."""
    return (
        message.replace("The object asks for engine", "--engine asks for")
        .replace("which this worker does not have", "which pagedrop does not have")
        .replace(
            f"this {settings.max_pages}-page document",
            f"any document within the page limit ({settings.max_pages}, PAGEDROP_MAX_PAGES)",
        )
    )


def upload_all(
    s3: Any,
    bucket: str,
    uploads: Sequence[Upload],
    metadata: dict[str, str],
    progress: UploadProgress,
) -> Iterator[tuple[str, SourceVersion]]:
    """Upload each file with boto3's managed transfer (multipart for large files); yields
    each key, with the version it created, once its upload finished."""
    for upload in uploads:
        extra: dict[str, Any] = {}
        if metadata:
            extra["Metadata"] = metadata
        content_type = mimetypes.guess_type(upload.path.name)[0]
        if content_type:
            extra["ContentType"] = content_type  # the worker reads the bytes; this is for people
        progress.start_file(upload.key)
        s3.upload_file(
            str(upload.path), bucket, upload.key, ExtraArgs=extra, Callback=progress.sent
        )
        progress.file_done(upload.key, upload.size)
        # upload_file returns nothing: the HEAD says which version this upload made.
        head = s3.head_object(Bucket=bucket, Key=upload.key)
        yield upload.key, SourceVersion(head.get("VersionId"), str(head["ETag"]).strip('"'))


def submit(
    s3: Any,
    settings: Settings,
    uploads: Sequence[Upload],
    metadata: dict[str, str],
    *,
    out: TextIO,
    err: TextIO,
) -> dict[str, SourceVersion]:
    """Upload, with the progress on ``err``; print each key submitted on ``out``."""
    s3.head_bucket(Bucket=settings.bucket)  # a missing bucket fails here, not mid-upload
    progress = UploadProgress(sum(u.size for u in uploads), len(uploads), err, tty=err.isatty())
    submitted: dict[str, SourceVersion] = {}
    try:
        for key, version in upload_all(s3, settings.bucket, uploads, metadata, progress):
            submitted[key] = version
    finally:
        progress.close()
        out.write("".join(f"{key}\n" for key in submitted))
        out.flush()
        if len(submitted) < len(uploads):
            err.write(f"pagedrop submit: {len(submitted)} of {len(uploads)} files uploaded\n")
    return submitted


def _files(given: Path) -> Iterator[tuple[Path, str]]:
    """``(path, relative key part)`` of a file, or of each file under a folder."""
    if given.is_dir():
        for root, dirs, names in os.walk(given):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                if not name.startswith("."):
                    path = Path(root) / name
                    yield path, path.relative_to(given).as_posix()
    elif given.exists() or given.is_symlink():
        yield given, given.name
    else:
        raise ConsoleError(f"{given} does not exist.", EXIT_USAGE)


def _readable_size(path: Path) -> int:
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO would block the open below
            raise ConsoleError(f"Cannot read {path}: it is not a regular file.", EXIT_USAGE)
        with path.open("rb") as handle:
            return os.fstat(handle.fileno()).st_size
    except OSError as exc:
        raise ConsoleError(f"Cannot read {path}: {exc.strerror or exc}.", EXIT_USAGE) from None


def _check_key(key: str, settings: Settings) -> None:
    try:
        check_output_key_length(
            output_prefix_for(key, settings.input_prefix, settings.output_prefix)
        )
    except KeyOutsidePrefix as exc:
        raise ConsoleError(f"Cannot submit {key}: {exc}.", EXIT_USAGE) from None
    except BadInput as exc:
        raise ConsoleError(f"Cannot submit {key}: {exc.message}", EXIT_USAGE) from None
