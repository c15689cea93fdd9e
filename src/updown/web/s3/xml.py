"""S3's XML answers: the one place where updown errors become S3 error documents (and codes), the
POST-upload result document, and the pieces every other answer is built of (`document`, `el`).

S3 has codes of its own where updown's vocabulary differs: an expired URL is ``AccessDenied``
("Request has expired"), an invalid key ``InvalidArgument`` (S3 has no ``InvalidKey``), a header
section over 8 KiB ``RequestHeaderSectionTooLarge`` and a body over the limit ``EntityTooLarge``,
both with status 400 as S3 answers them.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from updown.errors import (
    AuthorizationQueryParametersError,
    EntityTooLarge,
    InvalidKey,
    NotImplementedHere,
    RequestExpired,
    RequestHeaderFieldsTooLarge,
    ServerError,
    UpdownError,
)

log = logging.getLogger("updown.s3")

XML_TYPE = b"application/xml"
PROLOG = '<?xml version="1.0" encoding="UTF-8"?>\n'
NS = "http://s3.amazonaws.com/doc/2006-03-01/"

# updown class → (status, S3 code), where S3 differs from the class's own; looked up along the MRO.
_S3_CODES: dict[type[UpdownError], tuple[int, str]] = {
    RequestExpired: (403, "AccessDenied"),
    InvalidKey: (400, "InvalidArgument"),
    EntityTooLarge: (400, "EntityTooLarge"),
    RequestHeaderFieldsTooLarge: (400, "RequestHeaderSectionTooLarge"),
}


def s3_error(exc: BaseException) -> tuple[int, str, str]:
    """``(status, S3 code, message)`` for any exception; server faults are logged, never described."""
    if isinstance(exc, NotImplementedHere):
        return exc.status, exc.code, exc.detail
    if isinstance(exc, ServerError):
        log.error("data plane: %s: %s", type(exc).__name__, exc.detail)
        return exc.status, exc.code, exc.title
    if not isinstance(exc, UpdownError):
        log.exception("data plane: unexpected error", exc_info=exc)
        return 500, "InternalError", "We encountered an internal error. Please try again."
    if isinstance(exc, AuthorizationQueryParametersError) and exc.forbidden:
        return 403, exc.code, exc.detail
    for cls in type(exc).__mro__:
        mapped = _S3_CODES.get(cls)
        if mapped is not None:
            return mapped[0], mapped[1], exc.detail
    return exc.status, exc.code, exc.detail


def error_document(code: str, message: str, *, request_id: str, key: str | None = None, resource: str = "") -> bytes:
    """``<Error><Code>…</Code><Message>…</Message>[<Key>…</Key>]<RequestId>…</RequestId></Error>``."""
    parts = [PROLOG, "<Error>", el("Code", code), el("Message", message)]
    if key is not None:
        parts.append(el("Key", key))
    if resource:
        parts.append(el("Resource", resource))
    parts += [el("RequestId", request_id), "</Error>"]
    return "".join(parts).encode()


def post_response(location: str, bucket: str, key: str, etag: str) -> bytes:
    """The ``PostResponse`` document of a form upload answered with ``success_action_status=201``."""
    return (
        PROLOG
        + "<PostResponse>"
        + el("Location", location)
        + el("Bucket", bucket)
        + el("Key", key)
        + el("ETag", f'"{etag}"')
        + "</PostResponse>"
    ).encode()


def document(root: str, *children: str) -> bytes:
    """A whole S3 answer: the prolog, then ``<root xmlns=…>`` around the (already built) children."""
    return f'{PROLOG}<{root} xmlns="{NS}">{"".join(children)}</{root}>'.encode()


def iso8601(timestamp: float) -> str:
    """``2024-01-02T03:04:05.000Z``, the form S3 lists times in."""
    return (
        datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(timestamp * 1000) % 1000:03d}Z"
    )


def el(name: str, text: str) -> str:
    """``<name>text</name>``, the text escaped."""
    return f"<{name}>{escape(text)}</{name}>"
