"""Bucket verbs of the data plane: listing (ListObjects v1 and v2), and browser form uploads
(``POST /s3/{bucket}``, authenticated by their policy, not by SigV4 headers).

Listings are S3's: ``prefix``, ``delimiter`` (``CommonPrefixes``, each counted once against
``max-keys``), ``max-keys`` (at most 1000), v2's ``continuation-token``/``start-after``/
``fetch-owner``, v1's ``marker`` (``NextMarker`` only with a delimiter, as S3 gives it; without
one the last key is the next marker), ``encoding-type=url``. ``s3:ListBucket`` is asked with the
request's ``s3:prefix`` (``""`` when none is given), ``s3:delimiter`` and ``s3:max-keys``.

Every object has one owner as S3 reports it (``Owner``): the bucket's, as with S3's "bucket owner
enforced" object ownership; its id is a stable hash of the bucket name (`owner_xml`).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

from starlette.types import Receive, Send

from updown.auth.principal import Principal
from updown.core.keys import validate_key
from updown.core.postpolicy import verify_post
from updown.core.sigv4verify import VerifiedRequest
from updown.errors import InvalidArgument
from updown.storage.base import MAX_LIST_LIMIT, ListPage
from updown.web import s3http
from updown.web.s3 import xml as s3xml
from updown.web.s3.form import FormStream, boundary_of
from updown.web.s3.xml import document, el, iso8601

if TYPE_CHECKING:
    from updown.web.s3.app import DataPlane, Exchange

_SUCCESS_STATUS: Final = {"200": 200, "201": 201, "204": 204}
OWNER_NAME: Final = "updown"


async def list_objects(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    """ListObjectsV2 (``list-type=2``) and ListObjects (v1, no ``list-type``)."""
    q = ex.query
    list_type = q.get("list-type")
    if list_type not in (None, "2"):
        raise InvalidArgument("Invalid List Type specified")
    encode = url_encoder(q)
    prefix = q.get("prefix", "")
    delimiter = q.get("delimiter") or None
    requested = int_param(q, "max-keys", "Provided max-keys not an integer or within integer range")
    max_keys = MAX_LIST_LIMIT if requested is None else min(requested, MAX_LIST_LIMIT)
    facts = plane.facts(ex)
    common = [el("Name", plane.bucket), el("Prefix", encode(prefix))]
    if delimiter is not None:
        common.append(el("Delimiter", encode(delimiter)))
    common.append(el("MaxKeys", str(max_keys)))
    if encode is not _plain:
        common.append(el("EncodingType", "url"))
    if list_type == "2":
        if "continuation-token" in q and not q["continuation-token"]:
            raise InvalidArgument("The continuation token provided is incorrect")
        token = q.get("continuation-token")
        start_after = q.get("start-after") or None
        page = await plane.objects.list_keys(
            principal,
            prefix,
            limit=max_keys,
            delimiter=delimiter,
            start_after=start_after,
            continuation_token=token,
            max_keys=requested,
            facts=facts,
        )
        head = [
            *common,
            el("KeyCount", str(len(page.items) + len(page.prefixes))),
            el("IsTruncated", _bool(page.next_token is not None)),
        ]
        if token is not None:
            head.append(el("ContinuationToken", token))
        if page.next_token is not None:
            head.append(el("NextContinuationToken", page.next_token))
        if start_after is not None:
            head.append(el("StartAfter", encode(start_after)))
        owner = owner_xml(plane.bucket) if q.get("fetch-owner") == "true" else ""
    else:
        marker = q.get("marker", "")
        page = await plane.objects.list_keys(
            principal,
            prefix,
            limit=max_keys,
            delimiter=delimiter,
            start_after=marker or None,
            max_keys=requested,
            facts=facts,
        )
        truncated = page.next_token is not None
        head = [*common, el("Marker", encode(marker)), el("IsTruncated", _bool(truncated))]
        if truncated and delimiter is not None and page.last is not None:
            head.append(el("NextMarker", encode(page.last)))
        owner = owner_xml(plane.bucket)
    await send_xml(plane, ex, send, document("ListBucketResult", *head, *_entries(page, owner, encode)))


def _entries(page: ListPage, owner: str, encode: Callable[[str], str]) -> list[str]:
    out = [
        "<Contents>"
        + el("Key", encode(item.key))
        + el("LastModified", iso8601(item.last_modified))
        + el("ETag", f'"{item.etag}"')
        + el("Size", str(item.size))
        + owner
        + el("StorageClass", "STANDARD")
        + "</Contents>"
        for item in page.items
    ]
    out += [f"<CommonPrefixes>{el('Prefix', encode(p))}</CommonPrefixes>" for p in page.prefixes]
    return out


# -- shared by the listings here and in `multipart` -------------------------------------------


def owner_id(bucket: str) -> str:
    """The canonical id of the one owner of every object: 64 hex digits, as S3's ids are."""
    return hashlib.sha256(f"updown:{bucket}".encode()).hexdigest()


def owner_xml(bucket: str, element: str = "Owner") -> str:
    """``<Owner><ID>…</ID><DisplayName>updown</DisplayName></Owner>`` (or another element name)."""
    return f"<{element}>{el('ID', owner_id(bucket))}{el('DisplayName', OWNER_NAME)}</{element}>"


def url_encoder(q: Mapping[str, str]) -> Callable[[str], str]:
    """How names go into a listing: as they are, or percent-encoded for ``encoding-type=url``.

    Raises:
        InvalidArgument: an encoding type other than ``url``.
    """
    kind = q.get("encoding-type")
    if kind is None:
        return _plain
    if kind.lower() != "url":
        raise InvalidArgument("Invalid Encoding Method specified in Request")
    return _url


def int_param(q: Mapping[str, str], name: str, message: str) -> int | None:
    """A non-negative integer query parameter, None when absent.

    Raises:
        InvalidArgument: present and not a plain non-negative integer (of at most 10 digits).
    """
    raw = q.get(name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        raise InvalidArgument(message)
    return int(raw)


async def send_xml(plane: DataPlane, ex: Exchange, send: Send, doc: bytes, status: int = 200) -> None:
    headers = [(b"content-type", s3xml.XML_TYPE), (b"content-length", str(len(doc)).encode())]
    await plane.start(ex, send, status, headers)
    await send({"type": "http.response.body", "body": doc})


def _plain(value: str) -> str:
    return value


def _url(value: str) -> str:
    return quote(value, safe="/~")


def _bool(value: bool) -> str:
    return "true" if value else "false"


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
