"""DeleteObjects (``POST /{bucket}?delete``): many keys, each authorised and answered on its own."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.types import Receive, Send

from updown.auth.principal import Principal
from updown.core.sigv4verify import VerifiedRequest
from updown.errors import NotImplementedHere

if TYPE_CHECKING:
    from updown.web.s3.app import DataPlane, Exchange


async def delete_objects(
    plane: DataPlane, ex: Exchange, principal: Principal, verified: VerifiedRequest, receive: Receive, send: Send
) -> None:
    raise NotImplementedHere("DeleteObjects is not implemented yet")
