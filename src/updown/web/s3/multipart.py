"""The multipart verbs of the data plane: CreateMultipartUpload, UploadPart (also an upload
intent's presigned part URLs), UploadPartCopy, CompleteMultipartUpload, AbortMultipartUpload,
ListParts, ListMultipartUploads.

One multipart implementation serves both users: an intent's parts go to its staging key
(``_uploads/<id>``) and only there; an S3 client's upload is for any key its caller may write,
each verb authorised by its IAM action through `files.objects.Objects` (``s3:PutObject`` for
create, parts and complete, ``s3:AbortMultipartUpload``, ``s3:ListMultipartUploadParts``,
``s3:ListBucketMultipartUploads``). A completed upload is recorded as a direct PUT is. Uploads left
open are aborted by cleanup once older than the multipart lifetime (``uploads.multipart_expires``).

Completion is validated as S3 does: the parts listed in ascending order (``InvalidPartOrder``),
each received with that ETag (``InvalidPart``), every one but the last at least the backend's
minimum part size (``EntityTooSmall``); the object's ETag is the MD5 of the parts' MD5s, ``-`` and
their count.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final
from xml.parsers import expat

from starlette.types import Receive, Send

from updown.auth.principal import Principal
from updown.core.sigv4verify import VerifiedRequest
from updown.errors import (
    AccessDenied,
    EntityTooLarge,
    InvalidArgument,
    MalformedXML,
)
from updown.storage.base import MAX_PARTS, MultipartUpload
from updown.web.s3.bucket import int_param, owner_xml, send_xml, url_encoder
from updown.web.s3.objects import copy_conditions, copy_source, read_all, upload_body, user_metadata
from updown.web.s3.xml import document, el, iso8601

if TYPE_CHECKING:
    from updown.web.s3.app import DataPlane, Exchange

MAX_LISTED: Final = 1000
# A completion list of 10,000 parts with checksums is well under 2 MiB.
MAX_COMPLETE_BODY: Final = 2 * 1024 * 1024
_COPY_RANGE: Final = re.compile(r"bytes=(\d{1,19})-(\d{1,19})")
_PART_NUMBER_MESSAGE: Final = "Part number must be an integer between 1 and 10000, inclusive"


async def create(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    """CreateMultipartUpload (``POST key?uploads``): the content type and ``x-amz-meta-*`` the
    object will have."""
    assert ex.key is not None
    h = ex.headers
    # As for a PUT: the signer chose the content type.
    if "content-type" in h and verified.header("content-type") is None:
        raise AccessDenied("There were headers present in the request which were not signed")
    upload_id = await plane.objects.multipart.create(
        principal,
        ex.key,
        content_type=h.get("content-type"),
        metadata=user_metadata(h),
        cache_control=h.get("cache-control"),
        facts=plane.facts(ex),
    )
    doc = document(
        "InitiateMultipartUploadResult", el("Bucket", plane.bucket), el("Key", ex.key), el("UploadId", upload_id)
    )
    await send_xml(plane, ex, send, doc)


async def upload_part(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    """UploadPart: never a whole-object write, whatever else the request says."""
    assert ex.key is not None
    number, upload_id = _part_target(ex.query)
    body, length = upload_body(plane, ex, verified, receive)
    etag = await plane.objects.multipart.upload_part(
        principal, ex.key, upload_id, number, body, content_length=length, facts=plane.facts(ex)
    )
    await plane.empty(ex, send, 200, [(b"etag", f'"{etag}"'.encode())])


async def upload_part_copy(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    """UploadPartCopy: the part is (a byte range of) another object, read with the caller's rights."""
    assert ex.key is not None
    number, upload_id = _part_target(ex.query)
    h = ex.headers
    source = copy_source(h["x-amz-copy-source"], plane.bucket)
    part = await plane.objects.multipart.copy_part(
        principal,
        ex.key,
        upload_id,
        number,
        source,
        byte_range=_copy_range(h.get("x-amz-copy-source-range")),
        check_source=copy_conditions(h),
        facts=plane.facts(ex),
    )
    doc = document("CopyPartResult", el("LastModified", iso8601(part.last_modified)), el("ETag", f'"{part.etag}"'))
    await send_xml(plane, ex, send, doc)


async def complete(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    """CompleteMultipartUpload: the body lists the parts, ``<Part><PartNumber>…<ETag>…``."""
    assert ex.key is not None
    upload_id = ex.query.get("uploadId", "")
    body, length = upload_body(plane, ex, verified, receive)
    if length is not None and length > MAX_COMPLETE_BODY:
        raise EntityTooLarge(f"the part list is {length} bytes; the limit is {MAX_COMPLETE_BODY}")
    parts = parse_part_list(await read_all(body, MAX_COMPLETE_BODY))
    info = await plane.objects.multipart.complete(principal, ex.key, upload_id, parts, facts=plane.facts(ex))
    scheme = ex.scope.get("scheme", "http")
    host = ex.headers.get("host", "")
    location = f"{scheme}://{host}{ex.raw_path.decode('latin-1')}" if host else ex.raw_path.decode("latin-1")
    doc = document(
        "CompleteMultipartUploadResult",
        el("Location", location),
        el("Bucket", plane.bucket),
        el("Key", info.key),
        el("ETag", f'"{info.etag}"'),
    )
    await send_xml(plane, ex, send, doc)


async def abort(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    """AbortMultipartUpload: 204, the parts gone."""
    assert ex.key is not None
    await plane.objects.multipart.abort(principal, ex.key, ex.query.get("uploadId", ""), facts=plane.facts(ex))
    await plane.empty(ex, send, 204, [])


async def list_parts(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    """ListParts: ``max-parts`` (at most 1000) after ``part-number-marker``."""
    assert ex.key is not None
    q = ex.query
    encode = url_encoder(q)
    upload_id = q.get("uploadId", "")
    requested = int_param(q, "max-parts", "Argument max-parts must be an integer between 0 and 2147483647")
    max_parts = MAX_LISTED if requested is None else min(requested, MAX_LISTED)
    marker = int_param(q, "part-number-marker", "Argument partNumberMarker must be an integer.") or 0
    parts = await plane.objects.multipart.list_parts(principal, ex.key, upload_id, facts=plane.facts(ex))
    after = [p for p in parts if p.part_number > marker]
    page = after[:max_parts]
    head = [
        el("Bucket", plane.bucket),
        el("Key", encode(ex.key)),
        el("UploadId", upload_id),
        owner_xml(plane.bucket, "Initiator"),
        owner_xml(plane.bucket),
        el("StorageClass", "STANDARD"),
        el("PartNumberMarker", str(marker)),
        el("NextPartNumberMarker", str(page[-1].part_number if page else marker)),
        el("MaxParts", str(max_parts)),
        el("IsTruncated", "true" if len(after) > len(page) else "false"),
    ]
    if q.get("encoding-type"):
        head.append(el("EncodingType", "url"))
    body = [
        "<Part>"
        + el("PartNumber", str(p.part_number))
        + el("LastModified", iso8601(p.last_modified))
        + el("ETag", f'"{p.etag}"')
        + el("Size", str(p.size))
        + "</Part>"
        for p in page
    ]
    await send_xml(plane, ex, send, document("ListPartsResult", *head, *body))


async def list_uploads(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    """ListMultipartUploads: ``prefix``, ``delimiter``, ``key-marker``/``upload-id-marker``,
    ``max-uploads`` (at most 1000)."""
    q = ex.query
    encode = url_encoder(q)
    prefix = q.get("prefix", "")
    delimiter = q.get("delimiter") or None
    key_marker = q.get("key-marker", "")
    id_marker = q.get("upload-id-marker", "") if key_marker else ""
    requested = int_param(q, "max-uploads", "Argument max-uploads must be an integer between 0 and 2147483647")
    max_uploads = MAX_LISTED if requested is None else min(requested, MAX_LISTED)
    found = await plane.objects.multipart.list_uploads(principal, prefix, delimiter=delimiter, facts=plane.facts(ex))
    entries = _upload_entries(found, prefix, delimiter, key_marker, id_marker)
    page = entries[:max_uploads]
    truncated = len(entries) > len(page)
    head = [
        el("Bucket", plane.bucket),
        el("KeyMarker", encode(key_marker)),
        el("UploadIdMarker", id_marker),
    ]
    if truncated and page:
        last = page[-1]
        head.append(el("NextKeyMarker", encode(last if isinstance(last, str) else last.key)))
        head.append(el("NextUploadIdMarker", "" if isinstance(last, str) else last.upload_id))
    if delimiter is not None:
        head.append(el("Delimiter", encode(delimiter)))
    head += [
        el("Prefix", encode(prefix)),
        el("MaxUploads", str(max_uploads)),
        el("IsTruncated", "true" if truncated else "false"),
    ]
    if q.get("encoding-type"):
        head.append(el("EncodingType", "url"))
    initiator, owner = owner_xml(plane.bucket, "Initiator"), owner_xml(plane.bucket)
    body = [
        f"<CommonPrefixes>{el('Prefix', encode(e))}</CommonPrefixes>"
        if isinstance(e, str)
        else "<Upload>"
        + el("Key", encode(e.key))
        + el("UploadId", e.upload_id)
        + initiator
        + owner
        + el("StorageClass", "STANDARD")
        + el("Initiated", iso8601(e.initiated))
        + "</Upload>"
        for e in page
    ]
    await send_xml(plane, ex, send, document("ListMultipartUploadsResult", *head, *body))


# -- parsing -----------------------------------------------------------------------------------


def parse_part_list(body: bytes) -> list[tuple[int, str]]:
    """The ``(part number, ETag)`` pairs of a ``CompleteMultipartUpload`` document, as listed.

    Parsed with expat, which never fetches anything; a document type declaration (and with it
    any entity) is refused outright.

    Raises:
        MalformedXML: not that document, or a part without its number or ETag, or no part at all.
        InvalidArgument: a part number out of range.
    """
    parts: list[tuple[int, str]] = []
    path: list[str] = []
    text: list[str] = []
    current: dict[str, str] = {}

    def refuse(*_: object) -> None:
        raise MalformedXML("document type declarations are not accepted")

    def start(name: str, _attrs: object) -> None:
        local = name.rpartition(" ")[2]
        depth = len(path)
        if depth == 0 and local != "CompleteMultipartUpload":
            raise MalformedXML()
        if depth == 1 and local == "Part":
            current.clear()
        path.append(local)
        text.clear()

    def end(name: str) -> None:
        local = path.pop()
        if len(path) == 2 and path[1] == "Part":
            current[local] = "".join(text).strip()
        elif len(path) == 1 and local == "Part":
            number, etag = current.get("PartNumber"), current.get("ETag")
            if not number or etag is None or not number.isascii() or not number.isdigit():
                raise MalformedXML()
            if not 1 <= int(number) <= MAX_PARTS:
                raise InvalidArgument(_PART_NUMBER_MESSAGE)
            parts.append((int(number), etag))
        text.clear()

    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text.append
    try:
        parser.Parse(body, True)
    except expat.ExpatError:
        raise MalformedXML() from None
    if not parts:
        raise MalformedXML("the part list is empty")
    if len(parts) > MAX_PARTS:
        raise InvalidArgument(f"at most {MAX_PARTS} parts")
    return parts


def _part_target(q: Mapping[str, str]) -> tuple[int, str]:
    number = q.get("partNumber", "")
    if not number.isascii() or not number.isdigit() or not 1 <= int(number) <= MAX_PARTS or not q.get("uploadId"):
        raise InvalidArgument(_PART_NUMBER_MESSAGE)
    return int(number), q["uploadId"]


def _copy_range(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    match = _COPY_RANGE.fullmatch(value.strip())
    if match is None or int(match[1]) > int(match[2]):
        raise InvalidArgument(
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last "
            "are the zero-based offsets of the first and last bytes to copy"
        )
    return int(match[1]), int(match[2])


def _upload_entries(
    uploads: tuple[MultipartUpload, ...], prefix: str, delimiter: str | None, key_marker: str, id_marker: str
) -> list[MultipartUpload | str]:
    """The uploads after the markers, those with the delimiter past the prefix rolled up into their
    common prefix (each once, in order)."""
    out: list[MultipartUpload | str] = []
    # After the marker's own upload (uploads of a key are in order of initiation); after an id we
    # do not know, the ids greater than it, as S3 documents.
    known = bool(id_marker) and any(u.key == key_marker and u.upload_id == id_marker for u in uploads)
    passed = False
    for upload in uploads:
        key = upload.key
        if key_marker:
            if key < key_marker:
                continue
            if key == key_marker:
                if not id_marker:
                    continue
                if known:
                    if not passed:
                        passed = upload.upload_id == id_marker
                        continue
                elif upload.upload_id <= id_marker:
                    continue
        if delimiter is not None and (at := key.find(delimiter, len(prefix))) >= 0:
            common = key[: at + len(delimiter)]
            if (key_marker and common <= key_marker) or (out and out[-1] == common):
                continue
            out.append(common)
            continue
        out.append(upload)
    return out
