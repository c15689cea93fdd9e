"""The public CDN endpoint, ``/cdn/{path}``: ready files under ``public/`` (and their variants), to anyone.

The path is decoded once, validated as a name (``core/keys.py`` refuses ``..``, ``%2e%2e`` left
over from double encoding, backslashes, NUL, empty segments) and only then prefixed with
``public/``: no encoding reaches outside it. The gate decides with the CDN's own principal (role
``cdn``: read ``public/*``). Only keys with a ready row (or a variant row) are served; answers carry
``ETag``, ``Last-Modified``, ``Cache-Control`` (variants are content-addressed: immutable) and the
inert-content headers, with 304, 206/416 and HEAD as on ``/s3``.
"""

from __future__ import annotations

import json
from typing import Final
from urllib.parse import unquote_to_bytes

import anyio.to_thread
from starlette.types import Receive, Scope, Send

from updown.auth.principal import CDN
from updown.core.keys import validate_key, validate_name
from updown.errors import MethodNotAllowed, NoSuchKey, UpdownError
from updown.files.objects import HIDDEN, Objects
from updown.files.records import Records
from updown.web import problems, s3http, serving

IMMUTABLE: Final = b"public, max-age=31536000, immutable"
_EXPOSED: Final = b"ETag, Content-Length, Content-Range, Accept-Ranges, Last-Modified"


class Cdn:
    """The ``/cdn`` ASGI app."""

    def __init__(
        self, objects: Objects, records: Records, *, max_age: int, cors_origins: tuple[str, ...], prefix: str = "/cdn"
    ) -> None:
        self.objects = objects
        self.records = records
        self.max_age = f"public, max-age={max_age}".encode()
        self.cors_origins = frozenset(cors_origins)
        self.prefix = prefix.encode() + b"/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started = False
        cors: list[tuple[bytes, bytes]] = []
        origin = next((v.decode("latin-1") for n, v in scope["headers"] if n == b"origin"), None)
        if origin is not None and ("*" in self.cors_origins or origin in self.cors_origins):
            cors = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
            cors.append((b"access-control-expose-headers", _EXPOSED))

        async def start(status: int, headers: list[tuple[bytes, bytes]]) -> None:
            nonlocal started
            started = True
            await send({"type": "http.response.start", "status": status, "headers": [*headers, *cors]})

        try:
            await self._handle(scope, start, send)
        except UpdownError as exc:
            if started:
                return
            await self._error(scope, exc, start, send)

    async def _handle(self, scope: Scope, start: serving.Start, send: Send) -> None:
        method = scope["method"]
        if method == "OPTIONS":
            await start(204, [(b"access-control-allow-methods", b"GET, HEAD"), (b"access-control-max-age", b"3000")])
            await send({"type": "http.response.body", "body": b""})
            return
        if method not in ("GET", "HEAD"):
            raise MethodNotAllowed("the CDN serves GET and HEAD only")
        key = self._key(scope)
        self.objects.check_read(CDN, key)
        cache_control = await anyio.to_thread.run_sync(self._cache_control, key)
        if cache_control is None:
            raise NoSuchKey("no such file")

        def extra(headers: list[tuple[bytes, bytes]]) -> None:
            # The CDN's own Cache-Control, in place of one the object was stored with.
            headers[:] = [h for h in headers if h[0] != b"cache-control"]
            headers.append((b"cache-control", cache_control))

        await serving.stream_object(
            self.objects.storage,
            key,
            method=method,
            request_headers=s3http.request_headers(scope["headers"]),
            overrides={},
            hidden=HIDDEN,
            start=start,
            send=send,
            extra=extra,
        )

    def _key(self, scope: Scope) -> str:
        raw: bytes = scope.get("raw_path") or scope["path"].encode()
        raw = raw.split(b"?", 1)[0]
        if not raw.startswith(self.prefix):
            raise NoSuchKey("no such file")
        try:
            name = unquote_to_bytes(raw[len(self.prefix) :]).decode("utf-8")
        except UnicodeDecodeError:  # overlong or broken UTF-8
            raise NoSuchKey("no such file") from None
        try:
            return validate_key("public/" + validate_name(name))
        except UpdownError:
            raise NoSuchKey("no such file") from None

    def _cache_control(self, key: str) -> bytes | None:
        """None unless ``key`` is a ready file or a variant of one."""
        info = self.records.ready(key)
        if info is not None:
            return info.cache_control.encode() if info.cache_control else self.max_age
        return IMMUTABLE if self.records.variant(key) is not None else None

    async def _error(self, scope: Scope, exc: UpdownError, start: serving.Start, send: Send) -> None:
        problem = problems.problem_body(exc)
        status = int(problem["status"])
        body = b"" if scope["method"] == "HEAD" else json.dumps(problem).encode()
        headers = [(b"content-type", problems.PROBLEM_TYPE.encode()), (b"content-length", str(len(body)).encode())]
        if status == 405:
            headers.append((b"allow", b"GET, HEAD, OPTIONS"))
        await start(status, headers)
        await send({"type": "http.response.body", "body": body})
