"""One settings object, read from the environment (prefix ``PAGEDROP_``) once, passed down."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024

EngineName = Literal["auto", "text-layer", "rapidocr", "paddleocr-vl", "vlm"]
OcrEngineName = Literal["rapidocr", "paddleocr-vl", "vlm"]


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

    # Engines.
    engine: EngineName = Field(
        default="auto",
        description="auto: text layer where usable, OCR engine elsewhere; or force one engine.",
    )
    ocr_engine: OcrEngineName = "rapidocr"
    ocr_dpi: int = Field(default=200, ge=72, le=600, description="Render resolution for OCR.")
    languages: tuple[str, ...] = Field(
        default=(),
        description="Languages declared for every document (ISO 639-3, comma-separated); "
        "recorded in the elements' metadata. Per document: x-amz-meta-pagedrop-languages.",
    )

    # Limits, enforced before heavy work.
    max_bytes: int = Field(default=512 * MIB, gt=0)
    max_pages: int = Field(default=2000, gt=0)
    max_pixels_per_page: int = Field(default=80_000_000, gt=0)
    document_timeout_s: float = Field(default=3600.0, gt=0)
    max_failed_page_share: float = Field(
        default=0.5, ge=0, le=1, description="Above this share of failed pages: FAILED."
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
