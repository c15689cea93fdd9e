"""HTTP details of the S3 data plane, without I/O: request headers and query, byte ranges,
conditional requests, and the headers an object is served with (inertly: nosniff, sandbox,
attachment unless a safe image type).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from email.utils import formatdate, parsedate_to_datetime
from typing import Final
from urllib.parse import unquote

from updown.errors import InvalidArgument, InvalidRange, PreconditionFailed, RequestHeaderFieldsTooLarge
from updown.files.objects import etag_matches
from updown.files.presign import INLINE_TYPES
from updown.storage.base import ByteRange, ObjectInfo

# S3 limits the request's header section to 8 KiB.
MAX_HEADER_BYTES: Final = 8192
META_PREFIX: Final = "x-amz-meta-"
# Served inline; everything else is an attachment, so a browser never renders user HTML or SVG
# (one list with the presigned GETs', which ask an S3 store for the same).
SAFE_INLINE_TYPES: Final = INLINE_TYPES
# The query parameters a presigned GET may carry to override response headers (S3's six).
RESPONSE_OVERRIDES: Final = {
    "response-content-type": b"content-type",
    "response-content-disposition": b"content-disposition",
    "response-cache-control": b"cache-control",
    "response-content-language": b"content-language",
    "response-content-encoding": b"content-encoding",
    "response-expires": b"expires",
}

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_DIGITS = re.compile(r"[0-9]{1,19}")

RawHeaders = Sequence[tuple[bytes, bytes]]
ResponseHeaders = list[tuple[bytes, bytes]]


def request_headers(raw: RawHeaders) -> dict[str, str]:
    """Header values by lower-case name (repeats joined with ``,``), refusing a section over 8 KiB.

    Raises:
        RequestHeaderFieldsTooLarge: the header section is over `MAX_HEADER_BYTES`.
    """
    total = 0
    out: dict[str, str] = {}
    for name, value in raw:
        total += len(name) + len(value) + 4  # ": " and CRLF, as on the wire
        n = name.decode("latin-1").lower()
        v = value.decode("latin-1")
        out[n] = f"{out[n]},{v}" if n in out else v
    if total > MAX_HEADER_BYTES:
        raise RequestHeaderFieldsTooLarge(
            f"Your request header section exceeds the maximum allowed size of {MAX_HEADER_BYTES} bytes."
        )
    return out


def query_params(raw: bytes) -> dict[str, str]:
    """Decoded query parameters (first value wins); ``+`` stays a plus, as SigV4 signers mean it."""
    out: dict[str, str] = {}
    for piece in raw.decode("latin-1").split("&"):
        if piece:
            key, _, value = piece.partition("=")
            out.setdefault(unquote(key), unquote(value))
    return out


def content_length(headers: Mapping[str, str]) -> int | None:
    """The declared body length, or None when absent.

    Raises:
        InvalidArgument: not a plain non-negative integer.
    """
    raw = headers.get("content-length")
    if raw is None:
        return None
    if _DIGITS.fullmatch(raw.strip()) is None:
        raise InvalidArgument("Content-Length must be a non-negative integer")
    return int(raw)


def parse_range(value: str | None) -> ByteRange | None:
    """A single ``bytes=a-b``, ``a-`` or ``-n`` range; None to serve the whole object.

    Several ranges, other units and syntactically invalid ranges are ignored (RFC 9110 allows
    it; S3 does the same), so the whole object is served.

    Raises:
        InvalidRange: ``bytes=-0``, which no object can satisfy.
    """
    if value is None:
        return None
    m = _RANGE.fullmatch(value.strip())
    if m is None:
        return None
    first, last = m.groups()
    if not first:
        if not last:
            return None
        if int(last) == 0:
            raise InvalidRange("a suffix range of zero bytes")
        return -int(last), None
    start = int(first)
    end = int(last) if last else None
    if end is not None and end < start:
        return None
    return start, end


def content_range(span: tuple[int, int], size: int) -> bytes:
    return f"bytes {span[0]}-{span[1]}/{size}".encode()


def check_preconditions(info: ObjectInfo, headers: Mapping[str, str]) -> bool:
    """Evaluate conditional headers in RFC 9110's order; True means answer 304 Not Modified.

    Raises:
        PreconditionFailed: If-Match or If-Unmodified-Since does not hold.
    """
    modified = int(info.last_modified)
    if_match = headers.get("if-match")
    if if_match is not None:
        if not etag_matches(if_match, info.etag):
            raise PreconditionFailed("At least one of the pre-conditions you specified did not hold")
    else:
        since = parse_http_date(headers.get("if-unmodified-since"))
        if since is not None and modified > since:
            raise PreconditionFailed("At least one of the pre-conditions you specified did not hold")
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        return etag_matches(if_none_match, info.etag)
    since = parse_http_date(headers.get("if-modified-since"))
    return since is not None and modified <= since


def http_date(timestamp: float) -> bytes:
    """RFC 9110 IMF-fixdate (``Tue, 15 Nov 1994 08:12:31 GMT``)."""
    return formatdate(timestamp, usegmt=True).encode()


def validator_headers(info: ObjectInfo) -> ResponseHeaders:
    """ETag and Last-Modified: all a 304 carries."""
    return [(b"etag", f'"{info.etag}"'.encode()), (b"last-modified", http_date(info.last_modified))]


def object_headers(info: ObjectInfo, overrides: Mapping[str, str], *, hidden: frozenset[str]) -> ResponseHeaders:
    """The headers of a GET or HEAD answer, but for Content-Length and Content-Range.

    ``overrides`` are the request's query parameters; the ``response-*`` ones replace headers (the
    signature covers them, so only the URL's signer chose them). Metadata names in ``hidden`` are
    the service's own and are not sent.

    Raises:
        InvalidArgument: an override value that cannot travel in a header.
    """
    out: dict[bytes, bytes] = {
        b"content-type": info.content_type.encode("latin-1"),
        b"accept-ranges": b"bytes",
        b"x-content-type-options": b"nosniff",
        b"content-security-policy": b"sandbox",
    }
    # The headers the object was stored with (Cache-Control, …), as S3 serves them.
    for name, stored in info.headers.items():
        out[name.encode()] = stored.encode("latin-1", "replace")
    for param, header in RESPONSE_OVERRIDES.items():
        value = overrides.get(param)
        if value is not None:
            if not value or not all(0x20 <= ord(c) <= 0x7E for c in value):
                raise InvalidArgument(f"{param} must be printable ASCII")
            out[header] = value.encode()
    disposition = out.get(b"content-disposition")
    # Only the signer's override may show an unsafe type inline; a stored disposition may not.
    overridden = "response-content-disposition" in overrides
    if disposition is None or (not overridden and not disposition.lower().startswith(b"attachment")):
        media_type = out[b"content-type"].split(b";", 1)[0].strip().lower().decode("latin-1")
        if media_type not in SAFE_INLINE_TYPES:
            out[b"content-disposition"] = b"attachment"
    headers = [*validator_headers(info), *out.items()]
    headers += [
        (f"{META_PREFIX}{name}".encode(), metadata_value(value))
        for name, value in info.metadata.items()
        if name not in hidden
    ]
    return headers


def metadata_value(value: str) -> bytes:
    """A user metadata value as a header: ASCII as is, other text RFC 2047 encoded, as S3 answers."""
    if value.isascii():
        return value.encode()
    return b"=?UTF-8?B?" + base64.b64encode(value.encode()) + b"?="


def parse_http_date(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
