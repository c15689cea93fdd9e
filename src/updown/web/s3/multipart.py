"""The multipart verbs of the data plane: CreateMultipartUpload, UploadPart (also an upload
intent's presigned part URLs), UploadPartCopy, CompleteMultipartUpload, AbortMultipartUpload,
ListParts, ListMultipartUploads."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.types import Receive, Send

from updown.auth.principal import Principal
from updown.core.sigv4verify import VerifiedRequest
from updown.errors import InvalidArgument, NotImplementedHere
from updown.web.s3.objects import upload_body

if TYPE_CHECKING:
    from updown.web.s3.app import DataPlane, Exchange


async def upload_part(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    """UploadPart: never a whole-object write, whatever else the request says."""
    assert ex.key is not None
    q = ex.query
    number = q.get("partNumber", "")
    if not number.isdigit() or not 1 <= int(number) <= 10_000 or not q.get("uploadId"):
        raise InvalidArgument("Part number must be an integer between 1 and 10000, inclusive")
    body, length = upload_body(plane, ex, verified, receive)
    etag = await plane.objects.put_part(principal, ex.key, q["uploadId"], int(number), body, content_length=length)
    await plane.empty(ex, send, 200, [(b"etag", f'"{etag}"'.encode())])


async def upload_part_copy(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    raise NotImplementedHere("UploadPartCopy is not implemented yet")


async def create(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    raise NotImplementedHere("CreateMultipartUpload is not implemented yet")


async def complete(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    raise NotImplementedHere("CompleteMultipartUpload is not implemented yet")


async def abort(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    raise NotImplementedHere("AbortMultipartUpload is not implemented yet")


async def list_parts(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    raise NotImplementedHere("ListParts is not implemented yet")


async def list_uploads(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    raise NotImplementedHere("ListMultipartUploads is not implemented yet")
