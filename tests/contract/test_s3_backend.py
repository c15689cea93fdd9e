"""What only the S3 backend does: multipart ETags, aborted uploads, the error map, its own client."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError as BotoClientError
from botocore.exceptions import EndpointConnectionError

from tests.contract.bodies import chunks, failing_body, read_all
from tests.contract.conftest import PART_SIZE
from updown.errors import (
    ConfigError,
    EntityTooLarge,
    InvalidArgument,
    InvalidRange,
    NoSuchKey,
    PreconditionFailed,
    ServerError,
    ServiceUnavailable,
    UpdownError,
)
from updown.storage.s3 import S3Backend, map_boto_error

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

pytestmark = pytest.mark.anyio


def pending_uploads(client: S3Client, bucket: str) -> list[str]:
    return [u["UploadId"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


async def test_s3_put_over_one_part_has_multipart_etag(s3_backend: S3Backend) -> None:
    body = os.urandom(2 * PART_SIZE + 1)
    info = await s3_backend.put("big", chunks(body))
    parts = [body[i : i + PART_SIZE] for i in range(0, len(body), PART_SIZE)]
    digests = b"".join(hashlib.md5(p, usedforsecurity=False).digest() for p in parts)
    assert info.etag == f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-3"
    assert (await s3_backend.head("big")).etag == info.etag


async def test_s3_put_failing_midway_aborts_the_multipart_upload(
    s3_backend: S3Backend,
    s3_client: S3Client,
) -> None:
    with pytest.raises(ConnectionResetError):
        await s3_backend.put("k", failing_body(os.urandom(PART_SIZE + 1)))
    assert pending_uploads(s3_client, s3_backend.bucket) == []
    with pytest.raises(NoSuchKey):
        await s3_backend.head("k")


async def test_s3_put_cancelled_midway_aborts_the_multipart_upload(
    s3_backend: S3Backend,
    s3_client: S3Client,
) -> None:
    sent = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield os.urandom(PART_SIZE + 1)
        sent.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(s3_backend.put("k", stalled()))
    await asyncio.wait_for(sent.wait(), timeout=10)
    assert len(pending_uploads(s3_client, s3_backend.bucket)) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(200):  # the abort runs on in its thread; poll for it
        if not pending_uploads(s3_client, s3_backend.bucket):
            break
        await asyncio.sleep(0.01)
    assert pending_uploads(s3_client, s3_backend.bucket) == []


async def test_s3_sweep_temp_aborts_orphaned_uploads(s3_backend: S3Backend, s3_client: S3Client) -> None:
    # moto reports every upload as initiated in 2010, so the age cut-off is not exercised here.
    s3_client.create_multipart_upload(Bucket=s3_backend.bucket, Key="orphan")
    assert await s3_backend.sweep_temp(0) == 1
    assert pending_uploads(s3_client, s3_backend.bucket) == []


async def test_s3_backend_built_from_settings_talks_path_style(moto_endpoint: str, s3_client: S3Client) -> None:
    s3_client.create_bucket(Bucket="built-from-settings")
    backend = S3Backend(
        "built-from-settings",
        endpoint_url=moto_endpoint,
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",
        path_style=True,
    )
    await backend.check()
    await backend.put("a/b", chunks(b"hi"), content_type="text/plain")
    assert await read_all(backend, "a/b") == b"hi"


async def test_s3_check_missing_bucket_raises_service_unavailable(s3_client: S3Client) -> None:
    backend = S3Backend("no-such-bucket-here", client=s3_client)
    with pytest.raises(ServiceUnavailable):
        await backend.check()


async def test_s3_check_unreachable_endpoint_raises_service_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port any more: connections are refused at once.
    backend = S3Backend(
        "b",
        endpoint_url=f"http://127.0.0.1:{port}",
        region="us-east-1",
        access_key_id="x",
        secret_access_key="y",
        path_style=True,
    )
    with pytest.raises(ServiceUnavailable) as caught:
        await backend.check()
    assert isinstance(caught.value.__cause__, EndpointConnectionError)


def test_s3_backend_part_size_under_minimum_raises_config_error() -> None:
    with pytest.raises(ConfigError):
        S3Backend("b", part_size=1024)


def client_error(code: str, status: int) -> BotoClientError:
    response: Any = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return BotoClientError(response, "Op")


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("NoSuchKey", 404, NoSuchKey),
        ("404", 404, NoSuchKey),
        ("InvalidRange", 416, InvalidRange),
        ("EntityTooLarge", 400, EntityTooLarge),
        ("InvalidArgument", 400, InvalidArgument),
        ("PreconditionFailed", 412, PreconditionFailed),
        ("AccessDenied", 403, ServiceUnavailable),
        ("InvalidAccessKeyId", 403, ServiceUnavailable),
        ("NoSuchBucket", 404, ServiceUnavailable),
        ("SlowDown", 503, ServiceUnavailable),
        ("InternalError", 500, ServiceUnavailable),
        ("SomethingNew", 400, ServerError),
    ],
)
def test_map_boto_error_code_maps_to_our_class(code: str, status: int, expected: type[UpdownError]) -> None:
    mapped = map_boto_error(client_error(code, status))
    assert type(mapped) is expected


def test_map_boto_error_connection_failure_is_service_unavailable() -> None:
    mapped = map_boto_error(EndpointConnectionError(endpoint_url="http://x"))
    assert type(mapped) is ServiceUnavailable
    assert "http://x" not in mapped.detail
