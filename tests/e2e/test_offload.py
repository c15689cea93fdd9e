"""Download offload e2e: `updown serve` with ``storage.offload = "x-accel-redirect"`` behind a real
nginx (tests/support/nginx_offload.conf). updown decides every GET (signature, policy,
conditionals, range) and nginx sends the bytes from disk; without nginx the answer is headers only."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.files_helpers import png, upload, user
from tests.e2e.s3_helpers import BUCKET, REGION, Creds, payload, user_creds
from tests.support.nginx import OffloadFront
from tests.support.processes import Server, clean_env
from updown.core.sigv4 import Credentials, Signer, object_url

pytestmark = pytest.mark.embedded("its own server with offload on, behind its own nginx")

SERVICE = Creds("AKIAOFFLOADTEST00001", "offload-test-secret-key-0123456789abcdef")
PREFIX = "/_updown_objects/"
# Upper case, spaces, non-ASCII, `#`, `?`, `%` and `@`: each is encoded on disk and again in the header.
ODD_KEY = "offload/Dir With Space/ünï#?%40@x.bin"


@dataclass
class Stack:
    server: Server
    front: OffloadFront


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root: Path = tmp_path_factory.mktemp("offload")
    env = clean_env(
        {
            "UPDOWN_STORAGE__OFFLOAD": "x-accel-redirect",
            "UPDOWN_STORAGE__OFFLOAD_PREFIX": PREFIX,
            "UPDOWN_S3__ACCESS_KEY_ID": SERVICE.access_key_id,
            "UPDOWN_S3__SECRET_ACCESS_KEY": SERVICE.secret_access_key,
        }
    )
    with Server(data_dir=root / "data", env=env) as server:
        objects = server.data_dir / "objects" / "objects"  # storage.root defaults to <data>/objects
        with OffloadFront(root / "nginx", server.port, objects, prefix=PREFIX) as front:
            try:
                yield Stack(server, front)
            finally:
                print(f"\n--- updown serve log ---\n{server.log_tail()}")


def presigned(base: str, creds: Creds, method: str, key: str) -> str:
    signer = Signer(Credentials(creds.access_key_id, creds.secret_access_key, creds.session_token), REGION)
    return signer.presign(method, object_url(f"{base}/s3", BUCKET, key), expires=600, now=time.time())


def put(base: str, key: str, data: bytes, headers: dict[str, str] | None = None) -> str:
    r = httpx.put(presigned(base, SERVICE, "PUT", key), content=data, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    return r.headers["etag"]


def test_offload_presigned_get_through_nginx_returns_the_bytes_and_updowns_headers(stack: Stack) -> None:
    data = payload(3 * 1024 * 1024 + 17, "offload-1")
    etag = put(stack.front.url, ODD_KEY, data)  # uploads stream through nginx too
    r = httpx.get(presigned(stack.front.url, SERVICE, "GET", ODD_KEY), timeout=60)
    assert r.status_code == 200, r.text
    assert r.content == data
    assert r.headers["etag"] == etag == f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"] == "attachment"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == "sandbox"
    assert r.headers["last-modified"].endswith(" GMT")
    assert r.headers["x-amz-request-id"]
    assert r.headers.get_list("accept-ranges") == ["bytes"]
    assert "x-accel-redirect" not in r.headers

    # Without nginx: the same decision, answered with the header and no body.
    raw = httpx.get(presigned(stack.server.url, SERVICE, "GET", ODD_KEY), timeout=60)
    assert raw.status_code == 200
    assert raw.content == b""
    assert raw.headers["content-length"] == "0"
    assert raw.headers["x-accel-redirect"].startswith(PREFIX)
    assert raw.headers["etag"] == etag
    # nginx's internal location is not reachable from outside.
    assert httpx.get(stack.front.url + raw.headers["x-accel-redirect"], timeout=10).status_code == 404


def test_offload_range_is_served_by_nginx(stack: Stack) -> None:
    data = payload(1024 * 1024, "offload-range")
    put(stack.front.url, "offload/range.bin", data)
    url = presigned(stack.front.url, SERVICE, "GET", "offload/range.bin")
    part = httpx.get(url, headers={"Range": "bytes=1000-1999"}, timeout=30)
    assert part.status_code == 206
    assert part.content == data[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    tail = httpx.get(url, headers={"Range": "bytes=-10"}, timeout=30)
    assert (tail.status_code, tail.content) == (206, data[-10:])
    # Several ranges: the whole object, as S3 answers.
    both = httpx.get(url, headers={"Range": "bytes=0-1,5-6"}, timeout=30)
    assert (both.status_code, both.content) == (200, data)
    # An unsatisfiable range is updown's 416, decided before any redirect.
    beyond = httpx.get(url, headers={"Range": f"bytes={len(data)}-"}, timeout=30)
    assert beyond.status_code == 416
    assert b"InvalidRange" in beyond.content


def test_offload_conditionals_stay_with_updown(stack: Stack) -> None:
    data = payload(64 * 1024, "offload-cond")
    etag = put(stack.front.url, "offload/cond.bin", data)
    url = presigned(stack.front.url, SERVICE, "GET", "offload/cond.bin")
    assert httpx.get(url, headers={"If-None-Match": etag}, timeout=30).status_code == 304
    stale = httpx.get(url, headers={"If-None-Match": '"0123"'}, timeout=30)
    assert (stale.status_code, stale.content) == (200, data)
    assert httpx.get(url, headers={"If-Match": '"0123"'}, timeout=30).status_code == 412
    # nginx would test If-Match against its own validators: updown streams such a GET itself.
    matched = httpx.get(url, headers={"If-Match": etag, "Range": "bytes=0-9"}, timeout=30)
    assert (matched.status_code, matched.content) == (206, data[:10])
    direct = httpx.get(presigned(stack.server.url, SERVICE, "GET", "offload/cond.bin"), headers={"If-Match": etag})
    assert "x-accel-redirect" not in direct.headers
    assert direct.content == data
    modified = httpx.get(url, headers={"If-Modified-Since": "Tue, 15 Nov 1994 08:12:31 GMT"}, timeout=30)
    assert (modified.status_code, modified.content) == (200, data)


def test_offload_object_with_user_metadata_is_streamed_by_updown(stack: Stack) -> None:
    data = payload(100 * 1024, "offload-meta")
    key = "offload/meta.bin"
    signer = Signer(Credentials(SERVICE.access_key_id, SERVICE.secret_access_key), REGION)
    url = signer.presign(
        "PUT", object_url(f"{stack.front.url}/s3", BUCKET, key), expires=600, now=time.time(),
        headers={"x-amz-meta-colour": "blue"},
    )  # fmt: skip
    assert httpx.put(url, content=data, headers={"x-amz-meta-colour": "blue"}, timeout=30).status_code == 200
    r = httpx.get(presigned(stack.front.url, SERVICE, "GET", key), timeout=30)
    assert (r.status_code, r.content) == (200, data)
    assert r.headers["x-amz-meta-colour"] == "blue"  # nginx could not have passed it on
    raw = httpx.get(presigned(stack.server.url, SERVICE, "GET", key), timeout=30)
    assert "x-accel-redirect" not in raw.headers
    assert raw.content == data


def test_offload_denied_get_is_updowns_403_and_nothing_from_disk(stack: Stack) -> None:
    owner, _ = user_creds(stack.server)
    _, intruder = user_creds(stack.server)
    secret = payload(256 * 1024, "offload-secret")
    key = f"private/{owner.identity_id}/secret.bin"
    put(stack.front.url, key, secret)
    r = httpx.get(presigned(stack.front.url, intruder, "GET", key), timeout=30)
    assert r.status_code == 403
    assert b"<Code>AccessDenied</Code>" in r.content
    assert secret[:64] not in r.content
    assert "x-accel-redirect" not in r.headers
    forged = presigned(stack.front.url, SERVICE, "GET", key).replace("X-Amz-Signature=", "X-Amz-Signature=0")
    bad = httpx.get(forged, timeout=30)
    assert bad.status_code == 403
    assert secret[:64] not in bad.content


def test_offload_cdn_get_through_nginx(stack: Stack) -> None:
    with httpx.Client(base_url=stack.server.url, timeout=30) as c:
        record = upload(c, user(c, stack.server), png(120, 80, seed=31), accessLevel="public", name="off/pic.png")
    r = httpx.get(f"{stack.front.url}/cdn/off/pic.png", timeout=30)
    assert r.status_code == 200
    assert hashlib.md5(r.content, usedforsecurity=False).hexdigest() == record["etag"]
    assert r.headers["etag"] == f'"{record["etag"]}"'
    assert r.headers["cache-control"].startswith("public, max-age=")
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-content-type-options"] == "nosniff"
    part = httpx.get(f"{stack.front.url}/cdn/off/pic.png", headers={"Range": "bytes=0-9"}, timeout=30)
    assert (part.status_code, part.content) == (206, r.content[:10])
    raw = httpx.get(f"{stack.server.url}/cdn/off/pic.png", timeout=30)
    assert raw.headers["x-accel-redirect"].startswith(PREFIX)
    assert raw.content == b""
    assert (
        httpx.get(f"{stack.front.url}/cdn/off/pic.png", headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    )
