"""The data plane at the root of the server's origin: S3-signed requests there are the S3 API
(path-style ``/bucket/key`` and virtual-hosted ``bucket.host``), everything else is still the API
and the UI; ``s3.serve_at_root = false`` turns it off. Signed with the data plane's service credentials
(`s3_helpers.service_creds`); in the cluster run through the nginx front, which passes the Host."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import httpx
import pytest
from botocore.config import Config

from tests.e2e.s3_helpers import service_creds
from tests.support.processes import Server, clean_env


def _client(server: Server, endpoint: str, style: str = "path") -> Any:
    creds = service_creds(server)
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        config=Config(signature_version="s3v4", s3={"addressing_style": style}, retries={"max_attempts": 1}),
    )


def test_path_style_at_the_root(server: Server) -> None:
    s3 = _client(server, server.url)
    s3.put_object(Bucket="files", Key="public/root/a.txt", Body=b"at the root")
    assert s3.get_object(Bucket="files", Key="public/root/a.txt")["Body"].read() == b"at the root"
    listed = s3.list_objects_v2(Bucket="files", Prefix="public/root/")
    assert [o["Key"] for o in listed["Contents"]] == ["public/root/a.txt"]
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["files"]
    # The same object through /s3: one data plane, two addresses.
    assert (
        _client(server, f"{server.url}/s3").get_object(Bucket="files", Key="public/root/a.txt")["ContentLength"] == 11
    )


def test_sigv2_at_the_root_gets_an_s3_error_not_the_api(server: Server) -> None:
    legacy = boto3.session.Session().client(
        "s3",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(signature_version="s3", s3={"addressing_style": "path"}),
    )
    url = legacy.generate_presigned_url("get_object", Params={"Bucket": "files", "Key": "public/root/a.txt"})
    assert "AWSAccessKeyId=" in url
    answer = httpx.get(url)
    assert answer.status_code in (400, 403)
    assert answer.headers["content-type"] == "application/xml"
    assert "<Error><Code>" in answer.text


def test_virtual_hosted_style_at_the_root(server: Server) -> None:
    _client(server, server.url).put_object(Bucket="files", Key="public/root/v.txt", Body=b"virtual")
    # Signed for files.localhost:PORT, sent to the loopback address with that Host header.
    virtual = _client(server, f"http://localhost:{server.port}", style="virtual")
    url = virtual.generate_presigned_url("get_object", Params={"Bucket": "files", "Key": "public/root/v.txt"})
    parts = urlsplit(url)
    assert parts.netloc == f"files.localhost:{server.port}"
    got = httpx.get(f"{server.url}{parts.path}?{parts.query}", headers={"Host": parts.netloc})
    assert got.status_code == 200, got.text
    assert got.content == b"virtual"


def test_unsigned_requests_at_the_root_are_the_api_and_the_ui(server: Server) -> None:
    page = httpx.get(f"{server.url}/files")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    home = httpx.get(f"{server.url}/")
    assert home.headers["content-type"].startswith("text/html")
    missing = httpx.get(f"{server.url}/files/public/root/a.txt")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    # A bearer token is not an S3 signature: still the API.
    api = httpx.get(f"{server.url}/auth/me", headers={"Authorization": "Bearer x"})
    assert api.status_code == 401
    assert api.headers["content-type"].startswith("application/problem+json")


@pytest.fixture(scope="module")
def off(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("root-off")
    srv = Server(data_dir=root / "data", env=clean_env({"UPDOWN_S3__SERVE_AT_ROOT": "false"})).start()
    try:
        yield srv
    finally:
        srv.stop()


def test_serve_at_root_off_leaves_the_root_to_the_api(off: Server) -> None:
    s3 = _client(off, off.url)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "files", "Key": "public/x.txt"})
    answer = httpx.get(url)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
    # /s3 still answers.
    assert _client(off, f"{off.url}/s3").list_buckets()["Buckets"][0]["Name"] == "files"
