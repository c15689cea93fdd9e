"""The multipart verbs of the data plane: UploadPart of an upload intent's presigned part URLs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.types import Send

from updown.auth.principal import Principal
from updown.errors import InvalidArgument

if TYPE_CHECKING:
    from updown.web.s3.app import DataPlane, Exchange


async def upload_part(
    plane: DataPlane,
    ex: Exchange,
    principal: Principal,
    q: dict[str, str],
    body: AsyncIterator[bytes],
    length: int | None,
    send: Send,
) -> None:
    assert ex.key is not None
    number = q.get("partNumber", "")
    if not number.isdigit() or not 1 <= int(number) <= 10_000 or not q.get("uploadId"):
        raise InvalidArgument("Part number must be an integer between 1 and 10000, inclusive")
    etag = await plane.objects.put_part(principal, ex.key, q["uploadId"], int(number), body, content_length=length)
    await plane.empty(ex, send, 200, [(b"etag", f'"{etag}"'.encode())])
