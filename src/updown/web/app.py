"""The ASGI application: FastAPI for the JSON control plane, plain ASGI for the byte paths.

Byte paths (``/s3``, ``/cdn``) are dispatched before FastAPI so its per-request cost stays off the
data path. Everything is built from a :class:`~updown.runtime.Runtime` by :func:`create_app`.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from updown import __version__
from updown.core.sigv4 import Credentials
from updown.errors import EntityTooLarge
from updown.runtime import Runtime
from updown.web import problems
from updown.web.cdn import Cdn
from updown.web.headerlimit import HeaderLimit
from updown.web.lazy import LazyApp
from updown.web.metrics import Metrics
from updown.web.routes import auth, events, health, identity, pages, policy, storage, wellknown
from updown.web.s3.app import DataPlane
from updown.web.ui.assets import static_app


def create_api(runtime: Runtime, metrics: Metrics) -> FastAPI:
    """The FastAPI app of the JSON control plane."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Embedded mode: each server process runs a worker; the queue's leases share the work.
        worker = runtime.worker() if runtime.settings.processing.embedded_worker else None
        if worker is not None:
            worker.start_thread()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            runtime.close()

    # /docs and /redoc are the UI's own pages (routes/pages.py): offline assets, strict CSP.
    api = FastAPI(title="updown", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    api.state.runtime = runtime
    api.state.metrics = metrics
    problems.install(api)
    origins = runtime.settings.storage.cors_origins
    if origins:
        # Bearer tokens travel in a header, never in cookies: no credentials mode, so "*" is safe.
        api.add_middleware(
            CORSMiddleware,
            allow_origins=list(origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["*"],
            expose_headers=["ETag", "Retry-After", "Location"],
            allow_credentials=False,
            max_age=3000,
        )
    api.include_router(health.router)
    api.include_router(wellknown.router)
    api.include_router(auth.router)
    api.include_router(identity.router)
    api.include_router(policy.router)
    api.include_router(storage.router)
    # Before the events API: a browser's navigation to /events/{eventId} gets the page.
    api.include_router(pages.negotiated)
    api.include_router(events.router)
    api.router.routes.append(Route("/graphql", LazyApp(functools.partial(_graphql_app, runtime))))
    api.include_router(pages.router)
    api.mount("/static", static_app(), name="static")
    return api


def _graphql_app(runtime: Runtime) -> ASGIApp:
    """The ``/graphql`` surface as an app of its own, built by its first request (``LazyApp``)."""
    from updown.web import graphql  # Strawberry and graphql-core: imported only when used

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.runtime = runtime
    problems.install(app)
    app.include_router(graphql.router(runtime.settings), prefix="/graphql")
    return app


class Dispatcher:
    """Routes a request by path prefix: byte paths to their ASGI apps, the rest to the API; with
    ``signed_root``, an S3-signed request anywhere else goes to that data plane (S3 tools given
    only ``host:port``; the API never takes AWS signatures, so nothing of it is shadowed)."""

    def __init__(
        self,
        api: ASGIApp,
        byte_paths: dict[str, ASGIApp],
        max_json_body: int,
        *,
        signed_root: ASGIApp | None = None,
    ) -> None:
        self.api = api
        self.byte_paths = tuple(byte_paths.items())
        self.max_json_body = max_json_body
        self.signed_root = signed_root

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            for prefix, app in self.byte_paths:
                if path == prefix or path.startswith(prefix + "/"):
                    await app(scope, receive, send)
                    return
            if self.signed_root is not None and _s3_signed(scope):
                await self.signed_root(scope, receive, send)
                return
            await _limited(self.api, self.max_json_body, scope, receive, send)
            return
        await self.api(scope, receive, send)


def _s3_signed(scope: Scope) -> bool:
    """An AWS-signed request: an ``AWS4-…`` (or SigV2 ``AWS …``) Authorization header, or a
    presigned query (SigV4, or SigV2's ``AWSAccessKeyId``). Not verified here: the data plane does
    that, and answers SigV2 with an S3 error rather than the API's 404."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return bool(value.startswith((b"AWS4-", b"AWS ")))
    query: bytes = scope.get("query_string", b"")
    return b"X-Amz-Credential=" in query or b"X-Amz-Signature=" in query or b"AWSAccessKeyId=" in query


# Over the limit, the rest of a JSON body is read and thrown away before the 413 goes out, up to
# this many bytes: a proxy that streams bodies through (nginx with proxy_request_buffering off)
# answers its client 502 when the upstream closes while it is still sending. 8 MiB is a few
# seconds of even a slow client; beyond it the 413 says Connection: close rather than read on.
DRAIN_MAX = 8 * 1024 * 1024


class _BodyTooLarge(StarletteHTTPException):
    """A streamed body crossed the limit. An HTTPException because FastAPI turns any other error
    raised while it reads a body into 400; this one it passes on, and problems.py answers a 413 as
    EntityTooLarge (:class:`_ProblemGuard` does, should it escape the API)."""

    def __init__(self, error: EntityTooLarge) -> None:
        super().__init__(status_code=error.status, detail=error.detail)
        self.error = error


class _LimitedBody:
    """One request's body, refused over ``limit`` bytes, declared or streamed, and read to its end
    before the answer goes out: over the limit the rest is drained (at most :data:`DRAIN_MAX`)
    before the request is refused (413 EntityTooLarge), and an answer made without reading the body (404,
    405) drains it first too, so the answer reaches a proxy that is still sending. When the rest
    is not drained, the answer says ``Connection: close``."""

    def __init__(self, scope: Scope, receive: Receive, limit: int) -> None:
        self._receive = receive
        self.limit = limit
        self.seen = 0
        self.declared: int | None = None
        chunked = False
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit():
                self.declared = int(value)
            elif name == b"transfer-encoding":
                chunked = True
        # HTTP/1.1 has a body only with one of the two headers (RFC 9112 6.3).
        self.ended = not chunked and not self.declared
        self.closing = False
        self._reading = 0

    def too_large(self) -> EntityTooLarge:
        return EntityTooLarge(f"request body over {self.limit} bytes")

    async def _next(self) -> Message:
        self._reading += 1
        try:
            message = await self._receive()
        finally:
            self._reading -= 1
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            self.ended = not message.get("more_body", False)
        else:  # http.disconnect: the client went away, nothing more will come
            self.ended = True
        return message

    async def receive(self) -> Message:
        message = await self._next()
        if message["type"] == "http.request" and self.seen > self.limit:
            await self.drain()
            raise _BodyTooLarge(self.too_large())
        return message

    async def drain(self) -> None:
        """Reads the rest of the body and discards it; past :data:`DRAIN_MAX` (declared or read)
        stops and marks the answer ``Connection: close`` (and is not tried again)."""
        if self.closing:
            return
        if self.declared is not None and self.declared - self.seen > DRAIN_MAX:
            self.closing = True
            return
        start = self.seen
        while not self.ended:
            if self.seen - start > DRAIN_MAX:
                self.closing = True
                return
            await self._next()

    def send(self, send: Send) -> Send:
        """``send`` that drains an unread body before the answer starts (unless someone is
        reading it right now, as Starlette's disconnect listener does), and adds
        ``Connection: close`` when the body was left unread."""

        async def send_drained(message: Message) -> None:
            if message["type"] == "http.response.start":
                if not self.ended and not self._reading:
                    await self.drain()
                if self.closing:
                    headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"connection"]
                    message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        return send_drained


async def _limited(app: ASGIApp, limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    """Runs the JSON API with request bodies of at most ``limit`` bytes: a declared length over it
    is refused before the API runs, a streamed one when it crosses the limit (the API's handlers
    answer that one); either way 413 problem+json once the body is drained."""
    body = _LimitedBody(scope, receive, limit)
    if body.declared is not None and body.declared > limit:
        await body.drain()
        await problems.problem_response(body.too_large())(scope, receive, body.send(send))
        return
    await app(scope, body.receive, body.send(send))


def create_app(runtime: Runtime) -> ASGIApp:
    """The whole service as one ASGI app."""
    metrics = Metrics()
    api = create_api(runtime, metrics)
    settings = runtime.settings
    plane = functools.partial(
        DataPlane,
        runtime.objects,
        bucket=settings.storage.bucket,
        region=settings.s3.region,
        service_credentials=Credentials(runtime.secrets.s3_access_key_id, runtime.secrets.s3_secret_access_key),
        max_object_size=settings.storage.max_object_size,
        clock=runtime.clock,
        cors_origins=settings.storage.cors_origins,
        resolve_temporary=runtime.identity.resolve_temporary,
    )
    dataplane = plane()
    root = plane(prefix="", virtual_hosts=True) if settings.s3.serve_at_root else None
    cdn = Cdn(
        runtime.objects,
        runtime.records,
        max_age=settings.processing.cdn_max_age,
        cors_origins=settings.storage.cors_origins,
    )
    dispatcher = Dispatcher(api, {"/s3": dataplane, "/cdn": cdn}, settings.server.max_json_body, signed_root=root)
    return metrics.wrap(HeaderLimit(_ProblemGuard(dispatcher), limit=settings.server.max_header_bytes))


class _ProblemGuard:
    """Turns a body-limit error that escapes the API's own handlers into problem+json (the body is
    drained by then: :class:`_LimitedBody` drains before it raises)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except (EntityTooLarge, _BodyTooLarge) as exc:
            if started or scope["type"] != "http":
                raise
            response = problems.problem_response(exc.error if isinstance(exc, _BodyTooLarge) else exc)
            await response(scope, receive, send)
