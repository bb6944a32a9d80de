"""Model folders synced from S3 (PAGEDROP_MODEL_S3_URI), against the embedded endpoint."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from handler.errors import EngineUnavailable
from handler.local.endpoint import LocalEndpoint
from handler.models.s3sync import RECORD, parse_s3_uri, sync_from_s3, sync_models_at_start
from handler.settings import Settings

pytestmark = pytest.mark.integration

FILES = {
    "paddleocr-vl/config.json": b'{"model_type": "paddleocr_vl"}',
    "paddleocr-vl/model.safetensors": b"weights-1",
    "paddleocr-vl/PP-DocLayoutV2/inference.yml": b"Global: {}",
}


@pytest.fixture
def s3(endpoint: LocalEndpoint) -> Any:
    return endpoint.client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"pagedrop-models-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    for key, data in FILES.items():
        s3.put_object(Bucket=name, Key=f"models/{key}", Body=data)
    s3.put_object(Bucket=name, Key="models/paddleocr-vl/", Body=b"")  # a console "folder"
    s3.put_object(Bucket=name, Key="elsewhere/other.bin", Body=b"not a model")
    return name


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file() and path.name != RECORD
    }


def test_the_prefix_lands_as_the_model_folder_and_a_second_sync_fetches_nothing(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    # When the prefix is synced into an empty model folder
    fetched = sync_from_s3(s3, f"s3://{bucket}/models", tmp_path)
    # Then every file is there, with the object's time, and nothing else
    assert fetched == 3
    assert _tree(tmp_path) == FILES
    head = s3.head_object(Bucket=bucket, Key="models/paddleocr-vl/config.json")
    mtime = (tmp_path / "paddleocr-vl" / "config.json").stat().st_mtime
    assert int(mtime) == int(head["LastModified"].timestamp())
    # And a second sync finds it up to date
    assert sync_from_s3(s3, f"s3://{bucket}/models/", tmp_path) == 0


def test_a_changed_object_is_fetched_again_even_at_the_same_size(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    sync_from_s3(s3, f"s3://{bucket}/models/", tmp_path)
    s3.put_object(Bucket=bucket, Key="models/paddleocr-vl/model.safetensors", Body=b"weights-2")

    assert sync_from_s3(s3, f"s3://{bucket}/models/", tmp_path) == 1
    assert (tmp_path / "paddleocr-vl" / "model.safetensors").read_bytes() == b"weights-2"


def test_a_damaged_local_file_is_replaced(s3: Any, bucket: str, tmp_path: Path) -> None:
    sync_from_s3(s3, f"s3://{bucket}/models/", tmp_path)
    (tmp_path / "paddleocr-vl" / "model.safetensors").write_bytes(b"trunc")

    assert sync_from_s3(s3, f"s3://{bucket}/models/", tmp_path) == 1
    assert _tree(tmp_path) == FILES


def test_files_already_in_place_without_a_record_are_kept_by_size_and_time(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    # Given the files in place (as an image would carry them) but no sync record
    sync_from_s3(s3, f"s3://{bucket}/models/", tmp_path)
    (tmp_path / RECORD).unlink()
    # Then nothing is fetched while size and time match (and the ETags are recorded)...
    assert sync_from_s3(s3, f"s3://{bucket}/models/", tmp_path) == 0
    assert sorted(json.loads((tmp_path / RECORD).read_text())) == sorted(FILES)
    # ...and a file whose time differs is fetched
    os.utime(tmp_path / "paddleocr-vl" / "config.json", (1_000_000, 1_000_000))
    (tmp_path / RECORD).unlink()
    assert sync_from_s3(s3, f"s3://{bucket}/models/", tmp_path) == 1


class _FailingDownloads:
    """The real client, whose downloads write half a file and then break off."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def download_file(self, bucket: str, key: str, filename: str) -> None:
        Path(filename).write_bytes(b"half")
        raise ConnectionResetError("connection reset by peer")


def test_an_interrupted_download_leaves_no_file_under_the_real_name(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    with pytest.raises(ConnectionResetError):
        sync_from_s3(_FailingDownloads(s3), f"s3://{bucket}/models/", tmp_path)

    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_an_empty_prefix_or_a_missing_bucket_is_one_sentence(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    with pytest.raises(EngineUnavailable, match=r"s3://.*/nothing/ holds no model files"):
        sync_from_s3(s3, f"s3://{bucket}/nothing/", tmp_path)
    with pytest.raises(EngineUnavailable, match=r"cannot sync the models from .*NoSuchBucket"):
        sync_from_s3(s3, f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/models/", tmp_path)


def test_the_start_up_sync_runs_only_when_a_uri_is_set(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    unset = Settings(model_dir=tmp_path / "a", model_s3_uri="")
    assert sync_models_at_start(unset, s3) == 0
    assert not (tmp_path / "a").exists()

    settings = Settings(model_dir=tmp_path / "b", model_s3_uri=f"s3://{bucket}/models/")
    assert sync_models_at_start(settings, s3) == 3
    assert _tree(tmp_path / "b") == FILES


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://b", ("b", "")),
        ("s3://b/", ("b", "")),
        ("s3://b/models", ("b", "models/")),
        ("s3://b/a/b/", ("b", "a/b/")),
    ],
)
def test_uris_are_split_into_bucket_and_prefix(uri: str, expected: tuple[str, str]) -> None:
    assert parse_s3_uri(uri) == expected


@pytest.mark.parametrize("uri", ["models/", "s3:///models", "https://b/models"])
def test_a_uri_that_is_not_s3_is_refused(uri: str) -> None:
    with pytest.raises(EngineUnavailable, match="must look like s3://bucket/prefix/"):
        parse_s3_uri(uri)
