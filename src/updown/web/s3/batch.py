"""DeleteObjects (``POST /{bucket}?delete``): many keys, each authorised and answered on its own.

As S3 requires, the request carries ``Content-MD5`` or an ``x-amz-checksum-*`` (header or
aws-chunked trailer), verified over the body before anything is deleted (``MissingContentMD5``,
``BadDigest``). Each key is deleted as a DeleteObject of it would be (``s3:DeleteObject``, the
owner rule of ``public/``, its row and variants); a key that fails gets its own ``<Error>``, a key
with no object is ``<Deleted>`` (S3's answer), and quiet mode leaves the ``<Deleted>`` out.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import anyio
from starlette.types import Receive, Send

from updown.auth.principal import Principal
from updown.core.keys import validate_key
from updown.core.sigv4verify import VerifiedRequest
from updown.errors import MalformedXML, MissingContentMD5, UpdownError
from updown.web.s3 import xml as s3xml
from updown.web.s3.objects import checked_body, has_integrity_header, read_all

if TYPE_CHECKING:
    from updown.web.s3.app import DataPlane, Exchange

MAX_KEYS: Final = 1000
# 1000 keys of 1024 bytes, escaped, in their elements: well under this.
MAX_BODY: Final = 2 * 1024 * 1024
# Keys deleted at once (each is a few database and storage calls).
CONCURRENCY: Final = 8


@dataclass(frozen=True, slots=True)
class Entry:
    """One ``<Object>`` of the request."""

    key: str
    version_id: str | None = None
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one entry: deleted (``code`` None) or an error."""

    entry: Entry
    code: str | None = None
    message: str = ""


def parse_delete(body: bytes) -> tuple[bool, list[Entry]]:
    """``(quiet, entries)`` of a ``<Delete>`` document (namespaced or not).

    Raises:
        MalformedXML: not well formed, a DTD, another root, no ``<Object>`` or over 1000, an
            ``<Object>`` without ``<Key>``.
    """
    lowered = body.lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered:
        raise MalformedXML()
    try:
        root = ET.fromstring(body)  # noqa: S314 - no DTD (refused above), so no entity expansion
    except ET.ParseError:
        raise MalformedXML() from None
    if _local(root.tag) != "Delete":
        raise MalformedXML()
    quiet = False
    entries: list[Entry] = []
    for child in root:
        name = _local(child.tag)
        if name == "Quiet":
            quiet = (child.text or "").strip().lower() == "true"
        elif name == "Object":
            fields = {_local(f.tag): f.text or "" for f in child}
            if "Key" not in fields:
                raise MalformedXML()
            entries.append(Entry(fields["Key"], fields.get("VersionId"), fields.get("ETag")))
            if len(entries) > MAX_KEYS:
                raise MalformedXML()
    if not entries:
        raise MalformedXML()
    return quiet, entries


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def result_document(outcomes: list[Outcome], *, quiet: bool) -> bytes:
    """The ``DeleteResult`` document."""
    parts: list[str] = []
    for outcome in outcomes:
        entry = outcome.entry
        version = "" if entry.version_id is None else s3xml.el("VersionId", entry.version_id)
        if outcome.code is None:
            if not quiet:
                parts.append(f"<Deleted>{s3xml.el('Key', entry.key)}{version}</Deleted>")
        else:
            parts.append(
                f"<Error>{s3xml.el('Key', entry.key)}{version}"
                f"{s3xml.el('Code', outcome.code)}{s3xml.el('Message', outcome.message)}</Error>"
            )
    return s3xml.document("DeleteResult", *parts)


async def delete_objects(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    """DeleteObjects."""
    if not has_integrity_header(ex.headers):
        raise MissingContentMD5()
    body, _, _ = checked_body(plane, ex, verified, receive)
    quiet, entries = parse_delete(await read_all(body, MAX_BODY))
    facts = plane.facts(ex)
    outcomes: list[Outcome | None] = [None] * len(entries)
    limiter = anyio.Semaphore(CONCURRENCY)

    async def one(index: int, entry: Entry) -> None:
        async with limiter:
            outcomes[index] = await _delete_one(plane, principal, entry, facts)

    async with anyio.create_task_group() as tasks:
        for index, entry in enumerate(entries):
            tasks.start_soon(one, index, entry)
    doc = result_document([o for o in outcomes if o is not None], quiet=quiet)
    headers = [(b"content-type", s3xml.XML_TYPE), (b"content-length", str(len(doc)).encode())]
    await plane.start(ex, send, 200, headers)
    await send({"type": "http.response.body", "body": doc})


async def _delete_one(plane: DataPlane, principal: Principal, entry: Entry, facts: dict[str, object]) -> Outcome:
    if entry.version_id is not None and entry.version_id != "null":
        return Outcome(entry, "NoSuchVersion", "The specified version does not exist.")
    try:
        key = validate_key(entry.key)
        await plane.objects.delete_object(principal, key, if_match=entry.etag, facts=facts)
    except UpdownError as exc:
        _, code, message = s3xml.s3_error(exc)
        return Outcome(entry, code, message)
    return Outcome(entry)
