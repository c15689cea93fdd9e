"""CORS of the data plane: preflights answered from the configured origins."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from starlette.types import Send

from updown.errors import AccessDenied, InvalidRequest

if TYPE_CHECKING:
    from updown.web.s3.app import DataPlane, Exchange

METHODS: Final = ("GET", "HEAD", "PUT", "POST", "DELETE")
EXPOSED: Final = b"ETag, Content-Length, Content-Range, Accept-Ranges, Last-Modified, x-amz-request-id"


def origin_allowed(plane: DataPlane, origin: str) -> bool:
    return "*" in plane.cors_origins or origin in plane.cors_origins


async def preflight(plane: DataPlane, ex: Exchange, send: Send) -> None:
    method = ex.headers.get("access-control-request-method")
    if ex.origin is None or method is None:
        raise InvalidRequest("Insufficient information. Origin request header needed.")
    if not origin_allowed(plane, ex.origin) or method not in METHODS:
        raise AccessDenied("CORSResponse: This CORS request is not allowed.")
    headers = [
        (b"access-control-allow-methods", ", ".join(METHODS).encode()),
        (b"access-control-max-age", b"3000"),
    ]
    requested = ex.headers.get("access-control-request-headers")
    if requested:
        headers.append((b"access-control-allow-headers", requested.encode("latin-1")))
    await plane.empty(ex, send, 200, headers)
