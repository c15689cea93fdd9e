"""Object verbs of the data plane: GetObject and HeadObject (streamed through `web.serving`),
PutObject, CopyObject, DeleteObject."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.types import Message, Receive, Send

from updown.auth.principal import Principal
from updown.core.sigv4 import UNSIGNED_PAYLOAD
from updown.core.sigv4verify import VerifiedRequest
from updown.errors import (
    AccessDenied,
    EntityTooLarge,
    IncompleteBody,
    InvalidRequest,
    MissingContentLength,
    NotImplementedHere,
    XAmzContentSHA256Mismatch,
)
from updown.files.objects import HIDDEN
from updown.web import s3http, serving
from updown.web.s3.form import DISCONNECTED

if TYPE_CHECKING:
    from updown.web.s3.app import DataPlane, Exchange


async def get(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    """GetObject and HeadObject."""
    assert ex.key is not None
    plane.objects.check_read(principal, ex.key, **plane.facts(ex))

    async def start(status: int, headers: list[tuple[bytes, bytes]]) -> None:
        await plane.start(ex, send, status, headers)

    await serving.stream_object(
        plane.objects.storage,
        ex.key,
        method=ex.method,
        request_headers=ex.headers,
        overrides=s3http.query_params(ex.scope.get("query_string", b"")),
        hidden=HIDDEN,
        start=start,
        send=send,
    )


def upload_body(
    plane: DataPlane, ex: Exchange, verified: VerifiedRequest, receive: Receive
) -> tuple[AsyncIterator[bytes], int | None]:
    """The checked body of a write (PutObject, UploadPart) and its declared length."""
    h = ex.headers
    # The signer chose the content type: one the signature does not cover would be the
    # client's choice, which is what binding it is meant to prevent.
    if "content-type" in h and verified.header("content-type") is None:
        raise AccessDenied("There were headers present in the request which were not signed")
    length = s3http.content_length(h)
    if length is None and "chunked" not in h.get("transfer-encoding", "").lower():
        raise MissingContentLength()
    if length is not None and length > plane.max_object_size:
        raise EntityTooLarge(f"the body is {length} bytes; the limit is {plane.max_object_size}")
    return request_body(receive, verified.payload_hash), length


async def put(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    """PutObject."""
    assert ex.key is not None
    h = ex.headers
    body, length = upload_body(plane, ex, verified, receive)
    metadata = {n[len(s3http.META_PREFIX) :]: v for n, v in h.items() if n.startswith(s3http.META_PREFIX)}
    info = await plane.objects.put(
        principal,
        ex.key,
        body,
        content_type=h.get("content-type"),
        metadata=metadata,
        content_length=length,
        facts=plane.facts(ex),
    )
    await plane.empty(ex, send, 200, [(b"etag", f'"{info.etag}"'.encode())])


async def copy(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    """CopyObject (``x-amz-copy-source``)."""
    raise NotImplementedHere("CopyObject is not implemented yet")


async def delete(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    """DeleteObject."""
    assert ex.key is not None
    await plane.objects.delete(principal, ex.key, **plane.facts(ex))
    await plane.empty(ex, send, 204, [])


async def request_body(receive: Receive, payload_hash: str) -> AsyncIterator[bytes]:
    """The request body as it arrives; a disconnect (or a body not matching its signed SHA-256)
    raises inside the store's put, which then keeps nothing."""
    digest = None
    if payload_hash != UNSIGNED_PAYLOAD:
        if payload_hash.startswith("STREAMING-"):
            raise InvalidRequest("aws-chunked uploads are not supported; sign with UNSIGNED-PAYLOAD")
        digest = hashlib.sha256()
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise IncompleteBody(DISCONNECTED)
        chunk: bytes = message.get("body", b"")
        if chunk:
            if digest is not None:
                digest.update(chunk)
            yield chunk
        if not message.get("more_body", False):
            if digest is not None and digest.hexdigest() != payload_hash:
                raise XAmzContentSHA256Mismatch()
            return
