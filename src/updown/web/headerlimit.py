"""The request header limit: a header section over ``server.max_header_bytes`` is answered 431 first.

It wraps the whole app, so no route, signature check or database read runs for such a request. On
the S3 data plane the answer is an S3 XML error document; everywhere else problem+json.
"""

from __future__ import annotations

import secrets

from starlette.types import ASGIApp, Receive, Scope, Send

from updown.errors import RequestHeaderFieldsTooLarge
from updown.web import problems
from updown.web.s3 import xml as s3xml

S3_CODE = "RequestHeaderSectionTooLarge"


class HeaderLimit:
    """Refuses requests whose header section (names, values, ``: `` and CRLF) exceeds ``limit`` bytes."""

    def __init__(self, app: ASGIApp, *, limit: int, s3_prefix: str = "/s3") -> None:
        self.app = app
        self.limit = limit
        self.s3_prefix = s3_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            total = 0
            for name, value in scope["headers"]:
                total += len(name) + len(value) + 4
            if total > self.limit:
                await self._refuse(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"The request header section exceeds the maximum allowed size of {self.limit} bytes."
        path: str = scope["path"]
        if path == self.s3_prefix or path.startswith(self.s3_prefix + "/"):
            body = (
                b""
                if scope["method"] == "HEAD"
                else s3xml.error_document(S3_CODE, message, request_id=secrets.token_hex(8).upper())
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": RequestHeaderFieldsTooLarge.status,
                    "headers": [(b"content-type", s3xml.XML_TYPE), (b"content-length", str(len(body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await problems.problem_response(RequestHeaderFieldsTooLarge(message))(scope, receive, send)
