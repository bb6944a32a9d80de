"""One settings object, read from the environment (prefix ``PAGEDROP_``) once, passed down."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024

EngineName = Literal["auto", "text-layer", "rapidocr", "paddleocr-vl", "vlm"]
OcrEngineName = Literal["rapidocr", "paddleocr-vl", "vlm"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
DeviceName = Literal["auto", "cuda", "cpu"]
DtypeName = Literal["auto", "bfloat16", "float16", "float32"]
PaddleBackend = Literal["paddle", "transformers"]


class Settings(BaseSettings):
    """Everything a worker, the CLI or a Lambda function needs to know (DESIGN §8)."""

    model_config = SettingsConfigDict(env_prefix="PAGEDROP_", extra="ignore")

    # Where things are.
    bucket: str = ""
    input_prefix: str = "input/"
    output_prefix: str = "output/"
    queue_url: str = ""
    dlq_url: str = ""
    table_name: str = "pagedrop-status"
    region: str = "us-east-1"
    endpoint_url: str | None = Field(
        default=None, description="AWS endpoint for local runs; unset means real AWS."
    )
    profile: str | None = Field(
        default=None,
        description="A named AWS profile (~/.aws/config) for credentials; unset means boto3's "
        "default chain (AWS_* variables, AWS_PROFILE, instance role).",
    )

    # Engines.
    engine: EngineName = Field(
        default="auto",
        description="auto: text layer where usable, OCR engine elsewhere; or force one engine.",
    )
    ocr_engine: OcrEngineName = "rapidocr"
    ocr_threads: int = Field(
        default=0,
        ge=0,
        le=64,
        description="ONNX Runtime threads per OCR call; 0 = every CPU this process may use (at "
        "most 8). With several workers on one machine, give each its share of the cores.",
    )
    ocr_dpi: int = Field(default=200, ge=72, le=600, description="Render resolution for OCR.")
    languages: tuple[str, ...] = Field(
        default=(),
        description="Languages declared for every document (ISO 639-3, comma-separated); "
        "recorded in the elements' metadata. Per document: x-amz-meta-pagedrop-languages.",
    )

    # GPU engines (docs/gpu.md): weights, device, batching.
    model_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "pagedrop" / "models",
        description="Folder holding one sub-folder of weights per model (`pagedrop models "
        "download` fills it). Engines load only from here; nothing is downloaded at run time.",
    )
    model_s3_uri: str = Field(
        default="",
        description="s3://bucket/prefix/ synced into model_dir at start-up (optional): a "
        "fleet can take its weights from S3 instead of the image.",
    )
    device: DeviceName = Field(
        default="auto", description="auto: CUDA when a GPU is present, else the CPU."
    )
    vlm_model: str = Field(
        default="paddleocr-vl",
        description="The vlm engine's model profile (handler/engines/vlm/profiles.py).",
    )
    vlm_model_path: Path | None = Field(
        default=None, description="A model folder to load instead of model_dir/<profile>."
    )
    vlm_prompt: str = Field(default="", description="Overrides the profile's prompt.")
    vlm_max_new_tokens: int = Field(
        default=0, ge=0, le=32768, description="0: the profile's default."
    )
    vlm_min_pixels: int = Field(default=0, ge=0, description="0: the profile's default.")
    vlm_max_pixels: int = Field(default=0, ge=0, description="0: the profile's default.")
    vlm_dtype: DtypeName = Field(
        default="auto", description="auto: bfloat16 on a GPU that has it, float32 on the CPU."
    )
    gpu_batch_size: int = Field(
        default=8, ge=1, le=256, description="Pages per generation batch (halved on CUDA OOM)."
    )
    gpu_batch_wait_ms: int = Field(
        default=50,
        ge=0,
        le=10_000,
        description="How long a partial batch waits for more pages before it runs.",
    )
    document_slots: int = Field(
        default=1,
        ge=1,
        le=32,
        description="Documents one worker process converts at once, sharing its engines: "
        "with a GPU engine, the pages of several documents share generation batches (many "
        "one-page documents fill a batch together). CPU engines gain nothing from more.",
    )
    paddleocr_vl_backend: PaddleBackend = Field(
        default="paddle",
        description="paddleocr-vl engine: the paddle GPU backend (the image) or transformers.",
    )
    paddleocr_vl_layout: bool = Field(
        default=True,
        description="paddleocr-vl engine: find the page's blocks with PP-DocLayoutV2 first "
        "(titles, tables, formulas, figures, reading order). False reads each whole page with "
        "the recogniser's OCR prompt: no layout model needed, plain text out.",
    )

    # Limits, enforced before heavy work.
    max_bytes: int = Field(default=512 * MIB, gt=0)
    max_pages: int = Field(default=2000, gt=0)
    max_pixels_per_page: int = Field(default=80_000_000, gt=0)
    document_timeout_s: float = Field(default=3600.0, gt=0)
    max_failed_page_share: float = Field(
        default=0.5, ge=0, le=1, description="Above this share of failed pages: FAILED."
    )
    checkpoint_interval_s: float = Field(
        default=5.0,
        ge=0,
        le=600,
        description="Converted pages are checkpointed in batches, one lease fence a batch: "
        "a batch is flushed once this much conversion time has passed since the last one. "
        "Longer: fewer round trips, more work redone after a crash; 0: every page.",
    )

    # Queue and lease timing.
    visibility_timeout_s: int = Field(default=300, ge=10, le=43200)
    heartbeat_interval_s: float = Field(default=60.0, gt=0)
    lease_s: int = Field(default=300, ge=10)
    receive_wait_s: int = Field(default=20, ge=0, le=20)
    receive_batch: int = Field(
        default=1,
        ge=1,
        le=10,
        description="Messages per receive. Documents take seconds to minutes, so prefetching "
        "gains nothing, and every message a worker holds loses a receive when it dies.",
    )
    retry_delay_s: int = Field(
        default=30,
        ge=0,
        le=43200,
        description="After a transient fault, the message is visible again after this long.",
    )
    shutdown_grace_s: float = Field(
        default=10.0, gt=0, description="Bound on handing messages back after SIGTERM."
    )

    # Retention and identity.
    retention_days: int = Field(default=30, ge=1)
    worker_id: str = ""
    asg_name: str = Field(
        default="",
        description="The Auto Scaling group the worker's instance is in: the worker protects "
        "its instance from scale-in while it holds documents. Unset: not in a fleet.",
    )
    link_expiry_s: int = Field(
        default=900,
        ge=1,
        le=604_800,
        description="Lifetime of the presigned output links the status function returns.",
    )

    # Observability (docs/operations.md).
    log_level: LogLevel = "INFO"
    metrics_namespace: str = Field(
        default="pagedrop", min_length=1, max_length=255, description="CloudWatch namespace."
    )
    metrics_enabled: bool = Field(
        default=True, description="Print metrics (CloudWatch embedded metric format) to stdout."
    )
    health_file: Path = Field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "pagedrop-health.json",
        description="Where the worker writes its readiness (read by `pagedrop health`).",
    )
    health_port: int = Field(
        default=0, ge=0, le=65535, description="HTTP port for GET /health; 0 = no endpoint."
    )
    health_host: str = Field(
        default="127.0.0.1", description="Address the health endpoint listens on."
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("input_prefix", "output_prefix")
    @classmethod
    def _prefix_ends_with_slash(cls, value: str) -> str:
        if value and not value.endswith("/"):
            value += "/"
        return value

    @field_validator("languages", mode="before")
    @classmethod
    def _split_languages(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _prefixes_do_not_overlap(self) -> Settings:
        a, b = self.input_prefix, self.output_prefix
        if a == b or (a and b.startswith(a)) or (b and a.startswith(b)):
            raise ValueError(
                f"input_prefix {a!r} and output_prefix {b!r} overlap: outputs would be "
                "picked up as inputs and loop"
            )
        if self.heartbeat_interval_s * 2 > min(self.visibility_timeout_s, self.lease_s):
            raise ValueError(
                "heartbeat_interval_s must be at most half of visibility_timeout_s and lease_s"
            )
        return self
