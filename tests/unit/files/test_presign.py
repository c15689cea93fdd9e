"""files.presign: a presigned GET binds the verified type and the disposition (inline for raster
images only), the URL botocore makes for the same overrides, and a changed override is refused."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import botocore.auth
import botocore.signers
import pytest
from botocore.config import Config

from updown.clock import FrozenClock
from updown.core.sigv4 import Credentials, Signer
from updown.core.sigv4verify import RequestParts, verify
from updown.errors import SignatureDoesNotMatch
from updown.files.presign import INLINE_TYPES, Presigner, attachment, media_type

REGION = "eu-local-1"
CREDS = Credentials("AKIDPRESIGN", "presign-secret")
FROZEN = datetime(2026, 1, 2, 3, 4, 5)  # naive UTC, as botocore's clock
NOW = FROZEN.replace(tzinfo=UTC).timestamp()
KEY = "private/eu-local:5f0c1b2a/docs/naïve report.pdf"


@pytest.fixture
def endpoint() -> str:
    """A free loopback port (nothing listens: only signing)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/s3"


def presigner(endpoint: str) -> Presigner:
    return Presigner(Signer(CREDS, REGION), endpoint=endpoint, bucket="files", clock=FrozenClock(NOW))


def overrides(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items() if k.startswith("response-")}


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/csv",
        "text/html",
        "application/pdf",
        "application/json",
        "application/zip",
        "application/octet-stream",
        "image/svg+xml",
        "image/heic",
        "video/mp4",
        "audio/mpeg",
        "x-unknown/thing",
    ],
)
def test_get_not_inert_type_signed_as_attachment_of_its_type(endpoint: str, content_type: str) -> None:
    url = presigner(endpoint).get(KEY, expires=60, content_type=content_type)
    assert overrides(url) == {
        "response-content-type": content_type,
        "response-content-disposition": attachment("naïve report.pdf"),
    }


@pytest.mark.parametrize("content_type", [*sorted(INLINE_TYPES), "IMAGE/PNG", "image/webp; q=1"])
def test_get_raster_image_inline_unless_download(endpoint: str, content_type: str) -> None:
    p = presigner(endpoint)
    assert overrides(p.get("public/cat.png", expires=60, content_type=content_type)) == {
        "response-content-type": content_type
    }
    downloaded = overrides(p.get("public/cat.png", expires=60, content_type=content_type, download=True))
    assert downloaded["response-content-disposition"] == "attachment; filename=\"cat.png\"; filename*=UTF-8''cat.png"


def test_inline_types_are_raster_images_only() -> None:
    assert all(t.startswith("image/") and t != "image/svg+xml" for t in INLINE_TYPES)
    assert media_type(" Image/PNG ; x=y") == "image/png"


def frozen_boto(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> Any:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: FROZEN)
    monkeypatch.setattr(botocore.signers, "get_current_datetime", lambda *a, **k: FROZEN)
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=CREDS.access_key_id,
        aws_secret_access_key=CREDS.secret_access_key,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def test_get_same_url_as_botocore_with_the_overrides(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """What an S3 store verifies: the overrides are in the canonical query botocore signs."""
    ours = presigner(endpoint).get(KEY, expires=300, content_type="application/pdf")
    theirs = frozen_boto(monkeypatch, endpoint).generate_presigned_url(
        "get_object",
        Params={
            "Bucket": "files",
            "Key": KEY,
            "ResponseContentType": "application/pdf",
            "ResponseContentDisposition": attachment("naïve report.pdf"),
        },
        ExpiresIn=300,
    )
    assert parse_qs(urlsplit(ours).query) == parse_qs(urlsplit(theirs).query)
    assert urlsplit(ours).path == urlsplit(theirs).path


def parts(url: str) -> RequestParts:
    split = urlsplit(url)
    return RequestParts("GET", split.path.encode(), split.query.encode(), [(b"host", split.netloc.encode())])


def test_get_override_changed_or_dropped_signature_refused(endpoint: str) -> None:
    url = presigner(endpoint).get(KEY, expires=60, content_type="text/plain")
    assert verify(parts(url), credentials=CREDS, now=NOW, region=REGION).access_key_id == CREDS.access_key_id
    disposition = "response-content-disposition="
    start = url.index(disposition)
    end = url.find("&", start)
    dropped = url[:start] + (url[end + 1 :] if end != -1 else "")
    retyped = url.replace("response-content-type=text%2Fplain", "response-content-type=text%2Fhtml")
    assert retyped != url
    assert "response-content-disposition" not in dropped
    for tampered in (dropped, retyped):
        with pytest.raises(SignatureDoesNotMatch):
            verify(parts(tampered), credentials=CREDS, now=NOW, region=REGION)
