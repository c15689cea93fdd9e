"""Object verbs of the data plane: GetObject and HeadObject (streamed through `web.serving`),
PutObject, CopyObject, DeleteObject; and the request bodies of writes.

A write's body is checked as it streams and refused at its end if it is not what was signed or
declared (nothing is stored then): its signed SHA-256; its ``Content-MD5`` (``BadDigest``,
``InvalidDigest``); an ``x-amz-checksum-*`` header or, for aws-chunked bodies, trailer
(``BadDigest``); an aws-chunked body's chunk signatures, each in the chain from the request's
signature (``SignatureDoesNotMatch``) and its ``x-amz-decoded-content-length``. The framing itself
is ``core.awschunked``'s, the digests ``core.checksums``'.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Mapping
from email.header import decode_header
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote

from starlette.types import Message, Receive, Send

from updown.auth.principal import Principal
from updown.core import awschunked
from updown.core.checksums import (
    CHECKSUM_PREFIX,
    NOT_A_VALUE,
    PayloadChecks,
    declared_checksums,
    parse_content_md5,
    trailer_algorithm,
)
from updown.core.keys import validate_key
from updown.core.sigv4 import UNSIGNED_PAYLOAD, amz_date
from updown.core.sigv4verify import VerifiedRequest
from updown.errors import (
    AccessDenied,
    EntityTooLarge,
    IncompleteBody,
    InvalidArgument,
    InvalidRequest,
    MissingContentLength,
    NoSuchBucket,
    NotImplementedHere,
    PreconditionFailed,
    XAmzContentSHA256Mismatch,
)
from updown.files.objects import HIDDEN, WriteCondition, etag_matches
from updown.storage.base import DEFAULT_CONTENT_TYPE, STORED_HEADERS, ObjectInfo
from updown.web import s3http, serving
from updown.web.s3 import xml as s3xml
from updown.web.s3.form import DISCONNECTED

if TYPE_CHECKING:
    from updown.web.s3.app import DataPlane, Exchange

_DIGITS: Final = frozenset("0123456789")
_FAILED: Final = "At least one of the pre-conditions you specified did not hold"


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


# ----------------------------------------------------------------------------- request bodies


def payload_checks(headers: Mapping[str, str]) -> PayloadChecks:
    """What a write's body must match: ``Content-MD5``, an ``x-amz-checksum-*`` header, the
    checksum an ``x-amz-trailer`` announces.

    Raises:
        InvalidDigest: a malformed Content-MD5. InvalidRequest: a malformed or second checksum.
    """
    md5 = headers.get("content-md5")
    return PayloadChecks(
        content_md5=None if md5 is None else parse_content_md5(md5),
        checksums=declared_checksums(headers),
        trailer=trailer_algorithm(headers.get("x-amz-trailer")),
    )


def checked_body(
    plane: DataPlane, ex: Exchange, verified: VerifiedRequest, receive: Receive
) -> tuple[AsyncIterator[bytes], int | None, PayloadChecks]:
    """A write's body, checked as it streams (see the module docstring), its length (decoded, for
    aws-chunked) and the checks (``verified`` holds the checksums once the body is read).

    Raises (before any byte is read):
        AccessDenied: an unsigned Content-Type. MissingContentLength. EntityTooLarge.
        InvalidDigest, InvalidRequest: malformed integrity headers. NotImplementedHere: a
            streaming mode updown does not speak (SigV4a, event streams).
    """
    h = ex.headers
    # The signer chose the content type: one the signature does not cover would be the
    # client's choice, which is what binding it is meant to prevent.
    if "content-type" in h and verified.header("content-type") is None:
        raise AccessDenied("There were headers present in the request which were not signed")
    checks = payload_checks(h)
    mode = verified.payload_hash
    body: AsyncIterator[bytes]
    if mode.startswith("STREAMING-"):
        if mode not in awschunked.MODES:
            raise NotImplementedHere(f"x-amz-content-sha256 {mode} is not implemented")
        if checks.trailer is not None and mode == awschunked.STREAMING_SIGNED:
            raise InvalidRequest(f"x-amz-trailer needs x-amz-content-sha256 {awschunked.STREAMING_SIGNED_TRAILER}")
        length = _decoded_length(h)
        signer = None
        if mode != awschunked.STREAMING_UNSIGNED_TRAILER:
            signer = awschunked.ChunkSigner.for_request(
                verified.credentials.secret_access_key,
                amz_date(verified.timestamp),
                verified.region,
                verified.service,
                verified.signature,
            )
        decoder = awschunked.ChunkedDecoder.for_mode(mode, signer, length)
        body = chunked_body(receive, decoder, checks)
    else:
        if checks.trailer is not None:
            raise InvalidRequest("x-amz-trailer is only for aws-chunked bodies (x-amz-content-sha256 STREAMING-…)")
        length = s3http.content_length(h)
        if length is None and "chunked" not in h.get("transfer-encoding", "").lower():
            raise MissingContentLength()
        body = request_body(receive, mode, checks)
    if length is not None and length > plane.max_object_size:
        raise EntityTooLarge(f"the body is {length} bytes; the limit is {plane.max_object_size}")
    return body, length, checks


def upload_body(
    plane: DataPlane, ex: Exchange, verified: VerifiedRequest, receive: Receive
) -> tuple[AsyncIterator[bytes], int | None]:
    """The checked body of a write (PutObject, UploadPart) and its declared length."""
    body, length, _ = checked_body(plane, ex, verified, receive)
    return body, length


def _decoded_length(headers: Mapping[str, str]) -> int | None:
    raw = headers.get("x-amz-decoded-content-length")
    if raw is None:
        return None
    raw = raw.strip()
    if not raw or len(raw) > 19 or not set(raw) <= _DIGITS:
        raise InvalidArgument("x-amz-decoded-content-length must be a non-negative integer")
    return int(raw)


async def request_body(
    receive: Receive, payload_hash: str, checks: PayloadChecks | None = None
) -> AsyncIterator[bytes]:
    """The request body as it arrives; a disconnect (or a body not matching its signed SHA-256,
    or ``checks``) raises inside the store's put, which then keeps nothing."""
    digest = None
    if payload_hash != UNSIGNED_PAYLOAD:
        if payload_hash.startswith("STREAMING-"):
            raise InvalidRequest("an aws-chunked body is read with chunked_body")
        digest = hashlib.sha256()
    active = checks if checks is not None and not checks.empty else None
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise IncompleteBody(DISCONNECTED)
        chunk: bytes = message.get("body", b"")
        if chunk:
            if digest is not None:
                digest.update(chunk)
            if active is not None:
                active.update(chunk)
            yield chunk
        if not message.get("more_body", False):
            if digest is not None and digest.hexdigest() != payload_hash:
                raise XAmzContentSHA256Mismatch()
            if active is not None:
                active.verify()
            return


async def chunked_body(
    receive: Receive, decoder: awschunked.ChunkedDecoder, checks: PayloadChecks
) -> AsyncIterator[bytes]:
    """An aws-chunked request body, decoded: its data as it arrives; a bad chunk signature, a
    malformed frame or trailer, a wrong length or checksum raises (so the store keeps nothing)."""
    active = None if checks.empty else checks
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise IncompleteBody(DISCONNECTED)
        chunk: bytes = message.get("body", b"")
        if chunk:
            for piece in decoder.feed(chunk):
                if active is not None:
                    active.update(piece)
                yield piece
        if not message.get("more_body", False):
            trailers = decoder.finish()
            checks.verify(trailers)
            return


async def read_all(body: AsyncIterator[bytes], limit: int) -> bytes:
    """A small request body whole (an XML document).

    Raises:
        EntityTooLarge: over ``limit`` bytes.
    """
    data = bytearray()
    async for chunk in body:
        data += chunk
        if len(data) > limit:
            raise EntityTooLarge(f"the request body is over {limit} bytes")
    return bytes(data)


def has_integrity_header(headers: Mapping[str, str]) -> bool:
    """Whether a request carries ``Content-MD5`` or an ``x-amz-checksum-*`` (header or trailer)."""
    if "content-md5" in headers or "x-amz-trailer" in headers:
        return True
    return any(n.startswith(CHECKSUM_PREFIX) and n not in NOT_A_VALUE for n in headers)


# ----------------------------------------------------------------------------- request headers


def user_metadata(headers: Mapping[str, str]) -> dict[str, str]:
    """The ``x-amz-meta-*`` headers by name (lower case, prefix dropped).

    Header values arrive as latin-1 text of their bytes. A value that is RFC 2047 encoded
    (``=?UTF-8?B?…?=``, as SDKs send non-ASCII metadata) is decoded, and one whose bytes are
    UTF-8 is read as UTF-8: S3 keeps non-ASCII metadata as the Unicode text it was given.
    """
    out: dict[str, str] = {}
    for name, value in headers.items():
        if name.startswith(s3http.META_PREFIX):
            out[name[len(s3http.META_PREFIX) :]] = _header_text(value)
    return out


def _header_text(value: str) -> str:
    if value.isascii():
        if "=?" in value and "?=" in value:
            return _rfc2047(value)
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return value


def _rfc2047(value: str) -> str:
    out = []
    for text, charset in decode_header(value):
        if isinstance(text, str):
            out.append(text)
            continue
        try:
            out.append(text.decode(charset or "ascii"))
        except (LookupError, UnicodeDecodeError):
            return value
    return "".join(out)


def stored_headers(headers: Mapping[str, str], verified: VerifiedRequest) -> dict[str, str]:
    """The headers a PUT stores with its object (Cache-Control, Content-Disposition,
    Content-Encoding without ``aws-chunked``, Content-Language, Expires), each only when the
    signature covers it: an unsigned one would be the sender's choice, not the signer's."""
    out: dict[str, str] = {}
    for name in STORED_HEADERS:
        value = headers.get(name)
        if value is None or verified.header(name) is None:
            continue
        if name == "content-encoding":
            value = ",".join(t.strip() for t in value.split(",") if t.strip() and t.strip().lower() != "aws-chunked")
        if value:
            out[name] = value
    return out


def write_condition(headers: Mapping[str, str]) -> WriteCondition | None:
    """S3's conditional write headers of a PutObject.

    Raises:
        NotImplementedHere: ``If-None-Match`` other than ``*`` (S3 offers only that on writes).
    """
    if_match = headers.get("if-match")
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None and if_none_match.strip() != "*":
        raise NotImplementedHere("If-None-Match on a write takes only *")
    if if_match is None and if_none_match is None:
        return None
    return WriteCondition(if_match=if_match, if_none_match=if_none_match is not None)


def copy_source(value: str, bucket: str) -> str:
    """The key an ``x-amz-copy-source`` (``[/]bucket/key[?versionId=…]``, URL-encoded) names.

    Raises:
        InvalidArgument: no key, or a version other than ``null`` (the bucket is unversioned).
        NoSuchBucket: another bucket. InvalidKey: a key that fails validation.
    """
    path, _, query = value.strip().partition("?")
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError:
        raise InvalidArgument("x-amz-copy-source is not valid UTF-8 once decoded") from None
    source_bucket, _, key = decoded.lstrip("/").partition("/")
    if not source_bucket or not key:
        raise InvalidArgument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
    if query:
        name, _, version = query.partition("=")
        if name != "versionId" or unquote(version) != "null":
            raise InvalidArgument("Invalid version id specified")
    if source_bucket != bucket:
        raise NoSuchBucket()
    return validate_key(key)


def copy_conditions(headers: Mapping[str, str]) -> Callable[[ObjectInfo], None] | None:
    """The ``x-amz-copy-source-if-*`` headers as a check of the source (PreconditionFailed), in
    S3's combinations: If-Match holding overrides If-Unmodified-Since; If-None-Match failing
    fails whatever If-Modified-Since says."""
    if_match = headers.get("x-amz-copy-source-if-match")
    if_none_match = headers.get("x-amz-copy-source-if-none-match")
    unmodified = s3http.parse_http_date(headers.get("x-amz-copy-source-if-unmodified-since"))
    modified = s3http.parse_http_date(headers.get("x-amz-copy-source-if-modified-since"))
    if if_match is None and if_none_match is None and unmodified is None and modified is None:
        return None

    def check(info: ObjectInfo) -> None:
        changed = int(info.last_modified)
        if if_match is not None:
            if not etag_matches(if_match, info.etag):
                raise PreconditionFailed(_FAILED)
        elif unmodified is not None and changed > unmodified:
            raise PreconditionFailed(_FAILED)
        if if_none_match is not None:
            if etag_matches(if_none_match, info.etag):
                raise PreconditionFailed(_FAILED)
        elif modified is not None and changed <= modified:
            raise PreconditionFailed(_FAILED)

    return check


# ----------------------------------------------------------------------------- verbs


async def put(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    """PutObject (with Content-MD5, x-amz-checksum-*, aws-chunked bodies and conditional writes)."""
    assert ex.key is not None
    h = ex.headers
    body, length, checks = checked_body(plane, ex, verified, receive)
    info = await plane.objects.put_object(
        principal,
        ex.key,
        body,
        content_type=h.get("content-type"),
        metadata=user_metadata(h),
        content_length=length,
        condition=write_condition(h),
        headers=stored_headers(h, verified),
        facts=plane.facts(ex),
    )
    headers = [(b"etag", f'"{info.etag}"'.encode())]
    headers += [(f"{CHECKSUM_PREFIX}{name}".encode(), value.encode()) for name, value in checks.verified.items()]
    await plane.empty(ex, send, 200, headers)


async def copy(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    """CopyObject (``x-amz-copy-source``; ``x-amz-metadata-directive`` COPY or REPLACE;
    ``x-amz-copy-source-if-*``)."""
    assert ex.key is not None
    h = ex.headers
    source = copy_source(h["x-amz-copy-source"], plane.bucket)
    directive = h.get("x-amz-metadata-directive", "COPY").strip().upper()
    if directive not in ("COPY", "REPLACE"):
        raise InvalidArgument("Unknown metadata directive.")
    replace = None
    if directive == "REPLACE":
        if "content-type" in h and verified.header("content-type") is None:
            raise AccessDenied("There were headers present in the request which were not signed")
        replace = (h.get("content-type") or DEFAULT_CONTENT_TYPE, user_metadata(h), stored_headers(h, verified))
    info = await plane.objects.copy_object(
        principal,
        source,
        ex.key,
        replace=replace,
        check_source=copy_conditions(h),
        facts=plane.facts(ex),
    )
    doc = s3xml.document(
        "CopyObjectResult",
        s3xml.el("LastModified", s3xml.iso8601(info.last_modified)),
        s3xml.el("ETag", f'"{info.etag}"'),
    )
    headers = [(b"content-type", s3xml.XML_TYPE), (b"content-length", str(len(doc)).encode())]
    await plane.start(ex, send, 200, headers)
    await send({"type": "http.response.body", "body": doc})


async def delete(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    """DeleteObject (with ``If-Match``)."""
    assert ex.key is not None
    await plane.objects.delete_object(principal, ex.key, if_match=ex.headers.get("if-match"), facts=plane.facts(ex))
    await plane.empty(ex, send, 204, [])
