"""core.sigv4 against botocore: the same URLs and headers byte for byte, and botocore's verified."""

from __future__ import annotations

import hashlib
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.auth
import botocore.signers
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials as BotoCredentials

from updown.core.sigv4 import Credentials, Signer, object_url
from updown.core.sigv4verify import RequestParts, VerifiedRequest, verify
from updown.errors import RequestExpired, SignatureDoesNotMatch

REGION = "eu-local-1"
FROZEN = datetime(2026, 1, 2, 3, 4, 5)  # naive UTC, as botocore's clock
AKID = "AKIDUPDOWNTEST"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzE//token+with/slashes=="
KEYS = [
    "plain.txt",
    "with space.png",
    "unicode/éàü-日本語.jpg",
    "plus+sign",
    "percent%25 and %",
    "tilde~name",
    "equals=sign&amp",
    "double//slash/",
    "//leading",
    "protected/eu-local:5f0c1b2a/photo 1.png",
    "quotes'\"!()*,;:@$[]{}^`|\\<>#?",
]


@pytest.fixture
def endpoint() -> str:
    """An endpoint with a path prefix on a free loopback port (nothing listens: only signing)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/s3"


@pytest.fixture(autouse=True)
def frozen_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: FROZEN)
    monkeypatch.setattr(botocore.signers, "get_current_datetime", lambda *a, **k: FROZEN)


def boto_client(endpoint: str, token: str | None = None) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=AKID,
        aws_secret_access_key=SECRET,
        aws_session_token=token,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def received(url: str, method: str, headers: dict[str, str]) -> RequestParts:
    """The request an ASGI server would hand over for ``url`` sent with ``headers``."""
    rest = url.split("://", 1)[1]
    host, _, target = rest.partition("/")
    path, _, query = f"/{target}".partition("?")
    raw = [(b"host", host.encode())] + [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw += [(b"user-agent", b"test-client/1.0"), (b"content-length", b"5")]
    return RequestParts(method, path.encode(), query.encode(), raw)


def check(parts: RequestParts, creds: Credentials, now: datetime = FROZEN) -> VerifiedRequest:
    return verify(parts, credentials=lambda akid: creds if akid == AKID else None, now=now, region=REGION)


PUT_HEADERS = {"Content-Type": "image/png", "x-amz-meta-title": "Sunset  over  sea", "x-amz-meta-event": "42"}


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("token", [None, TOKEN])
def test_presign_put_same_url_as_boto3(endpoint: str, key: str, token: str | None) -> None:
    boto = boto_client(endpoint, token).generate_presigned_url(
        "put_object",
        Params={
            "Bucket": "files",
            "Key": key,
            "ContentType": "image/png",
            "Metadata": {"title": "Sunset  over  sea", "event": "42"},
        },
        ExpiresIn=900,
    )
    signer = Signer(Credentials(AKID, SECRET, token), REGION)
    ours = signer.presign("PUT", object_url(endpoint, "files", key), expires=900, now=FROZEN, headers=PUT_HEADERS)
    assert ours == boto
    assert f"{endpoint}/files/" in ours
    assert ("X-Amz-Security-Token=" in ours) is (token is not None)


@pytest.mark.parametrize("key", KEYS)
def test_verify_boto3_presigned_put_accepted(endpoint: str, key: str) -> None:
    url = boto_client(endpoint, TOKEN).generate_presigned_url(
        "put_object",
        Params={"Bucket": "files", "Key": key, "ContentType": "image/png", "Metadata": {"title": "Sunset  over  sea"}},
        ExpiresIn=3600,
    )
    creds = Credentials(AKID, SECRET, TOKEN)
    sent = {"Content-Type": "image/png", "x-amz-meta-title": "Sunset  over  sea"}
    verified = check(received(url, "PUT", sent), creds, FROZEN + timedelta(minutes=59))
    assert verified.presigned
    assert verified.header("content-type") == "image/png"
    assert verified.header("x-amz-meta-title") == "Sunset over sea"
    assert verified.expires_at == verified.timestamp + 3600
    assert verified.payload_hash == "UNSIGNED-PAYLOAD"


def test_verify_boto3_presigned_put_other_content_type_refused(endpoint: str) -> None:
    url = boto_client(endpoint).generate_presigned_url(
        "put_object", Params={"Bucket": "files", "Key": "a.png", "ContentType": "image/png"}, ExpiresIn=60
    )
    with pytest.raises(SignatureDoesNotMatch):
        check(received(url, "PUT", {"Content-Type": "text/html"}), Credentials(AKID, SECRET))


def test_verify_boto3_presigned_get_after_expiry_refused(endpoint: str) -> None:
    url = boto_client(endpoint).generate_presigned_url(
        "get_object", Params={"Bucket": "files", "Key": "k"}, ExpiresIn=60
    )
    creds = Credentials(AKID, SECRET)
    assert check(received(url, "GET", {}), creds, FROZEN + timedelta(seconds=60)).expires_at is not None
    with pytest.raises(RequestExpired):
        check(received(url, "GET", {}), creds, FROZEN + timedelta(seconds=61))


@pytest.mark.parametrize(
    "params",
    [
        {"ResponseContentDisposition": 'attachment; filename="x y.png"'},
        {"ResponseContentType": "image/png", "ResponseCacheControl": "no-cache"},
        {"VersionId": "v1+2=3"},
    ],
)
def test_presign_get_with_query_same_url_as_boto3(endpoint: str, params: dict[str, str]) -> None:
    boto = boto_client(endpoint).generate_presigned_url(
        "get_object", Params={"Bucket": "files", "Key": "dir/file name.png", **params}, ExpiresIn=300
    )
    names = {
        "ResponseContentDisposition": "response-content-disposition",
        "ResponseContentType": "response-content-type",
        "ResponseCacheControl": "response-cache-control",
        "VersionId": "versionId",
    }
    query = {names[k]: v for k, v in params.items()}
    signer = Signer(Credentials(AKID, SECRET), REGION)
    url = object_url(endpoint, "files", "dir/file name.png")
    assert signer.presign("GET", url, expires=300, now=FROZEN, query=query) == boto
    assert check(received(boto, "GET", {}), Credentials(AKID, SECRET)).presigned


def test_presign_default_port_endpoint_same_url_as_boto3() -> None:
    endpoint = "http://files.example.test/s3"
    boto = boto_client(endpoint).generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=10)
    ours = Signer(Credentials(AKID, SECRET), REGION).presign(
        "GET", object_url(endpoint, "b", "k"), expires=10, now=FROZEN.replace(tzinfo=UTC).timestamp()
    )
    assert ours == boto
    assert ours.startswith("http://files.example.test/s3/b/k?")


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("token", [None, TOKEN])
def test_sign_headers_same_authorization_as_botocore(endpoint: str, key: str, token: str | None) -> None:
    body = b"hello"
    url = object_url(endpoint, "files", key)
    request = AWSRequest(method="PUT", url=url, headers=dict(PUT_HEADERS), data=body)
    S3SigV4Auth(BotoCredentials(AKID, SECRET, token), "s3", REGION).add_auth(request)
    ours = Signer(Credentials(AKID, SECRET, token), REGION).sign_headers(
        "PUT", url, now=FROZEN, headers=PUT_HEADERS, payload_hash=hashlib.sha256(body).hexdigest()
    )
    for name, value in ours.headers.items():
        assert request.headers[name] == value


@pytest.mark.parametrize("key", KEYS)
def test_verify_botocore_header_signed_put_accepted(endpoint: str, key: str) -> None:
    body = b"hello"
    request = AWSRequest(method="PUT", url=object_url(endpoint, "files", key), headers=dict(PUT_HEADERS), data=body)
    S3SigV4Auth(BotoCredentials(AKID, SECRET, TOKEN), "s3", REGION).add_auth(request)
    verified = check(received(str(request.url), "PUT", dict(request.headers.items())), Credentials(AKID, SECRET, TOKEN))
    assert not verified.presigned
    assert verified.payload_hash == hashlib.sha256(body).hexdigest()
    assert verified.header("x-amz-meta-event") == "42"
