"""Where a source object's outputs go (DESIGN §2), and keys that are safe to use."""

from __future__ import annotations

import re

from handler.errors import BadInput, ErrorCategory

MAX_KEY_BYTES = 1024  # S3's limit on a key's UTF-8 length
PAGE_NAME_WIDTH = 4  # pages/0001.md

_UNSAFE_LOCAL = re.compile(r"[\x00-\x1f\x7f\\:*?\"<>|]")


class KeyOutsidePrefix(ValueError):
    """The key is not under the input prefix, or is under the output prefix."""


def output_prefix_for(key: str, input_prefix: str, output_prefix: str) -> str:
    """``input/x/a.pdf`` -> ``output/x/a.pdf/``: the input's folders are kept."""
    if output_prefix and key.startswith(output_prefix):
        raise KeyOutsidePrefix(f"{key!r} is under the output prefix {output_prefix!r}")
    if not key.startswith(input_prefix):
        raise KeyOutsidePrefix(f"{key!r} is not under the input prefix {input_prefix!r}")
    relative = key[len(input_prefix) :]
    if not relative or relative.endswith("/"):
        raise KeyOutsidePrefix(f"{key!r} names a folder, not a document")
    return f"{output_prefix}{relative}/"


LONGEST_OUTPUT_NAME = f"pages/{'9' * PAGE_NAME_WIDTH}.json"


def check_output_key_length(prefix: str) -> None:
    """Refuse a source whose outputs' keys would be longer than S3 allows."""
    longest = len((prefix + LONGEST_OUTPUT_NAME).encode("utf-8"))
    if longest > MAX_KEY_BYTES:
        over = longest - MAX_KEY_BYTES
        raise BadInput(
            ErrorCategory.UNSUPPORTED,
            f"The object's key is too long: its outputs' keys would be {longest} bytes, over "
            f"S3's limit of {MAX_KEY_BYTES}. Use a key at least {over} "
            f"byte{'s' if over > 1 else ''} shorter.",
        )


def page_key(prefix: str, page_number: int, suffix: str) -> str:
    return f"{prefix}pages/{page_number:0{PAGE_NAME_WIDTH}d}.{suffix}"


def safe_relative_path(key: str) -> str:
    """A relative local path for an S3 key that cannot escape its folder.

    ``..`` and ``.`` segments are dropped, and control or reserved characters replaced, so
    that writing outputs to a local folder never lands outside it.
    """
    parts = [_UNSAFE_LOCAL.sub("_", part) for part in key.split("/") if part not in ("", ".", "..")]
    return "/".join(parts) or "_"
