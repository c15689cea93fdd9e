"""Serving one object's bytes over HTTP, shared by ``/s3`` and ``/cdn``: conditionals (304),
ranges (206), HEAD, the inert-content headers, and the streamed body of one pinned version.

Offload (``storage.offload``): once updown has decided a GET (signature, policy, conditionals, a
satisfiable range), the answer is a 200 with every header and no body, plus the backend's
``X-Accel-Redirect`` or ``X-Sendfile``. The local backend's names the version file it opened; the
front server sends it and applies the request's ``Range`` itself. The S3 backend's names a
presigned GET of the version updown saw (`StorageBackend.reference_offload`,
``storage.offload``), with the range updown resolved; nginx fetches it from the store. nginx keeps
only a few of the upstream's headers across the redirect (its location restores the rest,
`_FRONT_RESTORES`, and drops the store's own), so an answer it could not rebuild exactly is
streamed by updown as without offload: one with ``x-amz-meta-*`` headers, or a request with
``If-Match``/``If-Unmodified-Since`` (nginx would test them against its own validators). One
decision, `_front_can_send`, for both backends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from starlette.types import Send

from updown.storage.base import ObjectInfo, StorageBackend, resolve_range
from updown.web import s3http

Headers = list[tuple[bytes, bytes]]
Start = Callable[[int, Headers], Awaitable[None]]

# What nginx keeps of the upstream's answer across an X-Accel-Redirect, and what the offload
# location of its config (tests/support/nginx_offload.conf) restores from $upstream_http_*.
_NGINX_KEEPS: Final = frozenset({b"content-type", b"content-disposition", b"cache-control", b"expires"})
_FRONT_RESTORES: Final = frozenset(
    {
        b"etag",
        b"last-modified",
        b"x-content-type-options",
        b"content-security-policy",
        b"content-language",
        b"content-encoding",
        b"x-amz-request-id",
        b"access-control-allow-origin",
        b"access-control-expose-headers",
        b"vary",
    }
)
NGINX_PASSES: Final = _NGINX_KEEPS | _FRONT_RESTORES
_NGINX_RETESTS: Final = ("if-match", "if-unmodified-since")


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
    info: ObjectInfo | None = None
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
    by_reference = storage.reference_offload
    if by_reference is not None:
        if info is None:
            info = await storage.head(key)
        headers = s3http.object_headers(info, overrides, hidden=hidden)
        # The store sends the object's x-amz-meta-* too: the front's location drops the hidden
        # ones (a visible one is updown's header, which nginx cannot pass on anyway).
        if _front_can_send(b"x-accel-redirect", headers, h) and all(name in hidden for name in info.metadata):
            span = None if byte_range is None else resolve_range(byte_range, info.size)
            await _offloaded(headers, by_reference.headers(info, span), start, send, extra)
            return
    async with await storage.get(key, byte_range=byte_range) as stream:
        info = stream.info
        headers = s3http.object_headers(info, overrides, hidden=hidden)
        if stream.offload is not None and _front_can_send(stream.offload[0], headers, h):
            await _offloaded(headers, [stream.offload], start, send, extra)
            return
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


async def _offloaded(
    headers: Headers, offload: Headers, start: Start, send: Send, extra: Callable[[Headers], None] | None
) -> None:
    """The headers-only answer that hands the bytes to the front server."""
    # The front server sends the bytes (and its own Accept-Ranges, and the 206 of a range).
    headers = [item for item in headers if item[0] != b"accept-ranges"]
    headers += [*offload, (b"content-length", b"0")]
    if extra is not None:
        extra(headers)
    await start(200, headers)
    await send({"type": "http.response.body", "body": b""})


def _front_can_send(header: bytes, headers: Headers, request_headers: Mapping[str, str]) -> bool:
    """Whether the front server named by the offload ``header`` rebuilds this answer exactly."""
    if header != b"x-accel-redirect":
        return True  # X-Sendfile servers keep the upstream's headers and validators
    if any(name in request_headers for name in _NGINX_RETESTS):
        return False
    return all(name in NGINX_PASSES or name == b"accept-ranges" for name, _ in headers)
