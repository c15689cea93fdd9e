"""Offload on the S3 backend, without a server: which GETs `serving.stream_object` hands to nginx
(headers only, with the presigned X-Accel-Redirect) and which it streams itself, on a moto store;
and deploy/'s nginx location, which must rebuild exactly the answer updown would have sent."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.contract.bodies import chunks
from updown.errors import InvalidRange
from updown.files.objects import HIDDEN
from updown.settings import StorageSettings
from updown.storage.s3 import S3Backend
from updown.web import serving

pytestmark = pytest.mark.anyio

TEMPLATE = Path(__file__).resolve().parents[3] / "deploy" / "nginx" / "updown.conf.template"
DATA = bytes(range(256)) * 4


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        s3 = boto3.session.Session().client(
            "s3", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        s3.create_bucket(Bucket="files")
        yield s3


def _backend(client: Any, offload: str = "x-accel-redirect") -> S3Backend:
    return S3Backend(
        "files", endpoint_url="http://store:8333", access_key_id="AKIASTORE", secret_access_key="store-secret",
        path_style=True, client=client, offload=offload,
    )  # fmt: skip


class Answer:
    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.body = b""

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.status = status
        self.headers = dict(headers)
        assert len(self.headers) == len(headers), "a header sent twice"

    async def send(self, message: Mapping[str, Any]) -> None:
        self.body += message.get("body", b"")


async def _get(
    backend: S3Backend, key: str, headers: Mapping[str, str] | None = None, *, method: str = "GET"
) -> Answer:
    answer = Answer()
    await serving.stream_object(
        backend, key, method=method, request_headers=headers or {}, overrides={}, hidden=HIDDEN,
        start=answer.start, send=answer.send,
    )  # fmt: skip
    return answer


async def test_an_allowed_get_is_updowns_headers_and_the_presigned_redirect(client: Any) -> None:
    backend = _backend(client)
    info = await backend.put("public/a.png", chunks(DATA), content_type="image/png")
    got = await _get(backend, "public/a.png")
    assert (got.status, got.body) == (200, b"")
    assert got.headers[b"content-length"] == b"0"
    assert got.headers[b"x-accel-redirect"].startswith(b"/_updown_objects/files/public/a.png?X-Amz-Algorithm=")
    assert got.headers[b"etag"] == f'"{info.etag}"'.encode()
    assert got.headers[b"content-type"] == b"image/png"
    assert got.headers[b"x-content-type-options"] == b"nosniff"
    assert got.headers[b"content-security-policy"] == b"sandbox"
    assert b"accept-ranges" not in got.headers  # the store's, for the bytes it sends
    assert b"x-updown-range" not in got.headers


@pytest.mark.parametrize(
    ("range_header", "resolved"),
    [
        ("bytes=10-19", b"bytes=10-19"),
        ("bytes=1000-", b"bytes=1000-1023"),
        ("bytes=-4", b"bytes=1020-1023"),
        ("bytes=1000-99999", b"bytes=1000-1023"),
        ("bytes=0-1,5-6", None),  # several: the whole object, as updown answers it
        ("bytes=9-2", None),  # malformed: ignored
    ],
)
async def test_the_range_nginx_fetches_is_the_one_updown_resolved(
    client: Any, range_header: str, resolved: bytes | None
) -> None:
    backend = _backend(client)
    await backend.put("public/r.bin", chunks(DATA))
    got = await _get(backend, "public/r.bin", {"range": range_header})
    assert got.status == 200
    assert b"x-accel-redirect" in got.headers
    assert got.headers.get(b"x-updown-range") == resolved


async def test_an_unsatisfiable_range_is_refused_before_any_answer(client: Any) -> None:
    backend = _backend(client)
    await backend.put("public/r.bin", chunks(DATA))
    with pytest.raises(InvalidRange):
        await _get(backend, "public/r.bin", {"range": "bytes=1024-"})


async def test_what_nginx_could_not_rebuild_is_streamed_by_updown(client: Any) -> None:
    backend = _backend(client)
    await backend.put("public/m.bin", chunks(DATA), metadata={"colour": "blue"})
    meta = await _get(backend, "public/m.bin")
    assert (meta.status, meta.body, meta.headers[b"x-amz-meta-colour"]) == (200, DATA, b"blue")
    assert b"x-accel-redirect" not in meta.headers
    # updown's own metadata is hidden, and so it is in nginx's location: offloaded.
    info = await backend.put("public/o.bin", chunks(DATA), metadata={"updown-owner": "someone"})
    owned = await _get(backend, "public/o.bin")
    assert b"x-accel-redirect" in owned.headers
    assert b"x-amz-meta-updown-owner" not in owned.headers
    # nginx would test If-Match itself: streamed, with the range updown applies.
    matched = await _get(backend, "public/o.bin", {"if-match": f'"{info.etag}"', "range": "bytes=0-9"})
    assert (matched.status, matched.body) == (206, DATA[:10])
    assert b"x-accel-redirect" not in matched.headers
    head = await _get(backend, "public/o.bin", method="HEAD")
    assert (head.status, head.body, head.headers[b"content-length"]) == (200, b"", str(len(DATA)).encode())
    assert b"x-accel-redirect" not in head.headers


async def test_conditionals_are_updowns_then_the_get_is_offloaded(client: Any) -> None:
    backend = _backend(client)
    info = await backend.put("public/c.bin", chunks(DATA))
    assert (await _get(backend, "public/c.bin", {"if-none-match": f'"{info.etag}"'})).status == 304
    stale = await _get(backend, "public/c.bin", {"if-none-match": '"0123"'})
    assert (stale.status, stale.body) == (200, b"")
    assert b"x-accel-redirect" in stale.headers


async def test_without_offload_the_bytes_stream_through_updown(client: Any) -> None:
    backend = _backend(client, offload="none")
    await backend.put("public/n.bin", chunks(DATA))
    got = await _get(backend, "public/n.bin", {"range": "bytes=0-9"})
    assert (got.status, got.body) == (206, DATA[:10])
    assert b"x-accel-redirect" not in got.headers


# --------------------------------------------------------------------------- deploy/'s location


def _offload_location() -> str:
    text = TEMPLATE.read_text()
    match = re.search(r"location ~ \^(/\w+)\(\?<updown_store_path>/\.\+\)\$ \{(.*?)\n    \}", text, re.S)
    assert match is not None, "no offload location in the template"
    assert match[1] + "/" == StorageSettings().offload_prefix
    return match[2]


def test_the_front_restores_every_header_updown_sets_and_drops_the_stores() -> None:
    location = _offload_location()
    hides = {m.lower() for m in re.findall(r"proxy_hide_header ([\w-]+);", location)}
    saved = dict(re.findall(r"set \$(\w+) \$upstream_http_(\w+);", location))
    added = {name.lower(): var for name, var in re.findall(r"add_header ([\w-]+) \$(\w+) always;", location)}
    for name in serving._FRONT_RESTORES:
        text = name.decode()
        assert text in added, f"{text} is not restored"
        assert saved[added[text]] == text.replace("-", "_"), f"{text} is not restored from updown's answer"
    # Every header updown sends (kept across the redirect or restored) is dropped from the
    # store's answer, so none is sent twice or with the store's value.
    for name in serving.NGINX_PASSES:
        assert name.decode() in hides, f"the store's {name.decode()} is passed on"
    for meta in HIDDEN:
        assert f"x-amz-meta-{meta}" in hides
    # What SeaweedFS sends beside those (nginx drops Server and Date itself).
    assert {"seaweed-x-amz-etag", "seaweed-x-amz-owner", "x-amz-request-id", "vary"} <= hides
    assert not {"content-length", "content-range", "accept-ranges"} & hides  # the store's bytes


def test_only_the_signed_headers_reach_the_store_with_updowns_values() -> None:
    location = _offload_location()
    assert "internal;" in location
    assert "proxy_pass_request_headers off;" in location
    assert "proxy_set_header Host ${UPDOWN_STORE};" in location
    assert "set $updown_etag $upstream_http_etag;" in location
    assert "proxy_set_header If-Match $updown_etag;" in location
    assert "set $updown_range $upstream_http_x_updown_range;" in location
    assert "proxy_set_header Range $updown_range;" in location
    assert "proxy_intercept_errors on;" in location
    assert "proxy_pass http://updown_store$updown_store_path$is_args$args;" in location
