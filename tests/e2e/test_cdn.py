"""The public CDN endpoint e2e: ready public files only, validators, ranges, HEAD, immutable
variants, overwrites, and no way out of ``public/`` however the path is encoded."""

from __future__ import annotations

import hashlib
import socket
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.files_helpers import Caller, initiate, png, put_bytes, upload, user
from tests.support.processes import Server


@pytest.fixture(scope="module")
def owner(server: Server) -> Caller:
    with httpx.Client(base_url=server.url) as c:
        return user(c, server)


@pytest.fixture(scope="module")
def published(server: Server, owner: Caller) -> dict[str, object]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        return upload(c, owner, png(200, 100, seed=21), accessLevel="public", name="cdn/pic.png")


def test_cdn_serves_ready_public_file_with_validators(client: httpx.Client, published: dict[str, object]) -> None:
    r = client.get("/cdn/cdn/pic.png")
    assert r.status_code == 200
    assert r.headers["etag"] == f'"{published["etag"]}"'
    assert r.headers["cache-control"].startswith("public, max-age=")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-type"] == "image/png"
    assert "last-modified" in r.headers
    assert hashlib.md5(r.content, usedforsecurity=False).hexdigest() == published["etag"]
    assert published["publicUrl"].endswith("/cdn/cdn/pic.png")  # type: ignore[union-attr]
    assert client.get("/cdn/cdn/pic.png", headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    assert client.get("/cdn/cdn/pic.png", headers={"If-Modified-Since": r.headers["last-modified"]}).status_code == 304
    part = client.get("/cdn/cdn/pic.png", headers={"Range": "bytes=0-9"})
    assert part.status_code == 206
    assert part.content == r.content[:10]
    assert part.headers["content-range"] == f"bytes 0-9/{len(r.content)}"
    assert client.get("/cdn/cdn/pic.png", headers={"Range": f"bytes={len(r.content)}-"}).status_code == 416
    head = client.head("/cdn/cdn/pic.png")
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(r.content))
    assert head.content == b""
    assert client.post("/cdn/cdn/pic.png").status_code == 405


def test_cdn_thumbnail_immutable(client: httpx.Client, published: dict[str, object]) -> None:
    thumb = published["variants"]["thumbnail"]  # type: ignore[index]
    r = client.get("/cdn/" + thumb[len("public/") :])
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["content-type"] == "image/webp"


def test_cdn_pending_upload_never_served(client: httpx.Client, owner: Caller) -> None:
    data = png(seed=22)
    grant = initiate(
        client, owner, accessLevel="public", name="cdn/pending.png", contentType="image/png", size=len(data)
    ).json()
    assert client.get("/cdn/cdn/pending.png").status_code == 404
    assert put_bytes(grant, data).status_code == 200
    # The staged bytes are not at the key until processing has verified them.
    assert client.get("/cdn/" + "../_uploads/" + grant["uploadId"]).status_code == 404


def test_cdn_overwrite_serves_new_bytes_under_new_etag(client: httpx.Client, owner: Caller) -> None:
    first = upload(client, owner, png(seed=23), accessLevel="public", name="cdn/over.png")
    second = upload(client, owner, png(seed=24), accessLevel="public", name="cdn/over.png")
    assert first["etag"] != second["etag"]
    r = client.get("/cdn/cdn/over.png")
    assert r.headers["etag"] == f'"{second["etag"]}"'
    assert hashlib.md5(r.content, usedforsecurity=False).hexdigest() == second["etag"]
    assert client.get("/cdn/cdn/over.png", headers={"If-None-Match": f'"{first["etag"]}"'}).status_code == 200


def _raw_get(server: Server, path: str) -> int:
    """A GET with the path bytes exactly as given (no client-side normalisation)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode("latin-1"))
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


def test_cdn_never_reaches_outside_public(client: httpx.Client, server: Server, owner: Caller) -> None:
    secret = upload(client, owner, png(seed=25), accessLevel="private", name="secret.png")["key"]
    name = secret.split("/", 1)[1]  # <identity>/secret.png
    attempts = [
        f"/cdn/../private/{name}",
        f"/cdn/%2e%2e/private/{name}",
        f"/cdn/%2E%2E%2Fprivate%2F{quote(name, safe='')}",
        f"/cdn/%252e%252e/private/{name}",
        f"/cdn/..%5cprivate%5c{name}",
        f"/cdn/%c0%ae%c0%ae/private/{name}",
        f"/cdn//private/{name}",
        f"/cdn/x/../../private/{name}",
        f"/cdn/x%00/../../private/{name}",
        "/cdn/",
        "/cdn",
    ]
    for path in attempts:
        status = _raw_get(server, path)
        assert status in (400, 404), (path, status)
    # The key itself, under public/, does not exist either.
    assert client.get(f"/cdn/private/{name}").status_code == 404
