"""The `backend` fixture: every contract test runs on the local backend and on S3 (moto server)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from updown.storage.base import StorageBackend
from updown.storage.local import LocalBackend
from updown.storage.s3 import MIN_PART_SIZE, S3Backend

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

# Small parts, so that multipart uploads happen with bodies of a few MiB.
PART_SIZE = MIN_PART_SIZE


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port, for the whole session."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_client(moto_endpoint: str) -> S3Client:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "max_attempts": 1},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


@pytest.fixture
def s3_backend(s3_client: S3Client) -> S3Backend:
    """An S3 backend over a fresh bucket (one per test: no state leaks between tests)."""
    bucket = f"test-{secrets.token_hex(6)}"
    s3_client.create_bucket(Bucket=bucket)
    return S3Backend(bucket, part_size=PART_SIZE, client=s3_client)


@pytest.fixture
def s3_probing_backend(s3_client: S3Client) -> S3Backend:
    """The S3 backend as a store with directories runs it (``s3.probe_prefixes``), over a fresh bucket."""
    bucket = f"test-{secrets.token_hex(6)}"
    s3_client.create_bucket(Bucket=bucket)
    return S3Backend(bucket, part_size=PART_SIZE, client=s3_client, probe_prefixes=True)


@pytest.fixture
def local_backend(tmp_path: Path) -> LocalBackend:
    return LocalBackend(tmp_path / "store")


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> StorageBackend:
    fixture: StorageBackend = request.getfixturevalue(f"{request.param}_backend")
    return fixture
