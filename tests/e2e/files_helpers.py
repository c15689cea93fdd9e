"""Helpers for the files e2e tests: images made byte by byte, signed-in callers, the upload flows."""

from __future__ import annotations

import random
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import httpx

from tests.e2e.userpool_helpers import bearer, confirmed_user
from tests.support.processes import Server


def png(width: int = 64, height: int = 48, *, seed: int = 1, declared: tuple[int, int] | None = None) -> bytes:
    """A valid RGB PNG of noise; ``declared`` writes other dimensions into its header (a bomb
    declares huge ones over a tiny image stream)."""
    rng = random.Random(seed)
    rows = b"".join(b"\x00" + bytes(rng.randrange(256) for _ in range(width * 3)) for _ in range(height))
    w, h = declared or (width, height)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@dataclass
class Caller:
    """A signed-in user (or a guest) with its bearer token and identity id."""

    token: str
    identity_id: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


def user(client: httpx.Client, server: Server) -> Caller:
    tokens = confirmed_user(client, server).signin(client)
    me = client.get("/identity/me", headers=bearer(tokens["accessToken"])).json()
    return Caller(tokens["accessToken"], me["identityId"])


def guest(client: httpx.Client) -> Caller:
    body = client.post("/identity/guest").json()
    return Caller(body["token"], body["identityId"])


def initiate(client: httpx.Client, caller: Caller, **body: Any) -> httpx.Response:
    return client.post("/storage/uploads", headers=caller.headers, json=body)


def put_bytes(grant: dict[str, Any], data: bytes) -> httpx.Response:
    """Sends the bytes as a browser would: to the presigned URL with exactly the granted headers."""
    target = grant["put"]
    headers = {k: v for k, v in target["headers"].items() if k.lower() != "content-length"}
    return httpx.put(target["url"], content=data, headers=headers, timeout=60)


def post_form(grant: dict[str, Any], data: bytes, filename: str = "file") -> httpx.Response:
    form = grant["post"]
    return httpx.post(form["url"], data=form["fields"], files={"file": (filename, data)}, timeout=60)


def complete(client: httpx.Client, caller: Caller, upload_id: str, **body: Any) -> httpx.Response:
    return client.post(f"/storage/uploads/{upload_id}/complete", headers=caller.headers, json=body or None)


def upload(
    client: httpx.Client, caller: Caller, data: bytes, *, content_type: str = "image/png", **body: Any
) -> dict[str, Any]:
    """Initiate (put), send, complete: the ready file record."""
    r = initiate(client, caller, contentType=content_type, size=len(data), **body)
    assert r.status_code == 201, r.text
    grant = r.json()
    sent = put_bytes(grant, data)
    assert sent.status_code == 200, sent.text
    done = complete(client, caller, grant["uploadId"])
    assert done.status_code == 200, done.text
    record: dict[str, Any] = done.json()
    assert record["status"] == "ready", record
    return record
