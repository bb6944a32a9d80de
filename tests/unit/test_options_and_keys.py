"""Per-document options, output keys and settings validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from handler.errors import BadInput, ErrorCategory
from handler.settings import Settings
from handler.storage.keys import (
    LONGEST_OUTPUT_NAME,
    MAX_KEY_BYTES,
    KeyOutsidePrefix,
    check_output_key_length,
    output_prefix_for,
    safe_relative_path,
)
from handler.worker.options import options_from_metadata, parse_pages


@pytest.mark.parametrize(
    ("spec", "count", "expected"),
    [
        ("", 3, [1, 2, 3]),
        ("2", 3, [2]),
        ("1-2,3", 5, [1, 2, 3]),
        ("4-", 6, [4, 5, 6]),
        ("-2", 6, [1, 2]),
        ("2-100", 3, [2, 3]),
    ],
)
def test_page_selection(spec: str, count: int, expected: list[int]) -> None:
    assert parse_pages(spec, count) == expected


@pytest.mark.parametrize("spec", ["x", "3-1", "0", "9"])
def test_bad_page_selection_is_bad_input(spec: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse_pages(spec, 3)
    assert caught.value.category is ErrorCategory.UNSUPPORTED


def test_engine_and_languages_come_from_metadata() -> None:
    options = options_from_metadata(
        {"pagedrop-engine": "rapidocr", "pagedrop-languages": "eng, deu"}, "auto"
    )
    assert options.engine == "rapidocr"
    assert options.languages == ("eng", "deu")
    assert options_from_metadata({}, "auto").engine == "auto"
    with pytest.raises(BadInput):
        options_from_metadata({"pagedrop-engine": "nonsense"}, "auto")


def test_output_prefix_keeps_the_folders() -> None:
    assert output_prefix_for("input/x/a b.pdf", "input/", "output/") == "output/x/a b.pdf/"


@pytest.mark.parametrize("key", ["output/a.pdf", "elsewhere/a.pdf", "input/folder/", "input/"])
def test_keys_outside_the_input_prefix_are_refused(key: str) -> None:
    with pytest.raises(KeyOutsidePrefix):
        output_prefix_for(key, "input/", "output/")


@pytest.mark.parametrize(("over", "says"), [(1, "1 byte shorter."), (7, "7 bytes shorter.")])
def test_a_key_too_long_for_its_outputs_says_how_much_to_cut(over: int, says: str) -> None:
    prefix = "o/" + "k" * (MAX_KEY_BYTES - len(LONGEST_OUTPUT_NAME) - 2 + over)
    with pytest.raises(BadInput) as caught:
        check_output_key_length(prefix)
    assert caught.value.category is ErrorCategory.UNSUPPORTED
    assert caught.value.message.endswith(says)
    check_output_key_length(prefix[:-over])  # exactly at the limit: accepted


def test_local_paths_cannot_escape() -> None:
    assert safe_relative_path("../../etc/passwd") == "etc/passwd"
    assert safe_relative_path("a/./b/\x00c") == "a/b/_c"
    assert safe_relative_path("..") == "_"


def test_settings_refuse_overlapping_prefixes() -> None:
    with pytest.raises(ValidationError):
        Settings(input_prefix="docs/", output_prefix="docs/out/")
    assert Settings(input_prefix="in", output_prefix="out").input_prefix == "in/"
