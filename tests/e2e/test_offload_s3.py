"""Download offload on the S3 backend e2e: `updown serve` on SeaweedFS with ``storage.offload =
"x-accel-redirect"``, behind deploy/'s nginx front (deploy/nginx/updown.conf.template). updown
decides each GET and answers headers only; nginx fetches the presigned GET of the same version
from the store. The store is reached through a TCP relay that can replace an object at the moment
nginx's fetch arrives: the bytes are that version's or none, never a mix."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.stack import Nginx, SeaweedFS
from tests.e2e.files_helpers import png, upload, user
from tests.e2e.s3_helpers import BUCKET, REGION, Creds, payload, user_creds
from tests.support.processes import Server, clean_env, free_port
from updown.core.sigv4 import Credentials, Signer, object_url

pytestmark = [pytest.mark.embedded("its own SeaweedFS, server and nginx, with offload on"), pytest.mark.slow]

PREFIX = "/_updown_objects/"
ODD_KEY = "public/offload/Dir With Space/ünï#?%40@+!x.bin"
# Headers whose values differ per answer, or are the transport's.
PER_ANSWER = {"date", "server", "connection", "keep-alive", "x-amz-request-id", "content-length"}


@dataclass
class Relay:
    """A TCP relay from ``port`` to the store; ``replace[path]`` (key, bytes) is written to the store
    through ``client`` just before a GET of that path carrying ``If-Match`` (nginx's fetch) goes on."""

    target: int
    client: Any
    port: int = field(default_factory=free_port)
    replace: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _thread: threading.Thread | None = None
    _open: set[asyncio.StreamWriter] = field(default_factory=set)

    def start(self) -> Relay:
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))

        async def run() -> None:
            with contextlib.suppress(asyncio.CancelledError):
                async with server:
                    await server.serve_forever()

        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(run(),), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        def cancel() -> None:
            for writer in self._open:
                writer.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()

        self._loop.call_soon_threadsafe(cancel)
        if self._thread is not None:
            self._thread.join(10)
        # The cancelled connections finish here, before the loop closes.
        pending = asyncio.all_tasks(self._loop)

        async def finish() -> None:
            await asyncio.gather(*pending, return_exceptions=True)

        self._loop.run_until_complete(finish())
        self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self._open |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, inspect: bool) -> None:
            try:
                while data := await src.read(65536):
                    if inspect and data.startswith(b"GET ") and b"\r\nif-match:" in data.lower():
                        path = data.split(b" ", 2)[1].split(b"?", 1)[0].decode()
                        if path in self.replace:
                            key, body = self.replace.pop(path)
                            await asyncio.to_thread(self.client.put_object, Bucket=BUCKET, Key=key, Body=body)
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()
                self._open.discard(dst)

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))


@dataclass
class Stack:
    weed: SeaweedFS
    relay: Relay
    server: Server
    front: Nginx
    misconfigured: Nginx

    @property
    def service(self) -> Creds:
        return Creds(self.weed.access_key_id, self.weed.secret_access_key)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root: Path = tmp_path_factory.mktemp("offload-s3")
    weed = SeaweedFS(root / "seaweedfs").start()
    relay = Relay(weed.port, weed.client()).start()
    store = f"127.0.0.1:{relay.port}"
    port = free_port()
    front = Nginx(root / "nginx", [f"127.0.0.1:{port}"], store=store)
    env = clean_env(
        {
            "UPDOWN_STORAGE__BACKEND": "s3",
            "UPDOWN_STORAGE__BUCKET": BUCKET,
            "UPDOWN_STORAGE__OFFLOAD": "x-accel-redirect",
            "UPDOWN_S3__ENDPOINT_URL": f"http://{store}",
            "UPDOWN_S3__ACCESS_KEY_ID": weed.access_key_id,
            "UPDOWN_S3__SECRET_ACCESS_KEY": weed.secret_access_key,
            "UPDOWN_S3__REGION": REGION,
            "UPDOWN_SERVER__PUBLIC_URL": front.url,
        }
    )
    server = Server(data_dir=root / "api" / "data", env=env, port=port)
    # The same store under another name than the one updown signs for.
    misconfigured = Nginx(root / "nginx-misconfigured", [f"127.0.0.1:{port}"], store=f"localhost:{relay.port}")
    started: list[Any] = []
    try:
        for part in (server, front, misconfigured):
            part.start()
            started.append(part)
        yield Stack(weed, relay, server, front, misconfigured)
    finally:
        print(f"\n--- updown serve log ---\n{server.log_tail()}")
        for part in reversed(started):
            part.stop()
        relay.stop()
        weed.stop()


def presigned(base: str, creds: Creds, key: str, method: str = "GET") -> str:
    signer = Signer(Credentials(creds.access_key_id, creds.secret_access_key, creds.session_token), REGION)
    return signer.presign(method, object_url(f"{base}/s3", BUCKET, key), expires=600, now=time.time())


def put(stack: Stack, key: str, data: bytes) -> str:
    r = httpx.put(presigned(stack.front.url, stack.service, key, "PUT"), content=data, timeout=60)
    assert r.status_code == 200, r.text
    return str(r.headers["etag"])


def _described(headers: httpx.Headers, *drop: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in PER_ANSWER and k not in drop}


def test_a_get_through_nginx_is_the_stores_bytes_with_exactly_updowns_headers(stack: Stack) -> None:
    data = payload(3 * 1024 * 1024 + 17, "offload-s3")
    etag = put(stack, ODD_KEY, data)
    r = httpx.get(presigned(stack.front.url, stack.service, ODD_KEY), timeout=60)
    assert r.status_code == 200, r.text
    assert r.content == data
    assert r.headers["etag"] == etag == f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
    assert r.headers["content-length"] == str(len(data))
    # updown's request id (16 hex digits), not the store's (24).
    assert len(r.headers["x-amz-request-id"]) == 16
    # Without nginx: the same decision, headers only, with the redirect to the store.
    raw = httpx.get(presigned(stack.server.url, stack.service, ODD_KEY), timeout=60)
    assert (raw.status_code, raw.content, raw.headers["content-length"]) == (200, b"", "0")
    assert raw.headers["x-accel-redirect"].startswith(PREFIX + BUCKET + "/")
    # Every header nginx sent is updown's, with updown's value (and the store's Accept-Ranges).
    assert _described(r.headers) == {**_described(raw.headers, "x-accel-redirect"), "accept-ranges": "bytes"}
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == "sandbox"
    assert r.headers["content-disposition"] == "attachment"
    assert not [k for k in r.headers if k.startswith(("x-amz-meta-", "seaweed"))]
    # The internal location is not reachable from outside.
    assert httpx.get(stack.front.url + raw.headers["x-accel-redirect"], timeout=10).status_code == 404


def test_ranges_are_the_ones_updown_resolved(stack: Stack) -> None:
    data = payload(1024 * 1024, "offload-s3-range")
    put(stack, "public/offload/range.bin", data)
    url = presigned(stack.front.url, stack.service, "public/offload/range.bin")
    part = httpx.get(url, headers={"Range": "bytes=1000-1999"}, timeout=30)
    assert (part.status_code, part.content) == (206, data[1000:2000])
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    assert part.headers["etag"] == f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
    tail = httpx.get(url, headers={"Range": "bytes=-10"}, timeout=30)
    assert (tail.status_code, tail.content) == (206, data[-10:])
    assert tail.headers["content-range"] == f"bytes {len(data) - 10}-{len(data) - 1}/{len(data)}"
    # Several ranges, or a malformed one: the whole object, as updown answers them.
    for ranges in ("bytes=0-1,5-6", "bytes=9-2"):
        whole = httpx.get(url, headers={"Range": ranges}, timeout=30)
        assert (whole.status_code, whole.content) == (200, data), ranges
    beyond = httpx.get(url, headers={"Range": f"bytes={len(data)}-"}, timeout=30)
    assert beyond.status_code == 416
    assert b"InvalidRange" in beyond.content


def test_a_denied_get_is_updowns_403_and_nothing_from_the_store(stack: Stack) -> None:
    owner, _ = user_creds(stack.server)
    _, intruder = user_creds(stack.server)
    secret = payload(256 * 1024, "offload-s3-secret")
    key = f"private/{owner.identity_id}/secret.bin"
    put(stack, key, secret)
    for base in (stack.front.url, stack.server.url):
        r = httpx.get(presigned(base, intruder, key), timeout=30)
        assert r.status_code == 403
        assert b"<Code>AccessDenied</Code>" in r.content
        assert secret[:64] not in r.content
        assert "x-accel-redirect" not in r.headers


def test_an_object_replaced_after_updown_decided_is_503_never_a_mix(stack: Stack) -> None:
    old, new = payload(512 * 1024, "offload-s3-old"), payload(300 * 1024, "offload-s3-new")
    key = "public/offload/replaced.bin"
    put(stack, key, old)
    # nginx's fetch of the old version arrives at the store after the new one was written.
    stack.relay.replace[object_url("", BUCKET, key)] = (key, new)
    r = httpx.get(presigned(stack.front.url, stack.service, key), timeout=30)
    assert not stack.relay.replace, "nginx's fetch never reached the store"
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert old[:64] not in r.content
    assert new[:64] not in r.content
    assert b"PreconditionFailed" not in r.content  # nor the store's error document
    # Asked again, the new version with its own headers.
    again = httpx.get(presigned(stack.front.url, stack.service, key), timeout=30)
    assert (again.status_code, again.content) == (200, new)
    assert again.headers["etag"] == f'"{hashlib.md5(new, usedforsecurity=False).hexdigest()}"'


def test_a_store_that_refuses_nginxs_fetch_is_502_without_its_error(stack: Stack) -> None:
    data = payload(64 * 1024, "offload-s3-misconfigured")
    put(stack, "public/offload/host.bin", data)
    # Signed for 127.0.0.1:<port>, sent with Host localhost:<port>: the store refuses the signature.
    r = httpx.get(presigned(stack.misconfigured.url, stack.service, "public/offload/host.bin"), timeout=30)
    assert r.status_code == 502
    assert data[:64] not in r.content
    assert b"<Error>" not in r.content
    assert "etag" not in r.headers


def test_a_cdn_get_through_nginx_is_offloaded(stack: Stack) -> None:
    with httpx.Client(base_url=stack.server.url, timeout=30) as c:
        record = upload(c, user(c, stack.server), png(120, 80, seed=41), accessLevel="public", name="offs3/pic.png")
    r = httpx.get(f"{stack.front.url}/cdn/offs3/pic.png", timeout=30)
    assert r.status_code == 200
    assert hashlib.md5(r.content, usedforsecurity=False).hexdigest() == record["etag"]
    assert r.headers["etag"] == f'"{record["etag"]}"'
    assert r.headers["cache-control"].startswith("public, max-age=")
    assert (r.headers["content-type"], r.headers["x-content-type-options"]) == ("image/png", "nosniff")
    raw = httpx.get(f"{stack.server.url}/cdn/offs3/pic.png", timeout=30)
    assert raw.headers["x-accel-redirect"].startswith(PREFIX)
    assert raw.content == b""
    assert _described(r.headers) == {**_described(raw.headers, "x-accel-redirect"), "accept-ranges": "bytes"}
    part = httpx.get(f"{stack.front.url}/cdn/offs3/pic.png", headers={"Range": "bytes=0-9"}, timeout=30)
    assert (part.status_code, part.content) == (206, r.content[:10])
    cached = httpx.get(f"{stack.front.url}/cdn/offs3/pic.png", headers={"If-None-Match": r.headers["etag"]})
    assert cached.status_code == 304
