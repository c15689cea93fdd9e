"""Bucket verbs of the data plane: listing (ListObjects v1 and v2), and browser form uploads
(``POST /s3/{bucket}``, authenticated by their policy, not by SigV4 headers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

from starlette.types import Receive, Send

from updown.auth.principal import Principal
from updown.core.keys import validate_key
from updown.core.postpolicy import verify_post
from updown.core.sigv4verify import VerifiedRequest
from updown.errors import InvalidArgument
from updown.storage.base import MAX_LIST_LIMIT
from updown.web import s3http
from updown.web.s3 import xml as s3xml
from updown.web.s3.form import FormStream, boundary_of

if TYPE_CHECKING:
    from updown.web.s3.app import DataPlane, Exchange

_SUCCESS_STATUS: Final = {"200": 200, "201": 201, "204": 204}


async def list_objects(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    """ListObjectsV2."""
    q = ex.query
    if q.get("list-type") != "2":
        raise InvalidArgument("only ListObjectsV2 (list-type=2) is supported on the bucket")
    for unsupported in ("delimiter", "start-after", "fetch-owner"):
        if q.get(unsupported):
            raise InvalidArgument(f"{unsupported} is not supported")
    prefix = q.get("prefix", "")
    raw_max = q.get("max-keys", str(MAX_LIST_LIMIT))
    if not raw_max.isdigit():
        raise InvalidArgument("max-keys must be a non-negative integer")
    max_keys = min(int(raw_max), MAX_LIST_LIMIT)
    token = q.get("continuation-token") or None
    page = await plane.objects.list(principal, prefix, limit=max_keys, continuation_token=token, **plane.facts(ex))
    doc = s3xml.list_objects_v2(
        plane.bucket,
        prefix=prefix,
        page=page,
        max_keys=max_keys,
        continuation_token=token,
        url_encode=q.get("encoding-type") == "url",
    )
    headers = [(b"content-type", s3xml.XML_TYPE), (b"content-length", str(len(doc)).encode())]
    await plane.start(ex, send, 200, headers)
    await send({"type": "http.response.body", "body": doc})


async def post_form(plane: DataPlane, ex: Exchange, receive: Receive, send: Send) -> None:
    form = FormStream(receive, boundary_of(ex.headers.get("content-type")))
    fields = await form.fields()
    claimed = next((v for n, v in fields if n.lower() == "x-amz-credential"), "").partition("/")[0]
    principals, lookup = await plane.lookup(claimed or None)
    post = verify_post(fields, bucket=plane.bucket, credentials=lookup, now=plane.clock.now(), region=plane.region)
    principal = principals[-1]
    ex.key = validate_key(post.key_for(form.filename))
    metadata = {n[len(s3http.META_PREFIX) :]: v for n, v in post.fields.items() if n.startswith(s3http.META_PREFIX)}
    ctype = post.fields.get("content-type")
    limit = plane.max_object_size if post.max_length is None else min(post.max_length, plane.max_object_size)

    async def checked() -> AsyncIterator[bytes]:
        total = 0
        async for chunk in form.file_chunks():
            total += len(chunk)
            yield chunk
        # Raised before the iterator ends, so the store keeps nothing (and the old object).
        post.check_length(total)

    info = await plane.objects.put(
        principal,
        ex.key,
        checked(),
        content_type=ctype,
        metadata=metadata,
        content_length=None,
        max_size=limit,
        facts=plane.facts(ex),
    )
    await form.drain()
    status = _SUCCESS_STATUS.get(post.fields.get("success_action_status", ""), 204)
    location = f"/{plane.bucket}/{quote(info.key, safe='/~')}"
    headers = [(b"etag", f'"{info.etag}"'.encode()), (b"location", location.encode())]
    if status == 201:
        doc = s3xml.post_response(location, plane.bucket, info.key, info.etag)
        headers += [(b"content-type", s3xml.XML_TYPE), (b"content-length", str(len(doc)).encode())]
        await plane.start(ex, send, 201, headers)
        await send({"type": "http.response.body", "body": doc})
        return
    await plane.empty(ex, send, status, headers)
