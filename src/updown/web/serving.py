"""Serving one object's bytes over HTTP, shared by ``/s3`` and ``/cdn``: conditionals (304),
ranges (206), HEAD, the inert-content headers, and the streamed body of one pinned version."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.types import Send

from updown.storage.base import StorageBackend, resolve_range
from updown.web import s3http

Headers = list[tuple[bytes, bytes]]
Start = Callable[[int, Headers], Awaitable[None]]


async def stream_object(
    storage: StorageBackend,
    key: str,
    *,
    method: str,
    request_headers: Mapping[str, str],
    overrides: Mapping[str, str],
    hidden: frozenset[str],
    start: Start,
    send: Send,
    extra: Callable[[Headers], None] | None = None,
) -> None:
    """Answers a GET or HEAD of ``key``; ``start(status, headers)`` begins the answer.

    ``extra`` may add headers (``Cache-Control``) to a 200, 206 or HEAD answer. Every header
    describes the version whose bytes are sent: a replace in the meantime never mixes versions.

    Raises:
        NoSuchKey, InvalidRange, PreconditionFailed: before the answer starts.
    """
    h = request_headers
    byte_range = s3http.parse_range(h.get("range"))
    conditional = any(n in h for n in ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since"))
    if method == "HEAD" or conditional:
        info = await storage.head(key)
        if s3http.check_preconditions(info, h):
            headers = s3http.validator_headers(info)
            if extra is not None:
                extra(headers)
            await start(304, headers)
            await send({"type": "http.response.body", "body": b""})
            return
        if method == "HEAD":
            headers = s3http.object_headers(info, overrides, hidden=hidden)
            span = None if byte_range is None else resolve_range(byte_range, info.size)
            length = info.size if span is None else span[1] - span[0] + 1
            if span is not None:
                headers.append((b"content-range", s3http.content_range(span, info.size)))
            headers.append((b"content-length", str(length).encode()))
            if extra is not None:
                extra(headers)
            await start(200 if span is None else 206, headers)
            await send({"type": "http.response.body", "body": b""})
            return
    async with await storage.get(key, byte_range=byte_range) as stream:
        info = stream.info
        headers = s3http.object_headers(info, overrides, hidden=hidden)
        headers.append((b"content-length", str(stream.length).encode()))
        if extra is not None:
            extra(headers)
        if stream.byte_range is not None:
            headers.append((b"content-range", s3http.content_range(stream.byte_range, info.size)))
            await start(206, headers)
        else:
            await start(200, headers)
        async for chunk in stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
