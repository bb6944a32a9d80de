"""Shared fixtures: the embedded AWS endpoint over real HTTP, and a fresh stack per test."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from handler.aws import Clients, make_clients
from handler.documents.pages import PageInput
from handler.local.endpoint import LocalEndpoint, local_boto3_session, start_endpoint
from handler.local.resources import create_local_stack
from handler.settings import Settings
from tests.vlm_models import tiny_paddleocr_vl_dir  # noqa: F401  (one tiny model a session)

DATA = Path(__file__).parent / "data"
SAMPLES = Path(__file__).parent.parent / "samples"
# Dummy credentials for clients and processes pointed at the embedded endpoint.
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
_stack_numbers = itertools.count(1)
_RUN = uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def endpoint() -> Iterator[LocalEndpoint]:
    with start_endpoint() as running:
        yield running


@pytest.fixture
def stack_settings(endpoint: LocalEndpoint) -> Settings:
    """A bucket, queues and table of their own for one test, created from template.yaml."""
    # moto's state is per process, shared by every server in it: names must be unique.
    n = f"{next(_stack_numbers)}-{_RUN}"
    session = local_boto3_session()
    raw = [endpoint.client(name, session) for name in ("s3", "sqs", "dynamodb")]
    stack = create_local_stack(*raw, bucket=f"pagedrop-test-{n}", prefix=f"pagedrop-test-{n}")
    return stack.settings(
        endpoint_url=endpoint.url,
        receive_wait_s=1,
        heartbeat_interval_s=5,
        worker_id=f"test-worker-{n}",
    )


@pytest.fixture
def clients(stack_settings: Settings) -> Clients:
    return make_clients(stack_settings, local_boto3_session())


def mid_page(page: PageInput) -> tuple[float, float, float, float]:
    """A box in the middle of a page, for scripted engines: away from the bands where
    running headers and footers are looked for (handler/outputs/furniture.py)."""
    w, h = page.layout_width, page.layout_height
    return (0.1 * w, 0.45 * h, 0.9 * w, 0.5 * h)


def drain(settings: Settings, clients: Clients, *, idle_polls: int = 1) -> object:
    """Run a real worker on the stack's queue until it finds the queue empty; its stats."""
    from handler.worker.build import build_worker

    return build_worker(settings, clients).run(max_idle_polls=idle_polls)


def upload(clients: Clients, settings: Settings, path: Path, relative: str) -> str:
    """Upload a file under the input prefix (the S3 notification queues its event)."""
    key = settings.input_prefix + relative
    clients.s3.upload_file(str(path), settings.bucket, key)
    return key


def read_outputs(clients: Clients, settings: Settings, key: str) -> dict[str, bytes]:
    """Every output file of the document at input ``key``, by its path under its prefix."""
    prefix = settings.output_prefix + key[len(settings.input_prefix) :] + "/"
    listing = clients.s3.list_objects_v2(Bucket=settings.bucket, Prefix=prefix)
    return {
        o["Key"][len(prefix) :]: clients.s3.get_object(Bucket=settings.bucket, Key=o["Key"])[
            "Body"
        ].read()
        for o in listing.get("Contents", [])
    }
