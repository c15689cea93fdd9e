"""The ASGI application: FastAPI for the JSON control plane, plain ASGI for the byte paths.

Byte paths (``/s3``, ``/cdn``) are dispatched before FastAPI so its per-request cost stays off the
data path. Everything is built from a :class:`~updown.runtime.Runtime` by :func:`create_app`.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
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
            await self.api(scope, _limited(scope, receive, self.max_json_body), send)
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


def _limited(scope: Scope, receive: Receive, limit: int) -> Receive:
    """Refuses control-plane bodies over ``limit`` bytes, declared or streamed."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise EntityTooLarge(f"request body over {limit} bytes")
    seen = 0

    async def receive_limited() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise EntityTooLarge(f"request body over {limit} bytes")
        return message

    return receive_limited


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
    """Turns an error raised before the API's own handlers run (body limits) into problem+json."""

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
        except EntityTooLarge as exc:
            if started or scope["type"] != "http":
                raise
            response = problems.problem_response(exc)
            await response(scope, receive, send)
